"""The rollups (daily, monthly, hour): kept in the votes' own transaction, equal to a recount, and all that
figures read."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic import command
from hypothesis import given
from hypothesis import strategies as st

from fleet.__main__ import main as fleet_main
from fleet.db import migrate
from fleet.db.engine import database_url
from fleet.db.rollup import by_month
from fleet.db.store import SqlFleetStore, spans_of
from fleet.store import DEFAULT_TZ
from protocol import Heartbeat, Vote, VoteBatch

from .conftest import NOON, make_batch, make_vote

RECEIVED = NOON + 60_000
DAY_MS = 86_400_000
#: 2025-03-01 21:59:59 UTC: one second before midnight in Helsinki (UTC+2).
BEFORE_HELSINKI_MIDNIGHT = 1_740_866_399_000


def expected_rollup(store: SqlFleetStore, devices: list[str], hours: bool = False) -> dict[tuple[object, ...], int]:
    """The daily (or hour) rollup recomputed here from the stored votes, in local time in each unit's
    zone (an oracle)."""
    zones = store.unit_zones()
    placement = {t.device: t.unit for t in store.terminals()}
    out: Counter[tuple[object, ...]] = Counter()
    for device in devices:
        for v in store.stored_votes(device):
            placed = v.unit or placement.get(device)
            zone = ZoneInfo(zones.get(placed, DEFAULT_TZ) if placed else DEFAULT_TZ)
            t = datetime.fromtimestamp(v.best / 1000, zone)
            key: tuple[object, ...] = (v.unit or "", "" if v.unit else device, v.question, v.scale)
            if hours:
                side = {"nps11": 1 if v.answer >= 9 else -1 if v.answer <= 6 else 0}.get(v.scale)
                if side is None:  # faces and agree scales: the top half counts as positive
                    side = 1 if v.answer >= {"faces4": 2}.get(v.scale, 3) else 0
                key += (t.date().replace(day=1), t.weekday(), t.hour, side, v.role or "")
                key += ("misuse" in v.flags, "after_hours" in v.flags)
            else:
                key += (t.date(), v.answer, v.role or "", v.reason or "", "misuse" in v.flags)
                key += ("after_hours" in v.flags, v.time_status == "uncertain")
            out[key + ("terminal",)] += 1  # every vote a terminal sends is of the terminal channel
    return dict(out)


def mixed_run(store: SqlFleetStore, seed: int) -> list[str]:
    """A seeded run of everything that moves counts: late and unsynced votes, corrections, replays,
    seq conflicts, misuse and after-hours flags, roles and reasons, placements and zones changing."""
    rng = random.Random(seed)
    devices = [f"term-{i}" for i in range(6)]
    next_seq: dict[tuple[str, str], int] = {}
    sent: list[VoteBatch] = []
    store.set_unit_zone("unit-b", "America/New_York")
    for step in range(120):
        device = rng.choice(devices)
        series = rng.choice(["", "s1"])
        boot = rng.choice(["b1", "b2"])
        synced = rng.random() < 0.6
        votes = []
        for _ in range(rng.randint(1, 6)):
            seq = next_seq.get((device, series), 0) + 1
            next_seq[(device, series)] = seq
            mono = step * 60_000 + seq * 1000
            # Pressed around Helsinki's and New York's midnights, on either side of them.
            wall = BEFORE_HELSINKI_MIDNIGHT + rng.choice([-1, 1]) * rng.randint(0, 3) * 3_600_000 + seq * 1000
            wall += rng.choice([0, 0, 7 * 3_600_000]) + rng.randint(0, 40) * DAY_MS
            flags = frozenset(f for f in ("misuse", "after_hours", "historical") if rng.random() < 0.15)
            scale, answer = rng.choice([("nps11", rng.randrange(11)), ("faces4", rng.randrange(4))])
            votes.append(
                make_vote(
                    seq,
                    answer=answer,
                    scale=scale,
                    wall=wall if synced else 946_684_800_000 + mono,  # unsynced: the Pi's clock at 2000-01-01
                    mono=mono,
                    boot=boot,
                    synced=synced,
                    unit=rng.choice(["unit-a", "unit-b", "unit-c", None, None]),
                    flags=flags,
                    role=rng.choice([None, "client", "relative", "other"]),
                    reason=rng.choice([None, None, "wait", "staff"]),
                )
            )
        batch = VoteBatch(device, step, tuple(votes), store=series or None)
        sent.append(batch)
        calls = [batch]
        if sent and rng.random() < 0.3:  # a replay of an earlier batch, flagged historical or not
            calls.append(rng.choice(sent))
        if rng.random() < 0.05:  # a copied database: a taken seq with another press
            old = rng.choice(sent)
            v = old.votes[0]
            calls.append(VoteBatch(old.device, 9999, (v._replace(answer=(v.answer + 1) % 2),), store=old.store))
        rng.shuffle(calls)
        store.add_vote_batches(calls, RECEIVED + step)
        if rng.random() < 0.2:  # a synchronised point of a boot: corrects its unsynced votes
            hb_boot = rng.choice(["b1", "b2"])
            hb_mono = step * 60_000 + rng.randint(0, 600_000)
            wall = BEFORE_HELSINKI_MIDNIGHT + rng.randint(-5, 5) * 3_600_000 + hb_mono
            store.record_heartbeat(heartbeat(rng.choice(devices), hb_boot, wall, hb_mono), RECEIVED + step)
        if step == 40:
            store.assign("term-4", "unit-b")  # its unitless votes move to New York days
        if step == 80:
            store.assign("term-4", "unit-c")
            store.assign("term-5", "unit-b")
            store.set_unit_zone("unit-c", "Asia/Kolkata")  # a half-hour offset
    return devices


def heartbeat(device: str, boot: str, wall: int, mono: int) -> Heartbeat:
    return Heartbeat(device, wall, mono, boot, True, uptime=mono // 1000, queue=0, oldest=None, cfg=0, fw="1.0")


@pytest.mark.parametrize("seed", [1, 2])
def test_the_rollup_kept_vote_by_vote_equals_a_recount_after_a_mixed_run(fleet_db: SqlFleetStore, seed: int) -> None:
    devices = mixed_run(fleet_db, seed)
    kept = fleet_db.rollup()
    assert kept == expected_rollup(fleet_db, devices)
    assert kept == fleet_db.recount_rollup()
    months = {k: n for k, n in by_month(kept).items() if n}
    assert fleet_db.rollup(monthly=True) == months == fleet_db.recount_rollup(monthly=True)
    assert sum(kept.values()) == fleet_db.vote_count()
    hours = fleet_db.rollup(hours=True)
    assert hours == expected_rollup(fleet_db, devices, hours=True) == fleet_db.recount_rollup(hours=True)
    assert fleet_db.rebuild_rollup() == len(kept)
    assert fleet_db.rollup() == kept
    assert fleet_db.rollup(hours=True) == hours


def test_a_correction_moves_votes_to_the_day_of_their_corrected_time(fleet_db: SqlFleetStore) -> None:
    # Pressed 1 s and 3 s after boot on an unsynchronised clock that says 2000-01-01.
    unsynced = [make_vote(s, wall=946_684_800_000 + s * 1000, mono=s * 1000, synced=False) for s in (1, 3)]
    fleet_db.add_vote_batches([VoteBatch("term-a", 1, tuple(unsynced))], RECEIVED)
    (day,) = fleet_db.daily_counts()
    assert (day.day, day.uncertain) == (date(2000, 1, 1), 2)
    # A heartbeat 10 s after boot whose clock is synchronised: the boot began just before Helsinki's midnight.
    fleet_db.record_heartbeat(heartbeat("term-a", "boot-1", BEFORE_HELSINKI_MIDNIGHT + 8000, 10_000), RECEIVED)
    days = {d.day: (sum(d.counts), d.uncertain) for d in fleet_db.daily_counts()}
    assert days == {date(2025, 3, 1): (1, 0), date(2025, 3, 2): (1, 0)}  # 23:59:59 and 00:00:01 in Helsinki
    assert fleet_db.rollup() == fleet_db.recount_rollup()
    # Saturday 23:00 and Sunday 00:00 of two months (March 1st 2025 was a Saturday), no longer January 2000.
    when = {(k[4], k[5], k[6]): n for k, n in fleet_db.rollup(hours=True).items()}
    assert when == {(date(2025, 3, 1), 5, 23): 1, (date(2025, 3, 1), 6, 0): 1}
    assert fleet_db.rollup(hours=True) == fleet_db.recount_rollup(hours=True)


def test_votes_without_a_unit_follow_their_terminal_and_its_units_zone(fleet_db: SqlFleetStore) -> None:
    fleet_db.set_unit_zone("unit-ny", "America/New_York")
    fleet_db.add_vote_batches([make_batch("term-x", [1], unit=None, wall=BEFORE_HELSINKI_MIDNIGHT + 2000)], RECEIVED)
    # Unplaced: no unit, and the default zone (Helsinki), where it is just past midnight.
    assert [(d.unit, d.day) for d in fleet_db.daily_counts()] == [(None, date(2025, 3, 2))]
    fleet_db.assign("term-x", "unit-ny")  # 17:00 the day before in New York
    assert [(d.unit, d.day) for d in fleet_db.daily_counts()] == [("unit-ny", date(2025, 3, 1))]
    assert [d.unit for d in fleet_db.daily_counts(unit="unit-ny")] == ["unit-ny"]
    fleet_db.assign("term-x", "unit-a")
    assert [(d.unit, d.day) for d in fleet_db.daily_counts()] == [("unit-a", date(2025, 3, 2))]
    assert fleet_db.daily_counts(unit="unit-ny") == []


def test_figures_read_the_rollup_not_the_votes(fleet_db: SqlFleetStore) -> None:
    fleet_db.add_vote_batches([make_batch("term-a", range(1, 6), answer=10)], RECEIVED)
    before = fleet_db.daily_counts()
    with fleet_db.transaction():  # a test-only look behind the store: empty the votes table
        fleet_db._conn.execute(sa.text("DELETE FROM votes"))
    assert fleet_db.vote_count() == 0
    assert fleet_db.daily_counts() == before and sum(before[0].counts) == 5


def test_a_unit_zone_must_be_a_real_zone_and_a_unit_id(fleet_db: SqlFleetStore) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        fleet_db.set_unit_zone("unit-a", "Europe/Atlantis")
    with pytest.raises(ValueError, match="bad unit id"):
        fleet_db.set_unit_zone("unit a; drop", "UTC")
    assert fleet_db.unit_zones() == {}


def test_upgrading_a_database_with_votes_fills_its_rollup(fleet_url: str) -> None:
    with SqlFleetStore(fleet_url) as store:
        store.add_vote_batches([make_batch("term-a", range(1, 8), answer=9)], RECEIVED)
        store.add_vote_batches([make_batch("term-b", [1, 2], unit=None, answer=3)], RECEIVED)
        store.assign("term-b", "unit-b")
        expected = store.rollup()
        expected_hours = store.rollup(hours=True)
    assert sum(expected_hours.values()) == 9
    engine = sa.create_engine(database_url(fleet_url))
    try:
        with engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0001")  # as a database of the previous release
    finally:
        engine.dispose()
    with SqlFleetStore(fleet_url) as store:  # opening upgrades it, and counts the votes it holds
        assert store.rollup() == expected
        assert store.rollup(hours=True) == expected_hours
        assert {(d.unit, d.counts[9], d.counts[3]) for d in store.daily_counts()} == {
            ("unit-a", 7, 0),
            ("unit-b", 0, 2),
        }


def test_the_rollup_command_checks_and_rebuilds(fleet_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with SqlFleetStore(fleet_url) as store:
        store.add_vote_batches([make_batch("term-a", range(1, 4), answer=7)], RECEIVED)
    assert fleet_main(["--db", fleet_url, "rollup"]) == 0
    assert "agrees" in capsys.readouterr().out
    for table in ("daily_rollup", "hour_rollup"):
        with SqlFleetStore(fleet_url) as store, store.transaction():  # damage it behind the store's back
            store._conn.execute(sa.text(f"UPDATE {table} SET count = count + 5"))
        assert fleet_main(["--db", fleet_url, "rollup"]) == 1
        assert "--rebuild" in capsys.readouterr().out
        assert fleet_main(["--db", fleet_url, "rollup", "--rebuild"]) == 0
        assert "from 3 votes" in capsys.readouterr().out
        assert fleet_main(["--db", fleet_url, "rollup"]) == 0
    assert fleet_main(["--db", fleet_url, "zone", "unit-a", "UTC"]) == 0
    assert "note" not in capsys.readouterr().err
    assert fleet_main(["--db", fleet_url, "zone", "unit-typo", "UTC"]) == 0  # allowed (a new unit), but flagged
    assert "no vote or terminal has named unit 'unit-typo'" in capsys.readouterr().err
    with SqlFleetStore(fleet_url) as store:
        assert store.unit_zones() == {"unit-a": "UTC", "unit-typo": "UTC"}
    assert fleet_main(["--db", fleet_url, "zone", "unit-a", "Mars/Olympus"]) == 1
    assert "unknown time zone" in capsys.readouterr().err


def test_a_vote_stored_twice_in_one_call_is_counted_once(fleet_db: SqlFleetStore) -> None:
    batch = make_batch("term-a", [1, 2], answer=10)
    fleet_db.add_vote_batches([batch, batch, make_batch("term-a", [2, 3], answer=10)], RECEIVED)
    fleet_db.add_vote_batches([batch], RECEIVED)
    (day,) = fleet_db.daily_counts()
    assert day.counts[10] == 3 == fleet_db.vote_count()
    assert fleet_db.rollup() == fleet_db.recount_rollup()


def test_votes_of_a_vote_tuple_are_read_from_the_stored_rows(fleet_db: SqlFleetStore) -> None:
    """Roles, reasons and flags are kept apart in the rollup, for breakdowns."""
    fleet_db.add_vote_batches(
        [
            VoteBatch(
                "term-a",
                1,
                (
                    make_vote(1, role="relative", reason="wait"),
                    make_vote(2, flags=frozenset({"after_hours"})),
                    Vote(*make_vote(3)[:11], frozenset({"misuse"}), "client", None),
                ),
            )
        ],
        RECEIVED,
    )
    rows = {(k[6], k[7], k[8], k[9]): n for k, n in fleet_db.rollup().items()}
    assert rows == {("relative", "wait", False, False): 1, ("", "", False, True): 1, ("client", "", True, False): 1}


def test_a_zone_change_waits_for_votes_being_stored_in_the_old_zone(fleet_url: str) -> None:
    """Writers hold the zones lock shared: a zone change waits for them, then recounts their votes too."""
    with SqlFleetStore(fleet_url) as ingest, SqlFleetStore(fleet_url) as admin:
        ingest.add_vote_batches([make_batch("term-a", [1])], RECEIVED)  # the unit exists, in Helsinki
        errors: list[BaseException] = []

        def change_zone() -> None:
            try:
                admin.set_unit_zone("unit-a", "America/New_York")
            except BaseException as exc:
                errors.append(exc)

        changer = threading.Thread(target=change_zone)
        with ingest.transaction():
            # 00:00:01 in Helsinki on 2 March, still 1 March in New York; not committed yet.
            ingest.add_vote_batches([make_batch("term-a", [2, 3], wall=BEFORE_HELSINKI_MIDNIGHT + 2000)], RECEIVED)
            changer.start()
            changer.join(0.5)
            # It waits for this transaction (the zones lock on PostgreSQL, the write lock on SQLite):
            # had it gone ahead, votes counted here in Helsinki days would stay there after its recount.
            assert changer.is_alive()
        changer.join(30)
        assert not errors and not changer.is_alive()
        assert ingest.rollup() == ingest.recount_rollup()
        assert {d.day: sum(d.counts) for d in ingest.daily_counts()} == {date(2025, 3, 1): 3}


def _days_of(spans: list[tuple[bool, date | None, date | None]], floor: date, ceiling: date) -> list[date]:
    """The days the spans cover within [floor, ceiling), each as often as it is covered."""
    out = []
    for _months, lo, hi in spans:
        day = lo or floor
        while day < (hi or ceiling):
            out.append(day)
            day += timedelta(days=1)
    return out


@given(
    st.one_of(st.none(), st.dates(date(2024, 1, 1), date(2025, 12, 31))),
    st.one_of(st.none(), st.dates(date(2024, 1, 1), date(2025, 12, 31))),
)
def test_a_period_splits_into_whole_months_and_ragged_days_covering_each_day_once(
    first: date | None, last: date | None
) -> None:
    floor, ceiling = date(2023, 1, 1), date(2027, 1, 1)
    spans = spans_of(first, last)
    want = _days_of([(False, first, None if last is None else last + timedelta(days=1))], floor, ceiling)
    assert sorted(_days_of(spans, floor, ceiling)) == want
    for months, lo, hi in spans:  # a month span starts and ends on a month's first day
        if months:
            assert lo is None or lo.day == 1
            assert hi is None or hi.day == 1


def test_period_counts_from_months_and_days_equal_the_sum_of_the_days(fleet_db: SqlFleetStore) -> None:
    batches = [make_batch("term-a", [d + 1], answer=d % 11, wall=NOON + d * DAY_MS) for d in range(0, 120, 3)]
    fleet_db.add_vote_batches(batches, RECEIVED)  # 2025-03-01 … 2025-06-27, every third day
    for first, last in [
        (None, None),
        (date(2025, 3, 1), date(2025, 3, 31)),
        (date(2025, 3, 2), date(2025, 5, 30)),
        (date(2025, 3, 15), date(2025, 3, 20)),
        (None, date(2025, 4, 30)),
        (date(2025, 4, 1), None),
        (date(2025, 4, 10), None),
    ]:
        daily = fleet_db.daily_counts(first_day=first, last_day=last)
        summed = [sum(d.counts[a] for d in daily) for a in range(11)]
        (period,) = fleet_db.answer_counts(first_day=first, last_day=last)
        assert list(period.counts) == summed, (first, last)


def test_calls_grouped_in_one_transaction_count_each_vote_once_even_around_a_recount(fleet_db: SqlFleetStore) -> None:
    fleet_db.set_unit_zone("unit-ny", "America/New_York")
    with fleet_db.transaction("term-x"):
        fleet_db.add_vote_batches([make_batch("term-x", [1, 2], unit=None)], RECEIVED)
        fleet_db.assign("term-x", "unit-ny")  # recounts term-x's votes inside the transaction
        fleet_db.add_vote_batches([make_batch("term-x", [3], unit=None), make_batch("term-y", [1])], RECEIVED)
        fleet_db.record_heartbeat(heartbeat("term-x", "boot-1", NOON + 10_000, 10_000), RECEIVED)
    assert fleet_db.rollup() == fleet_db.recount_rollup()
    assert sum(fleet_db.rollup().values()) == 4 == fleet_db.vote_count()


def test_grouped_writes_that_name_their_terminals_never_deadlock(fleet_url: str) -> None:
    """Two ingest workers each grouping a drain's states and heartbeats for the same two terminals in
    opposite orders: naming the terminals takes both locks up front, in one order."""
    with SqlFleetStore(fleet_url) as one, SqlFleetStore(fleet_url) as two:
        first_in, second_in = threading.Event(), threading.Event()
        errors: list[BaseException] = []

        def worker(store: SqlFleetStore, a: str, b: str, mine: threading.Event, theirs: threading.Event) -> None:
            try:
                with store.transaction(a, b):
                    store.record_heartbeat(heartbeat(a, "boot-1", NOON, 1000), RECEIVED)
                    mine.set()
                    theirs.wait(1.0)  # the other worker cannot get in before this one commits
                    store.record_heartbeat(heartbeat(b, "boot-1", NOON, 1000), RECEIVED)
            except BaseException as exc:
                errors.append(exc)

        t1 = threading.Thread(target=worker, args=(one, "term-a", "term-b", first_in, second_in))
        t2 = threading.Thread(target=worker, args=(two, "term-b", "term-a", second_in, first_in))
        t1.start()
        first_in.wait(10)
        t2.start()
        t1.join(30)
        t2.join(30)
        assert not errors, errors
        assert {t.device for t in one.terminals()} == {"term-a", "term-b"}
