"""Several ingest workers on one MQTT 5 shared subscription: they split the load, and one dying loses nothing.

Real Mosquitto (2.x speaks MQTT 5 and shared subscriptions), real worker processes, the real
terminal agent and store; exactly once is counted by what identifies a press (tests/presses.py).
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest

from device.clock import SystemClock
from device.store import VoteStore
from device.sync import SyncAgent
from fleet.ingest import Ingest
from fleet.mqtt import filters
from fleet.store import open_store
from protocol import encode
from protocol.topics import device_topic
from tests.presses import assert_exactly_once
from tests.processes import Processes
from tests.waiting import wait_until

from .conftest import make_batch


def test_a_share_group_subscribes_to_every_kind_through_the_group() -> None:
    assert filters("g1") == [f"$share/g1/{f}" for f in filters()]
    for bad in ("", "a/b", "a+", "#"):
        with pytest.raises(ValueError):
            filters(bad)


def test_two_workers_in_one_group_split_the_terminals_messages(
    mosquitto: Any, fleet_url: str, mqtt_probe: Callable[..., Any]
) -> None:
    store = open_store(fleet_url)
    workers = [
        Ingest(
            store,
            mosquitto.host,
            mosquitto.port,
            client_id=f"w-{i}",
            instance=f"w-{i}",
            protocol=paho.MQTTv5,
            share_group="g",
        )  # fmt: skip
        for i in range(2)
    ]
    try:
        for w in workers:
            w.start()
            assert w.wait_ready(10)
        terminal = mqtt_probe(mosquitto, "term-a")
        for b in range(1, 41):
            terminal.publish(device_topic("term-a", "votes"), encode(make_batch("term-a", [b], batch=b)))
        wait_until(lambda: sum(w.counters().votes_stored for w in workers) >= 40, what="every vote stored")
        stored = [w.counters().votes_stored for w in workers]
        assert store.vote_count() == 40
        assert sum(stored) == 40 and min(stored) > 0, f"the group did not share the load: {stored}"
        assert sum(w.counters().duplicates for w in workers) == 0  # each message went to one worker
    finally:
        for w in workers:
            w.stop()
        store.close()


def test_a_worker_sigkilled_mid_stream_loses_nothing_and_stores_nothing_twice(
    mosquitto: Any, tmp_path: Path, processes: Processes, fleet_url: str
) -> None:
    db = fleet_url  # a SQLite file, or a PostgreSQL database
    open_store(db).close()  # migrated once, before two processes open it
    broker = f"{mosquitto.host}:{mosquitto.port}"
    procs = [
        processes.start(
            f"w{i}", "fleet", "--db", db, "ingest", "--broker", broker, "--client-id", f"w-{i}", "--share", "g"
        )
        for i in range(2)
    ]
    stores = [VoteStore(tmp_path / f"t{i}.db", f"term-{i}", SystemClock()) for i in range(3)]
    agents = [
        SyncAgent(
            s,
            f"term-{i}",
            mosquitto.host,
            mosquitto.port,
            SystemClock(),
            batch_size=10,
            ack_timeout_s=1.0,
            max_backoff_s=2.0,
            fleet_grace_s=0.3,
        )  # fmt: skip
        for i, s in enumerate(stores)
    ]
    for a in agents:
        a.start()
    try:
        for round_ in range(30):
            for s, a in zip(stores, agents, strict=True):
                for k in range(10):
                    s.record("thl-nps", "nps11", (round_ + k) % 11, "fi", unit="unit-a")
                a.wake()
            if round_ == 10:
                procs[0].send_signal(signal.SIGKILL)  # mid-stream, without a chance to clean up
            time.sleep(0.05)
        wait_until(lambda: all(s.depth() == 0 for s in stores), 60, "every terminal's queue empty")
        assert procs[0].wait() == -signal.SIGKILL and procs[1].poll() is None, processes.log("w1")
    finally:
        for a in agents:
            a.stop()
        for s in stores:
            s.close()
    with open_store(db) as fleet:
        assert fleet.vote_count() == 900
        assert_exactly_once(fleet, [(f"term-{i}", [tmp_path / f"t{i}.db"]) for i in range(3)])


def test_the_supervisor_restarts_a_worker_that_dies_and_stops_them_all_on_sigterm(
    mosquitto: Any, tmp_path: Path, processes: Processes
) -> None:
    db = tmp_path / "fleet.db"
    broker = f"{mosquitto.host}:{mosquitto.port}"
    parent = processes.start("supervisor", "fleet", "--db", str(db), "ingest", "--broker", broker, "--workers", "2")

    def started() -> list[int]:
        return [
            int(p)
            for p in re.findall(r"ingest worker \d started \(pid (\d+)\)", processes.log("supervisor", tail=None))
        ]

    wait_until(lambda: len(started()) == 2, 20, "two workers started")
    first = started()
    os.kill(first[0], signal.SIGKILL)
    wait_until(lambda: len(started()) == 3, 20, "the dead worker started again")
    replacement = started()[2]
    assert replacement not in first
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(20) == 0, processes.log("supervisor")
    for pid in (first[1], replacement):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # both workers are gone with their supervisor


def test_on_a_broker_without_mqtt_5_one_ingest_runs_instead_of_workers_and_stores_votes(
    embedded_broker: Any, tmp_path: Path, processes: Processes, mqtt_probe: Callable[..., Any]
) -> None:
    """amqtt speaks only MQTT 3.1.1: no shared subscription is possible, so --workers 2 runs one ingest."""
    db = tmp_path / "fleet.db"
    broker = f"{embedded_broker.host}:{embedded_broker.port}"
    parent = processes.start("fleet", "fleet", "--db", str(db), "ingest", "--broker", broker, "--workers", "2")
    wait_until(lambda: "does not speak MQTT 5" in processes.log("fleet"), 20, "the fallback to be logged")
    assert "running one ingest instead of 2 workers" in processes.log("fleet")
    assert "ingest worker" not in processes.log("fleet", tail=None)
    probe = mqtt_probe(embedded_broker)
    probe.subscribe(device_topic("term-a", "ack"))

    def acked() -> bool:  # sent again until the ingest, subscribing meanwhile, answers (storing is idempotent)
        probe.publish(device_topic("term-a", "votes"), encode(make_batch("term-a", [1, 2])))
        try:
            return probe.expect(timeout=2) is not None
        except AssertionError:
            return False

    wait_until(acked, 30, "an ack from the one ingest")
    with open_store(db) as store:
        assert store.vote_count() == 2
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(20) == 0, processes.log("fleet")


def test_the_mqtt_5_probe_tells_mosquitto_from_a_3_1_1_broker_and_from_no_broker(
    mosquitto: Any, embedded_broker: Any
) -> None:
    from fleet.mqtt import speaks_mqtt5
    from sim.brokers import free_port

    assert speaks_mqtt5(mosquitto.host, mosquitto.port) is True
    assert speaks_mqtt5(embedded_broker.host, embedded_broker.port) is False
    assert speaks_mqtt5("127.0.0.1", free_port(), timeout=2) is None
