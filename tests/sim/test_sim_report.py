"""The report counts lost, duplicated and changed votes against the simulator's ground truth, and fails on any."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fleet.db.store import SqlFleetStore
from fleet.records import SYNCED, StoredVote
from protocol import Vote, VoteBatch
from sim.report import Press, Reconciled, Report, Truth, delay_summary, percentile, reconcile, unit_scores


def boot_of(store: str) -> str:
    """Each store (card) its own boot, as a re-imaged terminal boots anew."""
    return f"b-{store or 1}"


def press(seq: int, answer: int, unit: str = "u-1", store: str = "") -> Press:
    return Press(
        seq, unit, "thl-nps", "nps11", answer, False, 1_000 + seq, 1_700_000_000_000 + seq, store, boot_of(store), seq
    )  # fmt: skip


def vote(seq: int, answer: int, unit: str = "u-1", boot: str = "b-1") -> Vote:
    return Vote(seq, "thl-nps", "nps11", answer, "fi", 1_700_000_000_000 + seq, seq, boot, True, unit, 1)


def stored(seq: int, answer: int, store: str = "") -> StoredVote:
    v = vote(seq, answer, boot=boot_of(store))
    return StoredVote(
        "t-1", seq, v.question, v.scale, answer, "fi", v.wall, v.mono, v.boot, True, v.unit, 1, frozenset(),
        None, None, 3_000 + seq, v.wall, SYNCED, store,
    )  # fmt: skip


def report(rec: Reconciled, units: list | None = None) -> Report:  # type: ignore[type-arg]
    return Report(
        devices=1, seed=1, speed=1, sim_hours=1, real_s=1, pressed=rec.pressed, stored=rec.stored, lost=rec.lost,
        duplicated=rec.duplicated, unexpected=rec.unexpected, mismatched=rec.mismatched, drained=True,
        queued_at_end=0, drain_s=0, backlog_peak=0, delay_s=delay_summary(rec.delays_s),
        time_status=dict(rec.time_status), corrected_max_error_s=0, faults={}, faults_skipped={}, units=units or [],
    )  # fmt: skip


def test_a_lost_vote_fails_the_run_with_exit_status_1() -> None:
    from sim.report import reconcile_device

    rec = Reconciled()
    reconcile_device("t-1", {("", 1): press(1, 9), ("", 2): press(2, 3)}, [stored(1, 9)], rec)
    r = report(rec)
    assert (rec.lost, rec.lost_examples) == (1, ["t-1#2"])
    assert not r.ok and r.exit_status() == 1
    assert "lost 1" in r.format() and "FAILED" in r.format()


def test_duplicated_invented_and_changed_votes_fail_the_run() -> None:
    from sim.report import reconcile_device

    rec = Reconciled()
    pressed = {("", 1): press(1, 9), ("", 2): press(2, 3)}
    reconcile_device("t-1", pressed, [stored(1, 9), stored(1, 9), stored(2, 4), stored(3, 1)], rec)
    # Seq 2 stored with another answer is a changed vote, and by what was pressed also a press
    # missing and one never made; seq 3 was never pressed.
    assert (rec.duplicated, rec.mismatched, rec.unexpected, rec.lost) == (1, 1, 2, 1)
    assert report(rec).exit_status() == 1


def test_a_press_stored_twice_under_different_keys_is_a_duplicate() -> None:
    from sim.report import reconcile_device

    # The fleet's key (store, seq) differs, so counting keys sees nothing; the press is the same one.
    rec = Reconciled()
    pressed = {("a", 1): press(1, 9, store="a")}
    resent = dataclasses.replace(stored(1, 9, "a"), store="b", seq=7)
    reconcile_device("t-1", pressed, [stored(1, 9, "a"), resent], rec)
    assert (rec.duplicated, rec.unexpected, rec.lost) == (1, 0, 0)
    assert report(rec).exit_status() == 1


def test_everything_stored_once_passes_with_delays_from_real_times() -> None:
    from sim.report import reconcile_device

    rec = Reconciled()
    reconcile_device("t-1", {("", 1): press(1, 9), ("", 2): press(2, 3)}, [stored(1, 9), stored(2, 3)], rec)
    assert report(rec).exit_status() == 0
    assert rec.delays_s == [2.0, 2.0]


def test_a_re_imaged_terminals_stores_are_counted_apart_each_seq_once_per_store() -> None:
    from sim.report import reconcile_device

    # The old card's seqs 1-2 and the new card's seqs 1-2: four presses, none a duplicate of another.
    pressed = {(s, q): press(q, q + 1, store=s) for s in ("old", "new") for q in (1, 2)}
    both = [stored(q, q + 1, s) for s in ("old", "new") for q in (1, 2)]
    rec = Reconciled()
    reconcile_device("t-1", pressed, both, rec)
    assert (rec.pressed, rec.stored, rec.lost, rec.duplicated, rec.unexpected) == (4, 4, 0, 0, 0)
    assert report(rec).exit_status() == 0
    rec = Reconciled()
    reconcile_device("t-1", pressed, both[2:], rec)  # the fleet kept only the new card's series
    assert (rec.lost, rec.lost_examples) == (2, ["t-1#old:1", "t-1#old:2"])
    rec = Reconciled()
    reconcile_device("t-1", pressed, [*both, stored(2, 3, "new")], rec)  # the new card's seq 2 stored twice
    assert (rec.duplicated, rec.unexpected) == (1, 0)


def test_a_truth_keeps_the_same_seq_of_two_stores_and_refuses_one_store_reusing_a_seq() -> None:
    truth = Truth()
    truth.add("t-1", press(1, 9, store="old"))
    truth.add("t-1", press(1, 3, store="new"))
    assert set(truth.presses("t-1")) == {("old", 1), ("new", 1)} and truth.count() == 2
    with pytest.raises(RuntimeError, match="twice"):
        truth.add("t-1", press(1, 5, store="new"))


def test_unit_scores_pressed_equal_fleet_from_a_real_store(tmp_path: Path) -> None:
    store = SqlFleetStore(tmp_path / "fleet.db")
    truth = Truth()
    answers = [10, 9, 9, 3, 7, 0, 10]
    for seq, a in enumerate(answers, start=1):
        truth.add("t-1", press(seq, a))
    store.add_vote_batches([VoteBatch("t-1", 1, tuple(vote(s, a) for s, a in enumerate(answers, start=1)))], 5)
    rec = reconcile(truth, store)
    rows = unit_scores(truth, store)
    store.close()
    assert rec.lost == 0 and rec.stored == 7
    assert len(rows) == 1 and rows[0].equal and rows[0].pressed_n == 7
    assert rows[0].pressed == pytest.approx((4 - 2) / 7 * 100, rel=1e-12)
    assert not dataclasses.replace(rows[0], fleet_n=6).equal
    assert rows[0].pressed_counts == rows[0].fleet_counts == (1, 0, 0, 1, 0, 0, 0, 1, 0, 2, 2)
    # A 7 counted as an 8: the same n and the same NPS, but not the same answers.
    moved = (1, 0, 0, 1, 0, 0, 0, 0, 1, 2, 2)
    assert not dataclasses.replace(rows[0], fleet_counts=moved).equal
    assert report(rec, [dataclasses.replace(rows[0], fleet=1.0)]).exit_status() == 1


@pytest.mark.parametrize(
    ("scale", "counts", "figure"),
    [("nps11", (1, 0, 0, 1, 0, 0, 0, 1, 0, 2, 2), 100 * (4 - 2) / 7), ("faces4", (1, 2, 3, 4), 70.0)]
    + [("faces5", (0, 0, 1, 1, 2), 75.0), ("agree5", (5, 0, 0, 0, 0), 0.0), ("nps11", (0,) * 11, None)],
)
def test_the_pressed_figure_follows_the_definitions(scale: str, counts: tuple[int, ...], figure: float | None) -> None:
    from sim.report import pressed_figure

    assert pressed_figure(scale, counts) == (figure if figure is None else pytest.approx(figure, rel=1e-12))


def test_percentiles_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile([], 50)) == (50.0, 99.0, None)
