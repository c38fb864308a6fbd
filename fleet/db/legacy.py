"""Adopting a fleet database made by the releases before Alembic (sqlite-utils migrations, SQLite only).

Those databases record their steps in ``_sqlite_migrations`` (set "hymy-fleet"): ``0001_initial`` and
``0002_store_identity``. Their tables are exactly Alembic revision 0001's, so a database with both
steps is stamped as it is; one with only the first gets the second step here (SQLite cannot change a
primary key in place, so votes is rebuilt once and keeps its rows) and is then stamped. The table
``_sqlite_migrations`` stays, so the database still opens with the previous release.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from ..errors import StoreError

LEGACY_TABLE = "_sqlite_migrations"
LEGACY_SET = "hymy-fleet"
#: The Alembic revision whose schema equals the last sqlite-utils step.
ADOPTED_REVISION = "0001"

_VOTES_V2 = """
CREATE TABLE votes_v2 (
    device TEXT NOT NULL,
    store TEXT NOT NULL DEFAULT '',
    seq INTEGER NOT NULL,
    question TEXT NOT NULL,
    scale TEXT NOT NULL,
    answer INTEGER NOT NULL,
    lang TEXT NOT NULL,
    wall INTEGER NOT NULL,
    mono INTEGER NOT NULL,
    boot TEXT NOT NULL,
    synced INTEGER NOT NULL,
    unit TEXT,
    cfg INTEGER NOT NULL,
    flags TEXT,
    misuse INTEGER NOT NULL,
    role TEXT,
    reason TEXT,
    received INTEGER NOT NULL,
    best INTEGER NOT NULL,
    time_status TEXT NOT NULL,
    PRIMARY KEY (device, store, seq)
)
"""
_COLUMNS = (
    "device, seq, question, scale, answer, lang, wall, mono, boot, synced, unit, cfg, flags, misuse, role,"
    " reason, received, best, time_status"
)


def legacy_steps(conn: Connection) -> set[str]:
    """The sqlite-utils steps a legacy database records as applied."""
    rows = conn.exec_driver_sql(f"SELECT name FROM {LEGACY_TABLE} WHERE migration_set = ?", (LEGACY_SET,))
    return {r[0] for r in rows}


def adopt(conn: Connection) -> str:
    """Bring a legacy database to the schema of ``ADOPTED_REVISION``, in the caller's transaction; return it."""
    steps = legacy_steps(conn)
    if "0001_initial" not in steps:
        raise StoreError(f"{LEGACY_TABLE} lists no hymy-fleet schema: not a fleet database")
    if "0002_store_identity" not in steps:
        # A vote's identity became (device, store, seq) (SPEC 7.1); votes stored before keep the series "".
        conn.exec_driver_sql(_VOTES_V2)
        conn.exec_driver_sql(f"INSERT INTO votes_v2 ({_COLUMNS}) SELECT {_COLUMNS} FROM votes ORDER BY rowid")
        conn.exec_driver_sql("DROP TABLE votes")
        conn.exec_driver_sql("ALTER TABLE votes_v2 RENAME TO votes")
        conn.exec_driver_sql("CREATE INDEX votes_unsynced ON votes (device, boot) WHERE synced = 0")
        conn.exec_driver_sql("ALTER TABLE terminals ADD COLUMN refused INTEGER")
    return ADOPTED_REVISION
