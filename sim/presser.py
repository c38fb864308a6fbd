"""One simulated terminal in its own process, pressing until its database holds a target count.

Fault tests SIGKILL it mid-stream and start it again on the same database: it picks up where
the committed votes end, so "every vote exactly once" has a fixed answer (seqs 1..target on
the fleet) however often it dies. It runs the real store, terminal and sync agent.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from device.clock import SystemClock
from device.store import VoteStore
from device.sync import SyncAgent
from device.terminal import Terminal
from fleet.content import default_config_doc


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of one simulated terminal process."""
    p = argparse.ArgumentParser(prog="python -m sim.presser", description=__doc__)
    p.add_argument("--db", required=True, help="the terminal's SQLite database")
    p.add_argument("--device", required=True, help="terminal id")
    p.add_argument("--broker", required=True, help="HOST:PORT of the MQTT broker")
    p.add_argument("--votes", type=int, required=True, help="press until the database holds this many votes")
    p.add_argument("--rate", type=float, default=200.0, help="presses per second")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--unit", default="unit-a")
    p.add_argument("--ack-timeout", type=float, default=2.0)
    p.add_argument("--max-backoff", type=float, default=4.0)
    p.add_argument("--drain-timeout", type=float, default=120.0, help="give up waiting for acks after this")
    p.add_argument("--username", help="broker login (a secured broker: the device id)")
    p.add_argument("--password-file", help="file holding the broker password")
    p.add_argument("--ca-file", help="CA certificate of the broker's TLS listener")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Press to the target, then wait until every vote is acknowledged; exit 0 when the queue is empty."""
    args = build_parser().parse_args(argv)
    host, _, port = args.broker.rpartition(":")
    clock = SystemClock()
    store = VoteStore(args.db, args.device, clock)
    doc: dict[str, Any] = {**default_config_doc(args.unit), "misuse_interval_s": 0}
    agent = SyncAgent(
        store,
        args.device,
        host,
        int(port),
        clock,
        ack_timeout_s=args.ack_timeout,
        max_backoff_s=args.max_backoff,
        heartbeat_s=5,
        fleet_grace_s=0.5,
        username=args.username,
        password=Path(args.password_file).read_text().strip() if args.password_file else None,
        ca_file=args.ca_file,
    )
    terminal = Terminal(store, agent, clock, config=(1, doc))
    stopping = False

    def on_term(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    agent.start()
    last = store.last_vote()
    pressed = 0 if last is None else last.seq
    rng = random.Random(args.seed * 1_000_003 + pressed)
    period = 1.0 / args.rate
    next_at = time.monotonic()
    try:
        while pressed < args.votes and not stopping:
            terminal.press(rng.choice((10, 10, 9, 9, 9, 8, 7, 5, 3, 0)))
            pressed += 1
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        print(f"pressed {pressed}", flush=True)
        deadline = time.monotonic() + args.drain_timeout
        while store.depth() and not stopping and time.monotonic() < deadline:
            time.sleep(0.05)
        depth = store.depth()
        print(f"queue {depth}", flush=True)
        return 0 if depth == 0 and pressed >= args.votes else 1
    finally:
        agent.stop()
        store.close()


if __name__ == "__main__":
    sys.exit(main())
