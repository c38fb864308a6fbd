"""Fitting text into a box: wrap at spaces, shrink until it fits, and say so when it cannot.

Question texts, choices and interface strings arrive as configuration in languages the code
has never seen, so no text can be laid out by hand. Every text on every screen goes through
``fit_text``; its ``Fit`` tells the caller (and the tests) whether the text really fits.
"""

from __future__ import annotations

from dataclasses import dataclass

import pygame

from .fonts import FontFamily


@dataclass(frozen=True, slots=True)
class Fit:
    """How a text was laid out in a box: the font size, the lines, and whether it fits."""

    text: str
    box: tuple[int, int, int, int]
    size: int
    bold: bool
    lines: tuple[str, ...]
    width: int
    height: int
    fits: bool

    def problem(self) -> str | None:
        """Why this text does not fit its box, or None when it does."""
        if self.fits:
            return None
        return f"text {self.text!r} needs {self.width}x{self.height} at {self.size}px but its box is {self.box[2:]}"


def _split_long(font: pygame.font.Font, word: str, width: int) -> list[str]:
    """Break a word wider than the box into pieces ending in a hyphen: a last resort at the smallest size."""
    pieces, current = [], ""
    for ch in word:
        if current and font.size(current + ch + "-")[0] > width:
            pieces.append(current + "-")
            current = ch
        else:
            current += ch
    pieces.append(current)
    return pieces


def wrap(font: pygame.font.Font, text: str, width: int, break_words: bool = False) -> list[str] | None:
    """Greedy word wrap; None when a word alone is wider than ``width`` (unless ``break_words``)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if font.size(candidate)[0] <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            if font.size(word)[0] <= width:
                line = word
            elif break_words:
                *whole, line = _split_long(font, word, width)
                lines.extend(whole)
            else:
                return None
        lines.append(line)
    return lines


def _layout(
    family: FontFamily, text: str, w: int, h: int, size: int, bold: bool, max_lines: int, break_words: bool
) -> tuple[list[str], int, int] | None:
    font = family.get(size, bold)
    lines = wrap(font, text, w, break_words)
    if lines is None:
        return None
    height = font.get_linesize() * len(lines)
    width = max((font.size(line)[0] for line in lines), default=0)
    if len(lines) > max_lines or height > h or width > w:
        return None
    return lines, width, height


def fit_text(
    family: FontFamily,
    text: str,
    box: pygame.Rect,
    max_size: int,
    min_size: int,
    bold: bool = False,
    max_lines: int = 8,
) -> Fit:
    """The largest size in ``min_size..max_size`` at which ``text`` wraps inside ``box``; ``fits`` False if none."""
    w, h = box.width, box.height
    min_size = min(min_size, max_size)
    lo, hi, best = min_size, max_size, None
    while lo <= hi:  # sizes are tried by bisection: taller text never fits where shorter did not
        mid = (lo + hi) // 2
        laid = _layout(family, text, w, h, mid, bold, max_lines, False)
        if laid is None:
            hi = mid - 1
        else:
            best, lo = (mid, laid), mid + 1
    rect = (box.x, box.y, box.width, box.height)
    if best is not None:
        size, (lines, width, height) = best
        return Fit(text, rect, size, bold, tuple(lines), width, height, True)
    # Nothing fits: at the smallest size, break words too; report honestly whether even that fits.
    font = family.get(min_size, bold)
    lines = wrap(font, text, w, break_words=True) or [text]
    height = font.get_linesize() * len(lines)
    width = max(font.size(line)[0] for line in lines)
    fits = len(lines) <= max_lines and height <= h and width <= w
    return Fit(text, rect, min_size, bold, tuple(lines), width, height, fits)


def draw_fit(
    surface: pygame.Surface,
    family: FontFamily,
    fit: Fit,
    colour: tuple[int, int, int],
    align: str = "center",
    valign: str = "center",
) -> None:
    """Draw a laid-out text in its box, clipped to the box so an unfit text never spills onto others."""
    font = family.get(fit.size, fit.bold)
    x, y, w, h = fit.box
    line_h = font.get_linesize()
    top = y + {"top": 0, "center": (h - fit.height) // 2, "bottom": h - fit.height}[valign]
    clip = surface.get_clip()
    surface.set_clip(pygame.Rect(fit.box).clip(clip))
    for i, line in enumerate(fit.lines):
        image = font.render(line, True, colour)
        lw = image.get_width()
        left = x + {"left": 0, "center": (w - lw) // 2, "right": w - lw}[align]
        surface.blit(image, (left, top + i * line_h))
    surface.set_clip(clip)
