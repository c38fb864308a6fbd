"""The fleet store on SQLAlchemy Core: one implementation of FleetStore for SQLite and PostgreSQL.

Votes are stored idempotently on (device, store, seq). Time correction (DESIGN guarantee 4) keeps one
anchor per (device, boot): the latest synchronised point (a synced vote or heartbeat) of that boot. An
unsynced vote's best time is ``mono + (anchor.wall - anchor.mono)``; when an anchor first appears or
moves, the boot's unsynced votes already stored are corrected in the same transaction, so the order
in which votes and synchronised points arrive does not matter.

Every query is written once as a Core construct; only INSERT … ON CONFLICT comes from the dialect's
module (``engine.upsert``), and SQLite writers begin IMMEDIATE (``engine``). Each store holds one
connection, shared by threads under a lock, as every call is short.
"""

from __future__ import annotations

import json
import logging
import operator
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, RootTransaction
from sqlalchemy.exc import SQLAlchemyError

from protocol import Config, ConfigReport, Heartbeat, ProtocolError, TerminalState, VoteBatch, validate_config_doc
from protocol import encode as encode_message
from protocol.codec import ID_RE
from protocol.messages import seq_ranges
from protocol.scales import SCALES
from protocol.topics import check_device_id

from ..errors import ConfigError, StoreError
from ..records import (
    CORRECTED,
    SYNCED,
    UNCERTAIN,
    AnswerCounts,
    DailyCounts,
    IngestStats,
    Rejection,
    StoredVote,
    StoredVotes,
    TerminalStatus,
)
from .engine import BEGIN_KEY, BEGIN_WRITE, create_fleet_engine, database_url, is_sqlite, upsert
from .migrate import migrate
from .prepared import Prepared
from .rollup import Fact, Facts, Rollup, add_units, by_month, rollup_rows
from .tables import (
    clock_anchors,
    daily_rollup,
    desired_configs,
    hour_rollup,
    ingest_stats,
    monthly_rollup,
    rejection_counts,
    rejection_log,
    terminals,
    units,
    votes,
)

#: Already-corrected votes are rewritten only when their boot's offset moves by more than this:
#: smaller moves are clock jitter between points, and rewriting a long offline backlog on every
#: batch would cost more than the precision is worth.
CORRECTION_TOLERANCE_MS = 1000
#: Rejections kept in the log of recent ones (the counters are kept for ever).
REJECTION_LOG_SIZE = 1000
_EMPTY = sa.literal_column("''", sa.Text)  # a literal, so PostgreSQL sees the grouped CASE as the selected one

#: The order of the tuples the hot path builds (a Vote's first eleven fields, then the rest).
_VOTE_ROW = (
    "device store seq question scale answer lang wall mono boot synced unit cfg flags misuse role reason received"
    " best time_status"
).split()
_MONO = operator.itemgetter(6)  # Vote.mono
_C = votes.c
_STORED_VOTE_COLUMNS = (
    _C.device,
    _C.store,
    _C.seq,
    _C.question,
    _C.scale,
    _C.answer,
    _C.lang,
    _C.wall,
    _C.mono,
    _C.boot,
    _C.synced,
    _C.unit,
    _C.cfg,
    _C.flags,
    _C.role,
    _C.reason,
    _C.received,
    _C.best,
    _C.time_status,
)
_T, _D = terminals.c, desired_configs.c
_TERMINAL_QUERY = (
    sa.select(
        _T.device,
        _T.unit,
        _T.online,
        _T.conn,
        _T.fw,
        _T.last_seen,
        _T.uptime,
        _T.queue,
        _T.oldest,
        _T.temp,
        _T.disk,
        _T.applied_version,
        _T.report_status,
        _T.report_reason,
        _D.version,
        _T.refused,
        _T.hb_synced,
        _T.state_wall,
        _T.report_version,
    )
    .select_from(terminals.outerjoin(desired_configs, _D.device == _T.device))
    .order_by(_T.device)
)
# The statements of the hot path (one batch: an anchor read and upsert) are built once: building a
# Core statement and its cache key costs more than SQLite takes to run it.
_A = clock_anchors.c
_ANCHOR = sa.select(_A.wall, _A.mono, _A.applied_offset).where(
    _A.device == sa.bindparam("k_device"), _A.boot == sa.bindparam("k_boot")
)
_CORRECT = (
    sa.update(votes)
    .where(_C.device == sa.bindparam("k_device"), _C.boot == sa.bindparam("k_boot"), _C.synced == sa.false())
    .values(best=_C.mono + sa.bindparam("k_offset", type_=sa.BigInteger), time_status=CORRECTED)
)  # synced = false() as a literal, so the partial index votes_unsynced serves it
#: PostgreSQL advisory lock of one terminal's writes: (class, hash of the device id). Two-key locks
#: never meet the migration's one-key lock; two devices sharing a hash merely wait for each other.
DEVICE_LOCK_CLASS = 0x68796D79  # "hymy"
#: PostgreSQL advisory lock of the units' zones: every terminal's writer holds it shared (taken in the
#: same statement as its terminal's lock, first), a zone change or a recount holds it exclusive. So a
#: zone change waits for the transactions that may have read the old zone, and none reads it meanwhile.
ZONES_LOCK = (0x68796D7A, 0)
_DEVICE_LOCK = sa.select(
    sa.func.pg_advisory_xact_lock_shared(*ZONES_LOCK),
    sa.func.pg_advisory_xact_lock(DEVICE_LOCK_CLASS, sa.func.hashtext(sa.bindparam("k_device"))),
)
_ZONES_LOCK = sa.select(sa.func.pg_advisory_xact_lock(*ZONES_LOCK))
#: Errors of the database layer, surfaced to callers as StoreError (the drivers' own come from the
#: prepared statements of the hot path, and from the pool's connect listener).
log = logging.getLogger(__name__)
_DB_ERRORS = (SQLAlchemyError, sqlite3.Error, psycopg.Error)


