"""Simulated patients are repeatable from a seed, keep the unit's pace, and answer as their unit does."""

from __future__ import annotations

import random
from statistics import mean

import pytest

from fleet.scores import score
from protocol import validate_config_doc
from protocol.scales import SCALES
from sim.demo_view import Health, render_results
from sim.patients import DEMO_UNITS, FACES4_QUESTION, Arrivals, answer


def test_the_same_seed_gives_the_same_patients() -> None:
    def run(seed: int) -> list[tuple[float, int]]:
        rng = random.Random(seed)
        return [(Arrivals(30, 1.0).gap_s(rng), answer(DEMO_UNITS[0], "nps11", rng)) for _ in range(50)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_arrivals_keep_the_mean_rate_and_never_come_faster_than_the_minimum_gap() -> None:
    rng = random.Random(1)
    gaps = [Arrivals(30, 1.0).gap_s(rng) for _ in range(20_000)]
    assert min(gaps) >= 1.0
    assert mean(gaps) == pytest.approx(2.0, rel=0.05)


def test_a_rate_above_the_minimum_gap_becomes_a_regular_beat() -> None:
    assert Arrivals(120, 1.0).gap_s(random.Random(1)) == pytest.approx(0.5)


def test_units_answer_differently_on_their_own_scales() -> None:
    rng = random.Random(3)
    kontiolahti, joensuu, lieksa = DEMO_UNITS
    nps = {u.unit: [answer(u, "nps11", rng) for _ in range(3000)] for u in (kontiolahti, joensuu)}
    values = {unit: score([a.count(i) for i in range(11)], SCALES["nps11"]).value for unit, a in nps.items()}
    assert values[joensuu.unit] > values[kontiolahti.unit] + 20  # type: ignore[operator]
    faces = [answer(lieksa, "faces4", rng) for _ in range(1000)]
    assert set(faces) == {0, 1, 2, 3}


def test_every_demo_unit_has_a_valid_configuration_and_the_faces_text_says_where_it_comes_from() -> None:
    docs = [u.config_doc() for u in DEMO_UNITS]
    assert [d["unit"] for d in docs] == [u.unit for u in DEMO_UNITS]
    assert {d["question"]["scale"] for d in docs} == {"nps11", "faces4"}
    for doc in docs:
        validate_config_doc(doc)
    assert all("not from a national source" in s for s in FACES4_QUESTION["sources"].values())
    assert FACES4_QUESTION["review"] == ["fi", "sv", "en"]


def test_results_table_shows_n_figure_interval_and_small_sample() -> None:
    nps = score([0] * 6 + [2] + [0] * 2 + [3, 5], SCALES["nps11"])
    faces = score([1, 1, 10, 30], SCALES["faces4"])
    text = render_results({("u1", "thl-nps", "nps11"): nps, ("u2", "visit", "faces4"): faces}, {"u1": "Unit One"}, 12.0)
    lines = text.splitlines()
    assert lines[0] == "results after 12 s"
    assert "Unit One" in lines[3] and " 10 " in lines[3] and "NPS +60" in lines[3] and "small sample" in lines[3]
    assert "u2" in lines[4] and "95 % positive" in lines[4] and "%" in lines[4].split("positive")[1]
    health = Health(terminals=6, online=5, configured=6, pressed=10, stored=9, queued=1, rejected=0).line()
    assert health == "fleet: 5/6 online · 6/6 configured · pressed 10 · stored 9 · queued 1 · rejected 0"


def test_no_votes_yet_says_so() -> None:
    assert "no votes yet" in render_results({}, {}, 1.0)
