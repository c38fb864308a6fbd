"""Fixtures for the terminal's tests: clocks, vote stores, configuration documents, sync agents and a fake fleet."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

import protocol
from device.clock import FakeClock, SystemClock
from device.store import VoteStore
from device.sync import SyncAgent

DEVICE = "term-0001"


@pytest.fixture
def device_id() -> str:
    """The id of the terminal under test."""
    return DEVICE


def make_config_doc(question: str = "q-visit", scale: str = "faces4", **extra: Any) -> dict[str, Any]:
    """A valid configuration document; keyword arguments override or add settings."""
    doc: dict[str, Any] = {
        "unit": "unit-a",
        "languages": ["fi", "sv"],
        "default_language": "fi",
        "question": {"id": question, "scale": scale, "text": {"fi": "Miten onnistuimme?", "sv": "Hur lyckades vi?"}},
    }
    doc.update(extra)
    return doc


@pytest.fixture
def fake_clock() -> FakeClock:
    """A clock that moves only when the test says so."""
    return FakeClock()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Where the terminal's vote database lives for this test."""
    return tmp_path / "votes.db"


@pytest.fixture
def vote_store(store_path: Path, fake_clock: FakeClock, device_id: str) -> Iterator[VoteStore]:
    """An open vote store on the fake clock, closed after the test."""
    store = VoteStore(store_path, device_id, fake_clock)
    yield store
    store.close()


@pytest.fixture
def config_doc() -> dict[str, Any]:
    """A valid four-face configuration with the default two-second misuse interval."""
    return make_config_doc()


@pytest.fixture
def config_doc_with() -> Callable[..., dict[str, Any]]:
    """Factory for valid configuration documents: ``config_doc_with(question="q2", misuse_interval_s=5)``."""
    return make_config_doc


_LAST: Any = object()  # "the store id of the device's latest batch"


