"""The fleet store on SQLite (WAL, synchronous=FULL): the embedded default behind FleetStore.

Votes are stored idempotently on (device, store, seq). Time correction (DESIGN guarantee 4) keeps one
anchor per (device, boot): the latest synchronised point (a synced vote or heartbeat) of that
boot. An unsynced vote's best time is ``mono + (anchor.wall - anchor.mono)``; when an anchor
first appears or moves, the boot's unsynced votes already stored are corrected in the same
transaction, so the order in which votes and synchronised points arrive does not matter.
"""

from __future__ import annotations

import json
import operator
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from protocol import Config, ConfigReport, Heartbeat, ProtocolError, TerminalState, VoteBatch, validate_config_doc
from protocol import encode as encode_message
from protocol.codec import ID_RE
from protocol.messages import seq_ranges
from protocol.scales import SCALES
from protocol.topics import check_device_id

from .errors import ConfigError, StoreError
from .records import CORRECTED, SYNCED, UNCERTAIN, DailyCounts, Rejection, StoredVote, StoredVotes, TerminalStatus
from .schema import MIGRATIONS
from .store import DEFAULT_TZ

#: Already-corrected votes are rewritten only when their boot's offset moves by more than this:
#: smaller moves are clock jitter between points, and rewriting a long offline backlog on every
#: batch would cost more than the precision is worth.
CORRECTION_TOLERANCE_MS = 1000
#: Rejections kept in the log of recent ones (the counters are kept for ever).
REJECTION_LOG_SIZE = 1000
#: Aggregation groups by quarter hours in SQL, then by local day in Python: every time zone's
#: UTC offset is a multiple of 15 minutes, so a quarter hour never straddles local midnight.
_BUCKET_MS = 15 * 60 * 1000

