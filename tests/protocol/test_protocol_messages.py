"""Plain message data: seq ranges, acks and scales."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import SCALES, VOTE_FLAGS, Ack, scale, seq_ranges


@pytest.mark.parametrize(
    ("seqs", "ranges"),
    [
        ([], ()),
        ([5], ((5, 5),)),
        ([1, 2, 3], ((1, 3),)),
        ([1, 2, 3, 7], ((1, 3), (7, 7))),
        ([7, 3, 1, 2], ((1, 3), (7, 7))),  # order does not matter
        ([2, 2, 3, 3], ((2, 3),)),  # nor repeats
        ([1, 3, 5], ((1, 1), (3, 3), (5, 5))),
        (range(10, 110), ((10, 109),)),
        ([2**53 - 2, 2**53 - 1], ((2**53 - 2, 2**53 - 1),)),
    ],
)
def test_seq_ranges_compress_seqs_into_sorted_inclusive_ranges(seqs: list[int], ranges: tuple) -> None:
    assert seq_ranges(seqs) == ranges


@given(st.sets(st.integers(min_value=1, max_value=10_000), max_size=200))
def test_seq_ranges_cover_exactly_the_seqs_given(seqs: set[int]) -> None:
    ranges = seq_ranges(seqs)
    assert set(Ack("kiosk-001", 1, ranges).seqs()) == seqs
    # ascending, disjoint and never adjacent, so as few ranges as possible
    for (_, hi), (lo, _) in zip(ranges, ranges[1:], strict=False):
        assert lo > hi + 1


def test_ack_lists_every_acknowledged_seq_in_order() -> None:
    assert list(Ack("kiosk-001", 1, ((1, 3), (7, 8))).seqs()) == [1, 2, 3, 7, 8]


@pytest.mark.parametrize(
    ("name", "size", "positive"),
    [("nps11", 11, {9, 10}), ("faces4", 4, {2, 3}), ("faces5", 5, {3, 4}), ("agree5", 5, {3, 4})],
)
def test_scales_define_their_answers_and_positive_ones(name: str, size: int, positive: set[int]) -> None:
    sc = scale(name)
    assert (sc.name, sc.size, set(sc.positive)) == (name, size, positive)
    assert sc.positive <= set(range(size))


def test_only_nps11_is_scored_as_nps_with_promoters_9_10_and_detractors_0_6() -> None:
    assert [s.name for s in SCALES.values() if s.is_nps] == ["nps11"]
    nps = scale("nps11")
    assert set(nps.promoters) == {9, 10}
    assert set(nps.detractors) == set(range(7))


def test_unknown_scale_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        scale("stars7")


def test_vote_flags_are_the_three_documented_ones() -> None:
    assert VOTE_FLAGS == {"misuse", "after_hours", "historical"}
