"""systemd notification (sd_notify) by hand: ready, status, stopping and watchdog pings over a datagram socket.

The protocol is a few ``KEY=value`` lines in one datagram to the unix socket named by
``NOTIFY_SOCKET`` (a path, or an abstract name written with a leading ``@``); see sd_notify(3).
That is small enough to own rather than depend on an unmaintained package. Outside systemd
(no ``NOTIFY_SOCKET``) every call is a no-op, so the kiosk calls these unconditionally. A failed
send is logged and reported as False, never raised: notification must not take the kiosk down.

The kiosk pings from its main loop, so a hung loop stops pinging and systemd restarts the unit
(``WatchdogSec=`` in device/systemd/hymy-kiosk.service).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Talks to systemd's notify socket, or does nothing when there is none."""

    def __init__(
        self,
        address: str | None,
        watchdog_usec: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``address`` as in NOTIFY_SOCKET (``/run/…`` or ``@abstract``); None disables every call."""
        if address is not None and not address.startswith(("/", "@")):
            log.warning("NOTIFY_SOCKET %r is neither a path nor an abstract socket; not notifying systemd", address)
            address = None
        if address is not None and address.startswith("@"):
            address = "\0" + address[1:]
        self._address = address
        self.watchdog_s: float | None = watchdog_usec / 1e6 if watchdog_usec else None
        self._clock = clock
        self._lock = threading.Lock()
        self._last_ping: float | None = None
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, clock: Callable[[], float] = time.monotonic
    ) -> Notifier:
        """Read NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID as systemd sets them for the service."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        raw = env.get("WATCHDOG_USEC")
        if raw:
            try:
                usec = int(raw)
            except ValueError:
                log.warning("WATCHDOG_USEC %r is not a number; no watchdog pings", raw)
            pid = env.get("WATCHDOG_PID")
            if pid and pid != str(os.getpid()):
                usec = None  # the watchdog is meant for another process of the unit
            if usec is not None and usec <= 0:
                usec = None
        return cls(address, usec, clock)

    @property
    def enabled(self) -> bool:
        """Whether there is a systemd to tell anything."""
        return self._address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=value`` lines in one datagram; True if sent, False when disabled or the send failed."""
        if self._address is None:
            return False
        payload = "\n".join(assignments).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(payload, self._address)
            except OSError as exc:
                log.warning("cannot notify systemd (%s): %s", ", ".join(a.split("=")[0] for a in assignments), exc)
                return False
        return True

    def ready(self) -> bool:
        """Tell systemd start-up is done (Type=notify units count as started only now)."""
        return self.notify("READY=1")

    def status(self, text: str) -> bool:
        """Set the one-line status ``systemctl status`` shows."""
        return self.notify("STATUS=" + " ".join(text.split()))

    def stopping(self) -> bool:
        """Tell systemd a clean shutdown has begun."""
        return self.notify("STOPPING=1")

    def watchdog_ping(self) -> bool:
        """Keep the watchdog fed; sends at most once per half interval, so call it every loop turn."""
        if self.watchdog_s is None or self._address is None:
            return False
        now = self._clock()
        with self._lock:
            if self._last_ping is not None and now - self._last_ping < self.watchdog_s / 2:
                return False
            self._last_ping = now
        return self.notify("WATCHDOG=1")

    def close(self) -> None:
        """Close the socket (a later call reopens it)."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
