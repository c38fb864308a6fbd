"""`python -m protocol`: check messages against the contract, for people building a compatible terminal.

The package itself stays pure (no I/O); this entry point only reads the payload and prints
what the codec says of it, with the same rejection reason the fleet would count.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import ProtocolError, decode, decode_payload, to_dict


def build_parser() -> argparse.ArgumentParser:
    """Options of `python -m protocol`."""
    p = argparse.ArgumentParser(prog="python -m protocol", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="decode a payload (a file, or - for stdin) and say whether it is valid")
    check.add_argument("payload", help="file holding the payload bytes, or - for standard input")
    check.add_argument("--topic", help="the topic it would travel on (also checks kind and device id)")
    sub.add_parser("spec", help="print where SPEC.md, the wire contract, is")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 for a valid message (printed in canonical form), 1 with the reason for an invalid one."""
    args = build_parser().parse_args(argv)
    if args.command == "spec":
        print(Path(__file__).with_name("SPEC.md"))
        return 0
    data = sys.stdin.buffer.read() if args.payload == "-" else Path(args.payload).read_bytes()
    try:
        msg = decode(args.topic, data) if args.topic else decode_payload(data)
    except ProtocolError as exc:
        print(f"rejected ({exc.reason}): {exc.detail}", file=sys.stderr)
        return 1
    print(f"valid {type(msg).__name__}")
    print(json.dumps(to_dict(msg), ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
