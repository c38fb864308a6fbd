"""Honest time (DESIGN guarantee 4): unsynchronised votes are corrected from synchronised points of their boot."""

from __future__ import annotations

from datetime import date

from fleet.db.store import SqlFleetStore
from fleet.records import CORRECTED, SYNCED, UNCERTAIN
from protocol import Heartbeat, Vote, VoteBatch

from .conftest import NOON, make_batch, make_vote

RECEIVED = NOON + 3_600_000
#: A Pi without a real-time clock boots believing it is 1 January 2000 (ms).
BOGUS = 946_684_800_000
#: The true offset of boot-1: real wall time = mono + OFFSET.
OFFSET = NOON


def unsynced(seq: int, boot: str = "boot-1") -> Vote:
    """A vote pressed at mono ``seq`` s with the clock still at its bogus boot time."""
    return make_vote(seq, wall=BOGUS + seq * 1000, mono=seq * 1000, synced=False, boot=boot)


def times(store: SqlFleetStore, device: str = "term-a") -> dict[int, tuple[int, str]]:
    return {v.seq: (v.best, v.time_status) for v in store.stored_votes(device)}


def synced_heartbeat(mono: int, offset: int = OFFSET, boot: str = "boot-1") -> Heartbeat:
    return Heartbeat("term-a", mono + offset, mono, boot, True, mono // 1000, 0, None, 1, "1.0")


def test_synchronised_votes_keep_their_wall_time(fleet_db: SqlFleetStore) -> None:
    fleet_db.add_vote_batches([make_batch("term-a", [1, 2])], RECEIVED)
    assert times(fleet_db) == {1: (NOON + 1000, SYNCED), 2: (NOON + 2000, SYNCED)}


def test_unsynchronised_votes_without_a_synchronised_point_are_uncertain(fleet_db: SqlFleetStore) -> None:
    batch = make_batch("term-a", [1, 2], synced=False, wall=BOGUS)
    fleet_db.add_vote_batches([batch], RECEIVED)
    assert times(fleet_db) == {1: (BOGUS, UNCERTAIN), 2: (BOGUS, UNCERTAIN)}
    (day,) = fleet_db.daily_counts()
    assert day.uncertain == 2


def test_unsynchronised_votes_are_corrected_from_a_synchronised_vote_of_the_same_boot(
    fleet_db: SqlFleetStore,
) -> None:
    votes = (unsynced(1), unsynced(2), make_vote(10, wall=OFFSET + 10_000, mono=10_000))
    fleet_db.add_vote_batches([VoteBatch("term-a", 1, votes)], RECEIVED)
    assert times(fleet_db) == {
        1: (OFFSET + 1000, CORRECTED),
        2: (OFFSET + 2000, CORRECTED),
        10: (OFFSET + 10_000, SYNCED),
    }


def test_correction_applies_retroactively_when_the_synchronised_point_comes_later(fleet_db: SqlFleetStore) -> None:
    fleet_db.add_vote_batches([VoteBatch("term-a", 1, (unsynced(1), unsynced(2)))], RECEIVED)
    assert {s for _, s in times(fleet_db).values()} == {UNCERTAIN}
    fleet_db.record_heartbeat(synced_heartbeat(60_000), RECEIVED)
    assert times(fleet_db) == {1: (OFFSET + 1000, CORRECTED), 2: (OFFSET + 2000, CORRECTED)}
    # Votes of that boot sent after the point are corrected on arrival.
    fleet_db.add_vote_batches([VoteBatch("term-a", 2, (unsynced(3),))], RECEIVED)
    assert times(fleet_db)[3] == (OFFSET + 3000, CORRECTED)


def test_a_later_synchronised_vote_batch_also_corrects_earlier_votes(fleet_db: SqlFleetStore) -> None:
    fleet_db.add_vote_batches([VoteBatch("term-a", 1, (unsynced(1),))], RECEIVED)
    fleet_db.add_vote_batches([make_batch("term-a", [5], batch=2, wall=OFFSET + 5000, mono=5000)], RECEIVED)
    assert times(fleet_db)[1] == (OFFSET + 1000, CORRECTED)


def test_a_synchronised_point_of_another_boot_or_terminal_corrects_nothing(fleet_db: SqlFleetStore) -> None:
    fleet_db.add_vote_batches([VoteBatch("term-a", 1, (unsynced(1, boot="boot-2"),))], RECEIVED)
    fleet_db.record_heartbeat(synced_heartbeat(60_000, boot="boot-1"), RECEIVED)
    fleet_db.add_vote_batches([make_batch("term-b", [1], boot="boot-2")], RECEIVED)
    assert times(fleet_db) == {1: (BOGUS + 1000, UNCERTAIN)}


def test_an_unsynchronised_heartbeat_is_no_synchronised_point(fleet_db: SqlFleetStore) -> None:
    fleet_db.add_vote_batches([VoteBatch("term-a", 1, (unsynced(1),))], RECEIVED)
    hb = Heartbeat("term-a", BOGUS + 60_000, 60_000, "boot-1", False, 60, 1, 59, 1, "1.0")
    fleet_db.record_heartbeat(hb, RECEIVED)
    assert times(fleet_db)[1] == (BOGUS + 1000, UNCERTAIN)


def test_the_latest_synchronised_point_of_the_boot_wins(fleet_db: SqlFleetStore) -> None:
    fleet_db.add_vote_batches([VoteBatch("term-a", 1, (unsynced(1),))], RECEIVED)
    fleet_db.record_heartbeat(synced_heartbeat(60_000, offset=OFFSET), RECEIVED)
    # NTP stepped the clock by a minute: the later point's offset is the better one.
    fleet_db.record_heartbeat(synced_heartbeat(120_000, offset=OFFSET + 60_000), RECEIVED)
    assert times(fleet_db)[1] == (OFFSET + 60_000 + 1000, CORRECTED)
    # An older point arriving late (a replayed heartbeat) does not move the anchor back.
    fleet_db.record_heartbeat(synced_heartbeat(90_000, offset=OFFSET), RECEIVED)
    assert times(fleet_db)[1] == (OFFSET + 60_000 + 1000, CORRECTED)
    fleet_db.add_vote_batches([VoteBatch("term-a", 2, (unsynced(2),))], RECEIVED)
    assert times(fleet_db)[2] == (OFFSET + 60_000 + 2000, CORRECTED)


def test_corrected_votes_count_on_their_corrected_day(fleet_db: SqlFleetStore) -> None:
    fleet_db.add_vote_batches([VoteBatch("term-a", 1, (unsynced(1), unsynced(2)))], RECEIVED)
    assert {d.day for d in fleet_db.daily_counts()} == {date(2000, 1, 1)}
    fleet_db.record_heartbeat(synced_heartbeat(60_000), RECEIVED)
    (day,) = fleet_db.daily_counts()
    assert (day.day, sum(day.counts), day.uncertain) == (date(2025, 3, 1), 2, 0)


def test_a_synchronised_batch_spanning_two_boots_anchors_each_boot(fleet_db: SqlFleetStore) -> None:
    # boot-1 ended with unsynchronised presses; its later synchronised ones arrive in a batch that
    # also holds boot-2's (larger mono) votes. Each boot must get its own anchor.
    fleet_db.add_vote_batches([VoteBatch("term-a", 1, (unsynced(1), unsynced(2)))], RECEIVED)
    both = (
        make_vote(3, wall=OFFSET + 3000, mono=3000),
        make_vote(4, wall=NOON + 50_000, mono=50_000, boot="boot-2"),
    )
    fleet_db.add_vote_batches([VoteBatch("term-a", 2, both)], RECEIVED)
    assert times(fleet_db)[1] == (OFFSET + 1000, CORRECTED)
    assert times(fleet_db)[2] == (OFFSET + 2000, CORRECTED)


def test_an_anchor_moving_by_a_second_or_less_leaves_corrected_votes_alone_a_larger_move_rewrites_them(
    fleet_db: SqlFleetStore,
) -> None:
    # Clock jitter between synchronised points must not rewrite a long offline backlog on every
    # batch (CORRECTION_TOLERANCE_MS); a real step of the clock must.
    fleet_db.add_vote_batches([VoteBatch("term-a", 1, (unsynced(1),))], RECEIVED)
    fleet_db.record_heartbeat(synced_heartbeat(60_000), RECEIVED)
    assert times(fleet_db)[1] == (OFFSET + 1000, CORRECTED)
    fleet_db.record_heartbeat(synced_heartbeat(120_000, offset=OFFSET + 500), RECEIVED)
    assert times(fleet_db)[1] == (OFFSET + 1000, CORRECTED)
    fleet_db.record_heartbeat(synced_heartbeat(180_000, offset=OFFSET + 1000), RECEIVED)  # at the tolerance
    assert times(fleet_db)[1] == (OFFSET + 1000, CORRECTED)
    fleet_db.record_heartbeat(synced_heartbeat(240_000, offset=OFFSET + 1500), RECEIVED)
    assert times(fleet_db)[1] == (OFFSET + 1500 + 1000, CORRECTED)


def test_the_latest_synchronised_point_wins_within_one_call_whatever_the_order_of_its_batches(
    fleet_db: SqlFleetStore,
) -> None:
    newer = make_vote(5, wall=OFFSET + 60_000 + 120_000, mono=120_000)  # after NTP stepped the clock a minute
    older = make_vote(4, wall=OFFSET + 60_000, mono=60_000)
    batches = [
        VoteBatch("term-a", 3, (newer,)),
        VoteBatch("term-a", 2, (older,)),
        VoteBatch("term-a", 1, (unsynced(1),)),
    ]
    fleet_db.add_vote_batches(batches, RECEIVED)
    assert times(fleet_db)[1] == (OFFSET + 60_000 + 1000, CORRECTED)


def test_every_uncertain_vote_of_a_day_is_counted_whatever_its_answer(fleet_db: SqlFleetStore) -> None:
    votes = tuple(unsynced(seq)._replace(answer=answer) for seq, answer in ((1, 0), (2, 5), (3, 10), (4, 10)))
    fleet_db.add_vote_batches([VoteBatch("term-a", 1, votes)], RECEIVED)
    (day,) = fleet_db.daily_counts()
    assert (sum(day.counts), day.uncertain) == (4, 4)
