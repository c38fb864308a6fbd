"""The shared network loop drives many terminals' MQTT clients from one thread, with paho's own guarantees.

Delivery only on the fleet's ack, a broker restart and a start with no broker are proven for both
drivers in test_device_sync.py (the ``network`` fixture); here is what only the shared loop does."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from device.clock import SystemClock
from device.netloop import SharedLoop
from device.store import VoteStore
from device.sync import SyncAgent
from tests.waiting import wait_until

DEVICE = "term-0001"


@pytest.fixture
def shared_loop() -> Iterator[SharedLoop]:
    """One shared loop for the test's agents, closed after they have stopped."""
    loop = SharedLoop()
    yield loop
    loop.close()


def press(store: VoteStore, n: int, agent: SyncAgent) -> list[int]:
    seqs = [store.record("q-visit", "faces4", i % 4, "fi", unit="unit-a").seq for i in range(n)]
    agent.wake()
    return seqs


def test_many_terminals_share_one_thread_and_all_deliver(
    tmp_path: Path, broker: Any, fake_fleet: Callable[..., Any], shared_loop: SharedLoop
) -> None:
    fleet = fake_fleet()
    before = threading.active_count()
    stores = [VoteStore(tmp_path / f"t{i}.db", f"term-{i:04d}", SystemClock()) for i in range(20)]
    agents = [
        SyncAgent(s, s.device_id, broker.host, broker.port, SystemClock(), fleet_grace_s=0.3, network=shared_loop)
        for s in stores
    ]
    try:
        for agent in agents:
            agent.start()
        # one loop thread per agent, and no paho thread: 20 terminals add 20 threads, not 40
        assert threading.active_count() - before == len(agents)
        for store, agent in zip(stores, agents, strict=True):
            press(store, 7, agent)
        wait_until(lambda: all(s.depth() == 0 for s in stores), what="every terminal drained")
        assert len(fleet.seqs) == 7  # the fake fleet records seqs; each terminal sent 1..7
        assert len(shared_loop) == len(agents)
    finally:
        for agent in agents:
            agent.stop()
        for store in stores:
            store.close()
    assert len(shared_loop) == 0  # a stopped agent's client is let go


def test_stop_says_offline_and_lets_the_client_go(
    sync_agent: Callable[..., SyncAgent], shared_loop: SharedLoop
) -> None:
    agent = sync_agent(network=shared_loop)
    wait_until(lambda: agent.connected, what="connected")
    assert len(shared_loop) == 1
    agent.stop()
    assert len(shared_loop) == 0
    assert not agent.link.is_connected()


def test_a_clock_rate_that_is_not_positive_is_a_caller_mistake(synced_store: VoteStore) -> None:
    with pytest.raises(ValueError, match="clock_rate"):
        SyncAgent(synced_store, DEVICE, "127.0.0.1", 1, SystemClock(), clock_rate=0)
