"""The one narrow interface to the fleet's database; no SQL lives outside its implementations.

One implementation (``fleet.db.store.SqlFleetStore``, SQLAlchemy Core) serves both engines: SQLite, the
embedded default, and PostgreSQL when one machine is outgrown. Every method is atomic on its own;
``transaction()`` groups several into one commit (ingest writes one drain's states and heartbeats together).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from protocol import Config, ConfigReport, Heartbeat, TerminalState, VoteBatch

from .records import AnswerCounts, DailyCounts, IngestStats, Rejection, StoredVote, StoredVotes, TerminalStatus

DEFAULT_TZ = "Europe/Helsinki"


class FleetStore(Protocol):
    """Durable fleet state: votes (idempotent, time-corrected), terminals, configurations, rejections."""

    def transaction(self, *devices: str) -> AbstractContextManager[None]:
        """Group the calls inside into one atomic commit; nested use joins the outer one. ``devices``:
        the terminals the calls will write for, locked at once in one order."""
        ...

    def add_vote_batches(self, batches: Sequence[VoteBatch], received_ms: int) -> StoredVotes:
        """Store every vote once (first copy wins) in one transaction and commit before returning."""
        ...

    def record_state(self, state: TerminalState, received_ms: int) -> bool:
        """Record a birth or will unless stale by its conn counter; True if it is current."""
        ...

    def record_heartbeat(self, heartbeat: Heartbeat, received_ms: int) -> None:
        """Keep the latest health figures; a synchronised heartbeat also corrects that boot's times."""
        ...

    def record_config_report(self, report: ConfigReport, received_ms: int) -> None:
        """Record which configuration version the terminal applied or rejected, and why."""
        ...

    def count_rejection(self, reason: str, device: str | None, detail: str, at_ms: int) -> None:
        """Count a rejected message by reason and keep it in the bounded log of recent ones."""
        ...

    def rejection_counts(self) -> dict[str, int]:
        """Rejections so far by reason, so operators see bad senders."""
        ...

    def recent_rejections(self, limit: int = 100) -> list[Rejection]:
        """The newest rejections first, for diagnosis."""
        ...

    def set_config(self, device: str, version: int, doc: dict[str, Any]) -> Config:
        """Make ``doc`` the desired configuration of ``device``; raises ConfigError if invalid or older."""
        ...

    def desired_since(self, since_ms: int) -> list[tuple[str, int, int]]:
        """(device, version, set_at) of desired configurations set at or after ``since_ms``, oldest first."""
        ...

    def get_config(self, device: str) -> Config | None:
        """The desired configuration of ``device``, if any."""
        ...

    def config_to_push(self, device: str) -> Config | None:
        """The desired configuration if the terminal has not applied it yet, else None."""
        ...

    def assign(self, device: str, unit: str | None) -> None:
        """Place ``device`` in ``unit`` (None removes it), for votes that carry no unit."""
        ...

    def terminal(self, device: str) -> TerminalStatus | None:
        """What is known of one terminal, or None if it has never been seen or assigned."""
        ...

    def terminals(self) -> list[TerminalStatus]:
        """Every known terminal, by device id."""
        ...

    def vote_count(self, device: str | None = None, include_misuse: bool = True) -> int:
        """How many votes are stored (of one terminal, or all)."""
        ...

    def stored_votes(self, device: str) -> list[StoredVote]:
        """Every stored vote of one terminal in seq order."""
        ...

    def daily_counts(
        self,
        include_misuse: bool = False,
        first_day: date | None = None,
        last_day: date | None = None,
        unit: str | None = None,
        units: Collection[str] | None = None,
    ) -> list[DailyCounts]:
        """Answer counts per unit, question, scale and the unit's local day (from the rollup); ``unit`` keeps one."""
        ...

    def answer_counts(
        self,
        include_misuse: bool = False,
        first_day: date | None = None,
        last_day: date | None = None,
        unit: str | None = None,
        units: Collection[str] | None = None,
        channel: str | None = None,
    ) -> list[AnswerCounts]:
        """Answer counts per unit, question and scale over a period of days (summed by the database);
        ``channel``: only the answers given there (``terminal``, ``web``)."""
        ...

    def vote_totals(self) -> tuple[int, int]:
        """(votes counted, of which with an uncertain time), from the rollup."""
        ...

    def rebuild_rollup(self) -> int:
        """Recompute the daily rollup from the votes; returns its rows."""
        ...

    def rollup(self, monthly: bool = False, hours: bool = False) -> dict[tuple[Any, ...], int]:
        """Every non-empty row of the daily (monthly, hour) rollup by its key."""
        ...

    def recount_rollup(self, monthly: bool = False, hours: bool = False) -> dict[tuple[Any, ...], int]:
        """The rollup a rebuild would make now, without keeping it."""
        ...

    def set_unit_zone(self, unit: str, tz: str) -> None:
        """Set the time zone of ``unit``'s days (its rollup is rebuilt)."""
        ...

    def unit_zones(self) -> dict[str, str]:
        """Every known unit's time zone."""
        ...

    def rejections_by_device(self) -> dict[str, int]:
        """Rejections so far per sending terminal ("" when the sender was unknown)."""
        ...

    def record_ingest_stats(self, stats: IngestStats) -> None:
        """Keep an ingest process's latest counters (the one before becomes ``prev``)."""
        ...

    def ingest_stats(self) -> list[IngestStats]:
        """Every ingest process's last counters, newest first."""
        ...

    def close(self) -> None:
        """Release the database; the store cannot be used afterwards."""
        ...

    def __enter__(self) -> FleetStore:
        """``with open_store(...) as store:`` closes it at the end."""
        ...

    def __exit__(self, *exc: object) -> None: ...


def open_store(target: str | Path) -> FleetStore:
    """Open the store ``target`` names: a path or ``sqlite:///…`` is SQLite, ``postgresql://…`` PostgreSQL.

    The schema is brought to the newest revision first (Alembic), before any vote is accepted.
    """
    from .db.store import SqlFleetStore

    return SqlFleetStore(target)
