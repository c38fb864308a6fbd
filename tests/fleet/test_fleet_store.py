"""The fleet store on SQLite and PostgreSQL: idempotent votes, liveness, configs, rejections, per-day counts."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.content import default_config_doc
from fleet.db import migrate
from fleet.db.engine import database_url
from fleet.db.store import REJECTION_LOG_SIZE, SqlFleetStore
from fleet.db.tables import metadata
from fleet.errors import ConfigError, StoreError
from fleet.store import FleetStore
from protocol import ConfigReport, Heartbeat, TerminalState, VoteBatch

from ..fleetdb import empty_tables
from ..waiting import wait_until
from .conftest import NOON, make_batch, make_vote

RECEIVED = NOON + 60_000


def snapshot(store: SqlFleetStore, device: str) -> list[object]:
    return list(store.stored_votes(device))


def test_the_store_implements_the_fleet_store_interface(fleet_db: SqlFleetStore) -> None:
    store: FleetStore = fleet_db
    assert store.vote_count() == 0


def test_sqlite_store_uses_wal_and_full_sync_on_every_connection(tmp_path: Path) -> None:
    with SqlFleetStore(tmp_path / "f.db") as store:
        conn = store._engine.connect()  # a second pooled connection gets the same settings
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL: the ack follows the commit
        conn.close()
    with SqlFleetStore(tmp_path / "g.db", synchronous="EXTRA") as store:  # the setting is the store's, not a default
        conn = store._engine.connect()
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 3
        conn.close()


def schema_version(url: str) -> str | None:
    engine = sa.create_engine(database_url(url))
    try:
        with engine.connect() as conn:
            return migrate.current(conn)
    finally:
        engine.dispose()


def drop_everything(url: str) -> None:
    """Leave the database empty, as a new one (the PostgreSQL test database is shared by the run)."""
    engine = sa.create_engine(database_url(url))
    try:
        with engine.begin() as conn:
            metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    finally:
        engine.dispose()


def test_a_new_database_is_created_at_the_newest_schema_and_stamped(fleet_url: str) -> None:
    drop_everything(fleet_url)
    SqlFleetStore(fleet_url).close()
    assert schema_version(fleet_url) == migrate.head()
    with SqlFleetStore(fleet_url) as store:  # opening again (every start) migrates nothing and loses nothing
        store.add_vote_batches([make_batch("term-a", [1])], RECEIVED)
    with SqlFleetStore(fleet_url) as store:
        assert store.vote_count() == 1


def test_upgrading_from_nothing_builds_exactly_the_tables_the_code_defines(fleet_url: str) -> None:
    drop_everything(fleet_url)
    engine = sa.create_engine(database_url(fleet_url))
    try:
        with engine.begin() as conn:
            command.upgrade(migrate.alembic_config(conn), "head")
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()


def test_stores_opened_at_once_on_a_new_database_all_start(fleet_url: str) -> None:
    """Workers starting together: one migrates, the others wait for it (the migration lock)."""
    drop_everything(fleet_url)
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        try:
            barrier.wait()
            SqlFleetStore(fleet_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert schema_version(fleet_url) == migrate.head()


def test_a_database_made_by_the_sqlite_utils_releases_is_adopted_with_all_its_data(tmp_path: Path) -> None:
    # Made by SqliteFleetStore (fleet/sqlite_store.py, sqlite-utils migrations 0001 and 0002) before
    # it was replaced: votes of two series, an uncertain vote, a terminal, a configuration, a rejection.
    path = tmp_path / "old.db"
    shutil.copy(Path(__file__).parent / "data" / "sqlite-utils-fleet.sqlite", path)
    with SqlFleetStore(path) as store:
        assert [(v.store, v.seq, v.answer) for v in store.stored_votes("term-a")] == [
            ("", 1, 10),
            ("", 2, 10),
            ("", 3, 10),
            ("0123456789abcdef", 1, 0),
        ]
        (uncertain, misuse) = store.stored_votes("term-b")
        assert (uncertain.time_status, uncertain.synced, misuse.flags) == ("uncertain", False, frozenset({"misuse"}))
        status = store.terminal("term-a")
        assert status is not None
        assert (status.online, status.conn, status.fw, status.temp, status.refused) == (True, 4, "1.2", 51.5, 1)
        assert (status.applied_version, status.desired_version, status.lags) == (2, 2, False)
        assert store.rejection_counts() == {"malformed": 1}
        assert store.vote_count(include_misuse=False) == 5
        # Its anchors still work: a synchronised heartbeat of term-b's unsynced boot corrects that vote.
        store.record_heartbeat(Heartbeat("term-b", NOON + 5000, 5000, "boot-1", True, 5, 0, None, 1, "1.0"), RECEIVED)
        store.record_heartbeat(Heartbeat("term-b", NOON + 5000, 5000, "b2", True, 5, 0, None, 1, "1.0"), RECEIVED)
        assert store.stored_votes("term-b")[0].time_status == "corrected"
        assert store.add_vote_batches([make_batch("term-a", [3, 4], answer=10)], RECEIVED).duplicates == 1
    assert schema_version(str(path)) == migrate.head()
    conn = sqlite3.connect(path)  # the previous release's record stays, so it could still open the file
    assert conn.execute("SELECT COUNT(*) FROM _sqlite_migrations").fetchone()[0] == 2
    conn.close()


def test_a_batch_is_stored_and_its_seqs_returned_as_ranges(fleet_db: SqlFleetStore) -> None:
    stored = fleet_db.add_vote_batches([make_batch("term-a", [1, 2, 3, 7])], RECEIVED)
    assert stored.ranges == [((1, 3), (7, 7))]
    assert (stored.new, stored.duplicates) == (4, 0)
    assert fleet_db.vote_count("term-a") == 4


def test_the_same_batch_twice_stores_each_vote_once(fleet_db: SqlFleetStore) -> None:
    batch = make_batch("term-a", range(1, 11))
    fleet_db.add_vote_batches([batch], RECEIVED)
    before = snapshot(fleet_db, "term-a")
    again = fleet_db.add_vote_batches([batch], RECEIVED + 5000)
    assert again.ranges == [((1, 10),)]  # acknowledged again: the terminal may have missed the first ack
    assert (again.new, again.duplicates) == (0, 10)
    assert snapshot(fleet_db, "term-a") == before  # first copy wins, received time included


def test_replayed_reordered_and_overlapping_batches_store_each_vote_once(fleet_db: SqlFleetStore) -> None:
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


def test_a_vote_keeps_every_field_it_was_sent_with(fleet_db: SqlFleetStore) -> None:
    vote = make_vote(3, answer=4, flags=frozenset({"misuse", "after_hours"}), role="relative", reason="wait", cfg=7)
    fleet_db.add_vote_batches([VoteBatch("term-a", 1, (vote,))], RECEIVED)
    (stored,) = fleet_db.stored_votes("term-a")
    assert (stored.seq, stored.answer, stored.question, stored.scale, stored.lang) == (3, 4, "thl-nps", "nps11", "fi")
    assert (stored.unit, stored.cfg, stored.role, stored.reason) == ("unit-a", 7, "relative", "wait")
    assert stored.flags == frozenset({"misuse", "after_hours"})
    assert (stored.wall, stored.mono, stored.boot, stored.synced) == (vote.wall, vote.mono, "boot-1", True)
    assert stored.received == RECEIVED


def test_every_kind_of_vote_is_read_back_with_the_fields_it_was_sent_with(fleet_db: SqlFleetStore) -> None:
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


def test_daily_counts_keep_to_their_window_of_days(fleet_db: SqlFleetStore) -> None:
    day_ms = 86_400_000
    fleet_db.add_vote_batches(  # 2025-03-01 … 2025-03-05, one vote a day more each day
        [make_batch("term-a", range(10 * d + 1, 10 * d + 2 + d), answer=10, wall=NOON + d * day_ms) for d in range(5)],
        RECEIVED,
    )
    got = {d.day: d.counts[10] for d in fleet_db.daily_counts(first_day=date(2025, 3, 2), last_day=date(2025, 3, 4))}
    assert got == {date(2025, 3, 2): 2, date(2025, 3, 3): 3, date(2025, 3, 4): 4}  # both ends included
    assert [d.day for d in fleet_db.daily_counts(first_day=date(2025, 3, 5))] == [date(2025, 3, 5)]
    assert [d.day for d in fleet_db.daily_counts(last_day=date(2025, 3, 1))] == [date(2025, 3, 1)]


def test_an_empty_call_stores_nothing(fleet_db: SqlFleetStore) -> None:
    assert fleet_db.add_vote_batches([], RECEIVED).ranges == []


def test_misuse_votes_are_kept_but_left_out_of_counts_by_default(fleet_db: SqlFleetStore) -> None:
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
    fleet_db: SqlFleetStore,
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


def test_days_are_local_days_in_helsinki(fleet_db: SqlFleetStore) -> None:
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
    fleet_db.set_unit_zone("unit-a", "UTC")  # a unit elsewhere counts its own local days
    utc_days = {d.day: sum(d.counts) for d in fleet_db.daily_counts()}
    assert utc_days == {date(2025, 3, 1): 3, date(2025, 7, 1): 2}


def test_daily_counts_keep_units_questions_and_scales_apart(fleet_db: SqlFleetStore) -> None:
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


def test_a_stale_will_does_not_mark_a_live_terminal_offline(fleet_db: SqlFleetStore) -> None:
    assert fleet_db.record_state(state(1, True), RECEIVED)
    assert fleet_db.record_state(state(2, True), RECEIVED)  # reconnected before the broker fired the old will
    assert not fleet_db.record_state(state(1, False), RECEIVED)  # the old connection's will: stale
    status = fleet_db.terminal("term-a")
    assert status is not None and status.online is True and status.conn == 2
    assert fleet_db.record_state(state(2, False), RECEIVED)  # the current connection's will counts
    status = fleet_db.terminal("term-a")
    assert status is not None and status.online is False


def test_a_replayed_birth_cannot_undo_its_own_connections_will(fleet_db: SqlFleetStore) -> None:
    fleet_db.record_state(state(3, True), RECEIVED)
    fleet_db.record_state(state(3, False), RECEIVED)
    assert not fleet_db.record_state(state(3, True), RECEIVED)
    status = fleet_db.terminal("term-a")
    assert status is not None and status.online is False


def test_a_birth_with_a_lower_counter_is_a_wiped_terminal_and_is_online(fleet_db: SqlFleetStore) -> None:
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


def test_heartbeats_keep_the_latest_health_figures(fleet_db: SqlFleetStore) -> None:
    fleet_db.record_heartbeat(heartbeat(queue=10, temp=50.5, disk=900), RECEIVED)
    fleet_db.record_heartbeat(heartbeat(queue=0, uptime=65, oldest=None), RECEIVED + 60_000)
    status = fleet_db.terminal("term-a")
    assert status is not None
    assert (status.queue, status.uptime, status.oldest, status.last_seen) == (0, 65, None, RECEIVED + 60_000)


def test_configuration_is_pushed_until_the_terminal_applies_it(fleet_db: SqlFleetStore) -> None:
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


def test_configuration_versions_only_go_up_and_documents_are_validated(fleet_db: SqlFleetStore) -> None:
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


def test_the_same_document_with_its_keys_in_another_order_is_the_same_version(fleet_db: SqlFleetStore) -> None:
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
    fleet_db: SqlFleetStore, change: dict[str, object], field: str
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


def test_default_configuration_ships_the_national_question_with_sources(fleet_db: SqlFleetStore) -> None:
    doc = default_config_doc()
    question = doc["question"]
    assert question["scale"] == "nps11"
    assert set(question["text"]) == set(question["sources"]) == {"fi", "sv", "en"}
    assert question["review"] == ["sv"]


def test_rejections_are_counted_by_reason_and_logged_boundedly(fleet_db: SqlFleetStore) -> None:
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
    with fleet_db._engine.connect() as reader:  # a second connection sees what was committed
        kept = reader.execute(sa.text("SELECT count(*) FROM rejection_log")).scalar_one()
    assert kept < REJECTION_LOG_SIZE + 100


def test_assign_refuses_bad_ids(fleet_db: SqlFleetStore) -> None:
    with pytest.raises(ValueError):
        fleet_db.assign("Bad Id", "unit-a")
    with pytest.raises(ValueError):
        fleet_db.assign("term-a", "bad unit!")


def test_a_failed_transaction_stores_nothing_and_says_so(fleet_db: SqlFleetStore) -> None:
    with pytest.raises(RuntimeError):
        with fleet_db.transaction():
            fleet_db.add_vote_batches([make_batch("term-a", [1, 2])], RECEIVED)
            raise RuntimeError("boom")
    assert fleet_db.vote_count() == 0


def test_database_faults_surface_as_store_errors(tmp_path: Path) -> None:
    path = tmp_path / "not-a-db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        SqlFleetStore(path)
    store = SqlFleetStore(tmp_path / "f.db")
    store.close()
    with pytest.raises(StoreError):
        store.add_vote_batches([make_batch("term-a", [1])], RECEIVED)


def test_an_unreachable_server_is_a_store_error() -> None:
    with pytest.raises(StoreError):
        SqlFleetStore("postgresql://nobody@127.0.0.1:1/none")


def test_store_names_map_to_engines() -> None:
    assert database_url("fleet.db").drivername == "sqlite+pysqlite"
    assert database_url("sqlite:////var/lib/hymy/fleet.db").database == "/var/lib/hymy/fleet.db"
    assert database_url("postgresql://hymy@db/fleet").drivername == "postgresql+psycopg"
    with pytest.raises(StoreError):
        database_url("mysql://db/fleet")


def test_a_reused_seq_with_a_different_press_is_not_acknowledged(fleet_db: SqlFleetStore) -> None:
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
def test_the_store_drops_nothing_silently(fleet_db: SqlFleetStore, seq_lists: list[list[int]]) -> None:
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


def test_daily_counts_of_one_unit_include_its_terminals_votes_without_a_unit(fleet_db: SqlFleetStore) -> None:
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


#: The schema of the release before store ids (sqlite-utils migration 0001_initial), as it left databases.
BEFORE_STORE_IDS = """
CREATE TABLE _sqlite_migrations (id INTEGER PRIMARY KEY, migration_set TEXT, name TEXT, applied_at TEXT);
INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('hymy-fleet', '0001_initial', '2025-01-01');
CREATE TABLE votes (device TEXT NOT NULL, seq INTEGER NOT NULL, question TEXT NOT NULL, scale TEXT NOT NULL,
    answer INTEGER NOT NULL, lang TEXT NOT NULL, wall INTEGER NOT NULL, mono INTEGER NOT NULL, boot TEXT NOT NULL,
    synced INTEGER NOT NULL, unit TEXT, cfg INTEGER NOT NULL, flags TEXT, misuse INTEGER NOT NULL, role TEXT,
    reason TEXT, received INTEGER NOT NULL, best INTEGER NOT NULL, time_status TEXT NOT NULL,
    PRIMARY KEY (device, seq));
