"""Build the hardware answer source the settings name, so the kiosk needs no wiring knowledge."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import AnswerSource, InputError
from .buttons import ButtonPanel, hardware_pin_factory
from .serialboard import SerialBoard

if TYPE_CHECKING:
    from ..settings import InputSettings


def hardware_source(settings: InputSettings, answers: int, pin_factory: Any | None = None) -> AnswerSource | None:
    """The GPIO panel or serial board of ``settings`` giving ``answers`` answers; None for touch and keyboard.

    ``pin_factory`` None means the Pi's own (lgpio); tests pass gpiozero's ``MockFactory()``.
    """
    if settings.kind == "buttons":
        if answers != len(settings.button_pins):
            raise InputError(
                f"the question has {answers} answers but the panel has {len(settings.button_pins)} buttons"
            )
        factory = hardware_pin_factory() if pin_factory is None else pin_factory
        return ButtonPanel(factory, settings.button_pins, settings.led_pins or None, settings.bounce_s or None)
    if settings.kind == "serial":
        if settings.serial_url is None:
            raise InputError("input.kind is serial but no serial_url is set")
        return SerialBoard(settings.serial_url, settings.serial_baud, buttons=answers)
    return None
