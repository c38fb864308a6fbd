"""Several ingest workers on one MQTT 5 shared subscription, kept running by a small supervisor.

One ingest process is enough for most fleets (see docs/benchmarks.md); a county that outgrows it,
or wants a second worker to carry on while one is restarted, runs ``hymy fleet ingest --workers N``.
The broker hands each terminal message to one worker of the group; storing is idempotent and acks
come only after the commit, so a worker that dies loses nothing: the terminals resend what it had
not acknowledged, and the other workers store and ack it. The supervisor restarts a dead worker.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

#: How long a worker that died waits before it is started again (a crash loop costs little).
RESTART_DELAY_S = 1.0
#: How long workers get to finish their drain and say offline before they are killed.
STOP_TIMEOUT_S = 10.0


class Supervisor:
    """Runs ``n`` worker processes, restarting any that exits until ``stop()``."""

    def __init__(self, n: int, worker_argv: Callable[[int], Sequence[str]]) -> None:
        if n < 1:
            raise ValueError("at least one worker")
        self.n = n
        self._argv = worker_argv
        self._procs: list[subprocess.Popen[bytes] | None] = [None] * n
        self._stopping = threading.Event()
        self.restarts = 0

    def _start(self, i: int) -> None:
        cmd = [sys.executable, "-m", "fleet", *self._argv(i)]
        self._procs[i] = subprocess.Popen(cmd)
        log.info("ingest worker %d started (pid %d)", i, self._procs[i].pid)  # type: ignore[union-attr]

    def pids(self) -> list[int | None]:
        """The current worker pids (None for one being restarted), for operators and tests."""
        return [None if p is None else p.pid for p in self._procs]

    def run(self, poll_s: float = 0.2) -> int:
        """Start the workers and keep them running until ``stop()``; returns 0 after a clean stop."""
        for i in range(self.n):
            self._start(i)
        died_at: dict[int, float] = {}
        while not self._stopping.wait(poll_s):
            for i, proc in enumerate(self._procs):
                if proc is not None and proc.poll() is not None:
                    log.warning("ingest worker %d (pid %d) exited with %s; restarting", i, proc.pid, proc.returncode)
                    self._procs[i] = None
                    died_at[i] = time.monotonic()
            for i, at in list(died_at.items()):
                if time.monotonic() - at >= RESTART_DELAY_S:
                    del died_at[i]
                    self.restarts += 1
                    self._start(i)
        return self._stop_all()

    def stop(self) -> None:
        """Ask ``run`` to stop the workers and return (safe from a signal handler)."""
        self._stopping.set()

    def _stop_all(self) -> int:
        procs = [p for p in self._procs if p is not None]
        for p in procs:
            if p.poll() is None:
                p.terminate()  # each finishes its drain and says offline
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("ingest worker pid %d did not stop in time; killing it", p.pid)
                p.kill()
                p.wait()
        return 0
