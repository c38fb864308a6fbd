"""The fleet's figures at scale: four dashboard queries read from the daily rollup, beside a scan of the votes.

Rows go in through the store's own batch API (``add_vote_batches``) in large transactions, so the
votes, the rollup and their indexes are exactly what ingest would have written. Each query is timed
twice in the same run: as the store answers it (``daily_counts``, which reads only the rollup) and as
a scan of the raw votes table grouped the way the store grouped before the rollup existed (by unit,
quarter hour and answer, folded into local days): the ceiling the rollup is measured against.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from fleet.db.engine import database_url
from fleet.db.rollup import BUCKET_MS
from fleet.db.store import SqlFleetStore
from fleet.db.tables import terminals, votes
from fleet.records import DailyCounts
from fleet.results import scores_by_day, scores_by_unit
from fleet.store import DEFAULT_TZ
from protocol import Vote, VoteBatch

UNITS = 50
TERMINALS = 1000
PER_BATCH = 500
PER_COMMIT = 200  # batches per add_vote_batches call: 100,000 votes per transaction
#: A service area: the units shown side by side.
AREA = tuple(f"unit-{u:02d}" for u in range(10))
ONE_UNIT = "unit-07"
_NO_FLAGS: frozenset[str] = frozenset()


def generate(store: SqlFleetStore, votes_: int, start_ms: int) -> float:
    """Write ``votes_`` synthetic votes spread over a year, terminal after terminal; return seconds taken.

    Each terminal's whole history goes in before the next one's, so every insert lands at the end
    of the (device, seq) key, as a terminal's own batches do. Interleaving a thousand terminals per
    transaction instead scatters inserts over the key's b-tree, which at 10 million rows no longer
    fits SQLite's page cache: that made 10 million take far longer than ten times 1 million. The
    table holds the same rows either way; the aggregation scans all of them whatever their order.
    """
    t0 = time.perf_counter()
    per_terminal = -(-votes_ // TERMINALS)
    step_ms = 365 * 86_400_000 // max(1, per_terminal)
    new = tuple.__new__  # Vote(...) with every field given, without the NamedTuple's Python-level __new__
    pending: list[VoteBatch] = []
    written = 0
    batch_id = 0
    for t in range(TERMINALS):
        n = min(per_terminal, votes_ - written)
        if n <= 0:
            break
        device = f"agg-{t:04d}"
        unit = f"unit-{t % UNITS:02d}"
        for first in range(1, n + 1, PER_BATCH):
            batch_id += 1
            batch = tuple(
                new(
                    Vote,
                    (
                        s,
                        "thl-nps",
                        "nps11",
                        (s * 7 + t) % 11,
                        "fi",
                        start_ms + s * step_ms,
                        s,
                        "b",
                        True,
                        unit,
                        1,
                        _NO_FLAGS,
                        None,
                        None,
                    ),
                )  # fmt: skip
                for s in range(first, min(first + PER_BATCH, n + 1))
            )
            pending.append(VoteBatch(device, batch_id, batch))
            if len(pending) >= PER_COMMIT:
                store.add_vote_batches(pending, int(time.time() * 1000))
                pending = []
        written += n
    if pending:
        store.add_vote_batches(pending, int(time.time() * 1000))
    return time.perf_counter() - t0


class RawScan:
    """Daily counts straight from the votes table: what every figure cost before the rollup."""

    def __init__(self, target: str | Path) -> None:
        self._engine = sa.create_engine(database_url(target))
        self._zone = ZoneInfo(DEFAULT_TZ)

    def daily(self, since_ms: int | None = None, units: Collection[str] | None = None) -> list[DailyCounts]:
        """Rows shaped like ``daily_counts``' (unit, question, scale, day, counts), from a scan."""
        c, t = votes.c, terminals.c
        unit_of = sa.func.coalesce(c.unit, t.unit)
        bucket = c.best // sa.literal_column(str(BUCKET_MS), sa.BigInteger)
        query = (
            sa.select(unit_of, c.question, c.scale, bucket, c.answer, sa.func.count())
            .select_from(votes.outerjoin(terminals, t.device == c.device))
            .where(c.misuse == sa.false())
            .group_by(unit_of, c.question, c.scale, bucket, c.answer)
        )
        if since_ms is not None:
            query = query.where(c.best >= since_ms)
        if units is not None:
            query = query.where(unit_of.in_(sorted(units)))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        days: dict[int, date] = {}
        groups: dict[tuple[Any, ...], list[int]] = {}
        for unit, question, scale, b, answer, n in rows:
            day = days.get(b)
            if day is None:
                day = days[b] = datetime.fromtimestamp(b * BUCKET_MS / 1000, self._zone).date()
            counts = groups.setdefault((unit, question, scale, day), [0] * 11)
            counts[answer] += int(n)
        return [DailyCounts(u, q, sc, day, tuple(counts), 0) for (u, q, sc, day), counts in groups.items()]

    def close(self) -> None:
        self._engine.dispose()


