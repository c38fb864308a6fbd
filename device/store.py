"""The terminal's vote database: every press is committed here before anyone is told (DESIGN guarantee 1).

One SQLite file in WAL mode with ``synchronous=FULL``. A vote stays in the table until the fleet
acknowledges it; then it is marked delivered (not deleted) and pruned later. Seqs come from
``INTEGER PRIMARY KEY AUTOINCREMENT``, so a seq is never handed out twice, even after pruning.
The same file keeps a small key/value table for the MQTT connection counter and the last good
configuration, so both survive reboots.

Writes follow presses, acks and configurations, never the clock or the network's retries: the
connection counter, the one value needed on every dial attempt, is reserved in blocks (see
``CONN_BLOCK``), so weeks without a broker cost a few commits a day, not one every two seconds.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

import protocol
from protocol import Vote

from .clock import Clock, read_clock
from .errors import StoreError

MIGRATIONS = Migrations("hymy-device")


@MIGRATIONS(name="0001_votes")
def _create_votes(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE votes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            question TEXT NOT NULL,
            scale TEXT NOT NULL,
            answer INTEGER NOT NULL,
            lang TEXT NOT NULL,
            wall INTEGER NOT NULL,
            mono INTEGER NOT NULL,
            boot TEXT NOT NULL,
            synced INTEGER NOT NULL,
            unit TEXT,
            cfg INTEGER NOT NULL DEFAULT 0,
            flags TEXT,
            role TEXT,
            reason TEXT,
            delivered INTEGER
        )
        """
    )
    # Only undelivered votes are indexed, so finding the backlog stays cheap however many
    # delivered votes wait for pruning.
    db.execute("CREATE INDEX votes_pending ON votes (seq) WHERE delivered IS NULL")
    db.execute("CREATE INDEX votes_delivered ON votes (delivered) WHERE delivered IS NOT NULL")


@MIGRATIONS(name="0002_meta")
def _create_meta(db: Database) -> None:
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


@MIGRATIONS(name="0003_held")
def _add_held(db: Database) -> None:
    # A vote still waiting for its follow-up answers (role, reason): committed, but not sent yet.
    db.execute("ALTER TABLE votes ADD COLUMN held INTEGER")


@MIGRATIONS(name="0004_store_identity")
def _add_store_identity(db: Database) -> None:
    # The store id makes a vote's identity (device, store, seq): a card re-imaged under the same
    # device id starts a new series instead of reusing seqs the fleet already holds. A database that
    # has already handed out seqs keeps sending them as it always did, in the legacy series ("");
    # a new one gets a random id.
    used = db.execute("SELECT 1 FROM sqlite_sequence WHERE name = 'votes' AND seq > 0").fetchone()
    store = "" if used else secrets.token_hex(8)
    db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('store', ?)", (json.dumps(store),))
    # A vote the fleet refused for good (SPEC 6.2): set aside with the reason, never sent again.
    db.execute("ALTER TABLE votes ADD COLUMN refused TEXT")
    db.execute("DROP INDEX votes_pending")
    db.execute("CREATE INDEX votes_pending ON votes (seq) WHERE delivered IS NULL AND refused IS NULL")


_COLUMNS = "seq, question, scale, answer, lang, wall, mono, boot, synced, unit, cfg, flags, role, reason"
_INSERT = (
    "INSERT INTO votes (question, scale, answer, lang, wall, mono, boot, synced, unit, cfg, flags, role, reason, held)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_NO_FLAGS: frozenset[str] = frozenset()

#: How many connection counter values one commit reserves. The terminal dials at most about once a
#: second (``device.mqtt.RECONNECT_MIN_S``; every two seconds while the broker stays away), so a
#: block lasts an hour or more of dialling: at most one commit an hour for the counter, instead of
#: one per attempt. A restart skips what is left of its block. The worst case for the counter's
#: range is a process that restarts every two seconds (systemd's ``RestartSec``) and reserves a
#: block each time: 1,800 values a second, 5.7e10 a year, so ``protocol.limits.MAX_INT`` (2**53 - 1,
#: about 9.0e15) lasts some 158,000 years; at the ordinary pace of one value per attempt it lasts
#: millions of years.
CONN_BLOCK = 3600


def _row_to_vote(row: tuple[Any, ...]) -> Vote:
    flags = frozenset(row[11].split(",")) if row[11] else _NO_FLAGS
    return Vote(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], bool(row[8]), row[9], row[10], flags, *row[12:]
    )


