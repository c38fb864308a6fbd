"""The kiosk window: draws views only when they change, turns a portrait layout onto a landscape panel, maps touch.

The screens lay out on a logical surface in the orientation people see. When the panel's own
mode is the other way round (a landscape panel mounted upright), the surface is rotated on its
way to the panel and touch positions are rotated back, so screens never care.
"""

from __future__ import annotations

import pygame

from .canvas import Action, Frame
from .fonts import FontFamily, choose_family
from .gallery import SIZES
from .screens import render
from .views import View

#: Dots per inch when the settings do not say and the panel is not one of the common ones.
FALLBACK_DPI = 96.0


def guess_dpi(width: int, height: int) -> float:
    """A common panel's dots per inch for its resolution (the official 7" display for 800×480)."""
    return SIZES.get((max(width, height), min(width, height)), FALLBACK_DPI)


class Display:
    """A pygame window or full screen that shows views and maps touches to their targets."""

    def __init__(
        self,
        size: tuple[int, int] | None = None,
        portrait: bool = False,
        dpi: float | None = None,
        fullscreen: bool = True,
        family: FontFamily | None = None,
    ) -> None:
        """``size`` None takes the panel's own mode; ``portrait`` lays out upright whatever the panel's mode."""
        pygame.display.init()
        pygame.font.init()
        flags = pygame.FULLSCREEN if fullscreen else 0
        self.window = pygame.display.set_mode(size or (0, 0), flags)
        pygame.display.set_caption("Hymy")
        pygame.mouse.set_visible(not fullscreen)
        w, h = self.window.get_size()
        self.rotated = portrait != (h > w)
        self.surface = pygame.Surface((h, w) if self.rotated else (w, h))
        self.dpi = float(dpi) if dpi else guess_dpi(w, h)
        self.family = family or choose_family()
        self.frame: Frame | None = None
        self._view: View | None = None

    def show(self, view: View) -> bool:
        """Draw ``view`` if it differs from what is on screen; True when it drew."""
        if view == self._view and self.frame is not None:
            return False
        self.present(view, self.prepare(view))
        return True

    def prepare(self, view: View) -> Frame:
        """Render ``view`` off the glass (the slow part); ``present`` puts it on. Nothing shows if it never does."""
        return render(view, self.surface, self.family, self.dpi)

    def present(self, view: View, frame: Frame) -> None:
        """Put the frame ``prepare`` just rendered onto the glass; touches hit its targets from now on."""
        self.frame, self._view = frame, view
        if self.rotated:
            self.window.blit(pygame.transform.rotate(self.surface, 90), (0, 0))
        else:
            self.window.blit(self.surface, (0, 0))
        pygame.display.flip()

    def to_logical(self, pos: tuple[float, float]) -> tuple[int, int]:
        """A window position in the screens' coordinates (undoing the 90° turn of a rotated layout)."""
        x, y = int(pos[0]), int(pos[1])
        if not self.rotated:
            return x, y
        return self.surface.get_width() - 1 - y, x

    def finger_pos(self, event: pygame.event.Event) -> tuple[int, int]:
        """A FINGERDOWN's normalised position in window pixels."""
        w, h = self.window.get_size()
        return int(event.x * w), int(event.y * h)

    def hit(self, window_pos: tuple[float, float]) -> Action | None:
        """The action under a window position on the frame now shown."""
        if self.frame is None:
            return None
        return self.frame.hit(self.to_logical(window_pos))

    def window_pos(self, logical: tuple[int, int]) -> tuple[int, int]:
        """Where a point of the screens' layout is in the window (for tests and the benchmark)."""
        x, y = logical
        if not self.rotated:
            return x, y
        return y, self.surface.get_width() - 1 - x

    def close(self) -> None:
        """Close the window."""
        pygame.display.quit()
