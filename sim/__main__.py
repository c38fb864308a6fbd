"""``hymy sim``: a whole fleet of simulated terminals against a real broker and fleet, with faults, and a report.

Exit status 0 when every pressed vote is stored exactly once and every unit's score as pressed
equals the fleet's; 1 otherwise; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .fleetsim import FleetSim, SimConfig
from .progress import Progress
from .scenario import FAULT_HELP, FAULT_KINDS, load_scenario


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _kinds(text: str) -> tuple[str, ...]:
    if text in ("", "none"):
        return ()
    if text == "all":
        return FAULT_KINDS
    kinds = tuple(k.strip() for k in text.split(","))
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
    return kinds


def build_parser() -> argparse.ArgumentParser:
    """Options of ``hymy sim``."""
    p = argparse.ArgumentParser(
        prog="hymy sim",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="fault kinds:\n" + "\n".join(f"  {k:9} {v}" for k, v in FAULT_HELP.items()),
    )
    p.add_argument("--devices", type=int, default=50, help="in-process terminals (default 50)")
    p.add_argument("--processes", type=int, default=2, help="terminals run as processes, for the kill fault (2)")
    p.add_argument("--seed", type=int, default=1, help="seed of patients, answers and faults (1)")
    p.add_argument("--hours", type=float, default=12.0, help="simulated hours from 06:30 on a weekday (12)")
    p.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second (60)")
    p.add_argument("--rate-scale", type=float, default=1.0, help="multiply every unit's patients per hour")
    p.add_argument("--faults", type=_kinds, default=FAULT_KINDS, help="'all' (default), 'none' or kinds a,b,c")
    p.add_argument("--faults-each", type=int, default=1, help="faults of each kind at seeded random times (1)")
    p.add_argument("--scenario", type=Path, help="JSON with 'units' (rates, answers) and/or a fixed 'faults' list")
    p.add_argument("--hardware-every", type=int, default=10, help="every Nth terminal uses mock pins or loop:// (10)")
    p.add_argument("--hardware-max", type=int, default=20, help="at most this many such terminals (20)")
    p.add_argument("--broker", type=_address, help="use this broker (HOST:PORT) instead of starting mosquitto")
    p.add_argument(
        "--secure",
        action="store_true",
        help="start mosquitto as production runs it (hymy fleet broker-config): TLS, a login per terminal,"
        " access rules",
    )
    p.add_argument(
        "--db",
        metavar="DB",
        help="fleet database of the simulator's own ingest: a SQLite file or a postgresql:// URL of an empty"
        " database (default DATA/fleet.db)",
    )
    p.add_argument("--fleet-db", metavar="DB", help="an ingest already runs on this fleet database; do not start one")
    p.add_argument("--data", type=Path, help="keep terminal and fleet databases here (default: a temp dir)")
    p.add_argument("--drain-timeout", type=float, default=120.0, help="real seconds to wait for queues to empty")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="log what the terminals do")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one simulation, print its report, exit non-zero on any loss or duplicate."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.fleet_db is not None and args.db is not None:
        print("hymy sim: give --db (the simulator runs the ingest) or --fleet-db (one already runs), not both",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.secure and args.broker is not None:
        print("hymy sim: --secure starts its own secured broker; it cannot be combined with --broker", file=sys.stderr)
        return 2
    if args.fleet_db is not None and args.broker is None:
        print("hymy sim: --fleet-db needs --broker (the broker that fleet ingests from)", file=sys.stderr)
        return 2
    scenario = load_scenario(args.scenario) if args.scenario else None
    data = args.data or Path(tempfile.mkdtemp(prefix="hymy-sim-"))
    config = SimConfig(
        devices=args.devices,
        processes=args.processes,
        seed=args.seed,
        hours=args.hours,
        speed=args.speed,
        data=data,
        rate_scale=args.rate_scale,
        fault_kinds=args.faults,
        faults_each=args.faults_each,
        hardware_every=args.hardware_every,
        hardware_max=args.hardware_max,
        broker=args.broker,
        secure=args.secure,
        fleet_db=args.fleet_db,
        db=args.db,
        drain_timeout_s=args.drain_timeout,
    )
    if scenario is not None:
        config.units = scenario.units
        config.schedule = scenario.faults
    progress = Progress()
    # SIGTERM unwinds like Ctrl-C, so the broker, the ingest and terminal processes are stopped too.
    signal.signal(signal.SIGTERM, lambda _s, _f: sys.exit(143))
    try:
        report = FleetSim(config, on_progress=progress).run()
    finally:
        progress.done()
        if args.data is None:
            shutil.rmtree(data, ignore_errors=True)
    print(report.to_json() if args.json else report.format(), flush=True)
    return report.exit_status()


if __name__ == "__main__":
    sys.exit(main())
