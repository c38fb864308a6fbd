"""Choosing a font that can write every language the kiosk may show, and caching its sizes.

The kiosk must write Finnish and Swedish (ä ö å) and the Sámi languages that arrive as
configuration (š č đ ŋ ŧ ž á, and Skolt Sámi's ǧ ǩ ʒ ǯ ǥ õ). DejaVu Sans covers them all and
ships with Raspberry Pi OS (fonts-dejavu-core). pygame's bundled freesansbold.ttf covers Finnish,
Swedish, North and Inari Sámi but not Skolt Sámi's extra letters; it is the fallback wherever
DejaVu is missing, with a warning in the log. A candidate is checked glyph by glyph.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pygame
import pygame.freetype

#: Letters every chosen font must have: Finnish, Swedish and North, Inari and Skolt Sámi.
REQUIRED_LETTERS = "AaÄäÖöÅåŠšČčĐđŊŋŦŧŽžÁáÂâÕõǦǧǨǩƷʒǮǯǤǥʹÉé–…€"

log = logging.getLogger(__name__)

_DEJAVU_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/TTF", "/usr/share/fonts/dejavu")


@dataclass(frozen=True, slots=True)
class FontFamily:
    """A regular and a bold face of one family, as font file paths."""

    regular: str
    bold: str

    def get(self, size: int, bold: bool = False) -> pygame.font.Font:
        """The face at ``size`` pixels, cached, because text fitting asks for many sizes."""
        return _font(self.bold if bold else self.regular, size)


@functools.lru_cache(maxsize=256)
def _font(path: str, size: int) -> pygame.font.Font:
    if not pygame.font.get_init():
        pygame.font.init()
    return pygame.font.Font(path, size)


def missing_glyphs(path: str, text: str = REQUIRED_LETTERS) -> str:
    """The characters of ``text`` the font at ``path`` has no glyph for (freetype says None for those)."""
    if not pygame.freetype.get_init():
        pygame.freetype.init()
    face = pygame.freetype.Font(path, 16)
    metrics = face.get_metrics(text)
    return "".join(ch for ch, m in zip(text, metrics, strict=True) if m is None)


def _bundled() -> str:
    return str(Path(pygame.__file__).with_name("freesansbold.ttf"))


def candidates(preferred: Sequence[str] = ()) -> list[FontFamily]:
    """Families to try in order: the configured files, DejaVu Sans, then pygame's bundled font."""
    out = [FontFamily(p, p) for p in preferred]
    for d in _DEJAVU_DIRS:
        regular, bold = Path(d, "DejaVuSans.ttf"), Path(d, "DejaVuSans-Bold.ttf")
        if regular.is_file():
            out.append(FontFamily(str(regular), str(bold) if bold.is_file() else str(regular)))
    bundled = _bundled()
    out.append(FontFamily(bundled, bundled))
    return out


@functools.cache
def choose_family(preferred: tuple[str, ...] = ()) -> FontFamily:
    """The first candidate with every required letter, else the one missing fewest (never fails to start)."""
    best: tuple[int, FontFamily] | None = None
    for family in candidates(preferred):
        try:
            missing = missing_glyphs(family.regular) + missing_glyphs(family.bold)
        except (OSError, pygame.error) as exc:
            log.warning("font %s unusable: %s", family.regular, exc)
            continue
        if not missing:
            return family
        if best is None or len(missing) < best[0]:
            best = (len(missing), family)
        log.warning("font %s lacks %r", family.regular, "".join(sorted(set(missing))))
    if best is None:
        raise RuntimeError("no usable font at all, not even pygame's bundled one")
    return best[1]
