"""``python -m device.bench``: how fast a press becomes a stored vote on the kiosk, beside a bare SQLite commit.

For each input (a touch event, a button on gpiozero's mock pins, a serial board line over
``loop://``) it measures press-to-stored (from the moment the input event is made to the moment
the store's COMMIT returns, WAL with synchronous=FULL) and press-to-thank-you-frame (to the flip
that puts the thanks on the glass), with the real kiosk loop running on its own thread on SDL's
dummy video driver, as in production. Before every press the same loop makes one bare
single-row INSERT and COMMIT on the same disk, so the ceiling sees the same load, and the figures
say what our code costs on whatever machine runs them. Peak RSS is the whole process's.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import pygame  # noqa: E402  (after the SDL drivers are chosen)

from protocol import Vote  # noqa: E402

from .clock import SystemClock  # noqa: E402
from .kiosk import Kiosk  # noqa: E402
from .store import VoteStore  # noqa: E402
from .terminal import Terminal  # noqa: E402
from .ui.canvas import Frame  # noqa: E402
from .ui.display import Display  # noqa: E402
from .ui.flow import Flow  # noqa: E402
from .ui.gallery import sample_doc  # noqa: E402
from .ui.views import QuestionView, ThanksView, View  # noqa: E402

#: The inputs measured, in the order printed.
INPUTS = ("touch", "button", "serial")
_LABELS = {
    "touch": "touch event",
    "button": "mock-pin button",
    "serial": "serial BTN line (loop://)",
}
_WAIT_S = 5.0


def _pct(ns: Sequence[int], q: float) -> float:
    """The ``q`` quantile in milliseconds."""
    data = sorted(ns)
    return data[min(len(data) - 1, int(q * len(data)))] / 1e6


class _TimedStore(VoteStore):
    """Stamps the moment each vote's COMMIT has returned, and says so to whoever waits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stored_at = 0
        self.stored = threading.Event()

    def record(self, *args: Any, **kwargs: Any) -> Vote:
        vote = super().record(*args, **kwargs)
        self.stored_at = time.perf_counter_ns()
        self.stored.set()
        return vote


class _TimedDisplay(Display):
    """Stamps the flip that puts a thank-you on the glass, and says when a question is up again."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.thanked_at = 0
        self.thanked = threading.Event()
        self.asking = threading.Event()

    def present(self, view: View, frame: Frame) -> None:
        super().present(view, frame)
        if isinstance(view, ThanksView):
            self.thanked_at = time.perf_counter_ns()
            self.thanked.set()
        elif isinstance(view, QuestionView):
            self.asking.set()


def _wait(event: threading.Event, what: str) -> None:
    if not event.wait(_WAIT_S):
        raise RuntimeError(f"{what} did not happen within {_WAIT_S} s")


class _Rig:
    """A kiosk loop on its own thread whose time can jump past the thank-you, so presses follow each other."""

    def __init__(self, db: Path, doc: dict[str, Any], sources: Sequence[Any] = ()) -> None:
        from sim.ceiling import open_bare_db

        self.skew = 0.0
        doc = {k: v for k, v in doc.items() if k != "hours"}  # always open, whatever the time of the run
        self.store = _TimedStore(db, "bench-0001", SystemClock())
        self.bare = open_bare_db(db.with_name(db.stem + "-bare.db"), "FULL")
        self.bare_seq = 0
        self.terminal = Terminal(self.store, None, SystemClock(), (1, doc))
        self.flow = Flow(self.terminal, "bench-0001", touch=False, now=lambda: time.monotonic() + self.skew)
        self._sources = sources
        self._up = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="kiosk-loop", daemon=True)
        self._thread.start()
        _wait(self._up, "the kiosk loop starting")
        if self._error is not None:
            raise RuntimeError("the kiosk loop did not start") from self._error
        _wait(self.display.asking, "the first question")

    def _loop(self) -> None:
        # The window is made, and its events pumped, on the loop's own thread, as in the kiosk.
        try:
            self.display = _TimedDisplay((800, 480), dpi=133, fullscreen=False)
            self.kiosk = Kiosk(self.flow, self.display, self._sources)
            self.kiosk.start()
        except BaseException as exc:
            self._error = exc
            self._up.set()
            raise
        self._up.set()
        try:
            while self.kiosk.running:
                self.kiosk.step()
        finally:
            self.kiosk.stop()
            self.display.close()

    def bare_commit(self) -> int:
        """One bare single-row commit on the same disk, under the same load as the press beside it."""
        from sim.ceiling import bare_commit

        self.bare_seq += 1
        return bare_commit(self.bare, self.bare_seq)

    def press(self, make: Callable[[], None]) -> tuple[int, int]:
        """Press-to-stored and press-to-thank-you-frame (ns) for one press that ``make`` makes."""
        self.store.stored.clear()
        self.display.thanked.clear()
        t0 = time.perf_counter_ns()
        make()
        _wait(self.store.stored, "the press being stored")
        _wait(self.display.thanked, "the thank-you frame")
        return self.store.stored_at - t0, self.display.thanked_at - t0

    def next_person(self) -> None:
        """Jump past the thank-you and wait until the question is on the glass again."""
        self.display.asking.clear()
        self.skew += 3600
        self.kiosk.wake()
        _wait(self.display.asking, "the question coming back")

    def close(self) -> None:
        self.kiosk.running = False
        self.kiosk.wake()
        self._thread.join(_WAIT_S)
        self.store.close()
        self.bare.close()


def _measure(rig: _Rig, n: int, make: Callable[[int], None]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {"stored": [], "thanks": [], "bare": []}
    try:
        for i in range(n):
            out["bare"].append(rig.bare_commit())
            stored, thanks = rig.press(functools.partial(make, i))
            out["stored"].append(stored)
            out["thanks"].append(thanks)
            rig.next_person()
    finally:
        rig.close()
    return out


def touch_latencies(db: Path, n: int) -> dict[str, list[int]]:
    """``n`` touches on the NPS question: press-to-stored, press-to-thank-you and the bare commits beside them."""
    rig = _Rig(db, sample_doc("nps11"))

    def touch(i: int) -> None:
        assert rig.display.frame is not None
        pos = rig.display.window_pos(rig.display.frame.target(("answer", i % 11)).rect.center)
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=pos, button=1, touch=False))

    return _measure(rig, n, touch)


def button_latencies(db: Path, n: int) -> dict[str, list[int]]:
    """``n`` presses on a four-button panel on gpiozero's mock pins; see ``touch_latencies``."""
    from gpiozero.pins.mock import MockFactory

    from .inputs.buttons import ButtonPanel

    pins = MockFactory()
    panel = ButtonPanel(pins, (17, 27, 22, 23), (5, 6, 13, 26), bounce_s=None)

    def press(i: int) -> None:
        pin = pins.pin((17, 27, 22, 23)[i % 4])
        pin.drive_high()  # released since the last press, outside the timed part
        pin.drive_low()

    try:
        return _measure(_Rig(db, sample_doc("faces4"), [panel]), n, press)
    finally:
        pins.close()


