"""The audit log: every change people make, written in the transaction that makes it.

Each entry keeps who (the account's username, or ``cli:<user>`` for a command), what (an action
such as ``unit.update``), on what (``unit:kaukajarvi``), when, and the object before and after as
JSON, so IT can answer "who moved this terminal, and from where" without a backup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .tables import audit_log


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change."""

    id: int
    at: int  # ms since the epoch
    actor: str
    action: str
    object: str
    before: Any
    after: Any


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def record(conn: Connection, at_ms: int, actor: str, action: str, obj: str, before: Any, after: Any) -> None:
    """Add one entry (inside the caller's write transaction, so it commits with the change)."""
    conn.execute(
        sa.insert(audit_log).values(
            at=at_ms, actor=actor, action=action, object=obj, before=_json(before), after=_json(after)
        )
    )


def entries(conn: Connection, limit: int = 100, offset: int = 0, obj: str | None = None) -> list[AuditEntry]:
    """The newest entries first; ``obj`` keeps those about one object (e.g. ``terminal:pi-7``)."""
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit).offset(offset)
    if obj is not None:
        query = query.where(audit_log.c.object == obj)
    return [
        AuditEntry(
            r.id,
            r.at,
            r.actor,
            r.action,
            r.object,
            None if r.before is None else json.loads(r.before),
            None if r.after is None else json.loads(r.after),
        )
        for r in conn.execute(query)
    ]


def count(conn: Connection) -> int:
    """How many entries there are."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(audit_log)).scalar_one())
