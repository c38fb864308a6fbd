"""A PostgreSQL for the fleet store's tests: a database of its own per test run, tables emptied per test.

The server is the one at 127.0.0.1:5432 (trust auth, user postgres), or ``HYMY_TEST_PG`` (a server URL
such as ``postgresql://postgres@db.example:5432``). Without either, a throw-away server is started
from the installed PostgreSQL binaries (initdb refuses root, so it runs as ``nobody``).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from fleet.db.tables import metadata
from sim.pgdb import answers, scratch_database

DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayServer:
    """A PostgreSQL cluster in a temporary directory, on a free port, that a test may stop and start again."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            raise RuntimeError("no PostgreSQL server answers and none is installed (apt-get install postgresql)")
        self._bindir = Path(bins[-1]).parent
        self._top = Path(tempfile.mkdtemp(prefix="hymy-pg-"))
        self._as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root
            shutil.chown(self._top, "nobody")
            self._as_user = ["runuser", "-u", "nobody", "--"]
        self.port = _free_port()
        self._data = self._top / "data"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"
        subprocess.run(
            [*self._as_user, str(self._bindir / "initdb"), "-D", str(self._data), "-U", "postgres", "--auth=trust"]
            + ["-E", "UTF8"],
            check=True,
            capture_output=True,
        )

    def _ctl(self, *args: str, check: bool = True) -> None:
        subprocess.run([*self._as_user, str(self._bindir / "pg_ctl"), "-D", str(self._data), *args], check=check,
                       capture_output=True)  # fmt: skip

    def start(self) -> None:
        """Start (or start again) and wait until it accepts connections."""
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self._top} -c fsync=off"
        self._ctl("-o", opts, "-w", "-l", str(self._top / "log"), "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop it: ``fast`` disconnects every client, ``immediate`` is a crash."""
        self._ctl("-m", mode, "-w", "stop", check=False)

    def remove(self) -> None:
        """Stop it if running and delete its files."""
        self.stop("immediate")
        shutil.rmtree(self._top, ignore_errors=True)


@contextmanager
def throwaway_server() -> Iterator[str]:
    """Start a PostgreSQL cluster in a temporary directory; yield its server URL; stop and remove it."""
    server = ThrowawayServer()
    try:
        server.start()
        yield server.url
    finally:
        server.remove()


@contextmanager
def fleet_test_database() -> Iterator[str]:
    """A fresh database with a random name for one test run; its URL; dropped afterwards."""
    with _server(os.environ.get("HYMY_TEST_PG", "")) as base, scratch_database(base, "hymy_test") as url:
        yield url


@contextmanager
def _server(explicit: str) -> Iterator[str]:
    if explicit:
        yield explicit  # asked for by name: a server that does not answer is a failure, not a skip
    elif answers(DEFAULT_SERVER):
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
