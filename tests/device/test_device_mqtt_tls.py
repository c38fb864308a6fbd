"""The terminal's MQTT link over TLS against a real mosquitto: the broker's certificate and host name verified."""

from __future__ import annotations

import io
import logging
import os
import queue
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

import protocol
from device.__main__ import main
from device.clock import SystemClock
from device.errors import MqttError
from device.mqtt import MqttLink
from device.store import VoteStore
from device.sync import SyncAgent
from protocol import topics
from sim.brokers import MosquittoBroker, find_mosquitto, free_port, port_accepts
from tests.tlsca import ServerCert, TestCA
from tests.waiting import wait_until

DEVICE = "term-0001"


class TlsMosquitto:
    """Mosquitto with its usual plain listener and a second one on ``tls_port`` with the CA's certificate."""

    def __init__(self, cert: ServerCert) -> None:
        self.host = "127.0.0.1"
        self.tls_port = free_port()
        config = "\n".join(
            [
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {cert.ca}",
                f"certfile {cert.cert}",
                f"keyfile {cert.key}",
            ]
        )
        self.runner = MosquittoBroker(extra_config=config)
        self.runner.start()
        wait_until(lambda: _accepts(self.host, self.tls_port), what="TLS listener up")

    def stop(self) -> None:
        self.runner.stop()


def _accepts(host: str, port: int) -> bool:
    return port_accepts(host, port)


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    """The CA that signed the broker's certificate."""
    return TestCA(tmp_path / "ca")


@pytest.fixture
def tls_broker(ca: TestCA) -> Iterator[TlsMosquitto]:
    """Mosquitto with a TLS listener whose certificate ``ca`` signed for localhost and 127.0.0.1."""
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed; run the tests with `bash tests/run.sh`", pytrace=False)
    broker = TlsMosquitto(ca.server())
    yield broker
    broker.stop()


class TlsProbe:
    """A subscriber over TLS trusting ``ca_file``."""

    def __init__(self, host: str, port: int, ca_file: Path, topic: str) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tls-probe", protocol=mqtt.MQTTv311)
        self.client.tls_set(ca_certs=str(ca_file), cert_reqs=ssl.CERT_REQUIRED)
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.connect(host, port, keepalive=30)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def agent_on(tmp_path: Path) -> Iterator[Callable[..., SyncAgent]]:
    """Factory for started sync agents on a store of their own: ``agent_on(host, port, ca_file=...)``."""
    made: list[tuple[SyncAgent, VoteStore]] = []

    def make(host: str, port: int, **kwargs: Any) -> SyncAgent:
        store = VoteStore(tmp_path / f"votes-{len(made)}.db", DEVICE, SystemClock())
        agent = SyncAgent(store, DEVICE, host, port, SystemClock(), fleet_grace_s=0.3, **kwargs)
        made.append((agent, store))
        agent.start()
        return agent

    yield make
    for agent, store in made:
        agent.stop()
        store.close()


def test_a_terminal_with_the_brokers_ca_connects_over_tls_and_publishes_its_state(
    tls_broker: TlsMosquitto, ca: TestCA, agent_on: Callable[..., SyncAgent]
) -> None:
    probe = TlsProbe(tls_broker.host, tls_broker.tls_port, ca.ca_file, topics.device_topic(DEVICE, topics.STATE))
    try:
        agent = agent_on(tls_broker.host, tls_broker.tls_port, ca_file=str(ca.ca_file))
        assert agent.link.tls
        wait_until(lambda: agent.connected, what="terminal connected over TLS")
        deadline = time.monotonic() + 10
        while True:
            msg = probe.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            state = protocol.decode(msg.topic, bytes(msg.payload))
            if isinstance(state, protocol.TerminalState) and state.online:
                break
        assert state.device == DEVICE
    finally:
        probe.close()


@pytest.mark.parametrize("case", ["stranger CA", "wrong host name", "no TLS at all"])
def test_a_broker_the_terminal_cannot_verify_is_never_used_and_is_logged_once(
    tls_broker: TlsMosquitto,
    ca: TestCA,
    tmp_path: Path,
    agent_on: Callable[..., SyncAgent],
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="device.mqtt")
    broker, ca_file = tls_broker, ca.ca_file
    if case == "stranger CA":
        ca_file = TestCA(tmp_path / "stranger", "Someone else's CA").ca_file
    elif case == "wrong host name":  # a second broker, its certificate (by the right CA) for another name
        broker = TlsMosquitto(ca.server("elsewhere", hosts=("elsewhere.example",)))
    try:
        if case == "no TLS at all":  # plain MQTT to the TLS port: a broken handshake, never a connection
            agent = agent_on(broker.host, broker.tls_port)
        else:
            agent = agent_on(broker.host, broker.tls_port, ca_file=str(ca_file))
        first = agent.link.conn
        wait_until(lambda: agent.link.conn >= first + 2, timeout=10, what="paho dialling again and again")
        assert not agent.connected
        if case != "no TLS at all":
            refusals = [r for r in caplog.records if "TLS handshake" in r.getMessage()]
            assert len(refusals) == 1, "said once, then rate-limited"
            assert "certificate verify failed" in refusals[0].getMessage()
    finally:
        if broker is not tls_broker:
            broker.stop()


def test_a_missing_ca_file_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(MqttError, match="cannot use the broker CA certificate"):
        MqttLink(DEVICE, "127.0.0.1", 8883, queue.Queue(), lambda: 1, SystemClock(), ca_file=tmp_path / "nope.pem")


def test_the_headless_terminal_takes_ca_file_and_connects_over_tls(
    tls_broker: TlsMosquitto, ca: TestCA, tmp_path: Path
) -> None:
    probe = TlsProbe(tls_broker.host, tls_broker.tls_port, ca.ca_file, topics.device_topic(DEVICE, topics.STATE))
    read_fd, write_fd = os.pipe()
    argv = ["--db", str(tmp_path / "v.db"), "--device", DEVICE, "--broker", f"127.0.0.1:{tls_broker.tls_port}"]
    argv += ["--ca-file", str(ca.ca_file)]
    try:
        with os.fdopen(read_fd) as stdin, os.fdopen(write_fd, "w") as feed:
            runner = threading.Thread(target=lambda: main(argv, stdin=stdin, stdout=io.StringIO()))
            runner.start()
            msg = probe.messages.get(timeout=10)
            state = protocol.decode(msg.topic, bytes(msg.payload))
            assert isinstance(state, protocol.TerminalState) and state.device == DEVICE and state.online
            feed.close()
            runner.join(10)
        assert not runner.is_alive()
    finally:
        probe.close()
