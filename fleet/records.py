"""Plain records the fleet store returns, so no caller sees a database row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

#: Time statuses of a stored vote (DESIGN guarantee 4).
SYNCED = "synced"  # the terminal's clock was synchronised when pressed
CORRECTED = "corrected"  # unsynced, corrected from a synchronised point of the same boot
UNCERTAIN = "uncertain"  # unsynced and no synchronised point of that boot yet: wall as sent
TIME_STATUSES = (SYNCED, CORRECTED, UNCERTAIN)


@dataclass(frozen=True, slots=True)
class StoredVotes:
    """What one add_vote_batches call made durable: per batch, the seq ranges to acknowledge."""

    ranges: list[tuple[tuple[int, int], ...]]  # empty for a batch with nothing to acknowledge
    new: int  # votes inserted now
    duplicates: int  # votes that were stored already (replays, overlaps, repeats)
    #: (device, store, seq) already stored as a *different* press (a terminal that reused seqs of its
    #: series, e.g. a copied database). Left out of ``ranges``; refused instead, see ``refused``.
    conflicts: list[tuple[str, str, int]]
    #: Per batch, the seq ranges to refuse as conflicts (empty when none).
    refused: list[tuple[tuple[int, int], ...]]


@dataclass(frozen=True, slots=True)
class StoredVote:
    """One stored vote with its time fields, for inspection and tests."""

    device: str
    seq: int
    question: str
    scale: str
    answer: int
    lang: str
    wall: int
    mono: int
    boot: str
    synced: bool
    unit: str | None
    cfg: int
    flags: frozenset[str]
    role: str | None
    reason: str | None
    received: int
    best: int  # best estimate of when it was pressed, ms since the epoch
    time_status: str  # one of TIME_STATUSES
    store: str = ""  # the terminal's store series (SPEC 7.1); "" for the legacy series


@dataclass(frozen=True, slots=True)
class DailyCounts:
    """Counts of each answer for one (unit, question, scale) on one local day."""

    unit: str | None
    question: str
    scale: str
    day: date
    counts: tuple[int, ...]  # counts[a]: votes answered a
    uncertain: int  # how many of them carry an uncertain time


@dataclass(frozen=True, slots=True)
class AnswerCounts:
    """Counts of each answer for one (unit, question, scale) over a period of days."""

    unit: str | None
    question: str
    scale: str
    counts: tuple[int, ...]  # counts[a]: votes answered a
    uncertain: int  # how many of them carry an uncertain time


@dataclass(frozen=True, slots=True)
class TerminalStatus:
    """What the fleet knows of one terminal: placement, liveness, health and configuration."""

    device: str
    unit: str | None
    online: bool | None  # None: no state seen yet
    conn: int
    fw: str | None
    last_seen: int | None  # ms, when a state or heartbeat last arrived
    uptime: int | None
    queue: int | None
    oldest: int | None
    temp: float | None
    disk: int | None
    applied_version: int  # 0: none applied
    report_status: str | None
    report_reason: str | None
    desired_version: int | None
    refused: int | None = None  # votes the terminal set aside as refused (its last heartbeat said)
    clock_synced: bool | None = None  # whether its clock was synchronised at its last heartbeat
    state_wall: int | None = None  # ms, the terminal's time of its last state (birth or will)
    report_version: int | None = None  # the version its last configuration report was about

    @property
    def lags(self) -> bool:
        """True when the terminal runs an older configuration than the desired one."""
        return self.desired_version is not None and self.applied_version < self.desired_version


@dataclass(frozen=True, slots=True)
class Rejection:
    """One rejected message, as kept in the bounded log of recent rejections."""

    at: int  # ms
    reason: str
    device: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class IngestStats:
    """One ingest process's counters as it last wrote them."""

    worker: str
    started_at: int  # ms
    at: int  # ms, when written
    messages: int
    votes: int
    duplicates: int
    rejected: int
    prev_at: int | None  # the snapshot before, for the recent rate
    prev_votes: int | None

    @property
    def recent_rate(self) -> float | None:
        """Votes stored per second between the last two snapshots."""
        if self.prev_at is None or self.prev_votes is None or self.at <= self.prev_at:
            return None
        return (self.votes - self.prev_votes) * 1000 / (self.at - self.prev_at)