class VoteStore:
    """The durable queue of presses; safe to share between the press thread and the sync loop."""

    def __init__(self, path: str | Path, device_id: str, clock: Clock) -> None:
        """Open (creating or migrating) the vote database of terminal ``device_id``.

        Raises StoreError when the file is unusable or belongs to another terminal: votes written
        under one device id must never be sent under another.
        """
        self.path = Path(path)
        self.device_id = device_id
        #: This database's series of seqs (SPEC 7.1); "" is the legacy series, sent with no store id.
        self.store_id = ""
        self._clock = clock
        self._lock = threading.RLock()
        try:
            conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=10.0)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open vote database {self.path}: {exc}") from exc
        self._conn = conn
        # Connection counter values reserved on disk and not handed out yet: _conn_next.._conn_high.
        self._conn_next = 1
        self._conn_high = 0
        #: Bumped after every commit that can add a pending vote (record, release), so the sync agent
        #: can skip asking SQLite for new votes when nothing was added since it last found none.
        self.revision = 0
        try:
            self._prepare()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"vote database {self.path} is unusable (corrupt or not a database?): {exc}") from exc
        except StoreError:
            conn.close()
            raise

    def _prepare(self) -> None:
        conn = self._conn
        (check,) = conn.execute("PRAGMA quick_check").fetchone()
        if check != "ok":
            raise StoreError(f"vote database {self.path} failed its integrity check: {check}")
        (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        conn.execute("PRAGMA synchronous=FULL")
        (sync,) = conn.execute("PRAGMA synchronous").fetchone()
        if str(mode).lower() != "wal" or sync != 2:
            raise StoreError(f"vote database {self.path} refused WAL/synchronous=FULL (got {mode}, {sync})")
        self._db = Database(conn, execute_plugins=False)
        MIGRATIONS.apply(self._db)
        owner = self._get(conn, "device")
        if owner is None:
            self._put(conn, "device", self.device_id)
        elif owner != self.device_id:
            raise StoreError(
                f"vote database {self.path} belongs to terminal {owner!r}, not {self.device_id!r}: refusing to"
                " send its votes under another id (fix device_id in the settings, or move the file aside)"
            )
        self.store_id = str(self._get(conn, "store"))
        # A vote held for its follow-up when the last process ended (power cut, crash) goes as it is.
        conn.execute("UPDATE votes SET held = NULL WHERE held IS NOT NULL")
        conn.commit()

    def close(self) -> None:
        """Close the database; the store cannot be used afterwards."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> VoteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _sql(self, what: str) -> Iterator[sqlite3.Connection]:
        """Hold the lock and turn SQLite's errors into StoreError, rolling back a half transaction."""
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.rollback()
                raise StoreError(f"vote database {self.path}: {what} failed: {exc}") from exc

    # -- votes ---------------------------------------------------------------------------------

    def record(
        self,
        question: str,
        scale: str,
        answer: int,
        lang: str,
        unit: str | None = None,
        cfg: int = 0,
        flags: Iterable[str] = (),
        role: str | None = None,
        reason: str | None = None,
        held: bool = False,
    ) -> Vote:
        """Validate and durably commit one press before returning it, so a shown 'thanks' is never a lie.

        ``held`` keeps the committed vote from the fleet until ``release`` adds its follow-up answers.
        """
        now = read_clock(self._clock)  # never a pre-sync wall time labelled synchronised
        flagset = frozenset(flags)
        # seq=1 stands in until SQLite assigns the real one; validation does not depend on it.
        vote = Vote(
            1,
            question,
            scale,
            answer,
            lang,
            now.wall,
            now.mono,
            now.boot,
            now.synced,
            unit,
            cfg,
            flagset,
            role,
            reason,
        )
        protocol.check_vote(vote)  # a ProtocolError here is a caller mistake, nothing is stored
        params = (*vote[1:11], ",".join(sorted(flagset)) or None, role, reason, 1 if held else None)
        with self._sql("recording a vote") as conn:
            seq = conn.execute(_INSERT, params).lastrowid
            conn.commit()
            self.revision += 1
        assert seq is not None
        return vote._replace(seq=seq)

    def pending(self, limit: int = 100, after: int = 0) -> list[Vote]:
        """Undelivered votes with seq > ``after``, oldest first, none skipped, at most ``limit``."""
        with self._sql("reading pending votes") as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM votes"
                " WHERE delivered IS NULL AND refused IS NULL AND held IS NULL AND seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        return [_row_to_vote(r) for r in rows]

    def release(self, seq: int, role: str | None = None, reason: str | None = None) -> Vote:
        """Add a held vote's follow-up answers and let it go to the fleet; its identity (seq) never changes."""
        with self._sql("releasing a held vote") as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM votes WHERE seq = ? AND held IS NOT NULL", (seq,)).fetchone()
            if row is None:
                raise StoreError(f"vote {seq} is not held; it may already be on its way to the fleet")
            vote = _row_to_vote(row)._replace(role=role, reason=reason)
            protocol.check_vote(vote)  # a bad role or reason is a caller mistake; the vote stays held
            conn.execute("UPDATE votes SET role = ?, reason = ?, held = NULL WHERE seq = ?", (role, reason, seq))
            conn.commit()
            self.revision += 1
        return vote

    def oldest_pending(self) -> Vote | None:
        """The oldest vote counted in ``depth`` (held ones too), for the heartbeat's backlog age.

        It agrees with ``depth``: None exactly when depth is 0 (SPEC 6.4, ``oldest`` and ``queue``).
        """
        with self._sql("reading the oldest pending vote") as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM votes WHERE delivered IS NULL AND refused IS NULL ORDER BY seq LIMIT 1"
            ).fetchone()
        return None if row is None else _row_to_vote(row)

    def oldest_pending_wall_ms(self) -> int | None:
        """Wall time of the oldest undelivered vote, or None when the backlog is empty."""
        vote = self.oldest_pending()
        return None if vote is None else vote.wall

    def depth(self) -> int:
        """How many votes wait for the fleet's acknowledgement (refused ones wait for nothing)."""
        with self._sql("counting pending votes") as conn:
            (n,) = conn.execute("SELECT count(*) FROM votes WHERE delivered IS NULL AND refused IS NULL").fetchone()
        return int(n)

    def refused_count(self) -> int:
        """How many votes the fleet has refused for good, for the heartbeat and the operator."""
        with self._sql("counting refused votes") as conn:
            (n,) = conn.execute("SELECT count(*) FROM votes WHERE refused IS NOT NULL").fetchone()
        return int(n)

    def refused_votes(self) -> list[tuple[Vote, str]]:
        """Every vote set aside, with the fleet's reason, oldest first (kept for diagnosis)."""
        with self._sql("reading refused votes") as conn:
            rows = conn.execute(f"SELECT {_COLUMNS}, refused FROM votes WHERE refused IS NOT NULL ORDER BY seq")
            return [(_row_to_vote(r[:-1]), r[-1]) for r in rows]

    def mark_refused(self, reason: str, ranges: Iterable[tuple[int, int]]) -> int:
        """Set aside pending votes the fleet refused for good; returns how many were still pending.

        They are kept (never sent again, never pruned) so an operator can see what was refused and why.
        """
        changed = 0
        with self._sql("setting refused votes aside") as conn:
            for lo, hi in ranges:
                cur = conn.execute(
                    "UPDATE votes SET refused = ? WHERE seq BETWEEN ? AND ? AND delivered IS NULL AND refused IS NULL",
                    (reason, lo, hi),
                )
                changed += cur.rowcount
            conn.commit()
        return changed

    def last_vote(self) -> Vote | None:
        """The most recent press, delivered or not, so a restarted terminal still knows its pace."""
        with self._sql("reading the last vote") as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM votes ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else _row_to_vote(row)

    def mark_delivered(self, seqs: Iterable[int]) -> int:
        """Mark acknowledged votes delivered; returns how many were still pending (0 for a duplicate ack)."""
        return self.mark_delivered_ranges(protocol.seq_ranges(seqs))

    def mark_delivered_ranges(self, ranges: Iterable[tuple[int, int]]) -> int:
        """Like mark_delivered for inclusive seq ranges, so a wide ack costs no per-seq work in Python."""
        now = self._clock.wall_ms()
        changed = 0
        with self._sql("marking votes delivered") as conn:
            # No fsync for this commit: a delivered-mark lost to a power cut only makes the vote go
            # again, and the fleet stores it once and acks it again. Skipping the fsync keeps the
            # lock short, so a press is not kept waiting behind an ack (the next press's commit,
            # with synchronous=FULL, makes this one durable as well).
            conn.execute("PRAGMA synchronous=NORMAL")
            try:
                for lo, hi in ranges:
                    cur = conn.execute(
                        "UPDATE votes SET delivered = ? WHERE seq BETWEEN ? AND ? AND delivered IS NULL"
                        " AND refused IS NULL",
                        (now, lo, hi),
                    )
                    changed += cur.rowcount
                conn.commit()
            finally:
                conn.execute("PRAGMA synchronous=FULL")
        return changed

    def prune_delivered(self, older_than_days: float) -> int:
        """Delete votes delivered more than ``older_than_days`` ago; pending votes are never touched."""
        cutoff = self._clock.wall_ms() - int(older_than_days * 86_400_000)
        with self._sql("pruning delivered votes") as conn:
            cur = conn.execute("DELETE FROM votes WHERE delivered IS NOT NULL AND delivered < ?", (cutoff,))
            conn.commit()
        return cur.rowcount

    # -- meta ----------------------------------------------------------------------------------

    def _get(self, conn: sqlite3.Connection, key: str) -> Any:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def _put(self, conn: sqlite3.Connection, key: str, value: Any) -> None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value, separators=(",", ":"), ensure_ascii=False)),
        )

    def next_conn(self) -> int:
        """A connection counter larger than any this file has handed out before, so a stale will always loses.

        The stored ``conn`` is a high-water mark: every value up to it may have been used. A value is
        handed out only once it is at or below the committed mark, so it stays unique across power
        cuts; a new block of ``CONN_BLOCK`` values is committed (fsync) only when the last runs out.
        Values reserved but never used are skipped after a restart, which is harmless: the fleet
        only compares (SPEC 8). Raises StoreError when a new block cannot be committed.
        """
        with self._sql("counting a connection") as conn:
            if self._conn_next > self._conn_high:
                # Never below what is on disk, should another process have reserved meanwhile.
                start = max(self._conn_next, int(self._get(conn, "conn") or 0) + 1)
                high = start + CONN_BLOCK - 1
                self._put(conn, "conn", high)
                conn.commit()
                self._conn_next, self._conn_high = start, high
            value = self._conn_next
            self._conn_next += 1
        return value

    def save_config(self, version: int, doc: dict[str, Any]) -> None:
        """Persist the configuration now in force, so the terminal runs it again after a reboot."""
        with self._sql("saving the configuration") as conn:
            self._put(conn, "config", {"version": version, "doc": doc})
            conn.commit()

    def load_config(self) -> tuple[int, dict[str, Any]] | None:
        """The last configuration saved, as (version, doc), or None for a terminal never configured."""
        with self._sql("loading the configuration") as conn:
            value = self._get(conn, "config")
        return None if value is None else (int(value["version"]), value["doc"])

    def save_config_rejection(self, version: int, reason: str) -> None:
        """Remember the last rejected configuration and why, for diagnostics after a restart."""
        with self._sql("saving a configuration rejection") as conn:
            self._put(conn, "config_rejected", {"version": version, "reason": reason})
            conn.commit()

    def load_config_rejection(self) -> tuple[int, str] | None:
        """The last rejected (version, reason), or None."""
        with self._sql("loading a configuration rejection") as conn:
            value = self._get(conn, "config_rejected")
        return None if value is None else (int(value["version"]), str(value["reason"]))
