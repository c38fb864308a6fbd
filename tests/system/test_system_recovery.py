"""Recovery paths end to end: the real terminal agent and store, the real fleet ingest, a real Mosquitto.

What happens in a real fleet every week: a card is re-imaged under the same device id, a batch is
refused for good, the fleet cannot take one batch. In each, every other press still arrives once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from device.clock import SystemClock
from device.store import VoteStore
from device.sync import SyncAgent
from fleet.db.store import SqlFleetStore
from fleet.errors import StoreError
from fleet.ingest import Ingest
from protocol import VoteBatch
from tests.presses import assert_exactly_once, lost_and_duplicated, pressed, stored
from tests.waiting import wait_until

DEVICE = "kiosk-001"


class _Fleet:
    """A running ingest on its own database, stopped at teardown."""

    def __init__(self, store: SqlFleetStore, mosquitto: Any) -> None:
        self.store = store
        self.ingest = Ingest(store, mosquitto.host, mosquitto.port, instance="test-fleet")
        self.ingest.start()
        assert self.ingest.wait_ready(10), "ingest did not connect"

    def stop(self) -> None:
        self.ingest.stop()
        self.store.close()


@pytest.fixture
def fleet(mosquitto: Any, tmp_path: Path) -> Iterator[_Fleet]:
    running = _Fleet(SqlFleetStore(tmp_path / "fleet.db"), mosquitto)
    yield running
    running.stop()


def press(store: VoteStore, n: int, agent: SyncAgent | None = None) -> None:
    for i in range(n):
        store.record("thl-nps", "nps11", i % 11, "fi", unit="unit-a")
    if agent is not None:
        agent.wake()


def agent_for(store: VoteStore, mosquitto: Any, **options: Any) -> SyncAgent:
    settings: dict[str, Any] = {"ack_timeout_s": 0.5, "max_backoff_s": 2.0, "heartbeat_s": 30.0, "fleet_grace_s": 0.3}
    settings.update(options)
    agent = SyncAgent(store, DEVICE, mosquitto.host, mosquitto.port, SystemClock(), **settings)
    agent.start()
    return agent


def test_a_terminal_re_imaged_under_its_old_id_delivers_both_series(
    mosquitto: Any, fleet: _Fleet, tmp_path: Path
) -> None:
    old = VoteStore(tmp_path / "card-1.db", DEVICE, SystemClock())
    agent = agent_for(old, mosquitto)
    press(old, 40, agent)
    wait_until(lambda: old.depth() == 0, 30, "the first card's 40 votes delivered")
    agent.stop()
    old.close()
    # The card dies; IT writes a fresh image with the same device id: a new, empty database.
    new = VoteStore(tmp_path / "card-2.db", DEVICE, SystemClock())
    assert new.store_id and new.store_id != old.store_id
    agent = agent_for(new, mosquitto)
    try:
        press(new, 30, agent)
        wait_until(lambda: new.depth() == 0, 30, "the new card's 30 votes delivered")
    finally:
        agent.stop()
        new.close()
    assert fleet.store.vote_count(DEVICE) == 70
    assert_exactly_once(fleet.store, [(DEVICE, [tmp_path / "card-1.db", tmp_path / "card-2.db"])])
    assert fleet.ingest.counters().conflicts == 0
    series = [(v.store, v.seq) for v in fleet.store.stored_votes(DEVICE)]
    assert series == [(old.store_id, s) for s in range(1, 41)] + [(new.store_id, s) for s in range(1, 31)]


def test_votes_the_fleet_refuses_are_set_aside_reported_and_the_rest_delivered(
    mosquitto: Any, fleet: _Fleet, tmp_path: Path
) -> None:
    store = VoteStore(tmp_path / "votes.db", DEVICE, SystemClock())
    # Seqs 3 and 4 of this store are already held by the fleet as different presses (say, the
    # database was restored from a copy): the fleet must refuse them, not leave them hanging.
    press(store, 2)
    taken = store.pending(10)
    squatters = tuple(v._replace(seq=v.seq + 2, answer=(v.answer + 5) % 11) for v in taken)
    fleet.store.add_vote_batches([VoteBatch(DEVICE, 99, squatters, store.store_id or None)], 0)
    press(store, 8)
    agent = agent_for(store, mosquitto, batch_size=3, heartbeat_s=0.3)
    try:
        wait_until(lambda: store.depth() == 0, 30, "everything delivered or refused")
        wait_until(lambda: agent.counters().votes_refused == 2, 10, "the refusals counted")

        def reported() -> bool:
            status = fleet.store.terminal(DEVICE)
            return status is not None and status.queue == 0 and status.refused == 2

        wait_until(reported, 10, "a heartbeat reporting the refused votes and an empty queue")
    finally:
        agent.stop()
    assert [(v.seq, reason) for v, reason in store.refused_votes()] == [(3, "conflict"), (4, "conflict")]
    assert store.refused_count() == 2
    assert fleet.store.vote_count(DEVICE) == 10  # 8 of this terminal and the 2 that were there first
    store.close()


class _OneBatchNeverStored(SqlFleetStore):
    """A fleet store that can never take the batch holding seq 5 (and so never answers it)."""

    def add_vote_batches(self, batches: Any, received_ms: int) -> Any:
        if any(v.seq == 5 for b in batches for v in b.votes):
            raise StoreError("this batch cannot be stored")
        return super().add_vote_batches(batches, received_ms)


def test_a_fleet_that_never_answers_one_batch_still_receives_every_later_vote(mosquitto: Any, tmp_path: Path) -> None:
    fleet = _Fleet(_OneBatchNeverStored(tmp_path / "fleet.db"), mosquitto)
    store = VoteStore(tmp_path / "votes.db", DEVICE, SystemClock())
    press(store, 10)
    agent = agent_for(store, mosquitto, batch_size=10, ack_timeout_s=0.3)
    try:
        wait_until(lambda: agent.counters().resends >= 1, 10, "the first batch timed out")
        press(store, 90, agent)  # pressed after the silence began
        wait_until(lambda: fleet.store.vote_count(DEVICE) == 90, 15, "every later vote at the fleet")
        wait_until(lambda: store.depth() == 10, 15, "every later vote acknowledged")
        assert sorted(v.seq for v in store.pending(100)) == list(range(1, 11)), "only the unanswered batch is kept"
        assert {v.seq for v in store.pending(100)} == set(range(1, 11))
    finally:
        agent.stop()
        store.close()
        fleet.stop()


class _ForgetfulFleetStore(SqlFleetStore):
    """Idempotency broken on purpose: every batch is filed under a store id of its own."""

    def add_vote_batches(self, batches: Any, received_ms: int) -> Any:
        self.calls = getattr(self, "calls", 0) + 1
        return super().add_vote_batches([replace(b, store=f"copy{self.calls}") for b in batches], received_ms)


def test_the_press_count_finds_a_vote_stored_twice_under_another_key(tmp_path: Path) -> None:
    # Proves the exactly-once checks above can fail: the fleet's key sees no duplicate here.
    store = VoteStore(tmp_path / "votes.db", DEVICE, SystemClock())
    press(store, 5)
    batch = VoteBatch(DEVICE, 1, tuple(store.pending(10)), store.store_id or None)
    store.close()
    with _ForgetfulFleetStore(tmp_path / "fleet.db") as fleet:
        fleet.add_vote_batches([batch], 0)
        assert lost_and_duplicated(pressed(tmp_path / "votes.db"), stored(fleet, DEVICE)) == (0, 0)
        fleet.add_vote_batches([batch], 0)  # the resend
        assert len({(v.store, v.seq) for v in fleet.stored_votes(DEVICE)}) == 10  # no key repeats
        assert lost_and_duplicated(pressed(tmp_path / "votes.db"), stored(fleet, DEVICE)) == (0, 5)
        with pytest.raises(AssertionError, match="5 stored twice"):
            assert_exactly_once(fleet, [(DEVICE, [tmp_path / "votes.db"])])
