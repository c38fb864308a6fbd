"""Four (or more) physical buttons on GPIO, each with an optional LED, through a gpiozero pin factory passed in.

Button ``i`` gives answer ``i``, so wire the most negative face to the first pin. Each button
connects its pin to ground (the internal pull-up holds it high); each LED is driven high to light.
The factory is always passed in, never taken from ``Device.pin_factory``, so tests hand in
``MockFactory()`` and nothing global changes. gpiozero calls ``when_pressed`` on its own thread,
so ``on_answer`` must be thread-safe (the kiosk commits the press there, then wakes its loop).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import partial
from typing import Any

from gpiozero import LED, Button, GPIOZeroError

from .base import AnswerCallback, InputError

log = logging.getLogger(__name__)

#: BCM pins of a Hymy four-button panel (see device/kiosk.example.toml); worst face first.
DEFAULT_BUTTON_PINS = (17, 27, 22, 23)
#: BCM pins of the LEDs beside those buttons, in the same order.
DEFAULT_LED_PINS = (5, 6, 13, 26)
#: Contact bounce of the arcade buttons we use is a few ms; 50 ms also swallows a jittery double tap.
DEFAULT_BOUNCE_S = 0.05


def hardware_pin_factory() -> Any:
    """The Raspberry Pi's own pin factory (lgpio), or InputError saying why this machine has no GPIO."""
    try:
        from gpiozero.pins.lgpio import LGPIOFactory

        return LGPIOFactory()
    except Exception as exc:  # ImportError without lgpio, or the chip cannot be opened
        raise InputError(f"no GPIO on this machine (lgpio): {exc}") from exc


class ButtonPanel:
    """Buttons in, answers out; LEDs thank the person after the kiosk has recorded the press."""

    kind = "buttons"

    def __init__(
        self,
        pin_factory: Any,
        button_pins: Sequence[int] = DEFAULT_BUTTON_PINS,
        led_pins: Sequence[int] | None = DEFAULT_LED_PINS,
        bounce_s: float | None = DEFAULT_BOUNCE_S,
    ) -> None:
        """Claim the pins now, so a wrong or busy pin fails at start-up rather than at the first press."""
        if not 2 <= len(button_pins) <= 11:
            raise InputError(f"a button panel needs 2..11 buttons, got {len(button_pins)}")
        if led_pins is not None and len(led_pins) != len(button_pins):
            raise InputError(f"{len(led_pins)} LED pins for {len(button_pins)} buttons; give one per button or none")
        pins = [*button_pins, *(led_pins or ())]
        if len(set(pins)) != len(pins):
            raise InputError(f"a pin is used twice in buttons {list(button_pins)} and LEDs {list(led_pins or ())}")
        self._lock = threading.Lock()
        self._buttons: list[Button] = []
        self._leds: list[LED] = []
        self._on_answer: AnswerCallback | None = None
        self._timer: threading.Timer | None = None
        self._generation = 0
        self._closed = False
        try:
            for pin in button_pins:
                self._buttons.append(Button(pin, pull_up=True, bounce_time=bounce_s, pin_factory=pin_factory))
            for pin in led_pins or ():
                self._leds.append(LED(pin, initial_value=False, pin_factory=pin_factory))
        except (GPIOZeroError, ValueError) as exc:
            self._close_devices()
            raise InputError(f"cannot claim GPIO pins {pins}: {exc}") from exc

    @property
    def buttons(self) -> int:
        """How many answers this panel gives."""
        return len(self._buttons)

    def start(self, on_answer: AnswerCallback) -> None:
        """Deliver presses to ``on_answer`` (called on gpiozero's thread; it must be thread-safe)."""
        with self._lock:
            if self._closed:
                raise InputError("this button panel is stopped; make a new one")
            if self._on_answer is not None:
                raise InputError("this button panel is already started")
            self._on_answer = on_answer
            for answer, button in enumerate(self._buttons):
                button.when_pressed = partial(self._pressed, answer)

    def _pressed(self, answer: int) -> None:
        callback = self._on_answer
        if callback is None:
            return
        try:
            callback(answer)
        except Exception:  # a failing callback must not kill gpiozero's event thread
            log.exception("answer callback failed for button %d", answer)

    def feedback(self, answer: int, seconds: float) -> None:
        """Light the pressed answer's LED for ``seconds`` with the others off; a no-op without LEDs."""
        if not 0 <= answer < len(self._buttons):
            raise ValueError(f"answer {answer} is not one of this panel's 0..{len(self._buttons) - 1}")
        if not self._leds:
            return
        with self._lock:
            if self._closed:
                return
            self._generation += 1
            if self._timer is not None:
                self._timer.cancel()
            for i, led in enumerate(self._leds):
                if i == answer:
                    led.on()
                else:
                    led.off()
            self._timer = threading.Timer(seconds, self._lights_out, args=(self._generation,))
            self._timer.daemon = True
            self._timer.start()

    def _lights_out(self, generation: int) -> None:
        with self._lock:
            # A newer thank-you (or stop) took over; its own timer turns the lights off.
            if generation != self._generation or self._closed:
                return
            for led in self._leds:
                led.off()

    def stop(self) -> None:
        """Stop delivering presses, turn the LEDs off and release every pin; safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._on_answer is not None:  # gpiozero warns when a handler never set is cleared
                for button in self._buttons:
                    button.when_pressed = None
            self._on_answer = None
            if self._timer is not None:
                self._timer.cancel()
            for led in self._leds:
                led.off()
        # Outside the lock: closing joins gpiozero's threads, which may be waiting in _pressed.
        self._close_devices()

    def _close_devices(self) -> None:
        for device in (*self._buttons, *self._leds):
            try:
                device.close()
            except GPIOZeroError:
                log.exception("could not release GPIO device %r", device)

    def __enter__(self) -> ButtonPanel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