CREATE INDEX votes_unsynced ON votes (device, boot) WHERE synced = 0;
CREATE TABLE clock_anchors (device TEXT NOT NULL, boot TEXT NOT NULL, wall INTEGER NOT NULL, mono INTEGER NOT NULL,
    applied_offset INTEGER, PRIMARY KEY (device, boot)) WITHOUT ROWID;
CREATE TABLE terminals (device TEXT PRIMARY KEY, unit TEXT, online INTEGER, conn INTEGER NOT NULL DEFAULT 0,
    state_wall INTEGER, fw TEXT, last_seen INTEGER, hb_wall INTEGER, hb_mono INTEGER, hb_boot TEXT, hb_synced INTEGER,
    uptime INTEGER, queue INTEGER, oldest INTEGER, temp REAL, disk INTEGER, applied_version INTEGER NOT NULL DEFAULT 0,
    report_version INTEGER, report_status TEXT, report_reason TEXT, report_at INTEGER);
CREATE TABLE desired_configs (device TEXT PRIMARY KEY, version INTEGER NOT NULL, doc TEXT NOT NULL,
    set_at INTEGER NOT NULL);
CREATE TABLE rejection_counts (reason TEXT NOT NULL, device TEXT NOT NULL, count INTEGER NOT NULL,
    last_at INTEGER NOT NULL, PRIMARY KEY (reason, device));