def serial_latencies(db: Path, n: int) -> dict[str, list[int]]:
    """``n`` ``BTN`` lines written into a ``loop://`` serial port the board reads; see ``touch_latencies``."""
    import serial

    from .inputs.serialboard import SerialBoard

    port = serial.serial_for_url("loop://", timeout=0.01)
    board = SerialBoard("loop://", open_port=lambda: port)
    return _measure(_Rig(db, sample_doc("faces4"), [board]), n, lambda i: port.write(f"BTN {i % 4}\n".encode()))


def measure(n: int = 200, directory: Path | None = None) -> dict[str, Any]:
    """Every input's latencies in ns (``stored``, ``thanks``, ``bare``) by input name, and ``rss_mib``."""
    measures = {"touch": touch_latencies, "button": button_latencies, "serial": serial_latencies}
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        inputs = {name: measures[name](Path(tmp) / f"{name}.db", n) for name in INPUTS}
    return {"inputs": inputs, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run(n: int = 200, directory: Path | None = None, out: Callable[[str], None] = print) -> dict[str, float]:
    """Measure everything and print one line per figure; returns the figures by name."""
    measured = measure(n, directory)
    figures: dict[str, float] = {}
    out(f"press latency, {n} presses each, a bare commit before every press in the same loop (ms)")
    for name in INPUTS:
        rows = measured["inputs"][name]
        bare_p99 = _pct(rows["bare"], 0.99)
        for what, label in (
            ("bare", "bare SQLite commit (ceiling)"),
            ("stored", "-> stored"),
            ("thanks", "-> thank-you frame"),
        ):
            ns = rows[what]
            p50, p99 = _pct(ns, 0.5), _pct(ns, 0.99)
            figures[f"{name} {what} p50"], figures[f"{name} {what} p99"] = p50, p99
            ratio = f"   ({p99 / bare_p99:.1f}x ceiling p99)" if what == "stored" else ""
            text = f"  {_LABELS[name]} {label}" if what != "bare" else f"  {label}"
            out(f"{text:<52} p50 {p50:7.2f}  p99 {p99:7.2f}  mean {statistics.fmean(ns) / 1e6:7.2f}{ratio}")
    figures["peak RSS MiB"] = measured["rss_mib"]
    out(f"peak RSS of this process with pygame loaded: {measured['rss_mib']:.1f} MiB (target < 80)")
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
