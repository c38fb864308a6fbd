"""The vote store: durable before return, seqs never reused, migrations safe to re-run, clear errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import protocol
from device import store as store_mod
from device.clock import FakeClock
from device.errors import DeviceError, StoreError
from device.store import VoteStore
from protocol.limits import MAX_INT

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


def count_commits(store: VoteStore) -> list[str]:
    """Every COMMIT the store's connection runs from now on (each one an fsync under synchronous=FULL)."""
    commits: list[str] = []
    store._conn.set_trace_callback(
        lambda sql: commits.append(sql) if sql.lstrip().upper().startswith("COMMIT") else None
    )
    return commits


def stored_conn(path: Path) -> int:
    """The connection counter's high-water mark as a fresh reader (a rebooted terminal) finds it on disk."""
    other = sqlite3.connect(path)
    try:
        (value,) = other.execute("SELECT value FROM meta WHERE key = 'conn'").fetchone()
    finally:
        other.close()
    return int(value)


def test_an_hour_of_dialling_a_missing_broker_commits_the_conn_counter_at_most_twice(
    vote_store: VoteStore,
) -> None:
    commits = count_commits(vote_store)
    hour = [vote_store.next_conn() for _ in range(3600 // 2)]  # paho redials every 2 s while the broker is away
    assert len(commits) <= 2
    assert all(a < b for a, b in zip(hour, hour[1:], strict=False))


def test_a_week_offline_commits_the_conn_counter_at_most_once_per_two_hours(vote_store: VoteStore) -> None:
    commits = count_commits(vote_store)
    last = 0
    for _ in range(7 * 86_400 // 2):
        value = vote_store.next_conn()
        assert value > last
        last = value
    assert len(commits) <= 7 * 24 // 2


def test_conn_counter_is_on_disk_before_it_is_handed_out(vote_store: VoteStore, store_path: Path) -> None:
    block = store_mod.CONN_BLOCK
    edges = {0, 1, block - 1, block, block + 1, 2 * block - 1, 2 * block, 2 * block + 1}
    for i in range(2 * block + 2):
        value = vote_store.next_conn()
        if i in edges:
            assert stored_conn(store_path) >= value


def test_conn_counter_increases_across_restarts(store_path: Path, fake_clock: FakeClock) -> None:
    store = VoteStore(store_path, DEVICE, fake_clock)
    first = [store.next_conn(), store.next_conn()]
    store.close()
    store = VoteStore(store_path, DEVICE, fake_clock)
    try:
        assert first[0] < first[1] < store.next_conn()
    finally:
        store.close()


@pytest.mark.parametrize("used", [1, 17, store_mod.CONN_BLOCK - 1, store_mod.CONN_BLOCK, store_mod.CONN_BLOCK + 1])
def test_conn_counter_increases_across_a_power_cut_in_the_middle_of_a_block(
    store_path: Path, fake_clock: FakeClock, used: int
) -> None:
    store = VoteStore(store_path, DEVICE, fake_clock)
    before = [store.next_conn() for _ in range(used)]
    # The power goes: nothing is closed or written; the rebooted terminal opens the file afresh.
    after_boot = VoteStore(store_path, DEVICE, fake_clock)
    try:
        after = [after_boot.next_conn() for _ in range(3)]
    finally:
        after_boot.close()
        store.close()
    assert max(before) < after[0] < after[1] < after[2]


def test_conn_counter_stays_far_below_the_protocol_limit(store_path: Path, fake_clock: FakeClock) -> None:
    # The worst pace: a crash loop reserving a whole block on every start, every 2 s (RestartSec).
    starts_per_century = 100 * 365 * 86_400 // 2
    assert (
        starts_per_century * store_mod.CONN_BLOCK < MAX_INT // 1000
    )  # a century of it uses under a thousandth of the range
    store = VoteStore(store_path, DEVICE, fake_clock)
    store.close()
    for _ in range(3):
        with VoteStore(store_path, DEVICE, fake_clock) as store:
            store.next_conn()
    assert stored_conn(store_path) <= 3 * store_mod.CONN_BLOCK


def test_an_old_stored_conn_counter_is_a_high_water_mark(store_path: Path, fake_clock: FakeClock) -> None:
    store = VoteStore(store_path, DEVICE, fake_clock)
    store.close()
    other = sqlite3.connect(store_path)
    with other:
        other.execute("INSERT INTO meta (key, value) VALUES ('conn', '41')")  # counted one attempt per commit
    other.close()
    with VoteStore(store_path, DEVICE, fake_clock) as store:
        assert store.next_conn() == 42


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


def test_a_database_that_sent_votes_before_store_ids_keeps_the_legacy_series(
    store_path: Path, fake_clock: FakeClock
) -> None:
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

    from device.store import _add_held, _create_meta, _create_votes

    old = Migrations("hymy-device")  # the schema as the previous firmware left it
    old(name="0001_votes")(_create_votes)
    old(name="0002_meta")(_create_meta)
    old(name="0003_held")(_add_held)
    db = Database(store_path)
    old.apply(db)
    db.execute(
        "INSERT INTO votes (question, scale, answer, lang, wall, mono, boot, synced, cfg) VALUES"
        " ('q-visit', 'faces4', 1, 'fi', 1, 1, 'boot-1', 1, 0)"
    )
    db.conn.commit()
    db.close()
    with VoteStore(store_path, DEVICE, fake_clock) as store:
        assert store.store_id == ""  # the fleet holds its seqs under (device, seq): keep sending them so
        assert press(store).seq == 2


def test_a_new_database_gets_its_own_random_store_id_and_keeps_it(store_path: Path, fake_clock: FakeClock) -> None:
    with VoteStore(store_path, DEVICE, fake_clock) as store:
        first = store.store_id
    with VoteStore(store_path, DEVICE, fake_clock) as store:
        assert store.store_id == first
    with VoteStore(store_path.with_name("other.db"), DEVICE, fake_clock) as other:
        assert other.store_id != first
    assert len(first) == 16 and int(first, 16) >= 0


def test_a_database_of_another_device_id_refuses_to_open(store_path: Path, fake_clock: FakeClock) -> None:
    VoteStore(store_path, DEVICE, fake_clock).close()
    with pytest.raises(StoreError, match="belongs to terminal"):
        VoteStore(store_path, "kiosk-999", fake_clock)


def test_a_held_vote_waits_for_its_follow_up_then_goes_under_the_same_seq(vote_store: VoteStore) -> None:
    held = vote_store.record("q-visit", "faces4", 0, "fi", unit="unit-a", held=True)
    assert vote_store.pending() == [] and vote_store.depth() == 1  # committed and counted, not sent yet
    before = vote_store.revision
    released = vote_store.release(held.seq, role="relative", reason="wait")
    assert released == held._replace(role="relative", reason="wait")
    assert vote_store.pending() == [released]
    assert vote_store.revision != before  # so the sync agent asks SQLite again
    with pytest.raises(StoreError):
        vote_store.release(held.seq)  # already on its way: its answers can no longer change


def test_every_press_changes_the_revision_the_sync_agent_watches(vote_store: VoteStore) -> None:
    seen = {vote_store.revision}
    for _ in range(3):
        press(vote_store)
        seen.add(vote_store.revision)
    assert len(seen) == 4


def test_a_refused_vote_is_set_aside_whole_with_the_fleets_reason(vote_store: VoteStore) -> None:
    vote = vote_store.record("q-visit", "faces4", 1, "fi", unit="unit-a", role="relative", reason="wait")
    kept = press(vote_store)
    assert vote_store.mark_refused("invalid", [(vote.seq, vote.seq)]) == 1
    assert vote_store.refused_votes() == [(vote, "invalid")]
    assert vote_store.pending() == [kept] and vote_store.depth() == 1 and vote_store.refused_count() == 1
