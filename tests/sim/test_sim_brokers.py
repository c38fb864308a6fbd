"""Both broker runners carry what Hymy relies on: retained QoS 1 state, wills, offline queues, restarts."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import pytest

import sim.brokers
from sim.brokers import BrokerError, BrokerRunner, EmbeddedBroker, MosquittoBroker, choose_port, free_port, port_accepts

Probe = Callable[..., Any]


def _mqtt_string(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect_and_vanish(runner: BrokerRunner, client_id: str, will_topic: str, will_payload: bytes) -> None:
    """Connect with a retained QoS 1 will, then drop the TCP connection without DISCONNECT, as a power cut does."""
    flags = 0x02 | 0x04 | (1 << 3) | 0x20  # clean session, will, will QoS 1, will retain
    body = _mqtt_string(b"MQTT") + bytes([4, flags]) + (30).to_bytes(2, "big")
    body += _mqtt_string(client_id.encode()) + _mqtt_string(will_topic.encode()) + _mqtt_string(will_payload)
    with socket.create_connection((runner.host, runner.port), timeout=5) as sock:
        sock.sendall(b"\x10" + _remaining_length(len(body)) + body)
        assert sock.recv(4) == b"\x20\x02\x00\x00", "broker refused the CONNECT"


def test_retained_qos1_message_reaches_a_later_subscriber(broker: BrokerRunner, mqtt_probe: Probe) -> None:
    publisher = mqtt_probe(broker, "fleet")
    publisher.publish("hymy/t1/config", b"v7", qos=1, retain=True)

    late = mqtt_probe(broker, "t1")
    late.subscribe("hymy/t1/config", qos=1)
    message = late.expect()
    assert (message.topic, message.payload, message.qos, message.retain) == ("hymy/t1/config", b"v7", 1, True)


def test_will_is_published_and_retained_when_a_client_vanishes(broker: BrokerRunner, mqtt_probe: Probe) -> None:
    watcher = mqtt_probe(broker, "fleet")
    watcher.subscribe("hymy/t1/state", qos=1)

    connect_and_vanish(broker, "t1", "hymy/t1/state", b"offline")
    live = watcher.expect()
    assert (live.topic, live.payload, live.qos, live.retain) == ("hymy/t1/state", b"offline", 1, False)

    late = mqtt_probe(broker, "dashboard")
    late.subscribe("hymy/+/state", qos=1)
    retained = late.expect()
    assert (retained.payload, retained.retain) == (b"offline", True)


def test_clean_disconnect_sends_no_will(broker: BrokerRunner, mqtt_probe: Probe) -> None:
    watcher = mqtt_probe(broker, "fleet")
    watcher.subscribe("hymy/t1/state", qos=1)
    leaving = mqtt_probe(broker, "t1", will=("hymy/t1/state", b"offline", 1, True))
    leaving.close()
    watcher.assert_silent()


def test_offline_persistent_session_gets_queued_qos1_messages(broker: BrokerRunner, mqtt_probe: Probe) -> None:
    fleet = mqtt_probe(broker, "fleet", clean_session=False)
    fleet.subscribe("hymy/+/votes", qos=1)
    fleet.close()

    mqtt_probe(broker, "t1").publish("hymy/t1/votes", b"batch-1", qos=1)

    again = mqtt_probe(broker, "fleet", clean_session=False)
    message = again.expect()
    assert (message.topic, message.payload, message.qos, message.retain) == ("hymy/t1/votes", b"batch-1", 1, False)


def test_client_without_subscriptions_receives_nothing(broker: BrokerRunner, mqtt_probe: Probe) -> None:
    # amqtt 0.12 unpatched sends a new client retained messages matching *other* clients' subscriptions
    mqtt_probe(broker, "fleet").publish("hymy/t1/config", b"v7", retain=True)
    mqtt_probe(broker, "dashboard").subscribe("hymy/#")
    mqtt_probe(broker, "t2").assert_silent()


def test_restart_keeps_the_port_and_takes_clients_again(broker: BrokerRunner, mqtt_probe: Probe) -> None:
    port = broker.port
    broker.restart()
    assert broker.port == port
    assert broker.running
    probe = mqtt_probe(broker, "after-restart")
    probe.subscribe("hymy/x", qos=1)
    probe.publish("hymy/x", b"hello")
    assert probe.expect().payload == b"hello"


def test_stop_closes_the_port(broker: BrokerRunner) -> None:
    broker.stop()
    assert not broker.running
    assert not port_accepts(broker.host, broker.port)
    broker.stop()  # twice is harmless


def test_context_manager_starts_and_stops() -> None:
    with EmbeddedBroker() as runner:
        assert port_accepts(runner.host, runner.port)
    assert not port_accepts(runner.host, runner.port)


def test_embedded_broker_leaves_no_tasks_behind(embedded_broker: EmbeddedBroker, mqtt_probe: Probe) -> None:
    mqtt_probe(embedded_broker, "connected-at-shutdown").subscribe("hymy/#")
    embedded_broker.stop()
    assert embedded_broker.leftover_tasks == []


def test_mosquitto_persistence_keeps_retained_messages_across_restart(mqtt_probe: Probe) -> None:
    with MosquittoBroker(persistence=True) as runner:
        mqtt_probe(runner, "fleet").publish("hymy/t1/config", b"v7", retain=True)
        runner.restart()
        probe = mqtt_probe(runner, "t1")
        probe.subscribe("hymy/t1/config")
        assert probe.expect().payload == b"v7"


def test_mosquitto_kill_drops_connections_and_start_brings_it_back(mosquitto: MosquittoBroker) -> None:
    port = mosquitto.port
    mosquitto.kill()
    assert not mosquitto.running
    assert not port_accepts(mosquitto.host, port)
    mosquitto.start()
    assert mosquitto.port == port and port_accepts(mosquitto.host, port)


def test_mosquitto_start_failure_shows_the_log_tail() -> None:
    runner = MosquittoBroker(extra_config="no_such_option true")
    try:
        with pytest.raises(BrokerError, match="no_such_option"):
            runner.start()
    finally:
        runner.stop()


def test_missing_mosquitto_points_to_the_test_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim.brokers, "find_mosquitto", lambda: None)
    with pytest.raises(BrokerError, match="tests/run.sh"):
        MosquittoBroker()


def test_choose_port_keeps_a_free_preferred_port() -> None:
    port = free_port()
    assert choose_port(port) == (port, False)


def test_choose_port_falls_back_when_the_preferred_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        choice = choose_port(busy)
    assert choice.fell_back
    assert choice.port != busy
    with EmbeddedBroker(choice.port) as runner:
        assert port_accepts(runner.host, runner.port)


class _Flooder:
    """A paho client publishing QoS 1 as fast as it can, reconnecting by itself, as a busy terminal does."""

    def __init__(self, runner: BrokerRunner, index: int) -> None:
        self.sent = 0
        self._stop = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"flooder-{index}",
            clean_session=index % 2 == 0,  # persistent sessions too: amqtt keeps more state for them
            protocol=mqtt.MQTTv311,
        )
        self.client.will_set(f"hymy/v1/flooder-{index}/state", b"offline", qos=1, retain=True)
        self.client.reconnect_delay_set(0.01, 0.05)
        self.topic = f"hymy/v1/flooder-{index}/votes"
        if index == 0:  # one of them also subscribes, so the broker is delivering while it stops
            self.client.on_connect = lambda client, *_: client.subscribe("hymy/v1/#", 1)
        self.client.connect_async(runner.host, runner.port, keepalive=5)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.client.is_connected():
                self.client.publish(self.topic, b"x" * 200, qos=1)
                self.sent += 1
                time.sleep(0.001)
            else:
                time.sleep(0.01)

    def close(self) -> None:
        """Stop publishing and disconnect."""
        self._stop.set()
        self._thread.join()
        self.client.disconnect()
        self.client.loop_stop()


def test_embedded_broker_stops_while_clients_publish() -> None:
    # Python 3.11's wait_for swallowed the cancel of a reader that had a packet buffered, so amqtt's
    # shutdown waited for ever on a publishing client (it hung on the first or second stop here).
    # A stop that hangs raises BrokerError after stop_timeout; no time is asserted beyond that.
    runner = EmbeddedBroker(stop_timeout=5.0)
    runner.start()
    flooders = [_Flooder(runner, i) for i in range(4)]
    try:
        for _ in range(12):
            deadline = time.monotonic() + 30.0
            before = sum(f.sent for f in flooders)
            while sum(f.sent for f in flooders) < before + 50 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert sum(f.sent for f in flooders) >= before + 50, "the clients were publishing when it stopped"
            runner.stop()
            runner.start()
    finally:
        for flooder in flooders:
            flooder.close()
        runner.stop()