_INSERT_VOTE = (
    "INSERT OR IGNORE INTO votes (device, store, seq, question, scale, answer, lang, wall, mono, boot, synced,"
    " unit, cfg, flags, misuse, role, reason, received, best, time_status)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_MONO = operator.itemgetter(6)  # Vote.mono
_VOTE_COLUMNS = (
    "device, store, seq, question, scale, answer, lang, wall, mono, boot, synced, unit, cfg, flags, role, reason,"
    " received, best, time_status"
)
_TERMINAL_COLUMNS = (
    "t.device, t.unit, t.online, t.conn, t.fw, t.last_seen, t.uptime, t.queue, t.oldest, t.temp, t.disk,"
    " t.applied_version, t.report_status, t.report_reason, d.version, t.refused"
)


class SqliteFleetStore:
    """FleetStore on one SQLite file; safe to share between threads (calls are serialised)."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._depth = 0
        try:
            self._conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30.0)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open fleet database {self.path}: {exc}") from exc
        try:
            (mode,) = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()
            if str(mode).lower() != "wal":
                raise StoreError(f"fleet database {self.path} refused WAL (got {mode})")
            if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
                raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, got {synchronous!r}")
            self._conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            MIGRATIONS.apply(Database(self._conn, execute_plugins=False))
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreError(f"fleet database {self.path} is unusable: {exc}") from exc
        except BaseException:
            self._conn.close()
            raise

    # -- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group the calls inside into one atomic commit; nested use joins the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"fleet database {self.path}: cannot begin: {exc}") from exc
            self._depth = 1
            try:
                yield
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"fleet database {self.path}: {exc}") from exc
                raise
            finally:
                self._depth = 0

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise StoreError(f"fleet database {self.path}: {exc}") from exc

    def close(self) -> None:
        """Release the database; the store cannot be used afterwards."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SqliteFleetStore:
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
            votes = batch.votes
            total += len(votes)
            if all(v[8] and not v[11] for v in votes):
                # The usual batch (synchronised, unflagged): build rows with C-level tuple slicing.
                rows.extend([(device, store, *v[:11], None, 0, v[12], v[13], received_ms, v[5], SYNCED) for v in votes])
                if len({v[7] for v in votes}) == 1:  # Vote.boot
                    latest = max(votes, key=_MONO)
                    self._note_point(points, device, latest.boot, latest.wall, latest.mono)
                else:  # a batch spanning reboots: every boot in it gets its own anchor
                    for v in votes:
                        self._note_point(points, device, v.boot, v.wall, v.mono)
                continue
            for v in votes:
                flags = v.flags
                if flags:
                    flag_text: str | None = ",".join(sorted(flags))
                    misuse = 1 if "misuse" in flags else 0
                else:
                    flag_text, misuse = None, 0
                if v.synced:
                    self._note_point(points, device, v.boot, v.wall, v.mono)
                    status = SYNCED
                else:
                    unsynced.append(len(rows))
                    status = UNCERTAIN  # until an anchor of its boot is known, below
                rows.append((device, store, *v[:11], flag_text, misuse, v.role, v.reason, received_ms, v.wall, status))
        with self.transaction():
            conn = self._conn
            offsets: dict[tuple[str, str], int | None] = {}
            for key, point in points.items():
                offsets[key] = self._advance_anchor(key[0], key[1], point)
            for i in unsynced:
                row = rows[i]
                key = (row[0], row[9])  # (device, boot)
                if key not in offsets:
                    offsets[key] = self._advance_anchor(key[0], key[1], None)
                offset = offsets[key]
                if offset is not None:
                    rows[i] = row[:18] + (row[8] + offset, CORRECTED)  # best = mono + offset
            before = conn.total_changes
            conn.executemany(_INSERT_VOTE, rows)
            new = conn.total_changes - before
            # Some were stored already: usually replays, but a terminal that reuses seqs of its
            # series (a copied database, a broken terminal) sends new presses under taken identities.
            # Those must not be acked (the terminal would drop them): they are refused instead.
            conflicts = self._conflicts(batches) if new < total else set()
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

    def _conflicts(self, batches: Sequence[VoteBatch]) -> set[tuple[str, str, int]]:
        """(device, store, seq) of given votes whose stored copy is a different press.

        "The same press" (SPEC 7.4) means the same question, scale, answer, wall, mono and boot; the
        other fields may legitimately differ between copies (a resend is flagged historical).
        """
        found: set[tuple[str, str, int]] = set()
        for batch in batches:
            store = batch.store or ""
            seqs = [v.seq for v in batch.votes]
            marks = ",".join("?" * len(seqs))
            stored = {
                r[0]: r[1:]
                for r in self._conn.execute(
                    "SELECT seq, question, scale, answer, wall, mono, boot FROM votes"
                    f" WHERE device = ? AND store = ? AND seq IN ({marks})",
                    (batch.device, store, *seqs),
                )
            }
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

    def _advance_anchor(self, device: str, boot: str, point: tuple[int, int] | None) -> int | None:
        """Move the boot's anchor to ``point`` if later, re-correct its stored votes; return the offset."""
        conn = self._conn
        row = conn.execute(
            "SELECT wall, mono, applied_offset FROM clock_anchors WHERE device = ? AND boot = ?", (device, boot)
        ).fetchone()
        if point is None or (row is not None and point[1] <= row[1]):
            return None if row is None else int(row[0] - row[1])
        offset = point[0] - point[1]
        applied = None if row is None else row[2]
        if applied is None or abs(offset - applied) > CORRECTION_TOLERANCE_MS:
            conn.execute(
                "UPDATE votes SET best = mono + ?, time_status = ? WHERE device = ? AND boot = ? AND synced = 0",
                (offset, CORRECTED, device, boot),
            )
            applied = offset
        conn.execute(
            "INSERT INTO clock_anchors (device, boot, wall, mono, applied_offset) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (device, boot) DO UPDATE SET wall = excluded.wall, mono = excluded.mono,"
            " applied_offset = excluded.applied_offset",
            (device, boot, point[0], point[1], applied),
        )
        return offset

    def vote_count(self, device: str | None = None, include_misuse: bool = True) -> int:
        """How many votes are stored (of one terminal, or all)."""
        sql = "SELECT COUNT(*) FROM votes WHERE (? OR misuse = 0)"
        args: tuple[Any, ...] = (include_misuse,)
        if device is not None:
            sql += " AND device = ?"
            args += (device,)
        with self._read() as conn:
            return int(conn.execute(sql, args).fetchone()[0])

    def stored_votes(self, device: str) -> list[StoredVote]:
        """Every stored vote of one terminal: each store's series in seq order, oldest series first."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_VOTE_COLUMNS} FROM votes WHERE device = ?"
                " ORDER BY (SELECT MIN(rowid) FROM votes AS s WHERE s.device = votes.device AND s.store = votes.store),"
                " seq",
                (device,),
            )
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
        tz: str = DEFAULT_TZ,
        include_misuse: bool = False,
        since_ms: int | None = None,
        until_ms: int | None = None,
        unit: str | None = None,
    ) -> list[DailyCounts]:
        """Answer counts per unit, question, scale and local day of each vote's best time; ``unit`` keeps one."""
        zone = ZoneInfo(tz)
        sql = (
            "SELECT COALESCE(v.unit, t.unit), v.question, v.scale, v.best / ?, v.answer, COUNT(*),"
            " SUM(v.time_status = ?)"
            " FROM votes v LEFT JOIN terminals t ON t.device = v.device"
            " WHERE (? OR v.misuse = 0) AND v.best >= ? AND v.best < ?"
        )
        args: tuple[Any, ...] = (
            _BUCKET_MS,
            UNCERTAIN,
            include_misuse,
            since_ms or 0,
            2**63 - 1 if until_ms is None else until_ms,
        )
        if unit is not None:
            # A unit's terminals are few: filtering before the grouping leaves far fewer rows to sort.
            sql += " AND COALESCE(v.unit, t.unit) = ?"
            args += (unit,)
        sql += " GROUP BY 1, 2, 3, 4, 5"
        with self._read() as conn:
            rows = conn.execute(sql, args).fetchall()
        days: dict[int, date] = {}
        groups: dict[tuple[str | None, str, str, date], tuple[list[int], list[int]]] = {}
        for unit, question, scale, bucket, answer, count, uncertain in rows:
            sc = SCALES.get(scale)
            if sc is None or not 0 <= answer < sc.size:  # cannot happen: the codec checked both
                continue
            day = days.get(bucket)
            if day is None:
                day = days[bucket] = datetime.fromtimestamp(bucket * _BUCKET_MS / 1000, zone).date()
            key = (unit, question, scale, day)
            group = groups.get(key)
            if group is None:
                group = groups[key] = ([0] * sc.size, [0])
            group[0][answer] += count
            group[1][0] += uncertain
        return [
            DailyCounts(unit, question, scale, day, tuple(counts), uncertain[0])
            for (unit, question, scale, day), (counts, uncertain) in sorted(
                groups.items(), key=lambda kv: (kv[0][0] or "", kv[0][1], kv[0][2], kv[0][3])
            )
        ]

    # -- terminals -----------------------------------------------------------------------------

    def record_state(self, state: TerminalState, received_ms: int) -> bool:
        """Record a birth or will unless stale by its conn counter; True if it is current."""
        with self.transaction():
            row = self._conn.execute("SELECT conn, online FROM terminals WHERE device = ?", (state.device,)).fetchone()
            if row is not None and row[1] is not None:
                conn, online = row
                # SPEC 8: a birth is always applied, even with a lower counter (a wiped terminal
                # starts again at 1), except the birth of the very connection whose will has been
                # applied already. A will is applied unless an online state of a newer connection is.
                if state.online:
                    if state.conn == conn and not online:
                        return False
                    if state.conn < conn:  # a new store: it has applied nothing we pushed before
                        self._conn.execute("UPDATE terminals SET applied_version = 0 WHERE device = ?", (state.device,))
                elif state.conn < conn:
                    return False
            self._conn.execute(
                "INSERT INTO terminals (device, online, conn, state_wall, fw, last_seen) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (device) DO UPDATE SET online = excluded.online, conn = excluded.conn,"
                " state_wall = excluded.state_wall, fw = COALESCE(excluded.fw, fw), last_seen = excluded.last_seen",
                (state.device, 1 if state.online else 0, state.conn, state.wall, state.fw, received_ms),
            )
            return True

    def record_heartbeat(self, heartbeat: Heartbeat, received_ms: int) -> None:
        """Keep the latest health figures; a synchronised heartbeat also corrects that boot's times."""
        hb = heartbeat
        with self.transaction():
            self._conn.execute(
                "INSERT INTO terminals (device, last_seen, hb_wall, hb_mono, hb_boot, hb_synced, uptime, queue,"
                " oldest, temp, disk, fw, applied_version, refused) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (device) DO UPDATE SET last_seen = excluded.last_seen, hb_wall = excluded.hb_wall,"
                " hb_mono = excluded.hb_mono, hb_boot = excluded.hb_boot, hb_synced = excluded.hb_synced,"
                " uptime = excluded.uptime, queue = excluded.queue, oldest = excluded.oldest,"
                " temp = excluded.temp, disk = excluded.disk, fw = excluded.fw,"
                " applied_version = excluded.applied_version, refused = excluded.refused",
                (
                    hb.device,
                    received_ms,
                    hb.wall,
                    hb.mono,
                    hb.boot,
                    1 if hb.synced else 0,
                    hb.uptime,
                    hb.queue,
                    hb.oldest,
                    hb.temp,
                    hb.disk,
                    hb.fw,
                    hb.cfg,
                    hb.refused,
                ),
            )
            if hb.synced:
                self._advance_anchor(hb.device, hb.boot, (hb.wall, hb.mono))

    def record_config_report(self, report: ConfigReport, received_ms: int) -> None:
        """Record which configuration version the terminal applied or rejected, and why."""
        applied = report.version if report.status == "applied" else None
        with self.transaction():
            self._conn.execute(
                "INSERT INTO terminals (device, report_version, report_status, report_reason, report_at,"
                " applied_version) VALUES (?, ?, ?, ?, ?, COALESCE(?, 0))"
                " ON CONFLICT (device) DO UPDATE SET report_version = excluded.report_version,"
                " report_status = excluded.report_status, report_reason = excluded.report_reason,"
                " report_at = excluded.report_at, applied_version = COALESCE(?, applied_version)",
                (report.device, report.version, report.status, report.reason, received_ms, applied, applied),
            )

    def assign(self, device: str, unit: str | None) -> None:
        """Place ``device`` in ``unit`` (None removes it), for votes that carry no unit."""
        try:
            check_device_id(device)
        except ProtocolError as exc:
            raise ValueError(str(exc)) from exc
        if unit is not None and not ID_RE.match(unit):
            raise ValueError(f"bad unit id {unit!r}")
        with self.transaction():
            self._conn.execute(
                "INSERT INTO terminals (device, unit) VALUES (?, ?) ON CONFLICT (device) DO UPDATE SET unit = ?",
                (device, unit, unit),
            )

    def terminal(self, device: str) -> TerminalStatus | None:
        """What is known of one terminal, or None if it has never been seen or assigned."""
        found = self._terminals("WHERE t.device = ?", (device,))
        return found[0] if found else None

    def terminals(self) -> list[TerminalStatus]:
        """Every known terminal, by device id."""
        return self._terminals("", ())

    def _terminals(self, where: str, args: tuple[Any, ...]) -> list[TerminalStatus]:
        sql = (
            f"SELECT {_TERMINAL_COLUMNS} FROM terminals t LEFT JOIN desired_configs d ON d.device = t.device"
            f" {where} ORDER BY t.device"
        )
        with self._read() as conn:
            return [
                TerminalStatus(r[0], r[1], None if r[2] is None else bool(r[2]), *r[3:])
                for r in conn.execute(sql, args)
            ]

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
        with self.transaction():
            row = self._conn.execute("SELECT version, doc FROM desired_configs WHERE device = ?", (device,)).fetchone()
            if row is not None:
                if version < row[0]:
                    raise ConfigError(f"{device} already has version {row[0]}; versions only go up")
                if version == row[0] and row[1] != text:
                    raise ConfigError(f"{device} version {version} exists with another document; bump the version")
            self._conn.execute(
                "INSERT INTO desired_configs (device, version, doc, set_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (device) DO UPDATE SET version = excluded.version, doc = excluded.doc,"
                " set_at = excluded.set_at",
                (device, version, text, int(time.time() * 1000)),
            )
        return config

    def get_config(self, device: str) -> Config | None:
        """The desired configuration of ``device``, if any."""
        with self._read() as conn:
            row = conn.execute("SELECT version, doc FROM desired_configs WHERE device = ?", (device,)).fetchone()
        return None if row is None else Config(device, row[0], json.loads(row[1]))

    def config_to_push(self, device: str) -> Config | None:
        """The desired configuration if the terminal has not applied it yet, else None."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT d.version, d.doc FROM desired_configs d LEFT JOIN terminals t ON t.device = d.device"
                " WHERE d.device = ? AND COALESCE(t.applied_version, 0) < d.version",
                (device,),
            ).fetchone()
        return None if row is None else Config(device, row[0], json.loads(row[1]))

    # -- rejections ----------------------------------------------------------------------------

    def count_rejection(self, reason: str, device: str | None, detail: str, at_ms: int) -> None:
        """Count a rejected message by reason and keep it in the bounded log of recent ones."""
        with self.transaction():
            conn = self._conn
            conn.execute(
                "INSERT INTO rejection_counts (reason, device, count, last_at) VALUES (?, ?, 1, ?)"
                " ON CONFLICT (reason, device) DO UPDATE SET count = count + 1, last_at = excluded.last_at",
                (reason, device or "", at_ms),
            )
            cur = conn.execute(
                "INSERT INTO rejection_log (at, reason, device, detail) VALUES (?, ?, ?, ?)",
                (at_ms, reason, device, detail[:500]),
            )
            if cur.lastrowid is not None and cur.lastrowid % 100 == 0:  # prune now and then, not every time
                conn.execute("DELETE FROM rejection_log WHERE id <= ?", (cur.lastrowid - REJECTION_LOG_SIZE,))

    def rejection_counts(self) -> dict[str, int]:
        """Rejections so far by reason, so operators see bad senders."""
        with self._read() as conn:
            return dict(conn.execute("SELECT reason, SUM(count) FROM rejection_counts GROUP BY reason").fetchall())

    def recent_rejections(self, limit: int = 100) -> list[Rejection]:
        """The newest rejections first, for diagnosis."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT at, reason, device, detail FROM rejection_log ORDER BY id DESC LIMIT ?",
                (min(limit, REJECTION_LOG_SIZE),),
            )
            return [Rejection(*r) for r in rows]
