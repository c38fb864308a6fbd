"""Colours and physical sizes of the kiosk, in one place so every screen looks and measures alike.

Colours are chosen for contrast (text on the background is about 15:1, well past WCAG AA's
4.5:1) and calm: a warm off-white page, near-black text, one deep blue for what is selected.
Sizes are physical: a touch target is at least ``MIN_TARGET_MM`` millimetres at the screen's
dots per inch, whatever its resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Colour = tuple[int, int, int]

#: The smallest touch target allowed anywhere, in millimetres (WCAG 2.5.5 asks ~9 mm; we never go below).
MIN_TARGET_MM = 9.0
#: The smallest text allowed anywhere, in millimetres of font size (about 10 pt).
MIN_TEXT_MM = 3.5

BACKGROUND: Colour = (247, 245, 240)
SURFACE: Colour = (255, 255, 255)
TEXT: Colour = (27, 31, 35)
MUTED: Colour = (74, 80, 88)  # secondary text, still ~7:1 on the background
BORDER: Colour = (58, 64, 72)
ACCENT: Colour = (16, 63, 120)  # the selected language, the primary button
ON_ACCENT: Colour = (255, 255, 255)
SOFT: Colour = (232, 236, 242)  # quiet panels (opening hours, the QR card)

#: Face fills from the most negative to the most positive; the face's mouth and its label carry
#: the meaning too, so nothing depends on telling these colours apart.
FACE_FILLS: dict[int, tuple[Colour, ...]] = {
    4: ((214, 96, 77), (241, 169, 90), (164, 203, 120), (84, 160, 108)),
    5: ((214, 96, 77), (241, 169, 90), (245, 210, 97), (164, 203, 120), (84, 160, 108)),
}
FACE_INK: Colour = (27, 31, 35)


def mm_to_px(mm: float, dpi: float) -> int:
    """Millimetres to whole pixels at ``dpi``, rounded up so a minimum is never missed by rounding."""
    return math.ceil(mm * dpi / 25.4 - 1e-9)  # the epsilon keeps an exact 90.0 from becoming 91


@dataclass(frozen=True, slots=True)
class Metrics:
    """The physical yardsticks of one screen: its size in pixels and its dots per inch."""

    width: int
    height: int
    dpi: float

    @property
    def min_target(self) -> int:
        """The smallest touch target side in pixels."""
        return mm_to_px(MIN_TARGET_MM, self.dpi)

    @property
    def min_text(self) -> int:
        """The smallest font size in pixels."""
        return max(12, mm_to_px(MIN_TEXT_MM, self.dpi))

    @property
    def unit(self) -> int:
        """A layout unit that grows with the screen: 1/100 of its shorter side."""
        return max(1, min(self.width, self.height) // 100)

    @property
    def portrait(self) -> bool:
        """Taller than wide."""
        return self.height > self.width