class FakeFleet:
    """Plays the fleet's part over a real broker: records votes, then (optionally) acks them.

    It resubscribes on every connect, so it survives broker restarts, and can announce the
    fleet's retained online/offline state.
    """

    def __init__(self, host: str, port: int, *, acking: bool = True, announce: bool | None = True) -> None:
        self.acking = acking
        self.announce = announce
        self.seqs: set[int] = set()
        self.stores: dict[str, str | None] = {}  # the store id each device's latest batch carried
        self.batches: list[protocol.VoteBatch] = []
        self.states: list[protocol.TerminalState] = []
        self.heartbeats: list[protocol.Heartbeat] = []
        self.reports: list[protocol.ConfigReport] = []
        self._cond = threading.Condition()
        self._ready = threading.Event()  # set once subscribed, so nothing sent to us is dropped
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fake-fleet", protocol=mqtt.MQTTv311)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *a: self._ready.clear()
        self.client.connect_async(host, port, keepalive=30)
        self.client.loop_start()
        assert self._ready.wait(10), "fake fleet could not connect and subscribe"

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            return
        client.subscribe([(f"hymy/v1/+/{kind}", 1) for kind in ("votes", "state", "heartbeat", "config/report")])
        if self.announce is not None:
            self.set_online(self.announce)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        msg = protocol.decode(message.topic, message.payload)
        with self._cond:
            if isinstance(msg, protocol.VoteBatch):
                self.batches.append(msg)
                self.stores[msg.device] = msg.store
                self.seqs.update(v.seq for v in msg.votes)
            elif isinstance(msg, protocol.TerminalState):
                self.states.append(msg)
            elif isinstance(msg, protocol.Heartbeat):
                self.heartbeats.append(msg)
            elif isinstance(msg, protocol.ConfigReport):
                self.reports.append(msg)
            self._cond.notify_all()
        if isinstance(msg, protocol.VoteBatch) and self.acking:
            self.ack(msg.device, msg.batch, [v.seq for v in msg.votes], store=msg.store)

    def _store_of(self, device: str, store: Any) -> str | None:
        with self._cond:
            return self.stores.get(device) if store is _LAST else store

    def ack(self, device: str, batch: int, seqs: Any, store: Any = _LAST) -> None:
        """Acknowledge ``seqs`` of ``store``'s series as the real fleet does after its commit.

        ``store`` defaults to the series of the device's latest batch; None is the legacy series.
        """
        ack = protocol.Ack(device, batch, protocol.seq_ranges(seqs), self._store_of(device, store))
        self.client.publish(f"hymy/v1/{device}/ack", protocol.encode(ack), qos=1)

    def ack_ranges(self, device: str, ranges: tuple[tuple[int, int], ...], store: Any = _LAST) -> None:
        """Acknowledge raw ranges (of the device's latest series unless told), for acks never asked for."""
        ack = protocol.Ack(device, 0, ranges, self._store_of(device, store))
        self.client.publish(f"hymy/v1/{device}/ack", protocol.encode(ack), qos=1)

    def refuse(self, device: str, batch: int, seqs: Any, reason: str = "conflict", store: Any = _LAST) -> None:
        """Refuse ``seqs`` for good, as the fleet does for a conflict or an invalid vote."""
        refused = ((reason, protocol.seq_ranges(seqs)),)
        ack = protocol.Ack(device, batch, (), self._store_of(device, store), refused)
        self.client.publish(f"hymy/v1/{device}/ack", protocol.encode(ack), qos=1)

    def set_online(self, online: bool) -> None:
        """Publish the fleet's retained state."""
        state = protocol.FleetState(online=online, wall=1_700_000_000_000, instance="fake")
        self.client.publish("hymy/v1/_fleet/state", protocol.encode(state), qos=1, retain=True)

    def publish_config(self, device: str, version: int, doc: dict[str, Any]) -> None:
        """Publish a configuration retained, as the fleet pushes one."""
        payload = protocol.encode(protocol.Config(device, version, doc))
        self.client.publish(f"hymy/v1/{device}/config", payload, qos=1, retain=True)

    def publish_raw(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish bytes the codec would refuse to build."""
        self.client.publish(topic, payload, qos=1, retain=retain)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
        """Block until ``predicate()`` holds (checked whenever a message arrives), or fail the test."""
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise AssertionError(f"fake fleet: timed out waiting for {what}")

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def fake_fleet(broker: Any) -> Iterator[Callable[..., FakeFleet]]:
    """Factory for fleets on the test's broker (each kind): ``fake_fleet(acking=False, announce=None)``."""
    fleets: list[FakeFleet] = []

    def make(**kwargs: Any) -> FakeFleet:
        fleet = FakeFleet(broker.host, broker.port, **kwargs)
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        fleet.close()


@pytest.fixture
def synced_store(store_path: Path, device_id: str) -> Iterator[VoteStore]:
    """A vote store on the real clock, since the agent's ack deadlines and heartbeats run in real time."""
    store = VoteStore(store_path, device_id, SystemClock())
    yield store
    store.close()


@pytest.fixture
def sync_agent(synced_store: VoteStore, device_id: str, broker: Any) -> Iterator[Callable[..., SyncAgent]]:
    """Factory for sync agents on the test's broker (each kind) with test-friendly timings; all stopped afterwards."""
    agents: list[SyncAgent] = []

    def make(start: bool = True, **kwargs: Any) -> SyncAgent:
        options: dict[str, Any] = {"ack_timeout_s": 2.0, "heartbeat_s": 30.0, "fleet_grace_s": 0.3}
        options.update(kwargs)
        agent = SyncAgent(synced_store, device_id, broker.host, broker.port, SystemClock(), **options)
        agents.append(agent)
        if start:
            agent.start()
        return agent

    yield make
    for agent in agents:
        agent.stop()


@pytest.fixture(params=["own-thread", "shared-loop"])
def network(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Each network driver a sync agent can run on: paho's own thread (None) or one SharedLoop."""
    if request.param == "own-thread":
        yield None
        return
    from device.netloop import SharedLoop

    loop = SharedLoop()
    yield loop
    loop.close()
