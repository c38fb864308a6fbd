"""Progress of a long run on stderr: a bar redrawn in place on a terminal, plain lines every so often otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

BAR = 30


class Progress:
    """Show the simulator's progress dicts; quiet unless asked, tidy when the output is not a terminal."""

    def __init__(self, out: TextIO = sys.stderr, every_s: float = 10.0) -> None:
        self.out = out
        self.tty = out.isatty()
        self.every_s = every_s
        self._last = 0.0

    def __call__(self, p: dict[str, Any]) -> None:
        """Draw one update."""
        filled = int(BAR * p["done"])
        text = (
            f"[{'#' * filled}{'.' * (BAR - filled)}] {p['done']:4.0%} sim {p['sim_time']}"
            f"  pressed {p['pressed']}  queued {p['queued']}  faults {p['faults']}/{p['faults_planned']}"
        )
        if self.tty:
            self.out.write("\r" + text + "\x1b[K")
            self.out.flush()
        elif time.monotonic() - self._last >= self.every_s:
            self._last = time.monotonic()
            print(text, file=self.out, flush=True)

    def done(self) -> None:
        """End the in-place line."""
        if self.tty:
            self.out.write("\n")
            self.out.flush()