CREATE TABLE rejection_log (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, reason TEXT NOT NULL, device TEXT,
    detail TEXT NOT NULL);
"""


def test_a_database_from_before_store_ids_keeps_its_votes_as_the_legacy_series(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(BEFORE_STORE_IDS)
    db.execute(
        "INSERT INTO votes (device, seq, question, scale, answer, lang, wall, mono, boot, synced, cfg, misuse,"
        " received, best, time_status) VALUES ('term-a', 1, 'thl-nps', 'nps11', 9, 'fi', ?, 1000, 'boot-1', 1, 1, 0,"
        " ?, ?, 'synced')",
        (NOON + 1000, RECEIVED, NOON + 1000),
    )
    db.commit()
    db.close()
    with SqlFleetStore(path) as store:
        assert [(v.store, v.seq) for v in store.stored_votes("term-a")] == [("", 1)]
        # An old terminal resending it (no store id) finds it: a duplicate, acked, not a conflict.
        stored = store.add_vote_batches([make_batch("term-a", [1, 2])], RECEIVED)
        assert (stored.new, stored.duplicates, stored.conflicts, stored.ranges) == (1, 1, [], [((1, 2),)])
        fresh = replace(make_batch("term-a", [1]), store="0123456789abcdef")
        assert store.add_vote_batches([fresh], RECEIVED).new == 1  # a new series beside it
        assert store.vote_count("term-a") == 3
        store.record_heartbeat(Heartbeat("term-a", NOON, 5000, "boot-1", True, 5, 0, None, 1, "1.0", refused=2), 0)
        status = store.terminal("term-a")
        assert status is not None and status.refused == 2


def waiting_advisory_locks(url: str) -> int:
    engine = sa.create_engine(database_url(url))
    try:
        with engine.connect() as conn:
            query = "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            return int(conn.exec_driver_sql(query).scalar_one())
    finally:
        engine.dispose()


def test_writers_of_one_terminal_wait_for_each_other_on_postgresql(postgres_url: str) -> None:
    """Two ingest workers: one terminal's writes serialise (its state is read, then written); others pass."""
    empty_tables(postgres_url)
    first, second, third = (SqlFleetStore(postgres_url) for _ in range(3))  # three workers
    try:
        with first.transaction():
            first.record_state(state(1, True), RECEIVED)
            waiter = threading.Thread(target=second.record_state, args=(state(2, True), RECEIVED))
            waiter.start()
            wait_until(lambda: waiting_advisory_locks(postgres_url) == 1, what="the second writer waiting")
            assert third.record_state(state(1, True, device="term-b"), RECEIVED)  # another terminal: no wait
            assert waiter.is_alive()
        waiter.join()
        status = first.terminal("term-a")
        assert status is not None and status.conn == 2
    finally:
        for store in (first, second, third):
            store.close()
