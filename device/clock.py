"""Clocks behind one small interface, so logic never calls time itself and tests can run time by hand.

A Raspberry Pi has no real-time clock, so a vote needs the wall clock, a monotonic reading, the
boot it belongs to and whether the wall clock was synchronised (DESIGN guarantee 4).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
TIMESYNC_FLAG_PATH = Path("/run/systemd/timesync/synchronized")

TIME_ERROR = 5  # adjtimex return value: clock not synchronised
STA_UNSYNC = 0x40  # adjtimex status bit: clock not synchronised


class Clock(Protocol):
    """What the terminal needs to know about time."""

    def wall_ms(self) -> int:
        """Milliseconds since the Unix epoch, as this terminal's clock says (maybe wrong)."""
        ...

    def mono_ms(self) -> int:
        """Milliseconds since this boot, never going backwards, counting suspend."""
        ...

    def boot_id(self) -> str:
        """An id that changes with every boot, so mono readings of different boots are not compared."""
        ...

    def synced(self) -> bool:
        """Whether the wall clock is synchronised to a time source right now."""
        ...


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """Linux ``struct timex`` (see adjtimex(2)); only ``modes`` and ``status`` are used."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        # The kernel reserves padding after tai; extra room guards against layout differences.
        ("_reserved", ctypes.c_int * 32),
    ]


def _load_adjtimex() -> Callable[[Any], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6", use_errno=True)
        fn = libc.adjtimex
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.POINTER(_Timex)]
    fn.restype = ctypes.c_int
    return fn


def kernel_synced(adjtimex: Callable[[Any], int] | None = None) -> bool | None:
    """The kernel's own view of synchronisation via adjtimex, or None where it cannot be asked."""
    fn = adjtimex or _load_adjtimex()
    if fn is None:
        return None
    tx = _Timex()  # zeroed, so modes=0: read only, needs no privilege
    rc = fn(ctypes.byref(tx))
    if rc == -1:
        return None
    return rc != TIME_ERROR and not tx.status & STA_UNSYNC


_PROCESS_BOOT_ID = str(uuid.uuid4())  # fallback where the kernel gives no boot id: one per process


def read_boot_id(path: Path = BOOT_ID_PATH) -> str:
    """The kernel's boot id (dashes kept), or a per-process uuid where there is none."""
    try:
        value = path.read_text().strip()
    except OSError:
        return _PROCESS_BOOT_ID
    return value or _PROCESS_BOOT_ID


class SystemClock:
    """The real clocks of a Linux terminal."""

    def __init__(self) -> None:
        self._boot = read_boot_id()
        self._clock_id = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)
        self._adjtimex = _load_adjtimex()

    def wall_ms(self) -> int:
        """Milliseconds since the epoch from the system clock."""
        return time.time_ns() // 1_000_000

    def mono_ms(self) -> int:
        """Milliseconds since boot from CLOCK_BOOTTIME (CLOCK_MONOTONIC where it is missing)."""
        return time.clock_gettime_ns(self._clock_id) // 1_000_000

    def boot_id(self) -> str:
        """The boot id read once at start; it cannot change while this process lives."""
        return self._boot

    def synced(self) -> bool:
        """adjtimex's STA_UNSYNC where available, else systemd-timesyncd's flag file."""
        if self._adjtimex is not None:
            synced = kernel_synced(self._adjtimex)
            if synced is not None:
                return synced
        return os.path.exists(TIMESYNC_FLAG_PATH)


class FakeClock:
    """A clock moved by hand, for tests and the simulator; thread-safe because the agent reads it too."""

    def __init__(self, wall_ms: int = 1_700_000_000_000, mono_ms: int = 10_000, synced: bool = True) -> None:
        self._lock = threading.Lock()
        self._wall = wall_ms
        self._mono = mono_ms
        self._synced = synced
        self._boots = 0
        self._boot = self._new_boot_id()

    def _new_boot_id(self) -> str:
        self._boots += 1
        return f"fake-boot-{self._boots}"

    def wall_ms(self) -> int:
        """The wall time last set or advanced to."""
        with self._lock:
            return self._wall

    def mono_ms(self) -> int:
        """The monotonic time since the fake boot."""
        with self._lock:
            return self._mono

    def boot_id(self) -> str:
        """The current fake boot's id."""
        with self._lock:
            return self._boot

    def synced(self) -> bool:
        """Whether the fake wall clock counts as synchronised."""
        with self._lock:
            return self._synced

    def advance(self, ms: int) -> None:
        """Let ``ms`` milliseconds pass on both clocks."""
        if ms < 0:
            raise ValueError("time does not run backwards; use set_wall to step the wall clock")
        with self._lock:
            self._wall += ms
            self._mono += ms

    def set_wall(self, wall_ms: int) -> None:
        """Step the wall clock (as NTP does after boot) without touching the monotonic clock."""
        with self._lock:
            self._wall = wall_ms

    def set_synced(self, synced: bool) -> None:
        """Mark the wall clock synchronised or not."""
        with self._lock:
            self._synced = synced

    def reboot(self, wall_ms: int | None = None, synced: bool = False) -> None:
        """Start a new boot: new boot id, monotonic clock back near zero, wall clock unsynchronised."""
        with self._lock:
            self._boot = self._new_boot_id()
            self._mono = 0
            self._synced = synced
            if wall_ms is not None:
                self._wall = wall_ms
