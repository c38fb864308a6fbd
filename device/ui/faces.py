"""Smiley faces drawn with pygame's primitives, so the kiosk needs no image files.

A face is drawn three times larger and scaled down smoothly, which gives clean edges without an
antialiasing pass per shape. The mouth's curve carries the meaning (frown to smile) and each face
has a text label beside it, so no answer depends on telling colours apart.
"""

from __future__ import annotations

import functools

import pygame

from . import theme

_SUPERSAMPLE = 3


def mouth_curve(index: int, count: int) -> float:
    """How much face ``index`` of ``count`` smiles, from -1 (deep frown) to 1 (broad smile)."""
    if count < 2:
        return 0.0
    return -1.0 + 2.0 * index / (count - 1)


def _thick_curve(surface: pygame.Surface, points: list[tuple[float, float]], width: float) -> None:
    r = max(1, round(width / 2))
    for x, y in points:
        pygame.draw.circle(surface, theme.FACE_INK, (round(x), round(y)), r)


@functools.lru_cache(maxsize=32)
def face(index: int, count: int, diameter: int) -> pygame.Surface:
    """Face ``index`` (0 the most negative) of a ``count``-face scale, ``diameter`` pixels across."""
    fills = theme.FACE_FILLS.get(count) or theme.FACE_FILLS[5]
    d = max(8, diameter) * _SUPERSAMPLE
    big = pygame.Surface((d, d), pygame.SRCALPHA)
    c = d / 2
    outline = d * 0.035
    pygame.draw.circle(big, theme.FACE_INK, (c, c), c)
    pygame.draw.circle(big, fills[index % len(fills)], (c, c), c - outline)
    # Eyes: ovals, a little closer together than the mouth is wide.
    ew, eh = d * 0.085, d * 0.15
    for ex in (c - d * 0.17, c + d * 0.17):
        pygame.draw.ellipse(big, theme.FACE_INK, pygame.Rect(ex - ew / 2, d * 0.30, ew, eh))
    # Mouth: a parabola through three points; corners rise for a smile and fall for a frown.
    curve = mouth_curve(index, count)
    half_w, depth, mid_y = d * 0.24, d * 0.13, d * 0.66
    steps = 48
    points = []
    for i in range(steps + 1):
        t = -1 + 2 * i / steps
        points.append((c + t * half_w, mid_y + curve * depth * (0.5 - t * t)))
    _thick_curve(big, points, d * 0.06)
    return pygame.transform.smoothscale(big, (diameter, diameter))
