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
from typing import Any, NamedTuple, Protocol

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


class ClockReading(NamedTuple):
    """One consistent reading: the wall and monotonic times, the boot, and whether that wall time was synchronised."""

    wall: int
    mono: int
    boot: str
    synced: bool


#: How many times ``read_clock`` reads again when synchronisation changed under it.
READ_ATTEMPTS = 3


def read_clock(clock: Clock, attempts: int = READ_ATTEMPTS) -> ClockReading:
    """Read the clock so that a wall time taken before synchronisation is never labelled synchronised.

    Reading ``wall_ms()`` and then ``synced()`` separately is a race: NTP may step the clock and
    set the flag between the two, and the stale wall time would travel as trustworthy. So the
    flag is read before and after the wall clock: synchronised only if it was true both times.
    If it changed, the reading is taken again (at most ``attempts`` times in all); a flag that
    keeps changing gives an unsynchronised reading, which the fleet corrects later (SPEC 9).
    """
    if attempts < 1:
        raise ValueError("read_clock needs at least one attempt")
    for _ in range(attempts):
        before = clock.synced()
        wall, mono = clock.wall_ms(), clock.mono_ms()
        after = clock.synced()
        if before == after:
            return ClockReading(wall, mono, clock.boot_id(), before)
    return ClockReading(wall, mono, clock.boot_id(), False)


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
        self._step: tuple[int, bool] | None = None

    def _new_boot_id(self) -> str:
        self._boots += 1
        return f"fake-boot-{self._boots}"

    def wall_ms(self) -> int:
        """The wall time last set or advanced to (then a step armed by ``step_after_next_wall_read``)."""
        with self._lock:
            wall = self._wall
            if self._step is not None:
                self._wall, self._synced = self._step
                self._step = None
            return wall

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

    def step_after_next_wall_read(self, wall_ms: int, synced: bool = True) -> None:
        """Make NTP step the wall clock to ``wall_ms`` and set ``synced`` right after the next ``wall_ms()`` read.

        The race a reader of the real clock cannot rule out, on demand: the value just read is the
        old, unsynchronised time, while ``synced()`` asked next already says true.
        """
        with self._lock:
            self._step = (wall_ms, synced)

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
