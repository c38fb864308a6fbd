"""Simulated time: one time base that runs ``speed`` times faster than real time, and one clock per terminal.

Every terminal gets its own ``SimClock`` (the device's ``Clock`` interface) so a fault can reboot
it (new boot id, monotonic time from zero) or make its wall clock wrong and unsynchronised,
while all of them read the same accelerated time. The device code only sees a ``Clock``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: A Raspberry Pi without network time boots at the time fake-hwclock saved, often days old.
DEFAULT_WRONG_BY_MS = -3 * 86_400_000


class TimeBase:
    """Simulated epoch milliseconds, advancing ``speed`` times as fast as ``real`` (monotonic seconds)."""

    def __init__(self, start_wall_ms: int, speed: float = 1.0, real: Callable[[], float] = time.monotonic) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start_wall_ms = start_wall_ms
        self.speed = speed
        self._real = real
        self._t0 = real()

    def now_ms(self) -> int:
        """The true simulated wall time now, in ms since the epoch."""
        return self.start_wall_ms + int((self._real() - self._t0) * 1000 * self.speed)

    def elapsed_s(self) -> float:
        """Simulated seconds since the start."""
        return (self._real() - self._t0) * self.speed

    def real_s(self, sim_s: float) -> float:
        """Real seconds that ``sim_s`` simulated seconds take."""
        return sim_s / self.speed


class SimClock:
    """A terminal's clock on the shared time base: its own boots, wall offset and sync state."""

    def __init__(self, base: TimeBase, name: str) -> None:
        self._base = base
        self._name = name
        self._lock = threading.Lock()
        self._boots = 0
        self._boot = ""
        self._boot_at = 0
        self._offset = 0
        self._synced = True
        self.reboot(synced=True)

    def reboot(self, synced: bool = True, wrong_by_ms: int = 0) -> None:
        """Start a new boot: new boot id, monotonic clock from zero, wall clock off by ``wrong_by_ms``."""
        with self._lock:
            self._boots += 1
            self._boot = f"{self._name}-boot-{self._boots}"
            self._boot_at = self._base.now_ms()
            self._offset = wrong_by_ms
            self._synced = synced

    def sync(self) -> None:
        """Network time arrives: the wall clock steps to the truth and counts as synchronised."""
        with self._lock:
            self._offset = 0
            self._synced = True

    def wall_ms(self) -> int:
        """The terminal's idea of the time (off by the current offset)."""
        return self._base.now_ms() + self._offset

    def mono_ms(self) -> int:
        """Simulated milliseconds since this terminal's boot."""
        with self._lock:
            boot_at = self._boot_at
        return self._base.now_ms() - boot_at

    def boot_id(self) -> str:
        """The current boot's id, unique to this terminal and boot."""
        with self._lock:
            return self._boot

    def synced(self) -> bool:
        """Whether the wall clock is synchronised now."""
        with self._lock:
            return self._synced
