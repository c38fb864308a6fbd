"""The messages of the contract as plain, immutable data. No I/O here; the codec turns them into bytes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

#: Flags a vote can carry. Flagged votes are kept; scores leave misuse out by default.
VOTE_FLAGS = frozenset(
    {
        "misuse",  # pressed sooner than the unit's minimum interval after the previous press
        "after_hours",  # pressed outside the unit's opening hours
        "historical",  # sent from a backlog, well after it was pressed
    }
)
ROLES = frozenset({"client", "relative", "other"})
#: Why the fleet refuses a vote for good (an ack's ``refused``); the terminal sets such votes aside.
REFUSAL_REASONS = (
    "conflict",  # its identity (device, store, seq) is already stored as a different press
    "invalid",  # it failed validation although its batch's envelope was valid
)
CONFIG_STATUSES = frozenset({"applied", "rejected"})


class Vote(NamedTuple):
    """One press. ``(device, seq)`` is its identity; the fleet stores it exactly once.

    A NamedTuple rather than a dataclass: ingest builds hundreds of thousands a second, and a
    tuple is several times cheaper to construct than a frozen dataclass.
    """

    seq: int
    question: str
    scale: str
    answer: int
    lang: str
    wall: int  # wall-clock time, ms since the Unix epoch, as the terminal's clock said
    mono: int  # monotonic clock, ms since this boot
    boot: str  # id of the boot during which it was pressed
    synced: bool  # whether the wall clock was synchronised when pressed
    unit: str | None = None
    cfg: int = 0  # configuration version in force when pressed (0: none)
    flags: frozenset[str] = frozenset()
    role: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class VoteBatch:
    """Votes of one terminal's vote store sent together; ``batch`` lets the terminal match the ack.

    ``store`` names the database the votes were written to, so a vote's identity is
    ``(device, store, seq)``: a terminal re-imaged under its old device id starts a new series that
    cannot collide with the old one. None is the legacy series of a terminal that sends no store id.
    """

    device: str
    batch: int
    votes: tuple[Vote, ...]
    store: str | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    """The fleet has durably stored (now or before) every seq in ``ranges`` of ``store``'s series.

    ``refused`` maps a refusal reason to the seq ranges the fleet will never accept, so the
    terminal sets them aside instead of waiting for an ack that cannot come.
    """

    device: str
    batch: int
    ranges: tuple[tuple[int, int], ...]
    store: str | None = None
    refused: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = ()

    def seqs(self) -> Iterator[int]:
        """Every acknowledged seq, in order."""
        for lo, hi in self.ranges:
            yield from range(lo, hi + 1)


@dataclass(frozen=True, slots=True)
class TerminalState:
    """Birth (online) or last will (offline); ``conn`` counts connections so a stale will loses."""

    device: str
    online: bool
    conn: int
    wall: int
    fw: str | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Periodic health figures; also a clock point (wall, mono, boot, synced) for time correction."""

    device: str
    wall: int
    mono: int
    boot: str
    synced: bool
    uptime: int  # seconds since boot
    queue: int  # votes not yet acknowledged
    oldest: int | None  # age in seconds of the oldest unacknowledged vote
    cfg: int  # applied configuration version (0: none)
    fw: str
    temp: float | None = None  # CPU temperature, °C, where the platform gives it
    disk: int | None = None  # free disk, MiB, where the platform gives it
    refused: int | None = None  # votes the fleet refused that the terminal has set aside, in all


@dataclass(frozen=True, slots=True)
class Config:
    """A versioned configuration document for one terminal, published retained by the fleet."""

    device: str
    version: int
    doc: dict[str, Any] = field(hash=False, compare=True)


@dataclass(frozen=True, slots=True)
class ConfigReport:
    """The terminal's answer to a configuration: applied, or rejected with the reason."""

    device: str
    version: int
    status: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class FleetState:
    """Whether the fleet ingest is online, so terminals know when to drain their backlog."""

    online: bool
    wall: int
    instance: str


Message = VoteBatch | Ack | TerminalState | Heartbeat | Config | ConfigReport | FleetState


def seq_ranges(seqs: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """Compress seqs into sorted inclusive ranges: ``[1, 2, 3, 7]`` -> ``((1, 3), (7, 7))``."""
    out: list[tuple[int, int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return tuple(out)
