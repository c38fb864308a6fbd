"""Keyboard keys standing in for buttons on a desktop: 1–N for the faces, 0–9 for NPS (and + for 10)."""

from __future__ import annotations

from typing import Any

import pygame

import protocol

_DIGITS = {getattr(pygame, f"K_{d}"): d for d in range(10)} | {getattr(pygame, f"K_KP{d}"): d for d in range(10)}
_TEN = {pygame.K_PLUS, pygame.K_KP_PLUS, pygame.K_EQUALS}


def key_answer(event: pygame.event.Event, doc: dict[str, Any] | None) -> int | None:
    """The answer a KEYDOWN stands for under the configuration in force, or None for other keys."""
    if doc is None:
        return None
    size = protocol.SCALES[doc["question"]["scale"]].size
    if size == 11:
        if event.key in _TEN:
            return 10
        return _DIGITS.get(event.key)
    digit = _DIGITS.get(event.key)
    if digit is None or not 1 <= digit <= size:
        return None
    return digit - 1  # key 1 is the first (most negative) button, as on the panel
