"""``python -m device.bench``: how fast a press becomes a stored vote on the kiosk, beside a bare SQLite commit.

For each input (a touch event, a button on gpiozero's mock pins, a serial board line over
``loop://``) it measures press-to-stored (the vote committed, WAL with synchronous=FULL) and, for
touch, press-to-thank-you-frame, through the real kiosk loop on SDL's dummy video driver. The
ceiling is a bare single-row INSERT and COMMIT on the same disk in the same run, so the figures
say what our code costs on whatever machine runs them. Peak RSS is the whole process's.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import pygame  # noqa: E402  (after the SDL drivers are chosen)

from .clock import SystemClock  # noqa: E402
from .kiosk import Kiosk  # noqa: E402
from .store import VoteStore  # noqa: E402
from .terminal import Terminal  # noqa: E402
from .ui.display import Display  # noqa: E402
from .ui.flow import Flow  # noqa: E402
from .ui.gallery import sample_doc  # noqa: E402


def _pct(ns: Sequence[int], q: float) -> float:
    """The ``q`` quantile in milliseconds."""
    data = sorted(ns)
    return data[min(len(data) - 1, int(q * len(data)))] / 1e6


class _Rig:
    """A kiosk whose time can jump past the thank-you, so presses follow each other without waiting."""

    def __init__(self, db: Path, doc: dict[str, Any], sources: Sequence[Any] = ()) -> None:
        self.skew = 0.0
        doc = {k: v for k, v in doc.items() if k != "hours"}  # always open, whatever the time of the run
        self.store = VoteStore(db, "bench-0001", SystemClock())
        self.terminal = Terminal(self.store, None, SystemClock(), (1, doc))
        self.stored_at = 0
        press = self.terminal.press

        def timed_press(*args: Any, **kwargs: Any) -> Any:
            vote = press(*args, **kwargs)
            self.stored_at = time.perf_counter_ns()
            return vote

        self.terminal.press = timed_press  # type: ignore[method-assign]
        self.flow = Flow(self.terminal, "bench-0001", touch=False, now=lambda: time.monotonic() + self.skew)
        self.display = Display((800, 480), dpi=133, fullscreen=False)
        self.kiosk = Kiosk(self.flow, self.display, sources)
        self.kiosk.start()

    def next_person(self) -> None:
        """Jump past the thank-you and draw the question again."""
        self.skew += 3600
        self.kiosk.step(0)

    def wait_stored(self, before: int) -> None:
        deadline = time.monotonic() + 5
        while self.stored_at <= before:
            if time.monotonic() > deadline:
                raise RuntimeError("a press was not stored within 5 s")
            self.kiosk.step(0.01)

    def close(self) -> None:
        self.kiosk.stop()
        self.display.close()
        self.store.close()


def touch_latencies(db: Path, n: int) -> tuple[list[int], list[int]]:
    """Press-to-stored and press-to-thank-you-frame for ``n`` touches on the NPS question."""
    rig = _Rig(db, sample_doc("nps11"))
    stored, framed = [], []
    try:
        for i in range(n):
            rig.next_person()
            assert rig.display.frame is not None
            pos = rig.display.frame.target(("answer", i % 11)).rect.center
            t0 = time.perf_counter_ns()
            pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=pos, button=1, touch=False))
            rig.kiosk.step(0)  # handles the touch, commits, draws the thank-you and flips
            framed.append(time.perf_counter_ns() - t0)
            stored.append(rig.stored_at - t0)
    finally:
        rig.close()
    return stored, framed


def button_latencies(db: Path, n: int) -> list[int]:
    """Press-to-stored for ``n`` presses on a four-button panel on gpiozero's mock pins."""
    from gpiozero.pins.mock import MockFactory

    from .inputs.buttons import ButtonPanel

    pins = MockFactory()
    panel = ButtonPanel(pins, (17, 27, 22, 23), (5, 6, 13, 26), bounce_s=None)
    rig = _Rig(db, sample_doc("faces4"), [panel])
    out = []
    try:
        for i in range(n):
            rig.next_person()
            pin = pins.pin((17, 27, 22, 23)[i % 4])
            t0 = time.perf_counter_ns()
            pin.drive_low()
            rig.wait_stored(t0)
            out.append(rig.stored_at - t0)
            pin.drive_high()
    finally:
        rig.close()
        pins.close()
    return out


def serial_latencies(db: Path, n: int) -> list[int]:
    """Press-to-stored for ``n`` ``BTN`` lines written into a ``loop://`` serial port the board reads."""
    import serial

    from .inputs.serialboard import SerialBoard

    port = serial.serial_for_url("loop://", timeout=0.01)
    board = SerialBoard("loop://", open_port=lambda: port)
    rig = _Rig(db, sample_doc("faces4"), [board])
    out = []
    try:
        for i in range(n):
            rig.next_person()
            t0 = time.perf_counter_ns()
            port.write(f"BTN {i % 4}\n".encode())
            rig.wait_stored(t0)
            out.append(rig.stored_at - t0)
    finally:
        rig.close()
    return out


def run(n: int = 200, directory: Path | None = None, out: Callable[[str], None] = print) -> dict[str, float]:
    """Measure everything and print one line per figure; returns the figures by name."""
    from sim.ceiling import bare_commit_latencies

    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        base = Path(tmp)
        bare = bare_commit_latencies(base / "bare.db", n)
        stored, framed = touch_latencies(base / "touch.db", n)
        rows = {
            "bare SQLite commit (ceiling)": bare,
            "touch event -> stored": stored,
            "touch event -> thank-you frame": framed,
            "mock-pin button -> stored": button_latencies(base / "button.db", n),
            "serial BTN line (loop://) -> stored": serial_latencies(base / "serial.db", n),
        }
    out(f"press-to-stored latency, {n} presses each (ms)")
    bare_p50 = _pct(bare, 0.5)
    for name, ns in rows.items():
        p50, p99 = _pct(ns, 0.5), _pct(ns, 0.99)
        figures[f"{name} p50"], figures[f"{name} p99"] = p50, p99
        ratio = "" if ns is bare else f"   ({p50 / bare_p50:.1f}x ceiling p50)"
        out(f"  {name:<38} p50 {p50:7.2f}  p99 {p99:7.2f}  mean {statistics.fmean(ns) / 1e6:7.2f}{ratio}")
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures["peak RSS MiB"] = rss_mib
    out(f"peak RSS of this process with pygame loaded: {rss_mib:.1f} MiB (target < 80)")
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m device.bench [-n PRESSES] [--dir DIR]`` (DIR on the disk the terminal's database uses)."""
    p = argparse.ArgumentParser(prog="python -m device.bench", description=(__doc__ or "").splitlines()[0])
    p.add_argument("-n", type=int, default=200, help="presses per input (default 200)")
    p.add_argument("--dir", type=Path, help="where the scratch databases go (default: the temp directory)")
    args = p.parse_args(argv)
    # loop:// echoes the board's own HELLO? back to it; that warning says nothing about the figures.
    logging.getLogger("device.inputs").setLevel(logging.ERROR)
    run(args.n, args.dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
