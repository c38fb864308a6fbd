"""The one narrow interface to the fleet's database; no SQL lives outside its implementations.

One implementation (``fleet.db.store.SqlFleetStore``, SQLAlchemy Core) serves both engines: SQLite, the
embedded default, and PostgreSQL when one machine is outgrown. Every method is atomic on its own;
``transaction()`` groups several into one commit (ingest writes one drain's states and heartbeats together).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from protocol import Config, ConfigReport, Heartbeat, TerminalState, VoteBatch

from .records import DailyCounts, Rejection, StoredVote, StoredVotes, TerminalStatus

DEFAULT_TZ = "Europe/Helsinki"


class FleetStore(Protocol):
    """Durable fleet state: votes (idempotent, time-corrected), terminals, configurations, rejections."""

    def transaction(self) -> AbstractContextManager[None]:
        """Group the calls inside into one atomic commit; nested use joins the outer one."""
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
        tz: str = DEFAULT_TZ,
        include_misuse: bool = False,
        since_ms: int | None = None,
        until_ms: int | None = None,
        unit: str | None = None,
    ) -> list[DailyCounts]:
        """Answer counts per unit, question, scale and local day of each vote's best time; ``unit`` keeps one."""
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