def _upsert_terminal(
    conn: Connection, device: str, figures: dict[str, Any], *, keep: set[str] | None = None, **inserted: Any
) -> None:
    """Insert the terminal's row or set ``figures`` on it; ``inserted`` only fills a new row.

    A column of ``inserted`` named in ``keep`` is updated unless the new value is null (a state
    without ``fw`` keeps the firmware a heartbeat reported); the others are set only on insert.
    """
    stmt = upsert(conn, terminals).values(device=device, **figures, **inserted)
    update: dict[str, Any] = {k: stmt.excluded[k] for k in figures}
    update.update({k: sa.func.coalesce(stmt.excluded[k], _T[k]) for k in keep or ()})
    conn.execute(stmt.on_conflict_do_update(index_elements=[_T.device], set_=update))


_DAY = timedelta(days=1)


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def spans_of(first: date | None, last: date | None) -> list[tuple[bool, date | None, date | None]]:
    """The days [first, last] (None: unbounded) as (months?, lo, hi) spans, hi exclusive: whole months
    to read from the monthly rollup and the ragged days at either end from the daily one."""
    lo_month = None if first is None else first if first.day == 1 else _next_month(first)
    hi_month = None if last is None else _next_month(last) if (last + _DAY).day == 1 else last.replace(day=1)
    end = None if last is None else last + _DAY
    if lo_month is not None and hi_month is not None and lo_month >= hi_month:
        return [(False, first, end)]  # no whole month inside
    spans: list[tuple[bool, date | None, date | None]] = [(True, lo_month, hi_month)]
    if first is not None and lo_month is not None and first < lo_month:
        spans.append((False, first, lo_month))
    if end is not None and hi_month is not None and hi_month < end:
        spans.append((False, hi_month, end))
    return spans


def _counts_query(
    table: sa.Table,
    by_day: bool,
    include_misuse: bool,
    lo: date | None,
    hi: date | None,
    wanted: list[str] | None,
    channel: str | None = None,
) -> sa.Select[Any]:
    """Sums of a rollup table's counts per (unit, question, scale[, day], answer) over [lo, hi).

    A row kept under a terminal (its votes named no unit) counts for the unit the terminal is placed in.
    """
    r = table.c
    unit_of = sa.case((r.unit == _EMPTY, _T.unit), else_=r.unit)
    uncertain = sa.func.sum(sa.case((r.uncertain, r["count"]), else_=0))
    keys = (unit_of, r.question, r.scale, *((r.day,) if by_day else ()), r.answer)
    query = (
        sa.select(
            unit_of, r.question, r.scale, r.day if by_day else sa.null(), r.answer, sa.func.sum(r["count"]), uncertain
        )
        .select_from(table.outerjoin(terminals, sa.and_(r.unit == _EMPTY, _T.device == r.device)))
        .group_by(*keys)
    )
    if not include_misuse:
        query = query.where(r.misuse == sa.false())
    if lo is not None:
        query = query.where(r.day >= lo)
    if hi is not None:
        query = query.where(r.day < hi)
    if channel is not None:
        query = query.where(r.channel == channel)
    if wanted is not None:
        # Written as two branches, so the units' own rows are ranges of the rollup's key.
        # A unit's own rows have device "": saying so lets the key's prefix narrow the read.
        query = query.where(
            sa.or_(sa.and_(r.unit.in_(wanted), r.device == _EMPTY), sa.and_(r.unit == _EMPTY, _T.unit.in_(wanted)))
        )
    return query


