"""The one interface every input source offers, its error, and a log that cannot flood the journal."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ..errors import DeviceError

#: Called with the answer (0 = most negative) from the source's own thread; must be thread-safe.
AnswerCallback = Callable[[int], None]


class InputError(DeviceError):
    """An input source cannot be set up or used (pins taken, bad pin numbers, started twice, closed)."""


class AnswerSource(Protocol):
    """Hardware that produces answers: buttons on GPIO, a serial button board, (elsewhere) a touch screen."""

    #: A short name for logs and settings: "buttons", "serial", "touch", "keyboard".
    kind: str

    def start(self, on_answer: AnswerCallback) -> None:
        """Deliver presses to ``on_answer`` on the source's thread (it may commit there; it never waits on the UI)."""
        ...

    def stop(self) -> None:
        """Stop delivering presses and release the hardware; safe to call twice."""
        ...

    def feedback(self, answer: int, seconds: float) -> None:
        """Thank the person: light the pressed answer's LED for ``seconds``, others off; a no-op without LEDs."""
        ...


class RateLimitedLog:
    """Logs a kind of problem at most once per ``interval_s``, saying how many were held back meanwhile."""

    def __init__(
        self, logger: logging.Logger, interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._logger = logger
        self._interval = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def log(self, level: int, kind: str, msg: str, *args: object) -> bool:
        """Log ``msg`` unless ``kind`` was logged within the interval; True when it was logged."""
        now = self._clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self._interval:
                self._held[kind] = self._held.get(kind, 0) + 1
                return False
            self._last[kind] = now
            held = self._held.pop(kind, 0)
        if held:
            msg += " (%d more like it not logged in the last %.0f s)"
            args = (*args, held, self._interval)
        self._logger.log(level, msg, *args)
        return True
