"""A scratch PostgreSQL database for benchmarks and tests: created with a random name, dropped after."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

#: The development server the guide names (trust auth, user postgres).
DEFAULT_PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


def server_url(server: str) -> str:
    """A server URL (no database) with the psycopg 3 driver named."""
    return server.rstrip("/").replace("postgresql://", "postgresql+psycopg://", 1)


def answers(server: str) -> bool:
    """True when the server accepts a connection to its ``postgres`` database within 3 s."""
    engine = sa.create_engine(f"{server_url(server)}/postgres", connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


@contextmanager
def scratch_database(server: str, prefix: str = "hymy_scratch") -> Iterator[str]:
    """Create a database with a random name on ``server``; yield its URL; drop it (and its sessions) after."""
    base = server_url(server)
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = sa.create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        try:
            yield f"{base}/{name}"
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        admin.dispose()
