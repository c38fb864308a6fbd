"""The kiosk's screens: each draws one view onto a Canvas and so records its texts and targets.

Layout is proportional to the screen's shorter side with physical minimums (9 mm targets,
~11 pt text), so one layout serves 800×480 to 1920×1080, landscape and portrait.
"""

from __future__ import annotations

import pygame

from . import theme
from .answers import draw_faces, draw_nps
from .canvas import Canvas, Frame
from .fonts import FontFamily
from .qr import qr_surface
from .views import BlankView, ChoiceView, ClosedView, NoticeView, QuestionView, Switcher, ThanksView, View


def render(view: View, surface: pygame.Surface, family: FontFamily, dpi: float) -> Frame:
    """Draw ``view`` onto ``surface`` and return the frame with its targets and text fits."""
    canvas = Canvas(surface, family, dpi)
    surface.fill(theme.BACKGROUND)
    if isinstance(view, QuestionView):
        _question(canvas, view)
    elif isinstance(view, ChoiceView):
        _choices(canvas, view)
    elif isinstance(view, ThanksView):
        _thanks(canvas, view)
    elif isinstance(view, ClosedView):
        _closed(canvas, view)
    elif isinstance(view, NoticeView):
        _notice(canvas, view)
    elif isinstance(view, BlankView):
        surface.fill((0, 0, 0))
        canvas.add_target(surface.get_rect(), ("wake",))
    return canvas.frame


def _margin(canvas: Canvas) -> int:
    return max(canvas.px(0.04), 8)


def _switcher(canvas: Canvas, switcher: Switcher, right: int, top: int, max_width: int) -> int:
    """Language buttons right-aligned from ``top``, wrapping into rows; returns the bottom edge."""
    if len(switcher.languages) < 2:
        return top
    m = canvas.metrics
    h = max(m.min_target, canvas.px(0.1))
    gap = max(6, canvas.px(0.015))
    size = max(m.min_text, canvas.px(0.038))
    pad = h // 2
    widths = []
    for _tag, name in switcher.languages:
        fit = canvas.fit(pygame.Rect(0, 0, max_width, h), name, size, True, 1)
        widths.append(min(max_width, max(m.min_target, h, fit.width + 2 * pad)))
    rows: list[list[int]] = [[]]
    used = 0
    for i, w in enumerate(widths):
        if rows[-1] and used + gap + w > max_width:
            rows.append([])
            used = 0
        used += (gap if rows[-1] else 0) + w
        rows[-1].append(i)
    y = top
    for row in rows:
        x = right - sum(widths[i] for i in row) - gap * (len(row) - 1)
        for i in row:
            tag, name = switcher.languages[i]
            rect = pygame.Rect(x, y, widths[i], h)
            canvas.button(rect, name, ("lang", tag), size, selected=tag == switcher.current, max_lines=1)
            x += widths[i] + gap
        y += h + gap
    return y - gap


def _question(canvas: Canvas, view: QuestionView) -> None:
    m = canvas.metrics
    margin = _margin(canvas)
    screen = canvas.surface.get_rect().inflate(-2 * margin, -2 * margin)
    top = _switcher(canvas, view.switcher, screen.right, screen.top, screen.width)
    gap = max(8, canvas.px(0.04))
    # The question takes what its text needs, up to a third of the screen; the answers get the rest.
    q_rect = pygame.Rect(screen.x, top + gap, screen.width, int(m.height * (0.3 if m.portrait else 0.33)))
    fit = canvas.text(q_rect, view.question, canvas.px(0.075), bold=True, max_lines=5, valign="top")
    q_bottom = q_rect.y + min(q_rect.height, fit.height)
    area = pygame.Rect(screen.x, q_bottom + gap, screen.width, screen.bottom - q_bottom - gap)
    if view.scale == "nps11":
        draw_nps(canvas, area, view.labels[0], view.labels[1])
    else:
        draw_faces(canvas, area, view.labels)


