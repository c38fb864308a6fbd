"""A PostgreSQL for the fleet store's tests: a database of its own per test run, tables emptied per test.

The server is the one at 127.0.0.1:5432 (trust auth, user postgres), or ``HYMY_TEST_PG`` (a server URL
such as ``postgresql://postgres@db.example:5432``). Without either, a throw-away server is started
from the installed PostgreSQL binaries (initdb refuses root, so it runs as ``nobody``).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from fleet.db.tables import metadata

DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


def _answers(server: str) -> bool:
    engine = sa.create_engine(f"{server}/postgres", connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def throwaway_server() -> Iterator[str]:
    """Start a PostgreSQL cluster in a temporary directory; yield its server URL; stop and remove it."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        raise RuntimeError("no PostgreSQL server answers and none is installed (apt-get install postgresql)")
    bindir = Path(bins[-1]).parent
    top = Path(tempfile.mkdtemp(prefix="hymy-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        shutil.chown(top, "nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
    port = _free_port()
    data = top / "data"
    try:
        subprocess.run(
            [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {top} -c fsync=off"
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-w", "-l", str(top / "log"), "start"],
            check=True,
            capture_output=True,
        )
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
        finally:
            subprocess.run(
                [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
            )
    finally:
        shutil.rmtree(top, ignore_errors=True)


@contextmanager
def fleet_test_database() -> Iterator[str]:
    """A fresh database with a random name for one test run; its URL; dropped afterwards."""
    server = os.environ.get("HYMY_TEST_PG", "").replace("postgresql://", "postgresql+psycopg://")
    with _server(server) as base:
        name = f"hymy_test_{secrets.token_hex(4)}"
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


@contextmanager
def _server(explicit: str) -> Iterator[str]:
    if explicit:
        yield explicit  # asked for by name: a server that does not answer is a failure, not a skip
    elif _answers(DEFAULT_SERVER):
        yield DEFAULT_SERVER
    else:
        with throwaway_server() as url:
            yield url


def empty_tables(url: str) -> None:
    """Empty every fleet table (a test starts clean; the schema and its stamp stay)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            present = set(sa.inspect(conn).get_table_names()) & set(metadata.tables)
            if present:
                conn.exec_driver_sql(f"TRUNCATE {', '.join(sorted(present))} RESTART IDENTITY")
    finally:
        engine.dispose()
