"""Fixtures shared by every test package: brokers, an MQTT probe client and a scratch database path."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from sim.brokers import BrokerRunner, EmbeddedBroker, MosquittoBroker, SecureMosquitto, find_mosquitto
from sim.testca import TestCA
from tests.processes import Processes

from .fleetdb import empty_tables, fleet_test_database

# Set while conftest loads, before any test module imports pygame: render off-screen, play no sound.
os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

BROKER_KINDS = ["mosquitto", "embedded"]
#: The engines every fleet store test runs on.
FLEET_ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own on a real PostgreSQL for this test run, dropped at the end (see tests/fleetdb.py)."""
    with fleet_test_database() as url:
        yield url


@pytest.fixture(params=FLEET_ENGINES)
def fleet_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh fleet store lives, on each engine in turn: a new SQLite file, or emptied PostgreSQL tables."""
    if request.param == "sqlite":
        return str(tmp_path / "fleet.db")
    url: str = request.getfixturevalue("postgres_url")
    empty_tables(url)
    return url


@pytest.fixture
def mosquitto() -> Iterator[MosquittoBroker]:
    """A real mosquitto on a free loopback port, stopped and cleaned up after the test."""
    if find_mosquitto() is None:
        pytest.fail(
            "mosquitto is not installed (not on PATH nor at /usr/sbin/mosquitto). "
            "Run the tests with `bash tests/run.sh`, which installs it.",
            pytrace=False,
        )
    runner = MosquittoBroker()
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()


@pytest.fixture
def test_ca(tmp_path: Path) -> TestCA:
    """A certificate authority made for this test (its ``ca_file`` is what clients trust)."""
    return TestCA(tmp_path / "ca")


@pytest.fixture
def secure_mosquitto(test_ca: TestCA) -> Iterator[SecureMosquitto]:
    """Mosquitto as production runs it (``hymy fleet broker-config``): TLS, logins, access rules."""
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed; run the tests with `bash tests/run.sh`", pytrace=False)
    server = test_ca.server()
    runner = SecureMosquitto(certfile=server.cert, keyfile=server.key, ca_file=server.ca)
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()


@pytest.fixture
def embedded_broker() -> Iterator[EmbeddedBroker]:
    """amqtt in a background thread on a free loopback port, shut down after the test."""
    runner = EmbeddedBroker()
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()


@pytest.fixture(params=BROKER_KINDS)
def broker(request: pytest.FixtureRequest) -> BrokerRunner:
    """Each broker in turn, for behaviour that must hold on mosquitto and on the embedded broker alike."""
    fixture_name = "embedded_broker" if request.param == "embedded" else "mosquitto"
    runner: BrokerRunner = request.getfixturevalue(fixture_name)
    return runner


#: amqtt (the embedded broker of the zero-set-up demo) gets two things wrong at a disconnect, seen
#: here and never with Mosquitto: it can PUBACK a QoS 1 publish and never deliver it when the
#: publisher disconnects right after (a terminal's goodbye: ``is_published()`` was True, the
#: subscribed QoS 1 client never got it), and on a session takeover it can publish the old
#: connection's will with the new connection's will payload (conn 2 where the birth said 1).
#: Tests of what the broker does at a disconnect mark their embedded run with this, so the
#: Mosquitto run alone holds the guarantee; the demo only loses a liveness message by it.
AMQTT_DROPS_ON_DISCONNECT = "amqtt mishandles a publish or a will at a disconnect (see tests/conftest.py)"


def embedded_broker_may_drop(request: pytest.FixtureRequest) -> None:
    """Mark this test's embedded-broker run as an expected, not strict, failure (see above)."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("broker") == "embedded":
        request.node.add_marker(pytest.mark.xfail(reason=AMQTT_DROPS_ON_DISCONNECT, strict=False))


class MqttProbe:
    """A paho client for tests that queues what it receives and waits for acks, so tests need no sleeps."""

    def __init__(
        self,
        runner: BrokerRunner,
        client_id: str = "",
        *,
        clean_session: bool = True,
        will: tuple[str, bytes, int, bool] | None = None,
        timeout: float = 5.0,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | Path | None = None,
    ) -> None:
        """``username``/``password``: a broker login; ``ca_file``: connect over TLS trusting that CA."""
        self.timeout = timeout
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._connected = threading.Event()
        self._subacks: dict[int, bool] = {}
        self._suback_cond = threading.Condition()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session, protocol=mqtt.MQTTv311
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        if will is not None:
            topic, payload, qos, retain = will
            self.client.will_set(topic, payload, qos=qos, retain=retain)
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        self.refused: list[str] = []
        self.client.connect(runner.host, runner.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(timeout):
            self.close()
            raise AssertionError(f"probe {client_id!r} did not connect to {runner.url} in {timeout}s")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self.refused.append(str(reason))
        else:
            self._connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.messages.put(message)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        with self._suback_cond:
            self._subacks[mid] = not any(r.is_failure for r in reasons)
            self._suback_cond.notify_all()

    def subscribe(self, topic: str, qos: int = 1) -> bool:
        """Subscribe and return once the broker's SUBACK has arrived: True granted, False refused."""
        result, mid = self.client.subscribe(topic, qos)
        assert result == mqtt.MQTT_ERR_SUCCESS, f"subscribe {topic!r} failed: {result}"
        with self._suback_cond:
            if not self._suback_cond.wait_for(lambda: mid in self._subacks, self.timeout):
                raise AssertionError(f"no SUBACK for {topic!r} in {self.timeout}s")
            return self._subacks[mid]

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Publish and return once the broker has acknowledged it (for QoS 1 and 2)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(self.timeout)
        assert info.is_published(), f"publish to {topic!r} not acknowledged in {self.timeout}s"

    def expect(self, timeout: float | None = None) -> mqtt.MQTTMessage:
        """Return the next message received, failing the test if none comes in time."""
        try:
            return self.messages.get(timeout=self.timeout if timeout is None else timeout)
        except queue.Empty:
            raise AssertionError("no message arrived") from None

    def assert_silent(self, duration: float = 0.3) -> None:
        """Fail if any message arrives within ``duration`` seconds."""
        try:
            message = self.messages.get(timeout=duration)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {message.topic!r}: {message.payload!r}")

    def close(self) -> None:
        """Disconnect cleanly (no will) and stop paho's network thread."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def mqtt_probe() -> Iterator[Callable[..., MqttProbe]]:
    """Factory for connected test clients: ``mqtt_probe(broker, "client-id", clean_session=False)``."""
    probes: list[MqttProbe] = []

    def make(runner: BrokerRunner, client_id: str = "", **kwargs: Any) -> MqttProbe:
        probe = MqttProbe(runner, client_id, **kwargs)
        probes.append(probe)
        return probe

    yield make
    for probe in probes:
        probe.close()


@pytest.fixture
def tmp_db(tmp_path: Path) -> Path:
    """A path for a fresh SQLite database file that is removed with the test's temp dir."""
    return tmp_path / "hymy.db"


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Start child processes (``python -m …``) that are killed at teardown."""
    procs = Processes(tmp_path)
    yield procs
    procs.kill_all()