def _choices(canvas: Canvas, view: ChoiceView) -> None:
    m = canvas.metrics
    margin = _margin(canvas)
    screen = canvas.surface.get_rect().inflate(-2 * margin, -2 * margin)
    gap = max(8, canvas.px(0.03))
    q_rect = pygame.Rect(screen.x, screen.y, screen.width, int(m.height * 0.2))
    canvas.text(q_rect, view.question, canvas.px(0.07), bold=True, max_lines=4)
    skip_h = max(m.min_target, canvas.px(0.11))
    skip_w = min(screen.width, max(m.min_target * 3, screen.width // 3))
    skip = pygame.Rect(screen.right - skip_w, screen.bottom - skip_h, skip_w, skip_h)
    area = pygame.Rect(screen.x, q_rect.bottom + gap, screen.width, skip.top - gap - q_rect.bottom - gap)
    n = len(view.choices)
    # Up to three choices side by side in landscape (a lone one left over in a 2×2 grid looks like a mistake).
    if m.portrait:
        cols = 1 if n <= 4 else 2
    else:
        cols = n if n <= 3 else 2
    rows = -(-n // cols)
    cell_w = (area.width - (cols - 1) * gap) // cols
    cell_h = min((area.height - (rows - 1) * gap) // rows, canvas.px(0.2))
    size = canvas.px(0.05)
    fits = [
        canvas.fit(pygame.Rect(0, 0, cell_w - 2 * gap, cell_h - gap), text, size, True, 3).size
        for _id, text in view.choices
    ]
    common = min(fits, default=size)
    top = area.y + max(0, (area.height - rows * cell_h - (rows - 1) * gap) // 2)
    for i, (choice_id, text) in enumerate(view.choices):
        r, c = divmod(i, cols)
        rect = pygame.Rect(area.x + c * (cell_w + gap), top + r * (cell_h + gap), cell_w, cell_h)
        canvas.button(rect, text, (view.kind, choice_id), size, size=common)
    canvas.button(skip, view.skip, ("skip",), canvas.px(0.045), max_lines=2)


def _qr_card(canvas: Canvas, rect: pygame.Rect, data: str, caption: str, bold: bool = False) -> None:
    """A white card with a QR code and, under it, its caption."""
    canvas.panel(rect, theme.SURFACE, theme.BORDER, max(2, canvas.px(0.004)))
    pad = max(6, canvas.px(0.03))
    caption_h = max(canvas.metrics.min_text * 3, rect.height // 4) if caption else 0
    side = min(rect.width - 2 * pad, rect.height - 2 * pad - caption_h)
    image = qr_surface(data, side)
    canvas.surface.blit(image, (rect.centerx - image.get_width() // 2, rect.y + pad + (side - image.get_height()) // 2))
    if caption:
        box = pygame.Rect(
            rect.x + pad, rect.y + pad + side, rect.width - 2 * pad, rect.bottom - pad - (rect.y + pad + side)
        )
        size = canvas.px(0.08 if bold else 0.045)
        canvas.text(box, caption, size, bold=bold, colour=theme.TEXT if bold else theme.MUTED, max_lines=3)


def _split(canvas: Canvas, screen: pygame.Rect, share: float) -> tuple[pygame.Rect, pygame.Rect]:
    """Split the content area into a main part and a side card: beside it in landscape, under it in portrait."""
    gap = max(8, canvas.px(0.04))
    if canvas.metrics.portrait:
        side_h = int(screen.height * share)
        main = pygame.Rect(screen.x, screen.y, screen.width, screen.height - side_h - gap)
        return main, pygame.Rect(screen.x, main.bottom + gap, screen.width, side_h)
    side_w = int(screen.width * share)
    main = pygame.Rect(screen.x, screen.y, screen.width - side_w - gap, screen.height)
    return main, pygame.Rect(main.right + gap, screen.y, side_w, screen.height)


def _square_card(rect: pygame.Rect, caption: bool) -> pygame.Rect:
    """The largest card of QR proportions (taller when captioned) centred in ``rect``."""
    ratio = 1.35 if caption else 1.0
    w = min(rect.width, int(rect.height / ratio))
    h = int(w * ratio)
    return pygame.Rect(rect.centerx - w // 2, rect.centery - h // 2, w, h)


def _thanks(canvas: Canvas, view: ThanksView) -> None:
    margin = _margin(canvas)
    screen = canvas.surface.get_rect().inflate(-2 * margin, -2 * margin)
    main = screen
    if view.feedback_url:
        main, side = _split(canvas, screen, 0.42)
        _qr_card(canvas, _square_card(side, bool(view.caption)), view.feedback_url, view.caption)
    canvas.text(main, view.thanks, canvas.px(0.12), bold=True, max_lines=4)


def _closed(canvas: Canvas, view: ClosedView) -> None:
    m = canvas.metrics
    margin = _margin(canvas)
    screen = canvas.surface.get_rect().inflate(-2 * margin, -2 * margin)
    top = _switcher(canvas, view.switcher, screen.right, screen.top, screen.width)
    gap = max(8, canvas.px(0.04))
    body = pygame.Rect(screen.x, top + gap, screen.width, screen.bottom - top - gap)
    title_h = int(body.height * 0.3)
    canvas.text(pygame.Rect(body.x, body.y, body.width, title_h), view.closed, canvas.px(0.07), bold=True, max_lines=3)
    lines = [view.hours_title, *view.hours_lines, *([view.next_opening] if view.next_opening else [])]
    pad = max(8, canvas.px(0.03))
    room = pygame.Rect(body.x, body.y + title_h + gap, body.width, body.height - title_h - gap)
    row_h = min((room.height - 2 * pad) // len(lines), int(canvas.px(0.06) * 1.6))
    panel = pygame.Rect(0, 0, room.width if m.portrait else room.width * 2 // 3, row_h * len(lines) + 2 * pad)
    panel.center = room.center
    canvas.panel(panel, theme.SOFT)
    size = min(canvas.px(0.06), max(m.min_text, int(row_h * 0.7)))
    for i, line in enumerate(lines):
        rect = pygame.Rect(panel.x + pad, panel.y + pad + i * row_h, panel.width - 2 * pad, row_h)
        last = view.next_opening is not None and i == len(lines) - 1
        colour = theme.ACCENT if last else theme.TEXT
        canvas.text(rect, line, size, bold=i == 0 or last, colour=colour, max_lines=1)
    # No touch targets besides the languages: the notice says feedback is given in opening hours.
    # Physical buttons still record presses, which the Terminal flags after_hours.


def _notice(canvas: Canvas, view: NoticeView) -> None:
    m = canvas.metrics
    margin = _margin(canvas)
    screen = canvas.surface.get_rect().inflate(-2 * margin, -2 * margin)
    main = screen
    if view.qr_data:
        # The id is what staff type or read out, so it is the QR card's caption, large and bold.
        main, side = _split(canvas, screen, 0.4)
        _qr_card(canvas, _square_card(side, True), view.qr_data, view.device_id, bold=True)
    id_h = 0 if view.qr_data else max(m.min_text * 2, canvas.px(0.08))
    area = pygame.Rect(main.x, main.y, main.width, main.height - id_h)
    # The messages are one block, centred, in one size: the same words in each language.
    n = max(1, len(view.messages))
    gap = max(6, canvas.px(0.04))
    each = pygame.Rect(0, 0, area.width, (area.height - (n - 1) * gap) // n)
    size = min((canvas.fit(each, t, canvas.px(0.06), False, 5).size for t in view.messages), default=m.min_text)
    heights = [canvas.fit(each, t, size, i == 0, 5).height for i, t in enumerate(view.messages)]
    y = area.y + max(0, (area.height - sum(heights) - gap * (n - 1)) // 2)
    for i, (message, h) in enumerate(zip(view.messages, heights, strict=True)):
        rect = pygame.Rect(area.x, y, area.width, h)
        canvas.text(rect, message, size, bold=i == 0, colour=theme.TEXT if i == 0 else theme.MUTED, max_lines=5)
        y += h + gap
    if id_h:
        canvas.text(
            pygame.Rect(main.x, main.bottom - id_h, main.width, id_h),
            view.device_id,
            canvas.px(0.04),
            colour=theme.MUTED,
            max_lines=1,
        )
