"""The fleet store's aggregation query (``daily_counts`` and per-unit scores) timed on a large generated table.

Rows go in through the store's own batch API (``add_vote_batches``) in large transactions, so the
table, its indexes and its time-status columns are exactly what ingest would have written. This is
the store's query, not a dashboard: the fleet web does not exist yet.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fleet.db.store import SqlFleetStore
from fleet.results import scores_by_unit
from protocol import Vote, VoteBatch

UNITS = 50
TERMINALS = 1000
PER_BATCH = 500
PER_COMMIT = 200  # batches per add_vote_batches call: 100,000 votes per transaction
_NO_FLAGS: frozenset[str] = frozenset()


def generate(store: SqlFleetStore, votes: int, start_ms: int) -> float:
    """Write ``votes`` synthetic votes spread over a year, terminal after terminal; return seconds taken.

    Each terminal's whole history goes in before the next one's, so every insert lands at the end
    of the (device, seq) key, as a terminal's own batches do. Interleaving a thousand terminals per
    transaction instead scatters inserts over the key's b-tree, which at 10 million rows no longer
    fits SQLite's page cache: that made 10 million take far longer than ten times 1 million. The
    table holds the same rows either way; the aggregation scans all of them whatever their order.
    """
    t0 = time.perf_counter()
    per_terminal = -(-votes // TERMINALS)
    step_ms = 365 * 86_400_000 // max(1, per_terminal)
    new = tuple.__new__  # Vote(...) with every field given, without the NamedTuple's Python-level __new__
    pending: list[VoteBatch] = []
    written = 0
    batch_id = 0
    for t in range(TERMINALS):
        n = min(per_terminal, votes - written)
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


def bench_aggregate(workdir: Path, votes: int, rounds: int | None = None) -> dict[str, Any]:
    """Generate ``votes`` and time daily_counts (a year of days, 50 units) and the per-unit scores over it.

    Three rounds of each query, or one above 2 million votes, where the all-time query takes about a minute.
    """
    rounds = rounds or (3 if votes <= 2_000_000 else 1)
    store = SqlFleetStore(workdir / "agg-fleet.db", synchronous="NORMAL")
    try:
        gen_s = generate(store, votes, int(time.time() * 1000) - 366 * 86_400_000)
        stored = store.vote_count()
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            daily = store.daily_counts()
            scores = scores_by_unit(daily)
            times.append(time.perf_counter() - t0)
        month = []
        since = int(time.time() * 1000) - 31 * 86_400_000
        for _ in range(rounds):
            t0 = time.perf_counter()
            scores_by_unit(store.daily_counts(since_ms=since))
            month.append(time.perf_counter() - t0)
        one_unit = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            scores_by_unit(store.daily_counts(unit="unit-07"))
            one_unit.append(time.perf_counter() - t0)
    finally:
        store.close()
    return {
        "votes": stored,
        "generate_s": round(gen_s, 1),
        "daily_rows": len(daily),
        "units": len(scores),
        "all_time_s": [round(t, 2) for t in times],
        "last_31_days_s": [round(t, 2) for t in month],
        "one_unit_s": [round(t, 2) for t in one_unit],
        "db_mib": round((workdir / "agg-fleet.db").stat().st_size / 2**20),
    }
