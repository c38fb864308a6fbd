"""Simulated hardware for some terminals: buttons on gpiozero's mock pins and a serial board on ``loop://``.

The terminal's real input code (``device.inputs.ButtonPanel``, ``device.inputs.SerialBoard``) turns
these into answers, exactly as on a Raspberry Pi; the simulator only plays the patient's finger.
"""

from __future__ import annotations

from typing import Any

import serial
from gpiozero.pins.mock import MockFactory

from device.inputs.base import AnswerCallback
from device.inputs.buttons import ButtonPanel
from device.inputs.serialboard import SerialBoard

#: BCM pins for up to eleven mock buttons (an NPS panel); no LEDs, so no thank-you timers.
MOCK_PINS = (2, 3, 4, 17, 27, 22, 10, 9, 11, 5, 6)


class MockButtons:
    """A button panel on gpiozero's MockFactory: a press drives the pin low and high again."""

    kind = "buttons"

    def __init__(self, buttons: int) -> None:
        self.factory = MockFactory()
        self.pins = MOCK_PINS[:buttons]
        self.panel = ButtonPanel(self.factory, button_pins=self.pins, led_pins=None, bounce_s=None)

    def start(self, on_answer: AnswerCallback) -> None:
        """Deliver answers to ``on_answer`` (called on the pressing thread by the mock pins)."""
        self.panel.start(on_answer)

    def press(self, answer: int) -> None:
        """Push button ``answer`` and let go."""
        pin: Any = self.factory.pin(self.pins[answer])
        pin.drive_low()
        pin.drive_high()

    def stop(self) -> None:
        """Release the pins."""
        self.panel.stop()


class LoopSerial:
    """A serial board on pyserial's ``loop://``: a press is the board's ``BTN n`` line, read by the real reader."""

    kind = "serial"

    def __init__(self, buttons: int) -> None:
        # the board's own read timeout: a shorter one wakes the reader (and wants the GIL) needlessly often
        self.port = serial.serial_for_url("loop://", timeout=0.1)
        self.board = SerialBoard("loop://", buttons=buttons, open_port=lambda: self.port)

    def start(self, on_answer: AnswerCallback) -> None:
        """Start the board's reader thread."""
        self.board.start(on_answer)

    def press(self, answer: int) -> None:
        """The board reports button ``answer``; the answer arrives on the reader thread."""
        self.port.write(f"BTN {answer}\n".encode())

    def stop(self) -> None:
        """Stop the reader and close the port."""
        self.board.stop()
