"""A screen being drawn: it paints texts and buttons and remembers every text fit and touch target.

Screens draw only through a Canvas, so what a test needs to check (does any text overflow its
box, is any target smaller than 9 mm, do targets overlap) is recorded as a side effect of
drawing, for every screen alike.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

import pygame

from . import theme
from .fonts import FontFamily
from .textfit import Fit, draw_fit, fit_text

Action = tuple[Hashable, ...]


@dataclass(frozen=True, slots=True)
class Target:
    """A touchable area and what touching it means, e.g. ("answer", 3) or ("lang", "sv")."""

    rect: pygame.Rect
    action: Action


@dataclass
class Frame:
    """What drawing a screen produced: the picture, its touch targets and its text fits."""

    surface: pygame.Surface
    metrics: theme.Metrics
    targets: list[Target] = field(default_factory=list)
    fits: list[Fit] = field(default_factory=list)

    def hit(self, pos: tuple[int, int]) -> Action | None:
        """The action of the target under ``pos``; the last drawn wins where targets are stacked."""
        for target in reversed(self.targets):
            if target.rect.collidepoint(pos):
                return target.action
        return None

    def target(self, action: Action) -> Target:
        """The target for ``action``, for tests and the benchmark that touch its centre."""
        for t in self.targets:
            if t.action == action:
                return t
        raise KeyError(f"no target {action!r} on this screen; have {[t.action for t in self.targets]}")

    def problems(self) -> list[str]:
        """Everything wrong with the layout: texts that overflow, targets too small, overlapping or off screen."""
        out = [p for p in (f.problem() for f in self.fits) if p]
        m, screen = self.metrics, self.surface.get_rect()
        for i, t in enumerate(self.targets):
            if min(t.rect.width, t.rect.height) < m.min_target:
                out.append(f"target {t.action} is {t.rect.size}, under {m.min_target}px ({theme.MIN_TARGET_MM} mm)")
            if not screen.contains(t.rect):
                out.append(f"target {t.action} at {t.rect} leaves the screen {screen.size}")
            for other in self.targets[i + 1 :]:
                if t.rect.colliderect(other.rect):
                    out.append(f"targets {t.action} and {other.action} overlap")
        return out


class Canvas:
    """Draws onto a surface with one font family and records fits and targets into a Frame."""

    def __init__(self, surface: pygame.Surface, family: FontFamily, dpi: float) -> None:
        self.surface = surface
        self.family = family
        self.metrics = theme.Metrics(surface.get_width(), surface.get_height(), dpi)
        self.frame = Frame(surface, self.metrics)

    def px(self, share: float) -> int:
        """A length as a share of the shorter screen side (0.05 is 5 %)."""
        return max(1, round(min(self.metrics.width, self.metrics.height) * share))

    def fit(self, rect: pygame.Rect, text: str, max_size: int, bold: bool = False, max_lines: int = 8) -> Fit:
        """Lay out ``text`` in ``rect`` without drawing it, e.g. to size a row of labels alike."""
        return fit_text(
            self.family, text, rect, max(max_size, self.metrics.min_text), self.metrics.min_text, bold, max_lines
        )

    def text(
        self,
        rect: pygame.Rect,
        text: str,
        max_size: int,
        *,
        bold: bool = False,
        colour: theme.Colour = theme.TEXT,
        align: str = "center",
        valign: str = "center",
        max_lines: int = 8,
        size: int | None = None,
    ) -> Fit:
        """Fit and draw ``text`` in ``rect``; ``size`` caps it (to match sibling labels). Recorded for the checks."""
        fit = self.fit(rect, text, min(max_size, size) if size else max_size, bold, max_lines)
        self.frame.fits.append(fit)
        draw_fit(self.surface, self.family, fit, colour, align, valign)
        return fit

    def add_target(self, rect: pygame.Rect, action: Action) -> None:
        """Register a touch target (drawing is the caller's)."""
        self.frame.targets.append(Target(pygame.Rect(rect), action))

    def panel(self, rect: pygame.Rect, fill: theme.Colour, border: theme.Colour | None = None, width: int = 0) -> None:
        """A rounded rectangle, the one shape every card and button uses."""
        radius = max(4, min(rect.width, rect.height) // 6)
        pygame.draw.rect(self.surface, fill, rect, border_radius=radius)
        if border is not None and width:
            pygame.draw.rect(self.surface, border, rect, width, border_radius=radius)

    def button(
        self,
        rect: pygame.Rect,
        label: str,
        action: Action,
        max_size: int,
        *,
        selected: bool = False,
        primary: bool = False,
        size: int | None = None,
        max_lines: int = 3,
    ) -> Fit:
        """A labelled button: white with a dark outline, or filled when selected or primary."""
        filled = selected or primary
        self.panel(rect, theme.ACCENT if filled else theme.SURFACE, theme.BORDER, max(2, self.px(0.004)))
        pad = max(4, min(rect.height // 8, self.px(0.02)))
        fit = self.text(
            rect.inflate(-2 * pad, -2 * pad),
            label,
            max_size,
            bold=True,
            colour=theme.ON_ACCENT if filled else theme.TEXT,
            max_lines=max_lines,
            size=size,
        )
        self.add_target(rect, action)
        return fit
