"""Ingest against a real mosquitto: store then ack, duplicates, every class of bad message, birth and will."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from fleet.content import default_config_doc
from fleet.db.engine import database_url
from fleet.db.store import SqlFleetStore
from fleet.db.tables import desired_configs
from fleet.errors import StoreError
from fleet.ingest import Ingest
from fleet.mqtt import DEFAULT_CLIENT_ID, Connected, Disconnected
from protocol import (
    MAX_PAYLOAD_BYTES,
    Ack,
    Config,
    ConfigReport,
    FleetState,
    Heartbeat,
    TerminalState,
    VoteBatch,
    decode,
    decode_payload,
    encode,
    to_dict,
)
from protocol.topics import FLEET_STATE, device_topic
from sim.brokers import MosquittoBroker
from tests.waiting import wait_until as wait_for

from .conftest import NOON, make_batch

Probe = Any  # tests.conftest.MqttProbe


@pytest.fixture
def ingest(mosquitto: Any, fleet_url: str) -> Iterator[Ingest]:
    """A running ingest on the test broker, connected and subscribed."""
    store = SqlFleetStore(fleet_url)
    running = Ingest(store, mosquitto.host, mosquitto.port, instance="test-fleet")
    running.start()
    assert running.wait_ready(10), "ingest did not connect and subscribe"
    yield running
    running.stop()
    store.close()


@pytest.fixture
def terminal(mosquitto: Any, mqtt_probe: Callable[..., Probe]) -> Probe:
    """A raw paho client playing terminal term-a, subscribed to its acks and config."""
    probe = mqtt_probe(mosquitto, "term-a")
    probe.subscribe(device_topic("term-a", "ack"))
    probe.subscribe(device_topic("term-a", "config"))
    return probe


def expect_ack(probe: Probe) -> Ack:
    message = probe.expect()
    ack = decode(message.topic, message.payload)
    assert isinstance(ack, Ack), ack
    return ack


def send(probe: Probe, msg: VoteBatch | TerminalState | Heartbeat | ConfigReport, kind: str) -> None:
    probe.publish(device_topic(msg.device, kind), encode(msg))


def test_a_batch_is_stored_then_acked_with_its_seq_ranges(ingest: Ingest, terminal: Probe, fleet_url: str) -> None:
    send(terminal, make_batch("term-a", [1, 2, 3, 5, 6], batch=7), "votes")
    ack = expect_ack(terminal)
    assert (ack.device, ack.batch, ack.ranges) == ("term-a", 7, ((1, 3), (5, 6)))
    # A second connection sees only committed data: the votes were durable before the ack left.
    with SqlFleetStore(fleet_url) as reader:
        assert [v.seq for v in reader.stored_votes("term-a")] == [1, 2, 3, 5, 6]
    counters = ingest.counters()
    assert (counters.votes_stored, counters.acks_sent, counters.batches) == (5, 1, 1)


def test_acks_and_configurations_travel_at_qos_1_as_the_spec_says(
    mosquitto: Any, ingest: Ingest, mqtt_probe: Callable[..., Probe]
) -> None:
    # Subscribed at QoS 2, a message arrives at the QoS it was published with (SPEC 2.2: 1 for both):
    # QoS 0 could lose an ack, and the config would then not be retried by the broker either.
    probe = mqtt_probe(mosquitto, "term-a")
    probe.subscribe(device_topic("term-a", "ack"), qos=2)
    probe.subscribe(device_topic("term-a", "config"), qos=2)
    ingest.store.set_config("term-a", 2, default_config_doc("unit-a"))
    send(probe, make_batch("term-a", [1], batch=1), "votes")
    ack = probe.expect()
    assert decode(ack.topic, ack.payload) == Ack("term-a", 1, ((1, 1),)) and ack.qos == 1
    send(probe, TerminalState("term-a", True, 1, NOON, "1.0"), "state")
    config = probe.expect()
    # (That it is retained is for a late subscriber: the born-behind test.)
    assert isinstance(decode(config.topic, config.payload), Config) and config.qos == 1


def test_ingest_logs_in_to_a_broker_that_requires_a_password(tmp_path: Path, fleet_url: str) -> None:
    passwords = tmp_path / "passwords"
    passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"  # ships with mosquitto
    subprocess.run([passwd, "-c", "-b", str(passwords), "fleet", "s3cret"], check=True, capture_output=True)
    broker = MosquittoBroker(extra_config=f"allow_anonymous false\npassword_file {passwords}")
    broker.start()
    try:
        with SqlFleetStore(fleet_url) as store:
            running = Ingest(store, broker.host, broker.port, username="fleet", password="s3cret")
            running.start()
            try:
                assert running.wait_ready(10), "ingest did not log in with its username and password"
            finally:
                running.stop()
    finally:
        broker.stop()


def test_a_duplicate_batch_is_acked_again_and_changes_no_count(ingest: Ingest, terminal: Probe) -> None:
    batch = make_batch("term-a", range(1, 101), batch=1)
    send(terminal, batch, "votes")
    first = expect_ack(terminal)
    before = ingest.store.stored_votes("term-a")
    send(terminal, batch, "votes")
    second = expect_ack(terminal)
    assert first == second == Ack("term-a", 1, ((1, 100),))
    assert ingest.store.stored_votes("term-a") == before
    counters = ingest.counters()
    assert (counters.votes_stored, counters.duplicates, counters.acks_sent) == (100, 100, 2)


def bad_messages() -> list[tuple[str, str, bytes]]:
    """(expected reason, topic, payload) for every class of bad message."""
    good = to_dict(make_batch("term-a", [1, 2, 3], batch=9, answer=0))
    topic = device_topic("term-a", "votes")

    def variant(**changes: Any) -> bytes:
        return json.dumps({**good, **changes}).encode()

    invalid = json.loads(variant())
    invalid["batch"] = -1  # the envelope is wrong: the whole batch is rejected (an invalid vote is refused)
    return [
        ("malformed", topic, b'{"v": 1, "type": "votes", '),
        ("malformed", topic, b"\xff\xfe not utf-8"),
        ("oversized", topic, b" " * (MAX_PAYLOAD_BYTES + 1)),
        ("unknown_version", topic, variant(v=2)),
        ("unknown_topic", "hymy/v1/_fleet/votes", variant()),
        ("unknown_topic", "hymy/v1/Not_A_Device/votes", variant()),
        ("device_mismatch", topic, variant(device="term-b")),
        ("invalid", topic, json.dumps(invalid).encode()),
        ("invalid", device_topic("term-a", "heartbeat"), variant()),  # a votes message on the wrong kind
    ]


def test_every_class_of_bad_message_is_rejected_counted_and_changes_nothing(
    ingest: Ingest, terminal: Probe, fleet_url: str
) -> None:
    send(terminal, make_batch("term-a", [1, 2, 3], batch=1, answer=10), "votes")
    expect_ack(terminal)
    before = ingest.store.stored_votes("term-a")
    bad = bad_messages()
    for _, topic, payload in bad:
        terminal.publish(topic, payload)
    send(terminal, make_batch("term-a", [4], batch=2, answer=10), "votes")  # ingest keeps going
    assert expect_ack(terminal) == Ack("term-a", 2, ((4, 4),))
    expected: dict[str, int] = {}
    for reason, _, _ in bad:
        expected[reason] = expected.get(reason, 0) + 1
    wait_for(lambda: ingest.counters().rejections == expected, what=f"rejections {expected}")
    wait_for(lambda: ingest.store.rejection_counts() == expected, what="persisted rejection counters")
    assert ingest.store.stored_votes("term-a")[:3] == before
    assert ingest.store.vote_count() == 4
    assert ingest.store.vote_count("term-b") == 0
    assert ingest.counters().acks_sent == 2
    terminal.assert_silent(0.2)  # no bad message was acknowledged


def test_fleet_publishes_a_retained_birth_and_its_will_says_offline(
    mosquitto: Any, ingest: Ingest, mqtt_probe: Callable[..., Probe]
) -> None:
    watcher = mqtt_probe(mosquitto, "watcher")
    watcher.subscribe(FLEET_STATE)
    birth = decode_payload(watcher.expect().payload)
    assert isinstance(birth, FleetState) and birth.online and birth.instance == "test-fleet"
    # Cut the network under paho (no DISCONNECT sent): the broker publishes the will.
    sock = ingest.mqtt._client.socket()
    assert sock is not None
    sock.close()
    will = decode_payload(watcher.expect().payload)
    assert isinstance(will, FleetState) and not will.online
    reborn = decode_payload(watcher.expect(timeout=10).payload)  # paho redials and we are born again
    assert isinstance(reborn, FleetState) and reborn.online
    assert ingest.wait_ready(10)
    ingest.stop()  # a clean stop says offline itself, since a clean disconnect sends no will
    # On resubscribing the fleet hears its own stale will (queued in its session, and retained) and
    # says online again each time (SPEC 8); the last word is the offline state of the clean stop.
    said = [decode_payload(watcher.expect().payload)]
    while isinstance(said[-1], FleetState) and said[-1].online and len(said) < 4:
        said.append(decode_payload(watcher.expect().payload))
    assert all(isinstance(s, FleetState) for s in said)
    assert [s.online for s in said] == [True] * (len(said) - 1) + [False]  # type: ignore[attr-defined]


def test_states_heartbeats_and_config_reports_are_recorded(ingest: Ingest, terminal: Probe) -> None:
    send(terminal, TerminalState("term-a", True, 4, NOON, "1.2.3"), "state")
    send(terminal, Heartbeat("term-a", NOON, 5000, "boot-1", True, 5, 7, 30, 1, "1.2.3", 51.5, 800), "heartbeat")
    send(terminal, ConfigReport("term-a", 1, "applied"), "config/report")

    def recorded() -> bool:
        status = ingest.store.terminal("term-a")
        return status is not None and status.online is True and status.queue == 7 and status.report_status == "applied"

    wait_for(recorded, what="terminal status")
    status = ingest.store.terminal("term-a")
    assert status is not None and (status.conn, status.fw, status.temp, status.applied_version) == (4, "1.2.3", 51.5, 1)
    send(terminal, TerminalState("term-a", False, 3, NOON, "1.2.3"), "state")  # a stale will
    wait_for(lambda: ingest.counters().stale_states == 1, what="the stale will")
    status = ingest.store.terminal("term-a")
    assert status is not None and status.online is True
    assert (ingest.counters().states, ingest.counters().heartbeats) == (2, 1)  # counted by the drains before


def test_a_terminal_born_behind_its_desired_configuration_gets_it_retained(
    mosquitto: Any, ingest: Ingest, terminal: Probe, mqtt_probe: Callable[..., Probe]
) -> None:
    doc = default_config_doc("unit-a")
    ingest.store.set_config("term-a", 2, doc)
    send(terminal, TerminalState("term-a", True, 1, NOON, "1.0"), "state")
    message = terminal.expect()
    config = decode(message.topic, message.payload)
    assert config == Config("term-a", 2, doc)
    late = mqtt_probe(mosquitto, "late-reader")  # retained: a terminal subscribing later still gets it
    late.subscribe(device_topic("term-a", "config"))
    assert late.expect().retain
    send(terminal, ConfigReport("term-a", 2, "applied"), "config/report")
    wait_for(lambda: ingest.counters().config_reports == 1, what="the config report")
    send(terminal, TerminalState("term-a", True, 2, NOON, "1.0"), "state")
    wait_for(lambda: ingest.counters().states == 2, what="the second birth")
    terminal.assert_silent(0.3)  # applied already: nothing pushed
    assert ingest.counters().configs_pushed == 1
    # The card is re-imaged: the counter starts at 1 again and the new store has applied nothing.
    send(terminal, TerminalState("term-a", True, 1, NOON, "1.0"), "state")
    message = terminal.expect()
    assert decode(message.topic, message.payload) == Config("term-a", 2, doc)
    # The push reaches the terminal before ingest counts it (the counters follow the whole drain).
    wait_for(lambda: ingest.counters().configs_pushed == 2, what="the second push counted")
    status = ingest.store.terminal("term-a")
    assert status is not None and status.online and status.conn == 1


def test_a_stored_configuration_a_terminal_would_reject_is_never_published(
    ingest: Ingest, terminal: Probe, fleet_url: str
) -> None:
    # Stored by a fleet from before the check was this strict: the zone passed its shape test.
    doc = {**default_config_doc("unit-a"), "hours": {"tz": "Mars/Olympus_Mons", "weekly": {}}}
    older_fleet = sa.create_engine(database_url(fleet_url))
    with older_fleet.begin() as conn:
        conn.execute(sa.insert(desired_configs).values(device="term-a", version=2, doc=json.dumps(doc), set_at=NOON))
    older_fleet.dispose()
    send(terminal, TerminalState("term-a", True, 1, NOON, "1.0"), "state")
    wait_for(lambda: ingest.counters().configs_refused == 1, what="the refused configuration")
    assert ingest.counters().configs_pushed == 0
    # Ingest goes on, and the first configuration the terminal ever hears is the valid one set next.
    good = default_config_doc("unit-a")
    ingest.store.set_config("term-a", 3, good)
    send(terminal, TerminalState("term-a", True, 2, NOON, "1.0"), "state")
    message = terminal.expect()
    assert decode(message.topic, message.payload) == Config("term-a", 3, good)


def test_python_m_fleet_ingests_until_sigterm_then_says_offline(
    mosquitto: Any, fleet_url: str, terminal: Probe, mqtt_probe: Callable[..., Probe]
) -> None:
    db = fleet_url  # a SQLite path, or a postgresql:// URL: --db takes both
    watcher = mqtt_probe(mosquitto, "watcher")
    watcher.subscribe(FLEET_STATE)
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleet", "--db", str(db), "--broker", f"{mosquitto.host}:{mosquitto.port}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        birth = decode_payload(watcher.expect(timeout=20).payload)
        assert isinstance(birth, FleetState) and birth.online
        # The birth is published before the subscriptions are confirmed: resend until acked, as terminals do.
        deadline = time.monotonic() + 20
        while True:
            send(terminal, make_batch("term-a", [1, 2], batch=1), "votes")
            try:
                assert expect_ack(terminal).ranges == ((1, 2),)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output.decode()
    goodbye = decode_payload(watcher.expect().payload)
    assert isinstance(goodbye, FleetState) and not goodbye.online
    with SqlFleetStore(db) as store:
        assert store.vote_count() == 2
    from fleet.__main__ import main

    assert main(["results", "--db", str(db)]) == 0


def test_a_reused_seq_is_refused_as_a_conflict_never_acked_and_counted(ingest: Ingest, terminal: Probe) -> None:
    send(terminal, make_batch("term-a", [1, 2], batch=1, answer=10), "votes")
    assert expect_ack(terminal).ranges == ((1, 2),)
    send(terminal, make_batch("term-a", [2, 3], batch=2, answer=0, boot="boot-2"), "votes")
    assert expect_ack(terminal) == Ack("term-a", 2, ((3, 3),), refused=(("conflict", ((2, 2),)),))
    send(terminal, make_batch("term-a", [1], batch=3, answer=0, boot="boot-2"), "votes")
    assert expect_ack(terminal) == Ack("term-a", 3, (), refused=(("conflict", ((1, 1),)),))
    wait_for(lambda: ingest.store.rejection_counts().get("conflict") == 2, what="persisted conflicts")
    assert ingest.counters().conflicts == 2
    assert ingest.counters().votes_refused == 2
    assert [v.answer for v in ingest.store.stored_votes("term-a")] == [10, 10, 0]  # the first copies stay


def test_an_invalid_vote_is_refused_by_seq_and_the_rest_of_its_batch_is_stored(ingest: Ingest, terminal: Probe) -> None:
    raw = to_dict(make_batch("term-a", [1, 2, 3], batch=4, answer=5))
    raw["votes"][1]["answer"] = 11  # say, a scale newer firmware knows and this fleet does not
    terminal.publish(device_topic("term-a", "votes"), json.dumps(raw).encode())
    assert expect_ack(terminal) == Ack("term-a", 4, ((1, 1), (3, 3)), refused=(("invalid", ((2, 2),)),))
    assert [v.seq for v in ingest.store.stored_votes("term-a")] == [1, 3]
    wait_for(lambda: ingest.store.rejection_counts().get("invalid") == 1, what="persisted rejection")
    assert ingest.counters().votes_refused == 1


def test_batches_of_a_new_store_are_a_new_series_beside_the_old_one(ingest: Ingest, terminal: Probe) -> None:
    # A re-imaged card: the same device id, a new database, seqs from 1 again under a new store id.
    send(terminal, make_batch("term-a", [1, 2], batch=1, answer=10), "votes")
    assert expect_ack(terminal) == Ack("term-a", 1, ((1, 2),))
    fresh = replace(make_batch("term-a", [1, 2, 3], batch=1, answer=0, boot="boot-2"), store="c0ffee00c0ffee00")
    send(terminal, fresh, "votes")
    assert expect_ack(terminal) == Ack("term-a", 1, ((1, 3),), store="c0ffee00c0ffee00")
    votes = ingest.store.stored_votes("term-a")
    assert [(v.store, v.seq, v.answer) for v in votes] == [
        ("", 1, 10),
        ("", 2, 10),
        ("c0ffee00c0ffee00", 1, 0),
        ("c0ffee00c0ffee00", 2, 0),
        ("c0ffee00c0ffee00", 3, 0),
    ]
    assert ingest.counters().conflicts == 0


def test_a_stale_offline_fleet_state_is_overwritten_at_once(
    mosquitto: Any, ingest: Ingest, mqtt_probe: Callable[..., Probe]
) -> None:
    # A sibling ingest's late will (or our own from an earlier connection) says the fleet is offline.
    watcher = mqtt_probe(mosquitto, "watcher")
    watcher.subscribe(FLEET_STATE)
    assert decode_payload(watcher.expect().payload).online  # type: ignore[union-attr]
    sibling = mqtt_probe(mosquitto, "sibling")
    sibling.publish(FLEET_STATE, encode(FleetState(False, NOON, "old-fleet")), retain=True)
    assert not decode_payload(watcher.expect().payload).online  # type: ignore[union-attr]
    again = decode_payload(watcher.expect().payload)  # no periodic republish is due for a minute
    assert isinstance(again, FleetState) and again.online and again.instance == "test-fleet"
    assert ingest.counters().state_republished == 1
    late = mqtt_probe(mosquitto, "late-terminal")  # what a terminal subscribing now is told
    late.subscribe(FLEET_STATE)
    retained = decode_payload(late.expect().payload)
    assert isinstance(retained, FleetState) and retained.online and retained.instance == "test-fleet"


def test_the_fleet_says_online_again_periodically(
    mosquitto: Any, fleet_url: str, mqtt_probe: Callable[..., Probe]
) -> None:
    watcher = mqtt_probe(mosquitto, "watcher")
    watcher.subscribe(FLEET_STATE)
    with SqlFleetStore(fleet_url) as store:
        running = Ingest(store, mosquitto.host, mosquitto.port, instance="test-fleet")
        running.republish_s = 0.2
        running.start()
        try:
            said = [decode_payload(watcher.expect().payload) for _ in range(3)]  # the birth, then twice more
        finally:
            running.stop()
    assert all(isinstance(s, FleetState) and s.online for s in said)
    assert running.counters().state_republished >= 2


class _PoisonStore(SqlFleetStore):
    """A store that cannot take any batch of one terminal (a fault tied to its data, say)."""

    poisoned = "term-b"

    def add_vote_batches(self, batches: Any, received_ms: int) -> Any:
        if any(b.device == self.poisoned for b in batches):
            raise StoreError(f"cannot store votes of {self.poisoned}")
        return super().add_vote_batches(batches, received_ms)


def test_a_batch_the_store_cannot_take_delays_only_itself(
    mosquitto: Any, fleet_url: str, mqtt_probe: Callable[..., Probe]
) -> None:
    terminals = {d: mqtt_probe(mosquitto, d) for d in ("term-a", "term-b")}
    for device, probe in terminals.items():
        probe.subscribe(device_topic(device, "ack"))
    with _PoisonStore(fleet_url) as store:
        running = Ingest(store, mosquitto.host, mosquitto.port, instance="test-fleet")
        running.mqtt.start()
        try:
            assert running.wait_ready(10)
            # Both in one drain, as the loop would take them: one transaction, which fails.
            running._process(
                [
                    (device_topic("term-b", "votes"), encode(make_batch("term-b", [1, 2], batch=1))),
                    (device_topic("term-a", "votes"), encode(make_batch("term-a", [1, 2], batch=1))),
                ]
            )
            assert expect_ack(terminals["term-a"]) == Ack("term-a", 1, ((1, 2),))
            terminals["term-b"].assert_silent(0.3)  # never acked: its terminal keeps the votes and resends
            assert store.vote_count("term-a") == 2 and store.vote_count("term-b") == 0
        finally:
            running.mqtt.stop()
    assert running.counters().store_errors == 2  # the drain's transaction, then term-b's on its own


def test_a_link_event_or_a_partly_invalid_batch_in_a_drain_drops_none_of_the_messages_after_it(
    mosquitto: Any, fleet_url: str, terminal: Probe
) -> None:
    with SqlFleetStore(fleet_url) as store:
        running = Ingest(store, mosquitto.host, mosquitto.port, instance="test-fleet")
        running.mqtt.start()
        try:
            assert running.wait_ready(10)
            partly_invalid = to_dict(make_batch("term-b", [1, 2], batch=1))
            partly_invalid["votes"][1]["answer"] = 11
            # One drain as the loop would take it: a vote batch queued behind a reconnect and a bad vote.
            running._process(
                [
                    Disconnected("keepalive timeout"),
                    Connected(session_present=True),
                    (device_topic("term-b", "votes"), json.dumps(partly_invalid).encode()),
                    (device_topic("term-a", "votes"), encode(make_batch("term-a", [1, 2], batch=1))),
                ]
            )
            assert expect_ack(terminal) == Ack("term-a", 1, ((1, 2),))
            assert store.vote_count("term-a") == 2 and store.vote_count("term-b") == 1
        finally:
            running.mqtt.stop()


def test_while_the_database_is_locked_no_ack_leaves_and_the_resend_is_acked_once_it_frees(
    ingest: Ingest, terminal: Probe, fleet_url: str
) -> None:
    # A real fault, not a double: another process holds the database's write lock (a backup, a
    # migration, an operator's sqlite3 shell). The ingest must neither ack nor lose the batch.
    if "://" in fleet_url:
        pytest.skip("SQLite's whole-database write lock; PostgreSQL locks rows and waits")
    with ingest.store._read() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql("PRAGMA busy_timeout = 100")
    blocker = sqlite3.connect(fleet_url, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        batch = make_batch("term-a", [1, 2, 3], batch=1)
        send(terminal, batch, "votes")
        wait_for(lambda: ingest.counters().store_errors >= 1, what="the store failing")
        terminal.assert_silent(0.5)  # nothing was committed, so nothing may be acknowledged
        assert ingest.counters().acks_sent == 0
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    send(terminal, batch, "votes")  # the terminal's resend, after its ack timeout
    assert expect_ack(terminal) == Ack("term-a", 1, ((1, 3),))
    assert [v.seq for v in ingest.store.stored_votes("term-a")] == [1, 2, 3]


class _BuggyOnceStore(SqlFleetStore):
    """A store with a bug that raises something other than StoreError, once."""

    failed = False

    def add_vote_batches(self, batches: Any, received_ms: int) -> Any:
        if not self.failed:
            self.failed = True
            raise RuntimeError("a bug in the store")
        return super().add_vote_batches(batches, received_ms)


def test_an_unexpected_error_in_a_drain_is_logged_and_counted_and_the_ingest_goes_on(
    mosquitto: Any, fleet_url: str, terminal: Probe
) -> None:
    store = _BuggyOnceStore(fleet_url)
    running = Ingest(store, mosquitto.host, mosquitto.port, instance="test-fleet")
    running.start()
    try:
        assert running.wait_ready(10)
        send(terminal, make_batch("term-a", [1], batch=1), "votes")
        wait_for(lambda: running.counters().loop_errors == 1, what="the failed drain counted")
        terminal.assert_silent(0.3)  # not acknowledged: the terminal will resend
        send(terminal, make_batch("term-a", [1], batch=1), "votes")
        assert expect_ack(terminal) == Ack("term-a", 1, ((1, 1),))
    finally:
        running.stop()
        store.close()


def test_a_configuration_set_by_another_process_reaches_its_online_terminal_within_seconds(
    ingest: Ingest, terminal: Probe, fleet_url: str
) -> None:
    send(terminal, TerminalState("term-a", True, 1, NOON, "1.0"), "state")
    wait_for(lambda: ingest.counters().states == 1, what="the birth")
    terminal.assert_silent(0.3)  # nothing desired yet
    ingest.config_poll_s = 0.2
    with SqlFleetStore(fleet_url) as web:  # the fleet web: its own connection, as if another process
        web.set_config("term-a", 1, default_config_doc("unit-a"))
    message = terminal.expect()  # no heartbeat or birth in between: the ingest found it by itself
    assert decode(message.topic, message.payload) == Config("term-a", 1, default_config_doc("unit-a"))
    terminal.assert_silent(0.6)  # found once, pushed once
    send(terminal, ConfigReport("term-a", 1, "applied"), "config/report")
    wait_for(lambda: ingest.counters().config_reports == 1, what="the report")


def test_the_ingest_writes_its_counters_for_the_health_page(ingest: Ingest, terminal: Probe, fleet_url: str) -> None:
    send(terminal, make_batch("term-a", [1, 2, 3]), "votes")
    expect_ack(terminal)
    ingest.stats_every_s = 0.1
    with SqlFleetStore(fleet_url) as web:
        wait_for(lambda: any(s.votes == 3 for s in web.ingest_stats()), what="the counters in the store")
        stats = web.ingest_stats()[0]
    assert stats.worker == DEFAULT_CLIENT_ID and stats.messages >= 1 and stats.at >= stats.started_at
