"""The terminal: ``hymy kiosk --settings FILE`` runs the pygame kiosk (device/kiosk.py); without
``--settings`` (or with ``--headless``) it is the headless terminal below. ``python -m device enrol
…`` is ``hymy enrol …`` (device/enrol.py).

Headless: ``python -m device [--headless] --db PATH --device ID --broker HOST:PORT``; one answer
per stdin line. The real thing minus the screen: votes are committed, synced with acks,
configuration arrives from the fleet.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import sys
import threading
from collections.abc import Sequence
from typing import Any, TextIO

from protocol.codec import vote_to_dict

from .clock import SystemClock
from .errors import DeviceError
from .store import VoteStore
from .sync import SyncAgent
from .terminal import Terminal


def parse_broker(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (port defaults to 1883)."""
    host, sep, port = value.rpartition(":")
    if not sep:
        return value, 1883
    try:
        return host, int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad broker address {value!r}; expected HOST:PORT") from None


def build_parser() -> argparse.ArgumentParser:
    """The command line, kept separate so its help can be tested."""
    p = argparse.ArgumentParser(prog="python -m device", description="Headless terminal: answers from stdin.")
    p.add_argument("--db", required=True, help="path of the terminal's vote database")
    p.add_argument("--device", required=True, help="this terminal's id, e.g. term-0001")
    p.add_argument("--broker", type=parse_broker, default=("127.0.0.1", 1883), help="MQTT broker HOST:PORT")
    p.add_argument("--username", help="MQTT user name (password from HYMY_MQTT_PASSWORD)")
    p.add_argument("--ca-file", help="TLS to the broker, verifying its certificate with this CA (PEM)")
    p.add_argument("--heartbeat", type=float, default=60.0, help="seconds between heartbeats")
    p.add_argument("-v", "--verbose", action="store_true", help="log the sync agent's work")
    p.add_argument(
        "--headless", action="store_true", help="answers from stdin, no screen (the default without --settings)"
    )
    return p


def _read_lines(stream: TextIO, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _handle(terminal: Terminal, line: str, out: TextIO) -> None:
    text = line.strip()
    if not text:
        return
    try:
        vote = terminal.press(int(text))
    except ValueError as exc:  # includes ProtocolError: an answer outside the scale
        print(f"refused {text!r}: {exc}", file=out, flush=True)
        return
    print("stored " + json.dumps(vote_to_dict(vote)), file=out, flush=True)


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Run the kiosk when given --settings or --screenshot, else a headless terminal until stdin ends or Ctrl-C."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["enrol"]:
        from .enrol import main as enrol_main

        return enrol_main(words[1:])
    if words[:1] == ["kiosk"]:  # ``python -m device kiosk ...`` reads like ``hymy kiosk ...``
        words = words[1:]
    if (
        any(w.split("=")[0] in ("--settings", "--screenshot") for w in words) or words in (["-h"], ["--help"])
    ) and "--headless" not in words:
        from .kiosk import main as kiosk_main

        return kiosk_main(words)
    args = build_parser().parse_args(words)
    stdin = stdin or sys.stdin
    out = stdout or sys.stdout
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    clock = SystemClock()
    try:
        store = VoteStore(args.db, args.device, clock)
    except DeviceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    holder: dict[str, Terminal] = {}

    def check_config(version: int, doc: dict[str, Any]) -> str | None:
        return holder["terminal"].check_config(version, doc)

    def on_config(version: int, doc: dict[str, Any]) -> None:
        holder["terminal"].offer_config(version, doc)

    host, port = args.broker
    try:
        agent = SyncAgent(
            store,
            args.device,
            host,
            port,
            clock,
            heartbeat_s=args.heartbeat,
            check_config=check_config,
            on_config=on_config,
            username=args.username,
            password=os.environ.get("HYMY_MQTT_PASSWORD"),
            ca_file=args.ca_file,
        )
    except (DeviceError, ValueError) as exc:
        store.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    terminal = holder["terminal"] = Terminal(store, agent, clock)
    agent.start()
    if not terminal.placed:
        print("unplaced: waiting for a configuration from the fleet; presses are refused until then", file=out)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_lines, args=(stdin, lines), daemon=True).start()
    try:
        while True:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                line = ""
            if terminal.apply_pending():  # between interactions: nobody is mid-press here
                print(f"configuration {terminal.config[0] if terminal.config else 0} applied", file=out, flush=True)
            if line is None:
                break
            try:
                _handle(terminal, line, out)
            except DeviceError as exc:
                print(f"not stored: {exc}", file=out, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        agent.stop()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
