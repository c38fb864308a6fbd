"""The vote store: durable before return, seqs never reused, migrations safe to re-run, clear errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import protocol
from device.clock import FakeClock
from device.errors import DeviceError, StoreError
from device.store import VoteStore

DEVICE = "term-0001"


def press(store: VoteStore, answer: int = 2) -> protocol.Vote:
    return store.record("q-visit", "faces4", answer, "fi", unit="unit-a", cfg=3)


def test_record_is_committed_before_it_returns(vote_store: VoteStore, store_path: Path) -> None:
    vote = press(vote_store)
    other = sqlite3.connect(store_path)
    try:
        rows = other.execute("SELECT seq, answer, delivered FROM votes").fetchall()
    finally:
        other.close()
    assert rows == [(vote.seq, 2, None)]


def test_record_returns_a_valid_vote_with_clock_readings(vote_store: VoteStore, fake_clock: FakeClock) -> None:
    fake_clock.set_synced(False)
    vote = vote_store.record("q-visit", "faces4", 3, "sv", flags=["misuse"], role="relative")
    assert protocol.check_vote(vote) == vote
    assert (vote.wall, vote.mono, vote.boot, vote.synced) == (
        fake_clock.wall_ms(),
        fake_clock.mono_ms(),
        fake_clock.boot_id(),
        False,
    )
    assert vote_store.pending() == [vote]


def test_a_press_as_ntp_steps_the_clock_never_carries_the_old_time_as_synchronised(
    vote_store: VoteStore, fake_clock: FakeClock
) -> None:
    stale, real = 1_600_000_000_000, 1_750_000_000_000
    fake_clock.set_wall(stale)
    fake_clock.set_synced(False)
    fake_clock.step_after_next_wall_read(real)  # NTP steps right after the store reads the wall clock
    vote = vote_store.record("q-visit", "faces4", 3, "fi")
    assert (vote.wall, vote.synced) == (real, True)
    assert vote_store.pending() == [vote]


def test_record_refuses_an_invalid_vote_and_stores_nothing(vote_store: VoteStore) -> None:
    with pytest.raises(protocol.ProtocolError):
        vote_store.record("q-visit", "faces4", 4, "fi")
    assert vote_store.depth() == 0


def test_seqs_start_at_one_and_increase(vote_store: VoteStore) -> None:
    assert [press(vote_store).seq for _ in range(3)] == [1, 2, 3]


def test_seq_never_reused_after_prune_and_restart(store_path: Path, fake_clock: FakeClock) -> None:
    store = VoteStore(store_path, DEVICE, fake_clock)
    seqs = [press(store).seq for _ in range(3)]
    store.mark_delivered(seqs)
    fake_clock.advance(8 * 86_400_000)
    assert store.prune_delivered(older_than_days=7) == 3
    store.close()
    store = VoteStore(store_path, DEVICE, fake_clock)
    try:
        assert press(store).seq == 4
    finally:
        store.close()


def test_prune_keeps_pending_and_recently_delivered_votes(vote_store: VoteStore, fake_clock: FakeClock) -> None:
    old, recent, pending = press(vote_store), press(vote_store), press(vote_store)
    vote_store.mark_delivered([old.seq])
    fake_clock.advance(3 * 86_400_000)
    vote_store.mark_delivered([recent.seq])
    fake_clock.advance(86_400_000)
    assert vote_store.prune_delivered(older_than_days=2) == 1
    assert [v.seq for v in vote_store.pending()] == [pending.seq]
    assert vote_store.last_vote() == pending


def test_migrations_rerun_safely(store_path: Path, fake_clock: FakeClock) -> None:
    for _ in range(3):
        store = VoteStore(store_path, DEVICE, fake_clock)
        press(store)
        store.close()
    conn = sqlite3.connect(store_path)
    try:
        names = conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = 'hymy-device'").fetchall()
        (count,) = conn.execute("SELECT count(*) FROM votes").fetchone()
    finally:
        conn.close()
    assert sorted(n for (n,) in names) == ["0001_votes", "0002_meta", "0003_held", "0004_store_identity"]
    assert count == 3


def test_wal_and_synchronous_full_in_effect(vote_store: VoteStore) -> None:
    conn = vote_store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_presses_stay_fully_synchronous_after_an_ack_is_marked(vote_store: VoteStore) -> None:
    first = vote_store.record("q1", "faces4", 1, "fi")
    assert vote_store.mark_delivered_ranges([(first.seq, first.seq)]) == 1
    assert vote_store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL for the next press
    vote_store.record("q1", "faces4", 2, "fi")
    assert vote_store.depth() == 1


def test_corrupt_file_gives_device_error(store_path: Path, fake_clock: FakeClock) -> None:
    store_path.write_bytes(b"this is not a database, it is a shopping list\n" * 200)
    with pytest.raises(DeviceError, match="corrupt|not a database"):
        VoteStore(store_path, DEVICE, fake_clock)


def test_damaged_pages_give_store_error(store_path: Path, fake_clock: FakeClock) -> None:
    store = VoteStore(store_path, DEVICE, fake_clock)
    for _ in range(200):
        press(store)
    store.close()
    conn = sqlite3.connect(store_path)
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'votes'").fetchone()
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    data = bytearray(store_path.read_bytes())
    start = (root - 1) * page_size
    data[start : start + 64] = b"\xff" * 64  # scribble over the votes table's root page header
    store_path.write_bytes(bytes(data))
    with pytest.raises(StoreError):
        VoteStore(store_path, DEVICE, fake_clock)


def test_pending_is_oldest_first_and_skips_nothing(vote_store: VoteStore) -> None:
    seqs = [press(vote_store).seq for _ in range(10)]
    vote_store.mark_delivered([3, 4])
    assert [v.seq for v in vote_store.pending(5)] == [1, 2, 5, 6, 7]
    assert [v.seq for v in vote_store.pending(3, after=6)] == [7, 8, 9]
    assert vote_store.depth() == len(seqs) - 2


def test_mark_delivered_is_idempotent(vote_store: VoteStore) -> None:
    for _ in range(5):
        press(vote_store)
    assert vote_store.mark_delivered([1, 2, 3]) == 3
    assert vote_store.mark_delivered([1, 2, 3]) == 0
    assert vote_store.mark_delivered([3, 4, 99]) == 1
    assert [v.seq for v in vote_store.pending()] == [5]


def test_oldest_pending_wall_follows_the_backlog(vote_store: VoteStore, fake_clock: FakeClock) -> None:
    assert vote_store.oldest_pending_wall_ms() is None
    first = press(vote_store)
    fake_clock.advance(1_000)
    press(vote_store)
    assert vote_store.oldest_pending_wall_ms() == first.wall
    vote_store.mark_delivered([first.seq])
    assert vote_store.oldest_pending_wall_ms() == first.wall + 1_000


def test_flags_round_trip_through_the_store(vote_store: VoteStore) -> None:
    vote = vote_store.record("q-visit", "faces4", 1, "fi", flags=["misuse", "after_hours"])
    assert vote_store.pending()[0].flags == frozenset({"misuse", "after_hours"})
    assert vote_store.pending()[0] == vote


def test_conn_counter_increases_across_restarts(store_path: Path, fake_clock: FakeClock) -> None:
    store = VoteStore(store_path, DEVICE, fake_clock)
    assert [store.next_conn(), store.next_conn()] == [1, 2]
    store.close()
    store = VoteStore(store_path, DEVICE, fake_clock)
    try:
        assert store.next_conn() == 3
    finally:
        store.close()


def test_config_persisted_across_restart(store_path: Path, fake_clock: FakeClock, config_doc: dict) -> None:
    store = VoteStore(store_path, DEVICE, fake_clock)
    assert store.load_config() is None
    store.save_config(7, config_doc)
    store.save_config_rejection(8, "unknown scale")
    store.close()
    store = VoteStore(store_path, DEVICE, fake_clock)
    try:
        assert store.load_config() == (7, config_doc)
        assert store.load_config_rejection() == (8, "unknown scale")
    finally:
        store.close()
