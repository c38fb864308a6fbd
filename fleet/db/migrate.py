"""Bring a fleet database to the newest schema with Alembic, at every start and before any write.

The revisions live in ``fleet/migrations``; the Alembic ``Config`` is built here, so no alembic.ini is
needed at run time. Several processes (ingest workers, the web) may start at once, so only one
migrates at a time: PostgreSQL takes a transaction-scoped advisory lock, SQLite begins IMMEDIATE
(the write lock). Schema changes, the stamp and the lock share one transaction (PostgreSQL and SQLite
DDL are both transactional), so a failed migration leaves the database as it was. An empty database
is created at the newest schema from ``tables.metadata`` and stamped (no replay of old revisions);
one made by the sqlite-utils releases is adopted (``legacy``).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from ..errors import StoreError
from . import legacy
from .engine import BEGIN_KEY, BEGIN_WRITE, is_sqlite
from .tables import metadata

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
#: pg_advisory_xact_lock key for fleet migrations (any constant shared by every fleet process).
LOCK_KEY = 0x68796D79  # "hymy"


def alembic_config(conn: Connection | None = None) -> Config:
    """Alembic's configuration built in code; ``conn`` is the connection env.py migrates on."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def head() -> str:
    """The newest revision."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


def current(conn: Connection) -> str | None:
    """The revision a database is stamped with (None: not stamped)."""
    return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine) -> None:
    """Create, adopt or upgrade the database to the newest revision, one process at a time."""
    with engine.connect() as conn:
        if is_sqlite(conn):
            conn.info[BEGIN_KEY] = BEGIN_WRITE
        with conn.begin():
            if not is_sqlite(conn):
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
            _migrate(conn)


def _migrate(conn: Connection) -> None:
    cfg = alembic_config(conn)
    names = set(sa.inspect(conn).get_table_names())
    if "alembic_version" not in names or current(conn) is None:
        ours = names & set(metadata.tables)
        if not ours:
            metadata.create_all(conn)
            command.stamp(cfg, "head")
            return
        if legacy.LEGACY_TABLE in names and is_sqlite(conn):
            command.stamp(cfg, legacy.adopt(conn))
        else:
            raise StoreError(f"the database holds fleet tables ({', '.join(sorted(ours))}) but no schema version")
    command.upgrade(cfg, "head")
