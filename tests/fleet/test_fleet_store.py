"""The SQLite fleet store: idempotent votes, conn-counter liveness, configs, rejections, per-day counts."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.content import default_config_doc
from fleet.errors import ConfigError, StoreError
from fleet.schema import MIGRATIONS
from fleet.sqlite_store import REJECTION_LOG_SIZE, SqliteFleetStore
from fleet.store import FleetStore
from protocol import ConfigReport, Heartbeat, TerminalState, VoteBatch

from .conftest import NOON, make_batch, make_vote

RECEIVED = NOON + 60_000


def snapshot(store: SqliteFleetStore, device: str) -> list[object]:
    return list(store.stored_votes(device))


def test_sqlite_store_implements_the_fleet_store_interface(fleet_db: SqliteFleetStore) -> None:
    store: FleetStore = fleet_db
    assert store.vote_count() == 0


def test_store_uses_wal_and_records_its_migrations(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    SqliteFleetStore(path).close()
    SqliteFleetStore(path).close()  # re-applying at every start is safe
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = 'hymy-fleet'")]
    assert names == [m.name for m in MIGRATIONS._migrations]
    conn.close()


def test_a_batch_is_stored_and_its_seqs_returned_as_ranges(fleet_db: SqliteFleetStore) -> None:
    stored = fleet_db.add_vote_batches([make_batch("term-a", [1, 2, 3, 7])], RECEIVED)
    assert stored.ranges == [((1, 3), (7, 7))]
    assert (stored.new, stored.duplicates) == (4, 0)
    assert fleet_db.vote_count("term-a") == 4


def test_the_same_batch_twice_stores_each_vote_once(fleet_db: SqliteFleetStore) -> None:
    batch = make_batch("term-a", range(1, 11))
    fleet_db.add_vote_batches([batch], RECEIVED)
    before = snapshot(fleet_db, "term-a")
    again = fleet_db.add_vote_batches([batch], RECEIVED + 5000)
    assert again.ranges == [((1, 10),)]  # acknowledged again: the terminal may have missed the first ack
    assert (again.new, again.duplicates) == (0, 10)
    assert snapshot(fleet_db, "term-a") == before  # first copy wins, received time included


def test_replayed_reordered_and_overlapping_batches_store_each_vote_once(fleet_db: SqliteFleetStore) -> None:
    batches = [
        make_batch("term-a", [5, 6, 7], batch=2),
        make_batch("term-a", [1, 2, 3, 4, 5], batch=1),
        make_batch("term-b", [1, 2], batch=1),
        make_batch("term-a", [7, 6, 5, 8], batch=3),
    ]
    stored = fleet_db.add_vote_batches(batches, RECEIVED)
    assert stored.ranges == [((5, 7),), ((1, 5),), ((1, 2),), ((5, 8),)]
    assert (stored.new, stored.duplicates) == (10, 4)
    for batch in batches:  # a full replay changes nothing
        fleet_db.add_vote_batches([batch], RECEIVED)
    assert fleet_db.vote_count("term-a") == 8 and fleet_db.vote_count("term-b") == 2
    assert [v.seq for v in fleet_db.stored_votes("term-a")] == list(range(1, 9))


def test_a_vote_keeps_every_field_it_was_sent_with(fleet_db: SqliteFleetStore) -> None:
    vote = make_vote(3, answer=4, flags=frozenset({"misuse", "after_hours"}), role="relative", reason="wait", cfg=7)
    fleet_db.add_vote_batches([VoteBatch("term-a", 1, (vote,))], RECEIVED)
    (stored,) = fleet_db.stored_votes("term-a")
    assert (stored.seq, stored.answer, stored.question, stored.scale, stored.lang) == (3, 4, "thl-nps", "nps11", "fi")
    assert (stored.unit, stored.cfg, stored.role, stored.reason) == ("unit-a", 7, "relative", "wait")
    assert stored.flags == frozenset({"misuse", "after_hours"})
    assert (stored.wall, stored.mono, stored.boot, stored.synced) == (vote.wall, vote.mono, "boot-1", True)
    assert stored.received == RECEIVED


def test_every_kind_of_vote_is_read_back_with_the_fields_it_was_sent_with(fleet_db: SqliteFleetStore) -> None:
    votes = (
        make_vote(1, role="relative", reason="wait"),  # synchronised and unflagged: the fast path
        make_vote(2, synced=False, flags=frozenset({"after_hours"})),
        make_vote(3, unit=None, flags=frozenset({"historical"}), role="client"),
    )
    # Its own batch for the first: a batch takes the fast path only if all its votes are synchronised and unflagged.
    fleet_db.add_vote_batches([VoteBatch("term-a", 1, votes[:1]), VoteBatch("term-a", 2, votes[1:])], RECEIVED)
    stored = fleet_db.stored_votes("term-a")
    assert [(v.device, v.store, v.seq) for v in stored] == [("term-a", "", 1), ("term-a", "", 2), ("term-a", "", 3)]
    for vote, back in zip(votes, stored, strict=True):
        sent = (vote.unit, vote.synced, vote.flags, vote.role, vote.reason, vote.wall, vote.mono, vote.boot)
        assert (back.unit, back.synced, back.flags, back.role, back.reason, back.wall, back.mono, back.boot) == sent


def test_daily_counts_keep_to_their_window(fleet_db: SqliteFleetStore) -> None:
    fleet_db.add_vote_batches([make_batch("term-a", range(1, 11), answer=10)], RECEIVED)  # at NOON + 1 s … 10 s
    (day,) = fleet_db.daily_counts(since_ms=NOON + 3000, until_ms=NOON + 7000)  # [since, until)
    assert day.counts[10] == 4
    (day,) = fleet_db.daily_counts(since_ms=NOON + 3000)
    assert day.counts[10] == 8


def test_an_empty_call_stores_nothing(fleet_db: SqliteFleetStore) -> None:
    assert fleet_db.add_vote_batches([], RECEIVED).ranges == []


def test_misuse_votes_are_kept_but_left_out_of_counts_by_default(fleet_db: SqliteFleetStore) -> None:
    fleet_db.add_vote_batches(
        [
            make_batch("term-a", [1, 2], answer=10),
            make_batch("term-a", [3, 4, 5], answer=0, flags=frozenset({"misuse"})),
        ],
        RECEIVED,
    )
    assert fleet_db.vote_count() == 5
    assert fleet_db.vote_count(include_misuse=False) == 2
    (day,) = fleet_db.daily_counts()
    assert day.counts[10] == 2 and day.counts[0] == 0
    (day,) = fleet_db.daily_counts(include_misuse=True)
    assert day.counts[0] == 3


def test_votes_flagged_historical_or_after_hours_count_in_the_scores_only_misuse_is_left_out(
    fleet_db: SqliteFleetStore,
) -> None:
    fleet_db.add_vote_batches(
        [
            make_batch("term-a", [1], answer=10, flags=frozenset({"historical"})),  # sent late: still a vote
            make_batch("term-a", [2], answer=10, flags=frozenset({"after_hours"})),
            make_batch("term-a", [3], answer=10, flags=frozenset({"historical", "after_hours"})),
            make_batch("term-a", [4], answer=0, flags=frozenset({"historical", "misuse"})),
        ],
        RECEIVED,
    )
    assert fleet_db.vote_count(include_misuse=False) == 3
    (day,) = fleet_db.daily_counts()
    assert day.counts[10] == 3 and day.counts[0] == 0


def test_days_are_local_days_in_helsinki(fleet_db: SqliteFleetStore) -> None:
    # 2025-03-01 21:59:59 UTC is 23:59:59 in Helsinki (UTC+2); a second later is the next day there.
    before_midnight = 1_740_866_399_000
    fleet_db.add_vote_batches(
        [
            make_batch("term-a", [1], wall=before_midnight),
            make_batch("term-a", [2, 3], wall=before_midnight + 1000),
            # Summer time (UTC+3): 2025-07-01 20:59:59 UTC is 23:59:59 in Helsinki.
            make_batch("term-a", [4], wall=1_751_403_599_000),
            make_batch("term-a", [5], wall=1_751_403_600_000),
        ],
        RECEIVED,
    )
    days = {d.day: sum(d.counts) for d in fleet_db.daily_counts()}
    assert days == {date(2025, 3, 1): 1, date(2025, 3, 2): 2, date(2025, 7, 1): 1, date(2025, 7, 2): 1}
    utc_days = {d.day: sum(d.counts) for d in fleet_db.daily_counts(tz="UTC")}
    assert utc_days == {date(2025, 3, 1): 3, date(2025, 7, 1): 2}


def test_daily_counts_keep_units_questions_and_scales_apart(fleet_db: SqliteFleetStore) -> None:
    fleet_db.add_vote_batches(
        [
            make_batch("term-a", [1, 2], answer=9),
            make_batch("term-b", [1], answer=3, scale="faces4", unit="unit-b"),
            make_batch("term-b", [2], answer=4, scale="faces5", unit="unit-b"),
            make_batch("term-c", [1], answer=2, question="q-other", unit=None),
        ],
        RECEIVED,
    )
    fleet_db.assign("term-c", "unit-c")  # a vote without a unit counts for its terminal's unit
    keys = {(d.unit, d.question, d.scale): d.counts for d in fleet_db.daily_counts()}
    assert keys == {
        ("unit-a", "thl-nps", "nps11"): (0,) * 9 + (2, 0),
        ("unit-b", "thl-nps", "faces4"): (0, 0, 0, 1),
        ("unit-b", "thl-nps", "faces5"): (0, 0, 0, 0, 1),
        ("unit-c", "q-other", "nps11"): (0, 0, 1) + (0,) * 8,
    }


def state(conn: int, online: bool, device: str = "term-a") -> TerminalState:
    return TerminalState(device, online, conn, NOON, "1.0")


def test_a_stale_will_does_not_mark_a_live_terminal_offline(fleet_db: SqliteFleetStore) -> None:
    assert fleet_db.record_state(state(1, True), RECEIVED)
    assert fleet_db.record_state(state(2, True), RECEIVED)  # reconnected before the broker fired the old will
    assert not fleet_db.record_state(state(1, False), RECEIVED)  # the old connection's will: stale
    status = fleet_db.terminal("term-a")
    assert status is not None and status.online is True and status.conn == 2
    assert fleet_db.record_state(state(2, False), RECEIVED)  # the current connection's will counts
    status = fleet_db.terminal("term-a")
    assert status is not None and status.online is False


def test_a_replayed_birth_cannot_undo_its_own_connections_will(fleet_db: SqliteFleetStore) -> None:
    fleet_db.record_state(state(3, True), RECEIVED)
    fleet_db.record_state(state(3, False), RECEIVED)
    assert not fleet_db.record_state(state(3, True), RECEIVED)
    status = fleet_db.terminal("term-a")
    assert status is not None and status.online is False


def test_a_birth_with_a_lower_counter_is_a_wiped_terminal_and_is_online(fleet_db: SqliteFleetStore) -> None:
    fleet_db.record_state(state(41, True), RECEIVED)
    fleet_db.record_state(state(41, False), RECEIVED)
    assert fleet_db.record_state(state(1, True), RECEIVED)  # a re-imaged card counts from 1 again (SPEC 8)
    status = fleet_db.terminal("term-a")
    assert status is not None and status.online is True and status.conn == 1
    assert not fleet_db.record_state(state(0, False), RECEIVED)  # older than the birth: stale
    assert fleet_db.record_state(state(1, False), RECEIVED)
    status = fleet_db.terminal("term-a")
    assert status is not None and status.online is False


def heartbeat(device: str = "term-a", cfg: int = 0, **fields: object) -> Heartbeat:
    base: dict[str, object] = dict(
        device=device, wall=NOON, mono=5000, boot="boot-1", synced=True, uptime=5, queue=3, oldest=60, cfg=cfg, fw="1.0"
    )
    base.update(fields)
    return Heartbeat(**base)  # type: ignore[arg-type]


def test_heartbeats_keep_the_latest_health_figures(fleet_db: SqliteFleetStore) -> None:
    fleet_db.record_heartbeat(heartbeat(queue=10, temp=50.5, disk=900), RECEIVED)
    fleet_db.record_heartbeat(heartbeat(queue=0, uptime=65, oldest=None), RECEIVED + 60_000)
    status = fleet_db.terminal("term-a")
    assert status is not None
    assert (status.queue, status.uptime, status.oldest, status.last_seen) == (0, 65, None, RECEIVED + 60_000)


def test_configuration_is_pushed_until_the_terminal_applies_it(fleet_db: SqliteFleetStore) -> None:
    doc = default_config_doc("unit-a")
    assert fleet_db.config_to_push("term-a") is None
    fleet_db.set_config("term-a", 2, doc)
    config = fleet_db.config_to_push("term-a")
    assert config is not None and config.version == 2 and config.doc == doc
    fleet_db.record_config_report(ConfigReport("term-a", 1, "applied"), RECEIVED)
    status = fleet_db.terminal("term-a")
    assert status is not None and status.lags and status.applied_version == 1
    fleet_db.record_config_report(ConfigReport("term-a", 2, "applied"), RECEIVED)
    assert fleet_db.config_to_push("term-a") is None
    status = fleet_db.terminal("term-a")
    assert status is not None and not status.lags
    fleet_db.record_config_report(ConfigReport("term-a", 3, "rejected", "unknown scale"), RECEIVED)
    status = fleet_db.terminal("term-a")
    assert status is not None and status.applied_version == 2 and status.report_reason == "unknown scale"


def test_configuration_versions_only_go_up_and_documents_are_validated(fleet_db: SqliteFleetStore) -> None:
    doc = default_config_doc()
    fleet_db.set_config("term-a", 2, doc)
    fleet_db.set_config("term-a", 2, doc)  # the same again is harmless
    with pytest.raises(ConfigError):
        fleet_db.set_config("term-a", 1, doc)
    with pytest.raises(ConfigError):
        fleet_db.set_config("term-a", 2, default_config_doc("unit-b"))
    with pytest.raises(ConfigError):
        fleet_db.set_config("term-a", 3, {"unit": None})
    config = fleet_db.get_config("term-a")
    assert config is not None and config.version == 2 and config.doc == doc


def test_the_same_document_with_its_keys_in_another_order_is_the_same_version(fleet_db: SqliteFleetStore) -> None:
    doc = default_config_doc("unit-a")
    fleet_db.set_config("term-a", 2, doc)
    fleet_db.set_config("term-a", 2, dict(reversed(list(doc.items()))))  # JSON objects have no order
    config = fleet_db.get_config("term-a")
    assert config is not None and config.doc == doc


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"hours": {"tz": "Mars/Olympus_Mons", "weekly": {}}}, "hours.tz"),
        ({"hours": {"tz": "UTC", "weekly": {}, "closed_dates": ["2024-02-30"]}}, "hours.closed_dates[0]"),
        ({"languages": ["fi", "se"]}, "strings.se"),
        ({"followup": {"timeout_s": "20", "branches": []}}, "followup.timeout_s"),
    ],
    ids=["zone_on_mars", "february_30", "unshipped_language_without_texts", "string_timeout"],
)
def test_a_document_a_terminal_would_reject_is_refused_naming_the_field_and_leaves_the_desired_one(
    fleet_db: SqliteFleetStore, change: dict[str, object], field: str
) -> None:
    good = default_config_doc("unit-a")
    fleet_db.set_config("term-a", 2, good)
    bad = {**good, **change}
    if "se" in bad["languages"]:
        bad["question"] = {**good["question"], "text": {**good["question"]["text"], "se": "Movt manai?"}}
    with pytest.raises(ConfigError) as err:
        fleet_db.set_config("term-a", 3, bad)
    assert str(err.value).startswith(f"configuration: {field}")
    config = fleet_db.get_config("term-a")
    assert config is not None and config.version == 2 and config.doc == good


def test_default_configuration_ships_the_national_question_with_sources(fleet_db: SqliteFleetStore) -> None:
    doc = default_config_doc()
    question = doc["question"]
    assert question["scale"] == "nps11"
    assert set(question["text"]) == set(question["sources"]) == {"fi", "sv", "en"}
    assert question["review"] == ["sv"]


def test_rejections_are_counted_by_reason_and_logged_boundedly(fleet_db: SqliteFleetStore) -> None:
    fleet_db.count_rejection("malformed", None, "not JSON", RECEIVED)
    fleet_db.count_rejection("malformed", "term-a", "not JSON", RECEIVED)
    fleet_db.count_rejection("device_mismatch", "term-a", "names term-b", RECEIVED + 1)
    assert fleet_db.rejection_counts() == {"malformed": 2, "device_mismatch": 1}
    newest = fleet_db.recent_rejections(1)
    assert [(r.reason, r.device, r.detail) for r in newest] == [("device_mismatch", "term-a", "names term-b")]
    with fleet_db.transaction():
        for i in range(1300):
            fleet_db.count_rejection("invalid", None, f"bad {i}", RECEIVED)
    assert fleet_db.rejection_counts()["invalid"] == 1300
    assert len(fleet_db.recent_rejections(5000)) == REJECTION_LOG_SIZE  # pruned to the size, not emptied
    # The log itself is pruned (every hundredth row), not only the read capped.
    with sqlite3.connect(fleet_db.path) as reader:
        (kept,) = reader.execute("SELECT count(*) FROM rejection_log").fetchone()
    assert kept < REJECTION_LOG_SIZE + 100


def test_assign_refuses_bad_ids(fleet_db: SqliteFleetStore) -> None:
    with pytest.raises(ValueError):
        fleet_db.assign("Bad Id", "unit-a")
    with pytest.raises(ValueError):
        fleet_db.assign("term-a", "bad unit!")


def test_a_failed_transaction_stores_nothing_and_says_so(fleet_db: SqliteFleetStore) -> None:
    with pytest.raises(RuntimeError):
        with fleet_db.transaction():
            fleet_db.add_vote_batches([make_batch("term-a", [1, 2])], RECEIVED)
            raise RuntimeError("boom")
    assert fleet_db.vote_count() == 0


def test_database_faults_surface_as_store_errors(tmp_path: Path) -> None:
    path = tmp_path / "not-a-db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        SqliteFleetStore(path)
    store = SqliteFleetStore(tmp_path / "f.db")
    store.close()
    with pytest.raises(StoreError):
        store.add_vote_batches([make_batch("term-a", [1])], RECEIVED)


def test_a_reused_seq_with_a_different_press_is_not_acknowledged(fleet_db: SqliteFleetStore) -> None:
    fleet_db.add_vote_batches([make_batch("term-a", [1, 2, 3], answer=10)], RECEIVED)
    # The terminal's database was wiped: seqs 2..4 now name new presses of a new boot.
    reused = make_batch("term-a", [2, 3, 4], batch=1, answer=0, boot="boot-9")
    stored = fleet_db.add_vote_batches([reused], RECEIVED)
    assert stored.conflicts == [("term-a", "", 2), ("term-a", "", 3)]
    assert stored.ranges == [((4, 4),)]  # 2 and 3 are not acked: the terminal must not drop them as delivered
    assert stored.refused == [((2, 3),)]  # but refused by name, so it sets them aside and goes on
    assert (stored.new, stored.duplicates) == (1, 0)
    assert [v.answer for v in fleet_db.stored_votes("term-a")] == [10, 10, 10, 0]  # the first copy stays


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.integers(1, 40), min_size=1, max_size=15, unique=True), min_size=1, max_size=8))
def test_the_store_drops_nothing_silently(fleet_db: SqliteFleetStore, seq_lists: list[list[int]]) -> None:
    """Every vote given is stored and acknowledged exactly once, whatever the replays and overlaps."""
    device = f"term-{len(seq_lists)}-{sum(map(len, seq_lists))}-{seq_lists[0][0]}"
    before = fleet_db.vote_count(device)
    known = {v.seq for v in fleet_db.stored_votes(device)}
    batches = [make_batch(device, seqs, batch=i) for i, seqs in enumerate(seq_lists)]
    stored = fleet_db.add_vote_batches(batches, RECEIVED)
    given_seqs = {s for seqs in seq_lists for s in seqs}
    for seqs, ranges in zip(seq_lists, stored.ranges, strict=True):
        assert {s for lo, hi in ranges for s in range(lo, hi + 1)} == set(seqs)
    assert {v.seq for v in fleet_db.stored_votes(device)} == known | given_seqs
    assert fleet_db.vote_count(device) - before == stored.new == len(given_seqs - known)
    assert stored.new + stored.duplicates == sum(map(len, seq_lists)) and not stored.conflicts


def test_daily_counts_of_one_unit_include_its_terminals_votes_without_a_unit(fleet_db: SqliteFleetStore) -> None:
    fleet_db.add_vote_batches(
        [
            make_batch("term-a", [1, 2], answer=9),
            make_batch("term-b", [1], answer=3, scale="faces4", unit="unit-b"),
            make_batch("term-c", [1], answer=2, question="q-other", unit=None),
        ],
        RECEIVED,
    )
    fleet_db.assign("term-c", "unit-b")
    keys = {(d.unit, d.question, d.scale): d.counts for d in fleet_db.daily_counts(unit="unit-b")}
    assert keys == {
        ("unit-b", "thl-nps", "faces4"): (0, 0, 0, 1),
        ("unit-b", "q-other", "nps11"): (0, 0, 1) + (0,) * 8,
    }
    assert fleet_db.daily_counts(unit="unit-none") == []


def test_a_database_from_before_store_ids_keeps_its_votes_as_the_legacy_series(tmp_path: Path) -> None:
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

    from fleet.schema import _initial

    path = tmp_path / "old.db"
    old = Migrations("hymy-fleet")  # the schema as the previous release left it
    old(name="0001_initial")(_initial)
    db = Database(path)
    old.apply(db)
    db.execute(
        "INSERT INTO votes (device, seq, question, scale, answer, lang, wall, mono, boot, synced, cfg, misuse,"
        " received, best, time_status) VALUES ('term-a', 1, 'thl-nps', 'nps11', 9, 'fi', ?, 1000, 'boot-1', 1, 1, 0,"
        " ?, ?, 'synced')",
        (NOON + 1000, RECEIVED, NOON + 1000),
    )
    db.conn.commit()
    db.close()
    with SqliteFleetStore(path) as store:
        assert [(v.store, v.seq) for v in store.stored_votes("term-a")] == [("", 1)]
        # An old terminal resending it (no store id) finds it: a duplicate, acked, not a conflict.
        stored = store.add_vote_batches([make_batch("term-a", [1, 2])], RECEIVED)
        assert (stored.new, stored.duplicates, stored.conflicts, stored.ranges) == (1, 1, [], [((1, 2),)])
        fresh = replace(make_batch("term-a", [1]), store="0123456789abcdef")
        assert store.add_vote_batches([fresh], RECEIVED).new == 1  # a new series beside it
        assert store.vote_count("term-a") == 3
