"""Nobody speaks for another terminal (guarantee 6), on Mosquitto configured as production runs it.

The broker here is started from the configuration ``hymy fleet broker-config`` writes (TLS only,
no anonymous access, the dynamic-security plugin), with certificates from a CA made by the test.
Terminals get their logins from the fleet's account store (``fleet.brokerauth``), as enrolment
gives them. Each test attacks one line of that configuration.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from device.clock import SystemClock
from device.store import VoteStore
from device.sync import SyncAgent
from fleet.db.store import SqlFleetStore
from fleet.ingest import Ingest
from protocol import Ack, VoteBatch, encode, topics
from sim.brokers import MosquittoBroker, SecureMosquitto
from sim.testca import TestCA
from tests.conftest import MqttProbe
from tests.waiting import wait_until

A, B = "kiosk-a01", "kiosk-b02"
PASSWORDS = {A: "a" * 40, B: "b" * 40}


def attempt(runner: Any, username: str | None, password: str | None, ca_file: Any, client_id: str = "") -> str:
    """Try to connect once; return "connected" or why not (a refusal, a TLS error)."""
    result: list[str] = []
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    if username is not None:
        client.username_pw_set(username, password)
    if ca_file is not None:
        client.tls_set(ca_certs=str(ca_file))

    def on_connect(c: mqtt.Client, u: Any, f: Any, reason: Any, p: Any) -> None:
        result.append(str(reason) if reason.is_failure else "connected")
        done.set()

    client.on_connect = on_connect
    client.connect(runner.host, runner.port, keepalive=10)
    client.loop_start()
    try:
        done.wait(5)
    finally:
        client.disconnect()
        client.loop_stop()
    return result[0] if result else "no answer"


@pytest.fixture
def enrolled(secure_mosquitto: SecureMosquitto) -> SecureMosquitto:
    """The secured broker with terminals A and B given logins, as enrolment does."""
    accounts = secure_mosquitto.accounts()
    for device, password in PASSWORDS.items():
        accounts.add_terminal(device, password)
    return secure_mosquitto


def probe(broker: SecureMosquitto, login: tuple[str, str], client_id: str = "") -> MqttProbe:
    return MqttProbe(broker, client_id, username=login[0], password=login[1], ca_file=broker.ca_file)


def test_anonymous_wrong_passwords_and_untrusted_certificates_are_refused(
    enrolled: SecureMosquitto, tmp_path: Path
) -> None:
    ca = enrolled.ca_file
    assert attempt(enrolled, A, PASSWORDS[A], ca, client_id=A) == "connected"
    assert attempt(enrolled, None, None, ca) == "Not authorized"
    assert attempt(enrolled, A, "wrong-" + PASSWORDS[A], ca, client_id=A) == "Not authorized"
    assert attempt(enrolled, "nobody", PASSWORDS[A], ca, client_id="nobody") == "Not authorized"
    # A's own password, but claiming B's client id (to take over B's session): refused.
    assert attempt(enrolled, A, PASSWORDS[A], ca, client_id=B) == "Not authorized"
    # A client that trusts another CA refuses the broker's certificate before sending anything.
    stranger = TestCA(tmp_path / "stranger", name="Some other CA")
    context = ssl.create_default_context(cafile=str(stranger.ca_file))
    with socket.create_connection((enrolled.host, enrolled.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(raw, server_hostname=enrolled.host)
    # The broker's own CA verifies it, host name included.
    with socket.create_connection((enrolled.host, enrolled.port), timeout=5) as raw:
        with ssl.create_default_context(cafile=str(ca)).wrap_socket(raw, server_hostname=enrolled.host) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    # Plain MQTT on the TLS port gets nowhere.
    assert attempt(enrolled, A, PASSWORDS[A], None, client_id=A) != "connected"


def test_a_terminal_may_publish_only_its_own_messages_and_read_only_its_own(enrolled: SecureMosquitto) -> None:
    fleet = probe(enrolled, enrolled.fleet_login, "watch")
    for kind in topics.TERMINAL_PUBLISHES + topics.FLEET_PUBLISHES:
        assert fleet.subscribe(f"{topics.ROOT}/+/{kind}") is (kind in topics.TERMINAL_PUBLISHES)
    assert fleet.subscribe(topics.FLEET_STATE)
    fleet.messages.queue.clear()  # the fleet's own retained state
    a = probe(enrolled, (A, PASSWORDS[A]), A)
    # Its own subtree: allowed.
    a.publish(topics.device_topic(A, topics.HEARTBEAT), b"own", qos=1)
    assert fleet.expect().topic == topics.device_topic(A, topics.HEARTBEAT)
    # Another terminal's votes, state, heartbeat and report; any ack or config; the fleet state:
    # the broker acknowledges (MQTT 3.1.1 cannot say no to a publish) and delivers nothing.
    forged = [topics.device_topic(B, kind) for kind in topics.TERMINAL_PUBLISHES]
    forged += [topics.device_topic(d, kind) for d in (A, B) for kind in topics.FLEET_PUBLISHES]
    forged.append(topics.FLEET_STATE)
    b_watch = probe(enrolled, (B, PASSWORDS[B]), B)
    for kind in topics.FLEET_PUBLISHES:
        assert b_watch.subscribe(topics.device_topic(B, kind))
    a_watch_own = probe(enrolled, enrolled.fleet_login, "watch-2")
    for kind in topics.FLEET_PUBLISHES:
        a_watch_own.subscribe(f"{topics.ROOT}/+/{kind}")
    for topic in forged:
        a.publish(topic, b"forged", qos=1)
    fleet.assert_silent(0.5)
    b_watch.assert_silent(0.1)
    a_watch_own.assert_silent(0.1)
    # Reading another terminal's acks or configuration, or everything: refused at subscribe.
    for topic in (topics.device_topic(B, topics.ACK), topics.device_topic(B, topics.CONFIG), "#", "hymy/v1/+/ack"):
        assert a.subscribe(topic) is False, topic
    assert a.subscribe(topics.device_topic(A, topics.ACK)) and a.subscribe(topics.FLEET_STATE)


def _terminal(broker: Any, tmp_path: Path, device: str, password: str | None, ca: Any) -> tuple[VoteStore, SyncAgent]:
    store = VoteStore(tmp_path / f"{device}.db", device, SystemClock())
    agent = SyncAgent(
        store,
        device,
        broker.host,
        broker.port,
        SystemClock(),
        ack_timeout_s=0.5,
        max_backoff_s=1.0,
        fleet_grace_s=0.2,
        username=device if password else None,
        password=password,
        ca_file=str(ca) if ca else None,
    )
    return store, agent


def _forge_acks(attacker: MqttProbe, store: VoteStore, victim: str) -> None:
    """Well-formed acks for every seq the victim holds, under every batch number it may be waiting on."""
    for batch in range(1, 40):
        ack = Ack(victim, batch, ((1, 30),), store=store.store_id)
        attacker.publish(topics.device_topic(victim, topics.ACK), encode(ack))


@pytest.fixture
def open_mosquitto() -> Iterator[MosquittoBroker]:
    runner = MosquittoBroker()
    runner.start()
    yield runner
    runner.stop()


def test_forged_acks_mark_votes_delivered_on_an_open_broker(open_mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    """The attack, as found: without the broker's rules one client empties another's queue."""
    store, agent = _terminal(open_mosquitto, tmp_path, A, None, None)
    agent.start()
    try:
        for i in range(30):
            store.record("thl-nps", "nps11", i % 11, "fi", unit="unit-a")
        agent.wake()
        wait_until(lambda: agent.connected, what="terminal connected")
        time.sleep(0.3)  # batches out, no fleet to answer them
        attacker = MqttProbe(open_mosquitto, "attacker")
        _forge_acks(attacker, store, A)
        wait_until(lambda: store.depth() < 30, what="forged acks taken")
        attacker.close()
    finally:
        agent.stop()
        store.close()


def test_forged_acks_with_another_terminals_login_mark_nothing_delivered(
    enrolled: SecureMosquitto, tmp_path: Path
) -> None:
    store, agent = _terminal(enrolled, tmp_path, A, PASSWORDS[A], enrolled.ca_file)
    agent.start()
    fleet_store = SqlFleetStore(tmp_path / "fleet.db")
    try:
        for i in range(30):
            store.record("thl-nps", "nps11", i % 11, "fi", unit="unit-a")
        agent.wake()
        wait_until(lambda: agent.connected, what="terminal connected over TLS with its login")
        time.sleep(0.3)
        attacker = probe(enrolled, (B, PASSWORDS[B]), B)
        _forge_acks(attacker, store, A)
        time.sleep(1.0)
        assert store.depth() == 30, "a forged ack got through"
        # The real fleet, over TLS with its own login, then takes all 30, each once.
        user, password = enrolled.fleet_login
        ingest = Ingest(
            fleet_store, enrolled.host, enrolled.port, username=user, password=password, ca_file=str(enrolled.ca_file)
        )
        ingest.start()
        try:
            wait_until(lambda: store.depth() == 0, timeout=20, what="backlog delivered over TLS")
            assert fleet_store.vote_count() == 30
        finally:
            ingest.stop()
    finally:
        agent.stop()
        store.close()
        fleet_store.close()


def test_the_fleet_rejects_a_batch_that_names_another_terminal_even_on_its_senders_topic(
    enrolled: SecureMosquitto, tmp_path: Path
) -> None:
    fleet_store = SqlFleetStore(tmp_path / "fleet.db")
    user, password = enrolled.fleet_login
    ingest = Ingest(
        fleet_store, enrolled.host, enrolled.port, username=user, password=password, ca_file=str(enrolled.ca_file)
    )
    ingest.start()
    try:
        assert ingest.wait_ready(10)
        b_store = VoteStore(tmp_path / "b.db", B, SystemClock())
        vote = b_store.record("thl-nps", "nps11", 10, "fi", unit="unit-a")
        a = probe(enrolled, (A, PASSWORDS[A]), A)
        a.publish(topics.device_topic(A, topics.VOTES), encode(VoteBatch(B, 1, (vote,), store=b_store.store_id)))
        wait_until(lambda: ingest.counters().rejections.get("device_mismatch", 0) == 1, what="mismatch counted")
        assert fleet_store.vote_count() == 0
        b_store.close()
    finally:
        ingest.stop()
        fleet_store.close()


def test_a_revoked_terminal_is_disconnected_at_once_and_cannot_log_in_again(enrolled: SecureMosquitto) -> None:
    gone = threading.Event()
    a = probe(enrolled, (A, PASSWORDS[A]), A)
    a.client.on_disconnect = lambda *args: gone.set()
    enrolled.accounts().remove_terminal(A)
    assert gone.wait(5), "the revoked terminal stayed connected"
    a.client.loop_stop()
    assert attempt(enrolled, A, PASSWORDS[A], enrolled.ca_file, client_id=A) == "Not authorized"
    assert attempt(enrolled, B, PASSWORDS[B], enrolled.ca_file, client_id=B) == "connected"


def test_ingest_workers_may_share_the_fleets_subscription_but_not_read_acks(enrolled: SecureMosquitto) -> None:
    granted: list[list[bool]] = []
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="worker-1", protocol=mqtt.MQTTv5)
    enrolled.fleet().apply(client)

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: Any, p: Any) -> None:
        granted.append([not r.is_failure for r in reasons])
        done.set()

    client.on_subscribe = on_subscribe
    client.on_connect = lambda c, *a: c.subscribe(
        [(f"$share/hymy-ingest/{topics.subscription(k)}", 1) for k in topics.TERMINAL_PUBLISHES]
        + [(topics.subscription(topics.ACK), 1)]
    )
    client.connect(enrolled.host, enrolled.port)
    client.loop_start()
    try:
        assert done.wait(5)
    finally:
        client.disconnect()
        client.loop_stop()
    assert granted == [[True, True, True, True, False]]
