"""QR codes as pygame surfaces: the open-feedback address and the staff's claim code.

The matrix comes from ``qrcode``; drawing it ourselves keeps modules pixel-exact (no image
library, no blurry scaling) and lets the code fill whatever square the layout gives it.
"""

from __future__ import annotations

import functools

import pygame
import qrcode
import qrcode.constants

from . import theme

#: Blank modules around the code; the standard asks for 4, the white card around it adds to this.
QUIET_ZONE = 2


@functools.lru_cache(maxsize=16)
def qr_matrix(data: str) -> tuple[tuple[bool, ...], ...]:
    """The code's modules, True for dark, with the quiet zone; medium error correction survives smudges."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=QUIET_ZONE)
    code.add_data(data)
    code.make(fit=True)
    return tuple(tuple(bool(m) for m in row) for row in code.get_matrix())


@functools.lru_cache(maxsize=16)
def qr_surface(data: str, side: int) -> pygame.Surface:
    """A square QR code at most ``side`` pixels across, with whole-pixel modules, dark on white."""
    matrix = qr_matrix(data)
    n = len(matrix)
    module = max(1, side // n)
    surface = pygame.Surface((n * module, n * module))
    surface.fill(theme.SURFACE)
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                surface.fill(theme.TEXT, (x * module, y * module, module, module))
    return surface
