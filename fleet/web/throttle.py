"""Sign-in attempts limited per username and per address, in memory, without storing who tried.

Failed attempts are counted in a sliding window (15 minutes): beyond ``per_name`` failures for one
username, or ``per_addr`` from one address, sign-in is refused until the oldest failure leaves the
window. A success clears the username's count. The counts live in the web process only (a restart
forgets them), which is enough to turn password guessing from thousands of tries an hour into a few.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 15 * 60.0


class LoginThrottle:
    """Counts failed sign-ins and says how long to wait."""

    def __init__(
        self, per_name: int, per_addr: int, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_name = per_name
        self.per_addr = per_addr
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self.refused = 0  # attempts refused because of the limit, for /metrics

    def wait_s(self, username: str, addr: str) -> float:
        """Seconds until ``username`` may try again from ``addr`` (0: now)."""
        now = self._clock()
        with self._lock:
            waits = [
                self._wait(f"name:{username.strip().lower()}", self.per_name, now),
                self._wait(f"addr:{addr}", self.per_addr, now),
            ]
            wait = max(waits)
            if wait > 0:
                self.refused += 1
            return wait

    def failed(self, username: str, addr: str) -> None:
        """Count a failed attempt."""
        now = self._clock()
        with self._lock:
            for key in (f"name:{username.strip().lower()}", f"addr:{addr}"):
                self._failures.setdefault(key, deque()).append(now)
            if len(self._failures) > 100_000:  # a flood of names: forget the quietest rather than grow
                for key in [k for k, d in self._failures.items() if now - d[-1] > self.window_s]:
                    del self._failures[key]

    def succeeded(self, username: str) -> None:
        """Forget the username's failures."""
        with self._lock:
            self._failures.pop(f"name:{username.strip().lower()}", None)

    def _wait(self, key: str, limit: int, now: float) -> float:
        times = self._failures.get(key)
        if not times:
            return 0.0
        while times and now - times[0] > self.window_s:
            times.popleft()
        if len(times) < limit:
            return 0.0
        return self.window_s - (now - times[-limit])