def _start_ms(day: date) -> int:
    """When ``day`` begins in the default zone (every generated unit's), in ms."""
    return int(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(DEFAULT_TZ)).timestamp() * 1000)


def _timed(fn: Callable[[], Any], rounds: int) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        times.append(round(time.perf_counter() - t0, 3))
    return times, out


def bench_aggregate(target: str | Path, votes_: int, rounds: int | None = None) -> dict[str, Any]:
    """Generate ``votes_`` into the store ``target`` (a new SQLite file or an empty PostgreSQL database) and
    time the four dashboard queries from the rollup and from a raw scan.

    Three rounds of each, or one raw round above 2 million votes, where a raw all-time scan takes a minute.
    """
    rounds = rounds or 3
    raw_rounds = 3 if votes_ <= 2_000_000 else 1
    today = datetime.now(ZoneInfo(DEFAULT_TZ)).date()
    month_ago, year_ago = today - timedelta(days=30), today - timedelta(days=365)
    store = SqlFleetStore(target, synchronous="NORMAL")
    raw = RawScan(target)
    try:
        gen_s = generate(store, votes_, int(time.time() * 1000) - 366 * 86_400_000)
        stored = store.vote_count()
        rollup_rows = len(store.rollup())
        queries: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
            "all_time": (
                lambda: scores_by_unit(store.answer_counts()),
                lambda: scores_by_unit(raw.daily()),
            ),
            "last_31_days": (
                lambda: scores_by_unit(store.answer_counts(first_day=month_ago)),
                lambda: scores_by_unit(raw.daily(since_ms=_start_ms(month_ago))),
            ),
            "unit_year_trend": (
                lambda: scores_by_day(store.daily_counts(unit=ONE_UNIT, first_day=year_ago)),
                lambda: scores_by_day(raw.daily(since_ms=_start_ms(year_ago), units=[ONE_UNIT])),
            ),
            "area_side_by_side": (
                lambda: scores_by_unit(store.answer_counts(units=AREA)),
                lambda: scores_by_unit(raw.daily(units=AREA)),
            ),
        }
        figures: dict[str, Any] = {}
        for name, (ours, scan) in queries.items():
            ours_s, ours_out = _timed(ours, rounds)
            scan_s, scan_out = _timed(scan, raw_rounds)
            n_ours = sum(s.n for s in ours_out.values())
            n_scan = sum(s.n for s in scan_out.values())
            figures[name] = {"rollup_s": ours_s, "scan_s": scan_s, "n": n_ours, "same_n": n_ours == n_scan}
        from .viewbench import bench_views

        figures["views"] = bench_views(store)
    finally:
        raw.close()
        store.close()
    out = {"votes": stored, "generate_s": round(gen_s, 1), "rollup_rows": rollup_rows, **figures}
    if isinstance(target, Path):
        out["db_mib"] = round(target.stat().st_size / 2**20)
    return out
