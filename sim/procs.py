"""Child processes of a simulation (the fleet ingest, terminal processes) and what /proc says they use.

The ingest and some terminals run as real processes so faults can SIGKILL them mid-write, as a
power cut or the kernel's OOM killer would, and so the capacity figures are per process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    """CPU seconds (user + system) used so far and resident memory now."""

    cpu_s: float
    rss_mib: float
    peak_rss_mib: float


def usage(pid: int) -> Usage | None:
    """Read a process's CPU time and memory from /proc; None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    mem = {k: v for k, _, v in (line.partition(":") for line in status.splitlines())}

    def mib(key: str) -> float:
        return int(mem.get(key, "0 kB").split()[0]) / 1024

    return Usage(cpu, mib("VmRSS"), mib("VmHWM"))


class Child:
    """One ``python -m MODULE ARGS`` child with its output in a log file; start, SIGKILL, stop, start again."""

    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name = name
        self.args = args
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    @property
    def pid(self) -> int | None:
        """The running process's id, or None."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self) -> None:
        """Start (again); the log is appended to."""
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", *self.args], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, whatever it was writing."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.kills += 1

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout``); return the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def wait(self, timeout: float) -> int | None:
        """Wait for it to exit by itself; None if still running after ``timeout``."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def exited(self) -> bool:
        """Whether it ran and has exited."""
        return self.proc is not None and self.proc.poll() is not None


def ingest_child(db: str | Path, host: str, port: int, log: Path, settings: Path | None = None) -> Child:
    """The real fleet ingest, as ``python -m fleet --db DB --broker HOST:PORT ingest [--settings FILE]``
    (the settings file holds its broker login on a secured broker)."""
    args = ["fleet", "--db", str(db), "--broker", f"{host}:{port}", "ingest"]
    return Child("ingest", args + (["--settings", str(settings)] if settings else []), log)


def cpu_percent(before: Usage | None, after: Usage | None, seconds: float) -> float | None:
    """CPU use between two readings as % of one core."""
    if before is None or after is None or seconds <= 0:
        return None
    return round(100 * (after.cpu_s - before.cpu_s) / seconds, 1)


def wait_for(predicate: Callable[[], object], timeout: float, step: float = 0.05) -> bool:
    """Poll a callable until it returns true; False on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True
