"""The ``hymy`` command: one entry point that hands each subcommand to the module that owns it.

Targets are imported only when chosen, so ``hymy fleet`` never imports pygame.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import NamedTuple


class Command(NamedTuple):
    """A subcommand: the module whose ``main`` runs it, a one-line summary for ``--help``, and the
    package extra that installs what it needs (``pip install 'hymy[kiosk]'`` on a terminal)."""

    module: str
    summary: str
    extra: str = "all"


COMMANDS: dict[str, Command] = {
    "demo": Command("sim.demo", "run a fleet, a broker and simulated terminals on this machine"),
    "fleet": Command("fleet.__main__", "run the fleet server: ingest votes, push configuration", "fleet"),
    "kiosk": Command("device.__main__", "run the terminal software (screen, buttons, local store)", "kiosk"),
    "enrol": Command("device.enrol", "enrol this terminal with the fleet (its identity and login)", "kiosk"),
    "sim": Command("sim.__main__", "simulate terminals and faults against a broker"),
    "bench": Command("sim.bench", "measure throughput and latency against a broker"),
}


def _version() -> str:
    """Return the installed package's version, or say it is not installed."""
    try:
        return version("hymy")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser, used for ``--help``, ``--version`` and unknown commands."""
    parser = argparse.ArgumentParser(
        prog="hymy",
        description="Hymy: smiley-button and NPS feedback terminals and the fleet server behind them.",
        epilog="Run 'hymy COMMAND --help' for a command's own options.",
    )
    parser.add_argument("--version", action="version", version=f"hymy {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, command in COMMANDS.items():
        sub.add_parser(name, help=command.summary, add_help=False)
    return parser


#: The packages of this distribution: a module of theirs that is missing is a bug, not a missing extra.
OWN_PACKAGES = frozenset({"protocol", "device", "fleet", "sim"})


def _is_missing_dependency(exc: ModuleNotFoundError) -> bool:
    """Tell whether ``exc`` is about a third-party package (one an extra installs)."""
    return exc.name is not None and exc.name.split(".")[0] not in OWN_PACKAGES


def _say_install(name: str, command: Command, exc: ModuleNotFoundError) -> None:
    print(
        f"hymy {name}: {exc}; install the extra that this command needs: pip install 'hymy[{command.extra}]'",
        file=sys.stderr,
    )


def _load(name: str, command: Command) -> Callable[..., object] | None:
    """Import the command's module and return its ``main``, or explain on stderr why it cannot."""
    try:
        module = importlib.import_module(command.module)
    except ModuleNotFoundError as exc:
        if exc.name == command.module or command.module.startswith(f"{exc.name}."):
            print(f"hymy {name}: not available yet: module {command.module} does not exist", file=sys.stderr)
            return None
        if _is_missing_dependency(exc):
            _say_install(name, command, exc)
        else:
            print(f"hymy {name}: cannot import {command.module}: {exc}", file=sys.stderr)
        return None
    target = getattr(module, "main", None)
    if not callable(target):
        print(f"hymy {name}: {command.module} has no main()", file=sys.stderr)
        return None
    return target


def _takes_argv(target: Callable[..., object]) -> bool:
    """Tell whether ``target`` accepts an argv argument, so mains with and without one both work."""
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters)


def run(name: str, argv: Sequence[str]) -> int:
    """Run subcommand ``name`` with the rest of the command line and return its exit code."""
    command = COMMANDS[name]
    target = _load(name, command)
    if target is None:
        return 2
    sys.argv = [f"hymy {name}", *argv]  # for mains that read sys.argv, and so their usage says 'hymy NAME'
    try:
        result = target(list(argv)) if _takes_argv(target) else target()
    except ModuleNotFoundError as exc:  # a part imported only when used, e.g. the web of 'hymy fleet serve'
        if not _is_missing_dependency(exc):
            raise
        _say_install(name, command, exc)
        return 2
    return result if isinstance(result, int) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``hymy COMMAND ARGS...`` to the command's module; show help or version otherwise."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in COMMANDS:
        return run(args[0], args[1:])
    parser = build_parser()
    parser.parse_args(args)  # exits for --help, --version and unknown commands
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
