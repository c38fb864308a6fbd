"""``hymy demo``: a fleet, an MQTT broker and simulated terminals on this machine, showing results as they arrive.

Everything runs in this process with the real code: the embedded amqtt broker (or ``--broker``),
the fleet's ingest on a SQLite store, and terminals with their own vote stores and sync agents.
The terminals start unplaced; the fleet assigns them to units and sends each its configuration
over MQTT, and simulated patients press once a terminal has applied it. The fleet web is served on
loopback with a demo account, so the terminals can be watched in a browser as they work.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO
from zoneinfo import ZoneInfo

from fleet.db.accounts import Accounts
from fleet.db.feedback import WEB_DEVICE
from fleet.db.rollup import TERMINAL
from fleet.db.store import SqlFleetStore
from fleet.ingest import Ingest
from fleet.results import scores_by_unit
from fleet.store import DEFAULT_TZ, FleetStore

if TYPE_CHECKING:
    from fleet.web.server import WebServer

from .brokers import LOOPBACK, EmbeddedBroker, choose_port
from .demo_org import DEMO_USER, demo_account, place_terminals
from .demo_view import Health, render_results
from .history import fill_feedback, fill_history
from .patients import DEMO_UNITS
from .terminals import SimTerminals

#: How long the end waits for votes still in flight, so the summary's counts agree.
DRAIN_TIMEOUT_S = 3.0


def _broker_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _port(text: str) -> int:
    port = _positive_int(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1…65535, got {port}")
    return port


def build_parser() -> argparse.ArgumentParser:
    """The demo's command line."""
    p = argparse.ArgumentParser(prog="hymy demo", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--terminals", type=_positive_int, default=6, metavar="N", help="simulated terminals (default 6)")
    p.add_argument(
        "--rate", type=_positive_float, default=30.0, metavar="PER_MIN", help="presses per minute per terminal (30)"
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the patients' arrivals and answers (default 1)")
    p.add_argument("--every", type=_positive_float, default=3.0, metavar="SECONDS", help="refresh results (3 s)")
    p.add_argument("--duration", type=_positive_float, metavar="SECONDS", help="stop by itself after this long")
    p.add_argument("--data", type=Path, metavar="DIR", help="keep the databases here (default: a temp dir, removed)")
    p.add_argument(
        "--db",
        metavar="DB",
        help="fleet database: a SQLite file or a postgresql:// URL (default DATA/fleet.db); best an empty one",
    )
    p.add_argument("--port", type=_port, default=1883, help="preferred port of the embedded broker (default 1883)")
    p.add_argument("--broker", type=_broker_address, metavar="HOST:PORT", help="use this MQTT broker instead")
    p.add_argument(
        "--web-port", type=_port, default=8080, help="preferred port of the fleet web (default 8080, else a free one)"
    )
    p.add_argument(
        "--history-days",
        type=int,
        default=60,
        metavar="DAYS",
        help="answers of this many past days, so the fleet web's results have a trend (default 60; 0: none)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log what the broker, fleet and terminals do")
    return p


def _quiet_logs(verbose: bool) -> None:
    """Keep library chatter (amqtt, asyncio, paho) off the screen unless asked, so the table stays readable."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.ERROR,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        for name in ("amqtt", "asyncio", "transitions"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


@contextmanager
def _data_dir(keep: Path | None, out: TextIO) -> Iterator[Path]:
    """The directory for every database: ``keep`` as given, or a temp dir removed at the end."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        print(f"data:      {keep} (kept)", file=out)
        yield keep
        return
    path = Path(tempfile.mkdtemp(prefix="hymy-demo-"))
    print(f"data:      {path} (removed at exit; --data DIR keeps it)", file=out)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _start_broker(args: argparse.Namespace, stack: ExitStack, out: TextIO) -> tuple[str, int]:
    """Use ``--broker`` or start the embedded broker, on ``--port`` if free, else on a free port, and say which."""
    if args.broker is not None:
        print(f"broker:    external MQTT broker at {args.broker[0]}:{args.broker[1]}", file=out)
        return args.broker
    choice = choose_port(args.port)
    broker = EmbeddedBroker(choice.port, stop_timeout=5.0)
    broker.start()
    stack.callback(broker.stop)
    if choice.fell_back:
        print(
            f"broker:    port {args.port} is taken (another MQTT broker?), so the embedded broker "
            f"listens on {LOOPBACK}:{choice.port}",
            file=out,
        )
    else:
        print(f"broker:    embedded (amqtt) on {LOOPBACK}:{choice.port}", file=out)
    return LOOPBACK, choice.port


def device_ids(count: int) -> list[str]:
    """Terminal ids of the demo, numbered so they sort."""
    return [f"demo-term-{i:03d}" for i in range(1, count + 1)]


class _Stop:
    """Ctrl-C and SIGTERM set an event the main loop waits on, so no KeyboardInterrupt tears through threads."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum
        self.event.set()

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Handle SIGINT and SIGTERM while inside, then restore the previous handlers."""
        previous = {sig: signal.signal(sig, self) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@dataclass
class _Web:
    """The fleet web the demo serves, listening from before the history is written."""

    server: WebServer  # fleet.web.server's (imported where the web starts)
    password: str
    fell_back: bool

    def say(self, out: TextIO, first_unit: str) -> None:
        """Print where and how to sign in, and where the first unit's feedback form is."""
        url = self.server.url
        note = " (the preferred port is taken)" if self.fell_back else ""
        print(f"web:       {url}{note}  sign in as {DEMO_USER} / {self.password}", file=out, flush=True)
        print(f"public:    {url}public/pohjois-karjala  (residents' page, no sign-in)", file=out, flush=True)
        print(f"feedback:  {url}f/{first_unit}  (the form behind the terminals' QR codes)", file=out, flush=True)


def _serve_web(fleet_db: str | Path, stack: ExitStack, preferred: int) -> _Web:
    """Serve the fleet web on loopback with its own store, on ``preferred`` if it is free, else on any
    free port. It binds before the terminals' configurations are written, as they carry its address."""
    import secrets

    from fleet.web import create_app
    from fleet.web.server import WebServer
    from fleet.web.settings import Settings

    web_store = SqlFleetStore(fleet_db)
    stack.callback(web_store.close)
    password = demo_account(Accounts(web_store))
    settings = Settings(db=str(fleet_db), secret_key=secrets.token_hex(32), secure_cookies=False)
    app = create_app(settings, store=web_store)
    try:
        server, fell_back = WebServer(app, LOOPBACK, preferred), False
    except OSError:  # taken: binding is the only test that cannot race another program
        server, fell_back = WebServer(app, LOOPBACK, 0), True
    server.start()
    stack.callback(server.stop)
    return _Web(server, password, fell_back)


def _health(ingest: Ingest, reader: FleetStore, sims: SimTerminals, past: int = 0) -> Health:
    """Gather the fleet's view and the terminals' own counts for the health line (``past``: history
    votes written before the terminals started, not counted as stored by them)."""
    terminals = reader.terminals()
    rejections = sum(ingest.counters().rejections.values()) + ingest.counters().conflicts
    totals = sims.totals()
    return Health(
        terminals=len(sims.terminals),
        online=sum(1 for t in terminals if t.online),
        configured=sum(1 for t in terminals if t.desired_version is not None and not t.lags),
        pressed=totals.pressed,
        stored=reader.vote_count() - reader.vote_count(WEB_DEVICE) - past,  # the terminals' own
        queued=totals.queued,
        rejected=rejections,
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Compose broker, fleet and terminals, show results until told to stop, then take it all down in order."""
    stop = _Stop()
    units = list(DEMO_UNITS)
    names = {u.unit: u.name for u in units}
    started = time.monotonic()
    print(f"Hymy demo: a fleet, an MQTT broker and {args.terminals} simulated terminals on this machine.", file=out)
    with stop.installed(), ExitStack() as stack:
        data = stack.enter_context(_data_dir(args.data, out))
        host, port = _start_broker(args, stack, out)
        fleet_db = args.db or data / "fleet.db"
        store = SqlFleetStore(fleet_db)
        stack.callback(store.close)
        devices = device_ids(args.terminals)
        web = _serve_web(fleet_db, stack, args.web_port)
        form_url = f"{web.server.url}f/{{unit}}"  # each unit's own form (fleet/configs.py)
        placed = place_terminals(store, devices, units, feedback_url=form_url)
        past = 0
        if args.history_days > 0 and store.vote_count() == 0:
            past = fill_history(store, placed, units, args.history_days, seed=args.seed).total
            print(f"history:   {past:,} answers of the past {args.history_days} days, for the web's results", file=out)
            texts = fill_feedback(store, units, args.history_days, seed=args.seed)
            print(f"           {texts:,} open-feedback answers with texts, behind the units' QR codes", file=out)
        today = datetime.now(ZoneInfo(DEFAULT_TZ)).date()
        web.say(out, units[0].unit)
        ingest = Ingest(store, host, port)
        ingest.start()
        stack.callback(ingest.stop)
        if not ingest.wait_ready(10.0):
            print(f"error: the fleet could not connect to the broker at {host}:{port}", file=sys.stderr)
            return 1
        reader = SqlFleetStore(fleet_db)  # results never hold up ingest (WAL readers don't block)
        stack.callback(reader.close)
        sims = SimTerminals(
            devices, data / "terminals", host, port, profiles=units, rate_per_min=args.rate, seed=args.seed
        )
        stack.callback(sims.stop)
        sims.start()
        print(
            f"terminals: {args.terminals}, unplaced until the fleet sends each its unit's configuration over MQTT;\n"
            f"           then patients press about {args.rate:g} times a minute at each.",
            file=out,
        )
        print("Ctrl-C stops." if args.duration is None else f"Stops after {args.duration:g} s (or Ctrl-C).", file=out)
        view = _Screen(out)
        deadline = None if args.duration is None else started + args.duration
        while True:
            wait = args.every if deadline is None else min(args.every, max(0.0, deadline - time.monotonic()))
            if stop.event.wait(wait) or (deadline is not None and time.monotonic() >= deadline):
                break
            view.show(_frame(reader, ingest, sims, names, time.monotonic() - started, today, past))
        sims.stop_pressing()
        drained = sims.wait_drained(DRAIN_TIMEOUT_S)
        final = _frame(reader, ingest, sims, names, time.monotonic() - started, today, past)
        view.show(final, final=True)
        health = _health(ingest, reader, sims, past)
        shown = sum(s.n for s in scores_by_unit(reader.answer_counts(first_day=today, channel=TERMINAL)).values())
        misuse = reader.vote_count() - reader.vote_count(include_misuse=False)
        why = "Ctrl-C" if stop.signal == signal.SIGINT else "SIGTERM" if stop.signal is not None else "time is up"
        print(
            f"stopped ({why}) after {time.monotonic() - started:.0f} s: pressed {health.pressed}, "
            f"stored {health.stored}, shown {shown}, queued {health.queued}, rejected {health.rejected}"
            + (f"; {misuse} flagged as misuse (faster than the unit's minimum interval), left out" if misuse else "")
            + ("" if drained else "; some votes were still on their way and stay queued on the terminals"),
            file=out,
            flush=True,
        )
    # ExitStack unwound: terminals stopped, ingest stopped, broker stopped, temp dir removed, in that order.
    return 0


def _frame(
    reader: FleetStore,
    ingest: Ingest,
    sims: SimTerminals,
    names: dict[str, str],
    elapsed: float,
    today: date,
    past: int,
) -> str:
    """One screenful: today's results (the live terminals'; the history is for the web) and the
    fleet's health line."""
    scores = scores_by_unit(reader.answer_counts(first_day=today, channel=TERMINAL))
    return render_results(scores, names, elapsed) + "\n" + _health(ingest, reader, sims, past).line()


class _Screen:
    """Redraw the table in place on a terminal; on a pipe print each frame after the last."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._lines = 0

    def show(self, frame: str, final: bool = False) -> None:
        """Replace the previous frame on a terminal, or append it elsewhere."""
        if self.tty and self._lines:
            self.out.write(f"\x1b[{self._lines}F\x1b[J")  # up to the previous frame's first line, clear below
        else:
            self.out.write("\n")
        self.out.write(frame + "\n")
        self.out.flush()
        self._lines = 0 if final else frame.count("\n") + 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns 0 when it stopped as asked (time up, Ctrl-C or SIGTERM)."""
    args = build_parser().parse_args(argv)
    _quiet_logs(args.verbose)
    try:
        return run(args, sys.stdout)
    except KeyboardInterrupt:  # a Ctrl-C before our handler was installed or after it was removed
        return 0
    except OSError as exc:
        print(f"hymy demo: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
