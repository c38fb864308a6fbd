"""Exactly once under faults: real terminal processes, the real fleet ingest and a real broker.

Three terminals press 1,000 votes each while the broker is stopped and restarted, the fleet
ingest is SIGKILLed and restarted, and one terminal is SIGKILLed mid-stream and restarted
from its database. At the end the fleet holds each vote exactly once and every queue is empty.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from device.clock import SystemClock
from device.store import VoteStore
from fleet.store import open_store
from sim.brokers import BrokerRunner
from tests import waiting
from tests.presses import assert_exactly_once
from tests.processes import Processes

VOTES = 1000
TERMINALS = ("term-a01", "term-b02", "term-c03")
PY = sys.executable


def pressed(db: Path) -> int:
    """Votes committed so far in a terminal's database, read beside the running process."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM votes").fetchone()[0])
    except sqlite3.OperationalError:  # the terminal has not created its table yet
        return 0
    finally:
        conn.close()


def test_every_vote_arrives_exactly_once_through_broker_restart_ingest_kill_and_terminal_kill(
    broker: BrokerRunner, processes: Processes, tmp_path: Path
) -> None:
    address = f"{broker.host}:{broker.port}"
    fleet_db = tmp_path / "fleet.db"

    def start_fleet() -> subprocess.Popen[bytes]:
        return processes.start("fleet", "fleet", "--db", str(fleet_db), "--broker", address, "ingest")

    def start_terminal(device: str) -> subprocess.Popen[bytes]:
        db = tmp_path / f"{device}.db"
        return processes.start(
            device, "sim.presser", "--db", str(db), "--device", device, "--broker", address,
            "--votes", str(VOTES), "--rate", "150", "--seed", str(TERMINALS.index(device)),
        )  # fmt: skip

    fleet = start_fleet()
    terminals = {d: start_terminal(d) for d in TERMINALS}
    first_db = tmp_path / f"{TERMINALS[0]}.db"

    def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait as tests.waiting does, but fail with what the children printed."""
        try:
            waiting.wait_until(predicate, timeout, what)
        except AssertionError as exc:
            logs = "\n".join(f"--- {name}:\n{processes.log(name)}" for name in (*TERMINALS, "fleet"))
            raise AssertionError(f"{exc}\n{logs}") from None

    # (a) the broker goes away for a while mid-stream and comes back on the same port.
    wait_until(lambda: pressed(first_db) >= 150, 30, "presses before the broker outage")
    broker.stop()
    time.sleep(1.5)
    broker.start()

    # (b) the fleet ingest dies without a chance to clean up, and is started again.
    wait_until(lambda: pressed(first_db) >= 450, 30, "presses before killing the ingest")
    fleet.send_signal(signal.SIGKILL)
    fleet.wait()
    time.sleep(0.5)
    fleet = start_fleet()

    # (c) a terminal loses power mid-stream and boots again from its database.
    victim = TERMINALS[1]
    victim_db = tmp_path / f"{victim}.db"
    wait_until(lambda: pressed(victim_db) >= 600, 30, "presses before the terminal's power cut")
    terminals[victim].send_signal(signal.SIGKILL)
    terminals[victim].wait()
    assert pressed(victim_db) < VOTES, "the power cut came too late to be mid-stream"
    terminals[victim] = start_terminal(victim)

    for device, proc in terminals.items():
        try:
            code = proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            code = None
        assert code == 0, f"{device} ended with {code}:\n{processes.log(device)}\nfleet:\n{processes.log('fleet')}"
    assert fleet.poll() is None, f"ingest died:\n{processes.log('fleet')}"
    os.kill(fleet.pid, signal.SIGTERM)
    assert fleet.wait(timeout=20) == 0

    store = open_store(str(fleet_db))
    try:
        # By what identifies a press, not by the fleet's own key, so a copy under another key shows.
        assert_exactly_once(store, [(device, [tmp_path / f"{device}.db"]) for device in TERMINALS])
        for device in TERMINALS:
            seqs = [v.seq for v in store.stored_votes(device)]
            assert seqs == list(range(1, VOTES + 1)), f"{device}: {len(seqs)} stored, {len(set(seqs))} distinct"
        assert store.vote_count() == VOTES * len(TERMINALS)
    finally:
        store.close()
    for device in TERMINALS:
        with VoteStore(tmp_path / f"{device}.db", device, SystemClock()) as terminal_store:
            assert terminal_store.depth() == 0, f"{device} still has votes queued"
            last = terminal_store.last_vote()
            assert last is not None and last.seq == VOTES
