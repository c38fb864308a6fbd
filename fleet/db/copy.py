"""Copy a fleet database into another (SQLite to PostgreSQL, typically): ``hymy fleet migrate-db``.

Both are first brought to the newest schema (opening a store migrates it). Then every table is copied
in chunks, each chunk its own transaction, with INSERT … ON CONFLICT DO NOTHING on the table's key: a
copy that stops half-way is finished by running it again, and a second run adds nothing. Rows the
target already has win (an ingest may already write there). The rollups are not copied but recounted
from the copied votes, in the target's transaction, so they always agree with its votes. Afterwards
the figures of both databases are compared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .engine import create_fleet_engine, database_url, upsert
from .store import SqlFleetStore
from .tables import (
    clock_anchors,
    desired_configs,
    rejection_counts,
    rejection_log,
    terminals,
    units,
    votes,
)

#: Tables copied, in this order; the rollups are recounted instead.
COPIED = (units, terminals, desired_configs, clock_anchors, votes, rejection_counts, rejection_log)
CHUNK = 20_000


@dataclass
class CopyReport:
    """What one copy did, per table: rows read from the source and rows the target did not have."""

    read: dict[str, int] = field(default_factory=dict)
    added: dict[str, int] = field(default_factory=dict)
    rollup_rows: int = 0
    same_figures: bool = False


def copy_database(
    source: str | Path, target: str | Path, progress: Callable[[str], None] = lambda _: None
) -> CopyReport:
    """Copy every fleet table of ``source`` into ``target`` (idempotent), recount the target's rollups
    and compare the figures of both."""
    if database_url(source) == database_url(target):
        raise ValueError("the source and the target are the same database")
    SqlFleetStore(source).close()  # brings both to the newest schema, one process at a time
    SqlFleetStore(target).close()
    report = CopyReport()
    src = create_fleet_engine(database_url(source))
    dst = create_fleet_engine(database_url(target))
    try:
        for table in COPIED:
            read, added = _copy_table(src, dst, table)
            report.read[table.name] = read
            report.added[table.name] = added
            progress(f"{table.name}: {read:,} rows read, {added:,} added")
        if dst.dialect.name == "postgresql":
            with dst.begin() as conn:  # ids were copied as they were: the next id must come after them
                conn.execute(
                    sa.text(
                        "SELECT setval(pg_get_serial_sequence('rejection_log', 'id'),"
                        " COALESCE((SELECT max(id) FROM rejection_log), 0) + 1, false)"
                    )
                )
    finally:
        src.dispose()
        dst.dispose()
    with SqlFleetStore(source) as before, SqlFleetStore(target) as after:
        report.rollup_rows = after.rebuild_rollup()
        progress(f"rollups recounted: {report.rollup_rows:,} daily rows")
        report.same_figures = before.answer_counts(include_misuse=True) == after.answer_counts(include_misuse=True)
        report.same_figures &= before.daily_counts() == after.daily_counts()
    return report


def _copy_table(src: Engine, dst: Engine, table: sa.Table) -> tuple[int, int]:
    """Copy one table in key order, chunk by chunk; returns (rows read, rows added)."""
    key = list(table.primary_key.columns)
    read = added = 0
    with src.connect() as sconn:
        result = sconn.execute(sa.select(table).order_by(*key).execution_options(yield_per=CHUNK))
        for chunk in result.partitions():
            rows = [dict(r._mapping) for r in chunk]
            read += len(rows)
            with dst.begin() as dconn:
                stmt = upsert(dconn, table).on_conflict_do_nothing(index_elements=key)
                added += sum(max(0, dconn.execute(stmt.values(part)).rowcount) for part in _parts(rows))
    return read, added


def _parts(rows: list[dict[str, object]], size: int = 1000) -> list[list[dict[str, object]]]:
    """Multi-row VALUES in parts small enough for every engine's parameter limit."""
    width = max(1, len(rows[0]) if rows else 1)
    step = max(1, min(size, 30_000 // width))
    return [rows[i : i + step] for i in range(0, len(rows), step)]
