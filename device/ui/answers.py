"""The answer area of the question screen: eleven NPS numbers or a row (or column) of faces.

Sizes come from the space left under the question, never below the 9 mm minimum; numbers and
faces are drawn large because many respondents are old or in a hurry.
"""

from __future__ import annotations

import pygame

from . import theme
from .canvas import Canvas
from .faces import face

NPS_SIZE = 11


def _row(area: pygame.Rect, count: int, side: int, gap: int, top: int) -> list[pygame.Rect]:
    width = count * side + (count - 1) * gap
    left = area.x + (area.width - width) // 2
    return [pygame.Rect(left + i * (side + gap), top, side, side) for i in range(count)]


def draw_nps(canvas: Canvas, area: pygame.Rect, low: str, high: str) -> None:
    """Eleven numbered squares 0–10 with the low and high labels: one row, or two rows in portrait."""
    m = canvas.metrics
    gap = max(4, canvas.px(0.012))
    rows = [list(range(NPS_SIZE))] if not m.portrait else [list(range(6)), list(range(6, NPS_SIZE))]
    per_row = max(len(r) for r in rows)
    label_h = max(m.min_text * 3, area.height // 5)
    side_w = (area.width - (per_row - 1) * gap) // per_row
    side_h = (area.height - label_h - (len(rows) - 1) * gap) // len(rows)
    side = max(m.min_target, min(side_w, side_h, canvas.px(0.2)))
    block_h = len(rows) * side + (len(rows) - 1) * gap + label_h
    top = area.y + max(0, (area.height - block_h) // 2)
    number_size = side // 2
    rects: list[pygame.Rect] = []
    for r, answers in enumerate(rows):
        for answer, rect in zip(answers, _row(area, len(answers), side, gap, top + r * (side + gap)), strict=True):
            canvas.button(rect, str(answer), ("answer", answer), number_size, max_lines=1)
            rects.append(rect)
    label_top = rects[-1].bottom + gap
    left_edge = min(r.left for r in rects)
    right_edge = max(r.right for r in rects)
    half = (right_edge - left_edge - gap) // 2
    label_size = max(m.min_text, canvas.px(0.04))
    low_text, high_text = (f"0 = {low}", f"10 = {high}") if m.portrait else (low, high)
    box_h = area.bottom - label_top
    canvas.text(
        pygame.Rect(left_edge, label_top, half, box_h),
        low_text,
        label_size,
        colour=theme.MUTED,
        align="left",
        valign="top",
    )
    canvas.text(
        pygame.Rect(right_edge - half, label_top, half, box_h),
        high_text,
        label_size,
        colour=theme.MUTED,
        align="right",
        valign="top",
    )


def draw_faces(canvas: Canvas, area: pygame.Rect, labels: tuple[str, ...]) -> None:
    """One card per face, worst first: side by side in landscape, stacked in portrait, each with its label."""
    count = len(labels)
    m = canvas.metrics
    gap = max(6, canvas.px(0.02))
    pad = max(4, canvas.px(0.015))
    label_max = max(m.min_text, canvas.px(0.045))
    if not m.portrait:
        card_w = min((area.width - (count - 1) * gap) // count, canvas.px(0.42))
        label_w = card_w - 2 * pad
        # One text size for every label, so no face looks more important than another.
        probe = pygame.Rect(0, 0, label_w, area.height // 2)
        size = min(canvas.fit(probe, t, label_max, False, 4).size for t in labels)
        label_h = max(canvas.fit(probe, t, size, False, 4).height for t in labels)
        diameter = max(m.min_target, min(card_w - 2 * pad, area.height - label_h - 3 * pad))
        card_h = min(area.height, diameter + label_h + 3 * pad)
        top = area.y + (area.height - card_h) // 2
        for i, (card, label) in enumerate(zip(_row(area, count, card_w, gap, top), labels, strict=True)):
            card.height = card_h
            canvas.panel(card, theme.SURFACE, theme.BORDER, max(2, canvas.px(0.004)))
            canvas.surface.blit(face(i, count, diameter), (card.centerx - diameter // 2, card.y + pad))
            box = pygame.Rect(card.x + pad, card.y + 2 * pad + diameter, label_w, label_h)
            canvas.text(box, label, label_max, size=size, max_lines=4, valign="top")
            canvas.add_target(card, ("answer", i))
        return
    row_h = min((area.height - (count - 1) * gap) // count, canvas.px(0.3))
    top = area.y + (area.height - (count * row_h + (count - 1) * gap)) // 2
    diameter = row_h - 2 * pad
    label_w = area.width - diameter - 4 * pad
    size = min(canvas.fit(pygame.Rect(0, 0, label_w, row_h - 2 * pad), t, label_max, False, 2).size for t in labels)
    for i, label in enumerate(labels):
        card = pygame.Rect(area.x, top + i * (row_h + gap), area.width, row_h)
        canvas.panel(card, theme.SURFACE, theme.BORDER, max(2, canvas.px(0.004)))
        canvas.surface.blit(face(i, count, diameter), (card.x + pad, card.y + pad))
        box = pygame.Rect(card.x + diameter + 3 * pad, card.y + pad, label_w, row_h - 2 * pad)
        canvas.text(box, label, label_max, size=size, align="left", max_lines=2)
        canvas.add_target(card, ("answer", i))
