"""Engines for the fleet store: which database a name means, and each dialect's connection settings.

Everything that differs between SQLite and PostgreSQL at the connection level lives here: the URL
mapping, SQLite's WAL and ``synchronous`` (set on every new connection by a listener, as the ack
follows the commit), how a write transaction begins, and which dialect's INSERT ... ON CONFLICT to use.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine

from ..errors import StoreError

#: Connection.info key naming the statement the next transaction on SQLite begins with.
BEGIN_KEY = "hymy_begin"
#: Writers on SQLite take the write lock at BEGIN, so two writers never deadlock on lock upgrade.
BEGIN_WRITE = "BEGIN IMMEDIATE"
SYNCHRONOUS = ("FULL", "NORMAL", "EXTRA")


def database_url(target: str | Path) -> URL:
    """The URL a store name means: a path or ``sqlite:///…`` is SQLite, ``postgresql://…`` PostgreSQL (psycopg 3)."""
    text = str(target)
    if "://" not in text:
        return URL.create("sqlite+pysqlite", database=text)
    url = sa.make_url(text)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite+pysqlite")
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    raise StoreError(f"unsupported fleet database {url.render_as_string(hide_password=True)}: use SQLite or PostgreSQL")


def create_fleet_engine(url: URL, synchronous: str = "FULL") -> Engine:
    """An engine whose every connection is set up for the fleet (WAL and ``synchronous`` on SQLite)."""
    if url.get_backend_name() == "sqlite":
        if synchronous.upper() not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, got {synchronous!r}")
        # A single connection is held by each store; other threads borrow it under the store's lock.
        engine = sa.create_engine(url, connect_args={"timeout": 30.0, "check_same_thread": False})
        _setup_sqlite(engine, synchronous.upper())
        return engine
    # Positional parameters, so the hot insert can take the plain tuples it builds (see store.py).
    return sa.create_engine(url, paramstyle="format", pool_pre_ping=True)


#: How long a new connection keeps asking for WAL while another connection holds the database.
WAL_WAIT_S = 30.0


def _set_wal(dbapi_conn: sqlite3.Connection) -> tuple[str]:
    """``PRAGMA journal_mode=WAL``, asked again while the database is locked.

    Switching a new database to WAL needs it to itself, and SQLite does not use its busy timeout for
    that: processes opening a new fleet database at once (the web and the ingest workers) got
    "database is locked" at once. They now wait, up to WAL_WAIT_S, as for any other lock.
    """
    deadline = time.monotonic() + WAL_WAIT_S
    delay = 0.005
    while True:
        try:
            return tuple(dbapi_conn.execute("PRAGMA journal_mode=WAL").fetchone())  # type: ignore[return-value]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _setup_sqlite(engine: Engine, synchronous: str) -> None:
    path = engine.url.database

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Transactions are begun by the "begin" listener below, not by the driver's own guesswork.
        dbapi_conn.isolation_level = None
        (mode,) = _set_wal(dbapi_conn)
        if str(mode).lower() != "wal" and path not in (None, "", ":memory:"):
            raise StoreError(f"fleet database {path} refused WAL (got {mode})")
        dbapi_conn.execute(f"PRAGMA synchronous={synchronous}")

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # On the DBAPI connection: once per transaction, so on the hot path of every vote batch.
        conn.connection.dbapi_connection.execute(conn.info.pop(BEGIN_KEY, "BEGIN"))  # type: ignore[union-attr]


def is_sqlite(conn: Connection | Engine) -> bool:
    """True on SQLite, where writers begin IMMEDIATE."""
    return conn.dialect.name == "sqlite"


def upsert(conn: Connection | Engine, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """INSERT … ON CONFLICT for this connection's dialect (both offer the same builder methods)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
