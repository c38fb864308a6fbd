"""Ingest on PostgreSQL with 1, 2 and 4 workers on one MQTT 5 shared subscription, beside bare ceilings.

Every figure comes from the same run on the same broker and server: the bare subscriber acking
without storing (the broker, paho and the load generator's ceiling), the bare subscriber storing into
PostgreSQL (one connection's ceiling: json, executemany, commit, ack), and ``hymy fleet ingest
--workers N``. CPU seconds of each side (load generator, broker, ingest processes, PostgreSQL
backends) are read from /proc over each run, so the report can say which one was the limit.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from fleet.db.engine import database_url

from .brokers import MosquittoBroker
from .ceiling import run_bare_ingest
from .load import make_batches, publish_load
from .pgdb import scratch_database
from .procs import usage


def _cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        u = usage(pid)
        if u is not None:
            total += u.cpu_s
    return total


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (the supervisor's workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _postgres_pids() -> list[int]:
    """Every PostgreSQL server process on this machine (backends, WAL writer, checkpointer)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def _count(url: str, table: str = "votes") -> int:
    engine = sa.create_engine(database_url(url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


@contextmanager
def _bare(host: str, port: int, db: str, store: bool) -> Iterator[int]:
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=run_bare_ingest, args=(host, port, db, "FULL", ready, stop, store), daemon=True)
    proc.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the bare subscriber did not start")
        yield proc.pid or 0
    finally:
        stop.set()
        proc.join(20)
        if proc.is_alive():
            proc.kill()


@contextmanager
def _workers(host: str, port: int, db: str, n: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    from .bench import terminate, wait_fleet_online

    argv = [sys.executable, "-m", "fleet", "--db", db, "ingest", "--broker", f"{host}:{port}", "--workers", str(n)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_fleet_online(host, port, 60)
        if n > 1:  # every worker subscribed: the online state comes from the first
            time.sleep(2.0)
        yield proc
    finally:
        terminate(proc, 30)


def _measure(host: str, port: int, broker_pid: int | None, side: list[int], batches: Any, votes: int) -> dict[str, Any]:
    """Publish the load once; votes/s and the CPU each side used meanwhile (% of one core)."""
    me = os.getpid()
    pg = _postgres_pids()
    groups = {"ingest": side, "postgres": pg, "broker": [broker_pid] if broker_pid else [], "load": [me]}
    before = {k: _cpu_of(v) for k, v in groups.items()}
    t0 = time.perf_counter()
    result = publish_load(host, port, batches, votes, timeout=600)
    wall = time.perf_counter() - t0
    cpu = {k: round(100 * (_cpu_of(groups[k]) - before[k]) / wall) for k in groups}
    return {"votes_per_s": round(result.votes_per_s), "cpu_pct": cpu}


def bench_workers(
    server: str, workdir: Path, terminals: int, votes_each: int, per_batch: int, workers: tuple[int, ...] = (1, 2, 4)
) -> dict[str, Any]:
    """Votes/s into PostgreSQL through Mosquitto: bare (no store), bare (PostgreSQL), ours with N workers."""
    total = terminals * votes_each
    runs: dict[str, Any] = {}
    with MosquittoBroker() as broker:
        host, port = broker.host, broker.port
        batches = make_batches(terminals, votes_each, per_batch, int(time.time() * 1000) - 86_400_000)
        with _bare(host, port, "", store=False) as pid:
            runs["bare_no_store"] = _measure(host, port, broker.pid, [pid], batches, total)
        with scratch_database(server, "hymy_bench") as url:
            with _bare(host, port, url, store=True) as pid:
                runs["bare_postgresql"] = _measure(host, port, broker.pid, [pid], batches, total)
            if _count(url) != total:
                raise RuntimeError(f"the bare subscriber stored {_count(url)} of {total}")
        for n in workers:
            # A fresh load of the same shape with new batch ids, into a fresh database.
            with scratch_database(server, "hymy_bench") as url:
                with _workers(host, port, url, n, workdir / f"workers-{n}.log") as proc:
                    runs[f"workers_{n}"] = _measure(host, port, broker.pid, _descendants(proc.pid), batches, total)
                stored = _count(url)
                if stored != total:
                    raise RuntimeError(f"{n} workers stored {stored} of {total}")
    return {"terminals": terminals, "votes": total, "votes_per_message": per_batch, "cpus": os.cpu_count(), **runs}
