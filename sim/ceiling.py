"""The bare reference pipelines that benchmarks measure our code against, in the same run.

They do the least work the job allows with the same libraries and SQLite settings and none
of our abstractions, so "x % of ceiling" says what our code costs, whatever the machine.
"""

from __future__ import annotations

import json
import sqlite3
import time
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

_BARE_VOTES = """
CREATE TABLE IF NOT EXISTS votes (
    device TEXT NOT NULL, seq INTEGER NOT NULL, question TEXT NOT NULL, scale TEXT NOT NULL,
    answer INTEGER NOT NULL, lang TEXT NOT NULL, wall INTEGER NOT NULL, mono INTEGER NOT NULL,
    boot TEXT NOT NULL, synced INTEGER NOT NULL, unit TEXT, cfg INTEGER NOT NULL,
    flags TEXT, received INTEGER NOT NULL,
    PRIMARY KEY (device, seq)
)
"""
_BARE_INSERT = "INSERT OR IGNORE INTO votes VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"


def open_bare_db(path: Path | str, synchronous: str = "FULL") -> sqlite3.Connection:
    """A plain sqlite3 connection with WAL and the given synchronous level, and the votes table."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(_BARE_VOTES)
    return conn


def _ranges(seqs: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for s in sorted(seqs):
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


_BARE_VOTES_PG = _BARE_VOTES.replace("INTEGER", "BIGINT").replace("synced BIGINT", "synced BOOLEAN")
_BARE_INSERT_PG = "INSERT INTO votes VALUES (" + ",".join(["%s"] * 14) + ") ON CONFLICT DO NOTHING"


class _BareSink:
    """Where the bare subscriber writes a batch: SQLite (a path) or PostgreSQL (a postgresql:// URL)."""

    def __init__(self, db: str, synchronous: str) -> None:
        self.pg = db.startswith("postgresql")
        if self.pg:
            import psycopg

            self.conn: Any = psycopg.connect(db.replace("postgresql+psycopg://", "postgresql://"))
            self.conn.execute(_BARE_VOTES_PG)
            self.conn.commit()
        else:
            self.conn = open_bare_db(db, synchronous)

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert and commit: ``BEGIN; executemany; COMMIT`` and nothing else."""
        if self.pg:
            with self.conn.cursor() as cur:
                cur.executemany(_BARE_INSERT_PG, rows)
            self.conn.commit()
        else:
            self.conn.execute("BEGIN")
            self.conn.executemany(_BARE_INSERT, rows)
            self.conn.execute("COMMIT")


def run_bare_ingest(
    host: str, port: int, db_path: str, synchronous: str, ready: EventType, stop: EventType, store: bool = True
) -> None:
    """Subscribe to every terminal's votes, insert each batch straight into the database, ack after commit.

    Runs in its own process (one core, like the real ingest). No validation, no objects: json.loads,
    executemany, commit, publish — the ceiling for any ingest built on paho and SQLite (or psycopg and
    PostgreSQL, given a URL). With ``store`` False it acks without storing: the broker and paho's ceiling.
    """
    sink = _BareSink(db_path, synchronous) if store else None

    def on_message(client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        data = json.loads(msg.payload)
        device = data["device"]
        now = int(time.time() * 1000)
        rows = [
            (
                device,
                v["seq"],
                v["question"],
                v["scale"],
                v["answer"],
                v["lang"],
                v["wall"],
                v["mono"],
                v["boot"],
                v["synced"],
                v.get("unit"),
                v.get("cfg", 0),
                ",".join(v.get("flags", ())),
                now,
            )
            for v in data["votes"]
        ]
        if sink is not None:
            sink.write(rows)
        ack = {"v": 1, "type": "ack", "device": device, "batch": data["batch"], "ranges": _ranges([r[1] for r in rows])}
        client.publish(f"hymy/v1/{device}/ack", json.dumps(ack, separators=(",", ":")), qos=1)

    def on_connect(client: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        client.subscribe("hymy/v1/+/votes", qos=1)

    def on_subscribe(_c: mqtt.Client, _u: object, _mid: int, _reasons: object, _p: object) -> None:
        # Ready only once the broker has the subscription: a batch published before it would be
        # dropped, and the load (which never resends) would wait for its ack for ever.
        ready.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="hymy-bare-ingest", clean_session=True)
    client.max_inflight_messages_set(1000)
    client.on_message = on_message
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.connect(host, port)
    client.loop_start()
    stop.wait()
    client.disconnect()
    client.loop_stop()
    if sink is not None:
        sink.conn.close()


def bare_commit(conn: sqlite3.Connection, seq: int) -> int:
    """Nanoseconds for one single-row INSERT + COMMIT on ``conn`` (from open_bare_db)."""
    row = ("bare", seq, "q", "nps11", 9, "fi", int(time.time() * 1000), seq, "b", 1, "u", 1, "", 0)
    t0 = time.perf_counter_ns()
    conn.execute("BEGIN")
    conn.execute(_BARE_INSERT, row)
    conn.execute("COMMIT")
    return time.perf_counter_ns() - t0


def bare_commit_latencies(path: Path | str, n: int) -> list[int]:
    """Nanoseconds for each of ``n`` single-row INSERT + COMMIT with WAL and synchronous=FULL."""
    conn = open_bare_db(path, "FULL")
    try:
        return [bare_commit(conn, i) for i in range(1, n + 1)]
    finally:
        conn.close()
