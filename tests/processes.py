"""Child processes of one test (``python -m …``), each logging to a file and killed at teardown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

PY = sys.executable
ROOT = Path(__file__).parents[1]


class Processes:
    """Child processes of one test, each killed at teardown whatever happened."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start ``python -m args...`` with its output in ``name``.log."""
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        # Its own process group, so teardown also kills what it started (a supervisor's workers).
        proc = subprocess.Popen(
            [PY, "-m", *args], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )
        log.close()
        self.children.append(proc)
        return proc

    def log(self, name: str, tail: int | None = 3000) -> str:
        """What a child printed (its last ``tail`` characters, for failure messages; None: all)."""
        path = self.workdir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return text if tail is None else text[-tail:]

    def kill_all(self) -> None:
        """SIGKILL whatever still runs, with every process it started."""
        for proc in self.children:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