class SqlFleetStore:
    """FleetStore on SQLite or PostgreSQL; safe to share between threads (calls are serialised)."""

    def __init__(self, target: str | Path, *, synchronous: str = "FULL") -> None:
        url = database_url(target)
        self.url = url.render_as_string(hide_password=True)
        self._lock = threading.RLock()
        self._depth = 0
        self._facts = Facts()  # the rollup changes of the open write transaction
        self._closed = False
        self._engine = create_fleet_engine(url, synchronous)
        try:
            migrate(self._engine)
            self._conn = self._engine.connect()
            self._prepare(self._engine.dialect)
        except _DB_ERRORS as exc:
            self._engine.dispose()
            raise StoreError(f"fleet database {self.url} is unusable: {exc}") from exc
        except BaseException:
            self._engine.dispose()
            raise

    def _prepare(self, dialect: Dialect) -> None:
        """Compile the hot path's statements for this engine (see prepared.py)."""
        insert = upsert(self._conn, votes).values({n: sa.bindparam(n) for n in _VOTE_ROW}).on_conflict_do_nothing()
        self._insert_vote = Prepared(insert, dialect)
        # On PostgreSQL the insert says which rows it inserted (one round trip; a savepoint costs two).
        self._insert_returning = (
            None if is_sqlite(self._conn) else Prepared(insert.returning(_C.device, _C.store, _C.seq), dialect)
        )
        if list(self._insert_vote.names) != _VOTE_ROW:  # the hot path builds its tuples in this order
            raise StoreError(f"vote insert compiled with parameters {self._insert_vote.names}, not {_VOTE_ROW}")
        anchor = upsert(self._conn, clock_anchors).values(
            device=sa.bindparam("k_device"),
            boot=sa.bindparam("k_boot"),
            wall=sa.bindparam("k_wall"),
            mono=sa.bindparam("k_mono"),
            applied_offset=sa.bindparam("k_applied"),
        )
        ex = anchor.excluded
        self._set_anchor = Prepared(
            anchor.on_conflict_do_update(
                index_elements=[_A.device, _A.boot],
                set_={"wall": ex.wall, "mono": ex.mono, "applied_offset": ex.applied_offset},
            ),
            dialect,
        )
        self._get_anchor = Prepared(_ANCHOR, dialect)
        self._correct = Prepared(_CORRECT, dialect)
        self._device_lock = None if is_sqlite(self._conn) else Prepared(_DEVICE_LOCK, dialect)
        self._rollup = Rollup(self._conn, dialect)

    # -- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def transaction(self, *devices: str) -> Iterator[None]:
        """Group the calls inside into one atomic commit; nested use joins the outer one.

        Name every terminal the calls inside will write for: their locks are then taken at once, in
        one order, so two ingest workers grouping calls for the same terminals cannot deadlock.
        """
        with self._write(*devices):
            yield

    @contextmanager
    def _write(self, *devices: str, zones: bool = False) -> Iterator[Connection]:
        """A write transaction (or the enclosing one) holding the lock of each of ``devices``.

        Several ingest workers may write at once. On SQLite, BEGIN IMMEDIATE serialises every writer;
        on PostgreSQL, writers of the same terminal serialise on a transaction-scoped advisory lock
        per device (taken in sorted order), as its anchors and state are read, then written.
        ``zones``: this transaction recounts the rollup in units' zones, so it first takes the zones
        lock exclusively (before any terminal's lock, as every writer takes them in that order).
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    if zones and not is_sqlite(self._conn):  # inside a writer: waits for the others to end
                        self._conn.execute(_ZONES_LOCK).fetchall()
                    self._lock_devices(self._conn, devices)
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            conn = self._live()
            tx = self._begin(conn, write=True)
            self._depth = 1
            self._facts = Facts()
            try:
                if zones and not is_sqlite(conn):
                    conn.execute(_ZONES_LOCK).fetchall()
                self._lock_devices(conn, devices)
                yield conn
                # The rollup's changes of every call inside, applied once, in key order (rollup.py).
                self._rollup.apply(conn, self._facts)
                tx.commit()
            except BaseException as exc:
                self._abandon(tx)
                if isinstance(exc, _DB_ERRORS):
                    raise StoreError(f"fleet database {self.url}: {exc}") from exc
                raise
            finally:
                self._depth = 0
                self._facts = Facts()

    @contextmanager
    def writing(self, *devices: str, zones: bool = False) -> Iterator[Connection]:
        """A write transaction for the store's companions (organisation, accounts, audit log): their
        statements and the store's own calls inside commit together, or not at all."""
        with self._write(*devices, zones=zones) as conn:
            yield conn

    def count_votes(self, conn: Connection, fact: Fact, n: int = 1) -> None:
        """Count votes another channel inserted inside :meth:`writing` (the open-feedback form's):
        the rollup takes them at that transaction's commit, with the terminals' votes."""
        if conn is not self._conn or not self._depth:
            raise RuntimeError("count_votes belongs inside the store's writing() transaction")
        add_units(conn, [fact[0]] if fact[0] else [])
        self._facts.add(fact, n)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read transaction for the store's companions (one snapshot)."""
        with self._read() as conn:
            yield conn

    def _flush_facts(self, conn: Connection) -> None:
        """Apply the rollup changes gathered so far in this transaction (before a recount replaces rows)."""
        self._rollup.apply(conn, self._facts)
        self._facts = Facts()

    def _live(self) -> Connection:
        """The store's connection, opened again if the last one was lost (a PostgreSQL restart, say).

        Losing the database is a state, not a crash: calls fail with StoreError while it is away
        (the ingest then acknowledges nothing and terminals resend), and work again once it is back.
        """
        conn = self._conn
        if self._closed:
            raise StoreError(f"fleet database {self.url}: the store was closed")
        if conn.closed or conn.invalidated:
            try:
                conn.close()
            except _DB_ERRORS:
                pass
            try:
                self._conn = conn = self._engine.connect()
            except _DB_ERRORS as exc:
                raise StoreError(f"fleet database {self.url}: cannot reconnect: {exc}") from exc
            log.info("fleet database %s: connected again", self.url)
        return conn

    def _abandon(self, tx: RootTransaction) -> None:
        """Roll back after a failure; if even that fails, the connection is gone: drop it for ``_live``."""
        if not tx.is_active:
            return
        try:
            tx.rollback()
        except _DB_ERRORS:
            try:
                tx.connection.invalidate()
            except _DB_ERRORS:
                pass

    def _lock_devices(self, conn: Connection, devices: tuple[str, ...]) -> None:
        if self._device_lock is not None:
            for device in sorted(set(devices)):
                self._device_lock.execute(conn, {"k_device": device}).fetchall()

    def _begin(self, conn: Connection, write: bool) -> RootTransaction:
        """Begin a transaction; if the database refuses (locked, gone), leave the connection reusable."""
        try:
            if write and is_sqlite(conn):
                conn.info[BEGIN_KEY] = BEGIN_WRITE
            return conn.begin()
        except _DB_ERRORS as exc:
            if not conn.closed:
                conn.info.pop(BEGIN_KEY, None)
                try:
                    conn.rollback()  # forget the half-begun transaction, so the next call can begin again
                except _DB_ERRORS:
                    pass
            raise StoreError(f"fleet database {self.url}: cannot begin: {exc}") from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._lock:
            if self._depth:
                try:
                    yield self._conn
                except _DB_ERRORS as exc:
                    raise StoreError(f"fleet database {self.url}: {exc}") from exc
                return
            conn = self._live()
            tx = self._begin(conn, write=False)
            try:
                yield conn
                tx.commit()  # ends the snapshot at once (WAL checkpoints, no idle transaction)
            except BaseException as exc:
                self._abandon(tx)
                if isinstance(exc, _DB_ERRORS):
                    raise StoreError(f"fleet database {self.url}: {exc}") from exc
                raise

    def close(self) -> None:
        """Release the database; the store cannot be used afterwards."""
        with self._lock:
            self._closed = True
            self._conn.close()
            self._engine.dispose()

    def __enter__(self) -> SqlFleetStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- votes and time correction -------------------------------------------------------------

    def add_vote_batches(self, batches: Sequence[VoteBatch], received_ms: int) -> StoredVotes:
        """Store every vote once (first copy wins) in one transaction and commit before returning.

        A vote's identity is (device, store, seq); a batch without a store id is the legacy series "".
        """
        if not batches:
            return StoredVotes([], 0, 0, [], [])
        rows: list[tuple[Any, ...]] = []
        unsynced: list[int] = []  # indexes into rows, completed once anchors are known
        points: dict[tuple[str, str], tuple[int, int]] = {}  # latest synced (wall, mono) per boot
        total = 0
        # The hot loop: one tuple per vote, in the order given, so each terminal's votes stay together.
        for batch in batches:
            device = batch.device
            store = batch.store or ""
            votes_ = batch.votes
            total += len(votes_)
            if all(v[8] and not v[11] for v in votes_):
                # The usual batch (synchronised, unflagged): build rows with C-level tuple slicing.
                rows.extend(
                    [(device, store, *v[:11], None, False, v[12], v[13], received_ms, v[5], SYNCED) for v in votes_]
                )
                if len({v[7] for v in votes_}) == 1:  # Vote.boot
                    latest = max(votes_, key=_MONO)
                    self._note_point(points, device, latest.boot, latest.wall, latest.mono)
                else:  # a batch spanning reboots: every boot in it gets its own anchor
                    for v in votes_:
                        self._note_point(points, device, v.boot, v.wall, v.mono)
                continue
            for v in votes_:
                flags = v.flags
                if flags:
                    flag_text: str | None = ",".join(sorted(flags))
                    misuse = "misuse" in flags
                else:
                    flag_text, misuse = None, False
                if v.synced:
                    self._note_point(points, device, v.boot, v.wall, v.mono)
                    status = SYNCED
                else:
                    unsynced.append(len(rows))
                    status = UNCERTAIN  # until an anchor of its boot is known, below
                rows.append((device, store, *v[:11], flag_text, misuse, v.role, v.reason, received_ms, v.wall, status))
        with self._write(*(b.device for b in batches)) as conn:
            facts = self._facts
            offsets: dict[tuple[str, str], int | None] = {}
            for key, point in points.items():
                offsets[key] = self._advance_anchor(conn, key[0], key[1], point, facts)
            for i in unsynced:
                row = rows[i]
                key = (row[0], row[9])  # (device, boot)
                if key not in offsets:
                    offsets[key] = self._advance_anchor(conn, key[0], key[1], None, facts)
                offset = offsets[key]
                if offset is not None:
                    rows[i] = row[:18] + (row[8] + offset, CORRECTED)  # best = mono + offset
            stored = self._insert_new(conn, rows)
            new = len(stored)
            facts.add_rows(stored)
            # Some were stored already: usually replays, but a terminal that reuses seqs of its
            # series (a copied database, a broken terminal) sends new presses under taken identities.
            # Those must not be acked (the terminal would drop them): they are refused instead.
            conflicts = self._conflicts(conn, batches) if new < total else set()
        ranges = []
        refused = []
        for b in batches:
            store = b.store or ""
            if conflicts:
                taken = [v.seq for v in b.votes if (b.device, store, v.seq) in conflicts]
                ranges.append(seq_ranges(v.seq for v in b.votes if (b.device, store, v.seq) not in conflicts))
                refused.append(seq_ranges(taken))
            else:
                ranges.append(seq_ranges(v.seq for v in b.votes))
                refused.append(())
        return StoredVotes(ranges, new, total - new - len(conflicts), sorted(conflicts), refused)

    def _insert_new(self, conn: Connection, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Insert the rows whose identity is not stored yet; return exactly those (the rollup counts them).

        On PostgreSQL the INSERT … ON CONFLICT DO NOTHING returns the identities it inserted. On SQLite
        (whose driver returns no rows from executemany) the row count shows that usually every row is
        new; otherwise (replays, overlaps) the insert is undone to a savepoint, and only the rows not
        stored yet, first copy of each, are inserted again.
        """
        if not rows:
            return rows
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        if self._insert_returning is not None:
            inserted: set[tuple[str, str, int]] = set()
            if len(rows) == 1:  # executemany enters a pipeline: several round trips for one row
                cursor.execute(self._insert_returning.sql, rows[0])
                inserted.update(cursor.fetchall())
            else:
                cursor.executemany(self._insert_returning.sql, rows, returning=True)  # type: ignore[call-arg]
                while True:
                    inserted.update(cursor.fetchall())
                    if not cursor.nextset():
                        break
            if len(inserted) == len(rows):
                return rows
            fresh = []
            for row in rows:
                identity = (row[0], row[1], row[2])
                if identity in inserted:
                    inserted.discard(identity)  # the first copy of a vote sent twice in this call
                    fresh.append(row)
            return fresh
        cursor.execute("SAVEPOINT hymy_votes")
        if self._insert_vote.executemany(conn, rows) == len(rows):
            cursor.execute("RELEASE SAVEPOINT hymy_votes")
            return rows
        cursor.execute("ROLLBACK TO SAVEPOINT hymy_votes")
        cursor.execute("RELEASE SAVEPOINT hymy_votes")
        taken: set[tuple[str, str, int]] = set()
        series: dict[tuple[str, str], list[int]] = {}
        for row in rows:
            series.setdefault((row[0], row[1]), []).append(row[2])
        for (device, store), seqs in series.items():
            query = sa.select(_C.seq).where(_C.device == device, _C.store == store, _C.seq.in_(seqs))
            taken.update((device, store, seq) for (seq,) in conn.execute(query))
        fresh = []
        for row in rows:
            identity = (row[0], row[1], row[2])
            if identity not in taken:
                taken.add(identity)  # a second copy in this call is a duplicate too
                fresh.append(row)
        if fresh and self._insert_vote.executemany(conn, fresh) != len(fresh):
            raise StoreError(f"fleet database {self.url}: votes appeared while their batch was stored")
        return fresh

    @staticmethod
    def _conflicts(conn: Connection, batches: Sequence[VoteBatch]) -> set[tuple[str, str, int]]:
        """(device, store, seq) of given votes whose stored copy is a different press.

        "The same press" (SPEC 7.4) means the same question, scale, answer, wall, mono and boot; the
        other fields may legitimately differ between copies (a resend is flagged historical).
        """
        found: set[tuple[str, str, int]] = set()
        for batch in batches:
            store = batch.store or ""
            query = sa.select(_C.seq, _C.question, _C.scale, _C.answer, _C.wall, _C.mono, _C.boot).where(
                _C.device == batch.device, _C.store == store, _C.seq.in_([v.seq for v in batch.votes])
            )
            stored = {r[0]: tuple(r[1:]) for r in conn.execute(query)}
            for v in batch.votes:
                if stored.get(v.seq) != (v.question, v.scale, v.answer, v.wall, v.mono, v.boot):
                    found.add((batch.device, store, v.seq))
        return found

    @staticmethod
    def _note_point(
        points: dict[tuple[str, str], tuple[int, int]], device: str, boot: str, wall: int, mono: int
    ) -> None:
        """Remember the latest synchronised point of a boot seen in this call."""
        key = (device, boot)
        point = points.get(key)
        if point is None or mono > point[1]:
            points[key] = (wall, mono)

    def _advance_anchor(
        self, conn: Connection, device: str, boot: str, point: tuple[int, int] | None, facts: Facts
    ) -> int | None:
        """Move the boot's anchor to ``point`` if later, re-correct its stored votes; return the offset.

        Corrected votes move in the rollup from the day of their old time to the day of the new one.
        """
        key = {"k_device": device, "k_boot": boot}
        row = self._get_anchor.execute(conn, key).fetchone()
        if point is None or (row is not None and point[1] <= row[1]):
            return None if row is None else int(row[0] - row[1])
        offset = point[0] - point[1]
        applied = None if row is None else row[2]
        if applied is None or abs(offset - applied) > CORRECTION_TOLERANCE_MS:
            # Usually the boot has no unsynchronised vote (its clock was synchronised throughout).
            if self._rollup.add_boot(conn, facts, device, boot, -1):
                self._correct.execute(conn, {**key, "k_offset": offset})
                self._rollup.add_boot(conn, facts, device, boot, 1)
            applied = offset
        self._set_anchor.execute(conn, {**key, "k_wall": point[0], "k_mono": point[1], "k_applied": applied})
        return offset

    def vote_count(self, device: str | None = None, include_misuse: bool = True) -> int:
        """How many votes are stored (of one terminal, or all)."""
        query = sa.select(sa.func.count()).select_from(votes)
        if not include_misuse:
            query = query.where(_C.misuse == sa.false())
        if device is not None:
            query = query.where(_C.device == device)
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def stored_votes(self, device: str) -> list[StoredVote]:
        """Every stored vote of one terminal: each store's series in seq order, first-received series first."""
        series_start = sa.func.min(_C.received).over(partition_by=_C.store)
        query = sa.select(*_STORED_VOTE_COLUMNS).where(_C.device == device).order_by(series_start, _C.store, _C.seq)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            StoredVote(
                device=r[0],
                seq=r[2],
                question=r[3],
                scale=r[4],
                answer=r[5],
                lang=r[6],
                wall=r[7],
                mono=r[8],
                boot=r[9],
                synced=bool(r[10]),
                unit=r[11],
                cfg=r[12],
                flags=frozenset(r[13].split(",")) if r[13] else frozenset(),
                role=r[14],
                reason=r[15],
                received=r[16],
                best=r[17],
                time_status=r[18],
                store=r[1],
            )
            for r in rows
        ]

    def daily_counts(
        self,
        include_misuse: bool = False,
        first_day: date | None = None,
        last_day: date | None = None,
        unit: str | None = None,
        units: Collection[str] | None = None,
    ) -> list[DailyCounts]:
        """Answer counts per unit, question, scale and local day, from the rollup; days are inclusive.

        A day is the unit's own local day. Votes that named no unit count for the unit their terminal
        is placed in now (None if it is placed nowhere); ``unit`` keeps one unit, ``units`` several
        (a service area's, side by side).
        """
        spans = [(daily_rollup, first_day, None if last_day is None else last_day + _DAY)]
        groups = self._counts(True, include_misuse, spans, unit, units)
        return [DailyCounts(u, q, s, day, counts, n) for (u, q, s, day), (counts, n) in groups if day is not None]

    def answer_counts(
        self,
        include_misuse: bool = False,
        first_day: date | None = None,
        last_day: date | None = None,
        unit: str | None = None,
        units: Collection[str] | None = None,
        channel: str | None = None,
    ) -> list[AnswerCounts]:
        """Answer counts per unit, question and scale over a period of days (inclusive), summed by the
        database: whole months from the monthly rollup, the ragged ends from the daily one. A
        dashboard's table of units, one row per figure; arguments as daily_counts', and ``channel``:
        only the answers given there."""
        spans = [
            (monthly_rollup if months else daily_rollup, lo, hi) for months, lo, hi in spans_of(first_day, last_day)
        ]
        groups = self._counts(False, include_misuse, spans, unit, units, channel)
        return [AnswerCounts(u, q, s, counts, uncertain) for (u, q, s, _), (counts, uncertain) in groups]

    def _counts(
        self,
        by_day: bool,
        include_misuse: bool,
        spans: list[tuple[sa.Table, date | None, date | None]],
        unit: str | None,
        units: Collection[str] | None,
        channel: str | None = None,
    ) -> list[tuple[tuple[str | None, str, str, date | None], tuple[tuple[int, ...], int]]]:
        """Sum rollup rows per (unit, question, scale[, day], answer) over spans [lo, hi) of their tables."""
        wanted = (
            None if unit is None and units is None else sorted({*(units or ()), *(() if unit is None else (unit,))})
        )
        groups: dict[tuple[str | None, str, str, date | None], tuple[list[int], list[int]]] = {}
        with self._read() as conn:
            for table, lo, hi in spans:
                for unit_, question, scale, day_, answer, count, uncertain_ in conn.execute(
                    _counts_query(table, by_day, include_misuse, lo, hi, wanted, channel)
                ):
                    sc = SCALES.get(scale)
                    if sc is None or not 0 <= answer < sc.size:  # cannot happen: the codec checked both
                        continue
                    key = (unit_, question, scale, day_)
                    group = groups.get(key)
                    if group is None:
                        group = groups[key] = ([0] * sc.size, [0])
                    group[0][answer] += int(count)
                    group[1][0] += int(uncertain_)
        return [
            (key, (tuple(counts), uncertain_[0]))
            for key, (counts, uncertain_) in sorted(
                groups.items(), key=lambda kv: (kv[0][0] or "", kv[0][1], kv[0][2], kv[0][3] or date.min)
            )
            if any(counts)
        ]

    def vote_totals(self) -> tuple[int, int]:
        """(votes counted, of which with an uncertain time), from the monthly rollup: no scan of the votes."""
        m = monthly_rollup.c
        query = sa.select(
            sa.func.coalesce(sa.func.sum(m["count"]), 0),
            sa.func.coalesce(sa.func.sum(sa.case((m.uncertain, m["count"]), else_=0)), 0),
        )
        with self._read() as conn:
            total, uncertain = conn.execute(query).one()
        return int(total), int(uncertain)

    def rebuild_rollup(self) -> int:
        """Recompute the whole rollup from the votes in one transaction; returns its rows."""
        with self._write(zones=True) as conn:
            self._flush_facts(conn)
            return self._rollup.rebuild(conn)

    def recount_rollup(self, monthly: bool = False, hours: bool = False) -> dict[tuple[Any, ...], int]:
        """The rollup a rebuild would make now (daily, monthly or hour), counted from the votes; nothing
        is written or locked."""
        with self._read() as conn:
            keyed, hour_keyed, _ = self._rollup.recount(conn)
        return dict(hour_keyed) if hours else by_month(keyed) if monthly else dict(keyed)

    def rollup(self, monthly: bool = False, hours: bool = False) -> dict[tuple[Any, ...], int]:
        """Every non-empty row of the daily (monthly, hour) rollup by its key, for checks (compare with a
        recount)."""
        table = hour_rollup if hours else monthly_rollup if monthly else daily_rollup
        with self._read() as conn:
            return rollup_rows(conn, table)

    def set_unit_zone(self, unit: str, tz: str) -> None:
        """Set the time zone of ``unit``'s days; its rollup is rebuilt in the same transaction."""
        if not ID_RE.match(unit):
            raise ValueError(f"bad unit id {unit!r}")
        try:
            ZoneInfo(tz)
        except (ValueError, KeyError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {tz!r}") from exc
        with self._write(zones=True) as conn:
            stmt = upsert(conn, units).values(unit=unit, tz=tz)
            conn.execute(stmt.on_conflict_do_update(index_elements=[units.c.unit], set_={"tz": stmt.excluded.tz}))
            placed = sa.select(_T.device).where(_T.unit == unit).scalar_subquery()
            self._flush_facts(conn)
            self._rollup.rebuild(
                conn,
                sa.or_(_C.unit == unit, sa.and_(_C.unit.is_(None), _C.device.in_(placed))),
                scope=lambda t: sa.or_(t.c.unit == unit, sa.and_(t.c.unit == _EMPTY, t.c.device.in_(placed))),
            )

    def unit_zones(self) -> dict[str, str]:
        """Every known unit's time zone."""
        with self._read() as conn:
            return {u: tz for u, tz in conn.execute(sa.select(units.c.unit, units.c.tz).order_by(units.c.unit))}

    # -- terminals -----------------------------------------------------------------------------

    def record_state(self, state: TerminalState, received_ms: int) -> bool:
        """Record a birth or will unless stale by its conn counter; True if it is current."""
        with self._write(state.device) as db:
            row = db.execute(sa.select(_T.conn, _T.online).where(_T.device == state.device)).first()
            if row is not None and row[1] is not None:
                conn, online = row
                # SPEC 8: a birth is always applied, even with a lower counter (a wiped terminal
                # starts again at 1), except the birth of the very connection whose will has been
                # applied already. A will is applied unless an online state of a newer connection is.
                if state.online:
                    if state.conn == conn and not online:
                        return False
                    if state.conn < conn:  # a new store: it has applied nothing we pushed before
                        db.execute(sa.update(terminals).where(_T.device == state.device).values(applied_version=0))
                elif state.conn < conn:
                    return False
            figures = {"online": state.online, "conn": state.conn, "state_wall": state.wall, "last_seen": received_ms}
            _upsert_terminal(db, state.device, figures, fw=state.fw, keep={"fw"})
            return True

    def record_heartbeat(self, heartbeat: Heartbeat, received_ms: int) -> None:
        """Keep the latest health figures; a synchronised heartbeat also corrects that boot's times."""
        hb = heartbeat
        figures = {
            "last_seen": received_ms,
            "hb_wall": hb.wall,
            "hb_mono": hb.mono,
            "hb_boot": hb.boot,
            "hb_synced": hb.synced,
            "uptime": hb.uptime,
            "queue": hb.queue,
            "oldest": hb.oldest,
            "temp": hb.temp,
            "disk": hb.disk,
            "fw": hb.fw,
            "applied_version": hb.cfg,
            "refused": hb.refused,
        }
        with self._write(hb.device) as conn:
            _upsert_terminal(conn, hb.device, figures)
            if hb.synced:
                self._advance_anchor(conn, hb.device, hb.boot, (hb.wall, hb.mono), self._facts)

    def record_config_report(self, report: ConfigReport, received_ms: int) -> None:
        """Record which configuration version the terminal applied or rejected, and why."""
        with self._write() as conn:
            figures: dict[str, Any] = {
                "report_version": report.version,
                "report_status": report.status,
                "report_reason": report.reason,
                "report_at": received_ms,
            }
            if report.status == "applied":
                figures["applied_version"] = report.version
                _upsert_terminal(conn, report.device, figures)
            else:  # a rejection leaves the applied version as it was (0 for a terminal new to us)
                _upsert_terminal(conn, report.device, figures, applied_version=0)

    def assign(self, device: str, unit: str | None) -> None:
        """Place ``device`` in ``unit`` (None removes it), for votes that carry no unit."""
        try:
            check_device_id(device)
        except ProtocolError as exc:
            raise ValueError(str(exc)) from exc
        if unit is not None and not ID_RE.match(unit):
            raise ValueError(f"bad unit id {unit!r}")
        with self._write(device, zones=True) as conn:
            before = conn.execute(sa.select(_T.unit).where(_T.device == device)).first()
            _upsert_terminal(conn, device, {"unit": unit})
            if before is None or before[0] != unit:
                # Its unitless votes follow it: their days are days in the zone of the unit it moves to.
                self._flush_facts(conn)
                self._rollup.rebuild(
                    conn,
                    _C.device == device,
                    _C.unit.is_(None),
                    scope=lambda t: sa.and_(t.c.unit == _EMPTY, t.c.device == device),
                )

    def terminal(self, device: str) -> TerminalStatus | None:
        """What is known of one terminal, or None if it has never been seen or assigned."""
        found = self._terminals(_TERMINAL_QUERY.where(_T.device == device))
        return found[0] if found else None

    def terminals(self) -> list[TerminalStatus]:
        """Every known terminal, by device id."""
        return self._terminals(_TERMINAL_QUERY)

    def _terminals(self, query: sa.Select[Any]) -> list[TerminalStatus]:
        with self._read() as conn:
            return [TerminalStatus(*r) for r in conn.execute(query)]

    # -- configuration -------------------------------------------------------------------------

    def set_config(self, device: str, version: int, doc: dict[str, Any]) -> Config:
        """Make ``doc`` the desired configuration of ``device``; raises ConfigError if invalid or older."""
        config = Config(device, version, doc)
        try:
            check_device_id(device)
            validate_config_doc(doc)
            if type(version) is not int or version < 1:
                raise ConfigError(f"version must be a positive integer, got {version!r}")
            encode_message(config)  # the limits a terminal applies, so we never push what it rejects
        except ProtocolError as exc:
            raise ConfigError(exc.detail) from exc  # "configuration: hours.tz must be …": names the field
        text = json.dumps(doc, ensure_ascii=False, sort_keys=True)
        with self._write(device) as conn:
            row = conn.execute(sa.select(_D.version, _D.doc).where(_D.device == device)).first()
            if row is not None:
                if version < row[0]:
                    raise ConfigError(f"{device} already has version {row[0]}; versions only go up")
                if version == row[0] and row[1] != text:
                    raise ConfigError(f"{device} version {version} exists with another document; bump the version")
            stmt = upsert(conn, desired_configs).values(
                device=device, version=version, doc=text, set_at=int(time.time() * 1000)
            )
            ex = stmt.excluded
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[_D.device], set_={"version": ex.version, "doc": ex.doc, "set_at": ex.set_at}
                )
            )
        return config

    def desired_since(self, since_ms: int) -> list[tuple[str, int, int]]:
        """(device, version, set_at) of desired configurations set at or after ``since_ms``, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(_D.device, _D.version, _D.set_at).where(_D.set_at >= since_ms).order_by(_D.set_at)
            )
            return [(d, v, t) for d, v, t in rows]

    def get_config(self, device: str) -> Config | None:
        """The desired configuration of ``device``, if any."""
        with self._read() as conn:
            row = conn.execute(sa.select(_D.version, _D.doc).where(_D.device == device)).first()
        return None if row is None else Config(device, row[0], json.loads(row[1]))

    def config_to_push(self, device: str) -> Config | None:
        """The desired configuration if the terminal has not applied it yet, else None."""
        query = (
            sa.select(_D.version, _D.doc)
            .select_from(desired_configs.outerjoin(terminals, _T.device == _D.device))
            .where(_D.device == device, sa.func.coalesce(_T.applied_version, 0) < _D.version)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else Config(device, row[0], json.loads(row[1]))

    # -- rejections ----------------------------------------------------------------------------

    def count_rejection(self, reason: str, device: str | None, detail: str, at_ms: int) -> None:
        """Count a rejected message by reason and keep it in the bounded log of recent ones."""
        rc, log = rejection_counts.c, rejection_log.c
        with self._write() as conn:
            stmt = upsert(conn, rejection_counts).values(reason=reason, device=device or "", count=1, last_at=at_ms)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[rc.reason, rc.device],
                    set_={"count": rc["count"] + 1, "last_at": stmt.excluded.last_at},
                )
            )
            result = conn.execute(
                sa.insert(rejection_log).values(at=at_ms, reason=reason, device=device, detail=detail[:500])
            )
            (last,) = result.inserted_primary_key or (None,)
            if last is not None and last % 100 == 0:  # prune now and then, not every time
                conn.execute(sa.delete(rejection_log).where(log.id <= last - REJECTION_LOG_SIZE))

    def rejection_counts(self) -> dict[str, int]:
        """Rejections so far by reason, so operators see bad senders."""
        rc = rejection_counts.c
        with self._read() as conn:
            rows = conn.execute(sa.select(rc.reason, sa.func.sum(rc["count"])).group_by(rc.reason)).all()
        return {reason: int(total) for reason, total in rows}

    def rejections_by_device(self) -> dict[str, int]:
        """Rejections so far per sending terminal ("" when the sender was unknown)."""
        rc = rejection_counts.c
        with self._read() as conn:
            rows = conn.execute(sa.select(rc.device, sa.func.sum(rc["count"])).group_by(rc.device)).all()
        return {device: int(total) for device, total in rows}

    def record_ingest_stats(self, stats: IngestStats) -> None:
        """Keep an ingest process's latest counters (the one before becomes ``prev``) in one upsert."""
        fields = ("started_at", "at", "messages", "votes", "duplicates", "rejected")
        t = ingest_stats.c
        with self._write() as conn:
            stmt = upsert(conn, ingest_stats).values(worker=stats.worker, **{f: getattr(stats, f) for f in fields})
            ex = stmt.excluded
            same_run = t.started_at == ex.started_at  # a restarted ingest has no "before" of its own
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[t.worker],
                    set_={
                        **{f: ex[f] for f in fields},
                        "prev_at": sa.case((same_run, t.at), else_=None),
                        "prev_votes": sa.case((same_run, t.votes), else_=None),
                    },
                )
            )

    def ingest_stats(self) -> list[IngestStats]:
        """Every ingest process's last counters, newest first."""
        with self._read() as conn:
            rows = conn.execute(sa.select(ingest_stats).order_by(ingest_stats.c.at.desc()))
            return [IngestStats(**r._mapping) for r in rows]

    def recent_rejections(self, limit: int = 100) -> list[Rejection]:
        """The newest rejections first, for diagnosis."""
        log = rejection_log.c
        query = (
            sa.select(log.at, log.reason, log.device, log.detail)
            .order_by(log.id.desc())
            .limit(min(limit, REJECTION_LOG_SIZE))
        )
        with self._read() as conn:
            return [Rejection(*r) for r in conn.execute(query)]
