"""A past for the demo's units: weeks of answers before today, so the results pages have a trend.

Each unit's patients answer as its profile says (sim.patients), on weekdays during a health centre's
opening hours (8–16 in the county's zone), more in the morning than after lunch, a little better as
the weeks go by. The votes go in through the store as a terminal's batches would, under each placed
terminal's id with a series of their own (``store`` "history"), so they can never collide with what
the live terminals send, and they carry the unit they were pressed for.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fleet.content import default_config_doc
from fleet.store import DEFAULT_TZ, FleetStore
from protocol import Vote, VoteBatch
from protocol.limits import MAX_BATCH_VOTES
from protocol.scales import SCALES

from .patients import UnitProfile, answer

#: The vote series the history is written under (each terminal's live votes have their own).
SERIES = "history"
#: Relative number of patients in each opening hour, 8–9 to 15–16.
HOUR_WEIGHTS = (0.8, 1.2, 1.3, 1.1, 0.7, 1.0, 1.0, 0.8)
#: Answers per opening day at a unit, before the weekday's own variation.
PER_DAY = 30


@dataclass(frozen=True)
class History:
    """What was written: votes per unit and the days covered."""

    votes: dict[str, int]
    first: date
    last: date

    @property
    def total(self) -> int:
        """Every vote written."""
        return sum(self.votes.values())


def fill_history(
    store: FleetStore,
    placed: Mapping[str, str],
    units: Sequence[UnitProfile],
    days: int,
    today: date | None = None,
    seed: int = 1,
) -> History:
    """Write ``days`` days of answers, ending yesterday, for every unit that has a terminal in ``placed``
    (device → unit); one terminal per unit carries its history."""
    zone = ZoneInfo(DEFAULT_TZ)
    today = today or datetime.now(zone).date()
    first = today - timedelta(days=days)
    rng = random.Random(seed)
    device_of: dict[str, str] = {}
    for device, unit in sorted(placed.items()):
        device_of.setdefault(unit, device)
    written: dict[str, int] = {}
    for profile in units:
        carrier = device_of.get(profile.unit)
        if carrier is None:
            continue
        question = profile.question or default_config_doc(None)["question"]
        scale = question["scale"]
        votes: list[Vote] = []
        for d in range(days):
            day = first + timedelta(days=d)
            if day.weekday() >= 5:
                continue
            better = d / max(1, days)  # answers improve a little over the period
            weights = dict(profile.weights)
            if scale in weights:
                w = list(weights[scale])
                w[-1] *= 1 + 0.4 * better
                weights[scale] = w
            shifted = UnitProfile(profile.unit, profile.name, profile.question, weights, profile.misuse_interval_s)
            for _ in range(max(0, round(rng.gauss(PER_DAY, 6)))):
                hour = 8 + rng.choices(range(len(HOUR_WEIGHTS)), weights=HOUR_WEIGHTS)[0]
                at = datetime(day.year, day.month, day.day, hour, rng.randrange(60), rng.randrange(60), tzinfo=zone)
                wall = int(at.timestamp() * 1000)
                seq = len(votes) + 1
                votes.append(
                    Vote(
                        seq,
                        question["id"],
                        scale,
                        answer(shifted, scale, rng),
                        rng.choice(("fi", "fi", "fi", "sv", "en")),
                        wall,
                        seq * 60_000,
                        f"history-{day.isoformat()}",
                        True,
                        profile.unit,
                        1,
                    )
                )
        votes.sort(key=lambda v: v.wall)
        votes = [v._replace(seq=i + 1) for i, v in enumerate(votes)]
        batches = [
            VoteBatch(carrier, n + 1, tuple(votes[i : i + MAX_BATCH_VOTES]), store=SERIES)
            for n, i in enumerate(range(0, len(votes), MAX_BATCH_VOTES))
        ]
        if batches:
            store.add_vote_batches(batches, int(datetime.now(zone).timestamp() * 1000))
        written[profile.unit] = len(votes)
    return History(written, first, today - timedelta(days=1))


#: Open-feedback answers per opening day at a unit (a few of the terminal's answerers scan the code).
FEEDBACK_PER_DAY = 3


def fill_feedback(
    store: FleetStore,
    units: Sequence[UnitProfile],
    days: int,
    today: date | None = None,
    seed: int = 1,
) -> int:
    """Write ``days`` days of open-feedback answers with texts, ending yesterday, so the units'
    open-feedback pages have themes over time. The texts are the built-in method's shipped training
    texts (never the evaluation texts), scored as their tone suggests, with their own labels (method
    ``example``, shown as such): no model is trained while the demo starts."""
    from fleet.db.feedback import FeedbackRecords
    from fleet.db.store import SqlFleetStore
    from fleet.themes.examples import shipped

    assert isinstance(store, SqlFleetStore)
    zone = ZoneInfo(DEFAULT_TZ)
    today = today or datetime.now(zone).date()
    first = today - timedelta(days=days)
    rng = random.Random(seed)
    texts = shipped("train")
    records = FeedbackRecords(store)
    written = 0
    with store.writing():  # one transaction for the lot: quick on PostgreSQL too
        written = _write_feedback(records, units, first, days, rng, texts)
    return written


def _write_feedback(
    records: Any, units: Sequence[UnitProfile], first: date, days: int, rng: random.Random, texts: Sequence[Any]
) -> int:
    from fleet.db.feedback import EXAMPLE, Answer

    zone = ZoneInfo(DEFAULT_TZ)
    written = 0
    for profile in units:
        question = profile.question or default_config_doc(None)["question"]
        scale = question["scale"]
        top = SCALES[scale].size - 1
        for d in range(days):
            day = first + timedelta(days=d)
            if day.weekday() >= 5:
                continue
            for _ in range(rng.randrange(FEEDBACK_PER_DAY * 2)):
                example = rng.choice(texts)
                low, high = {"positive": (0.8, 1.0), "mixed": (0.5, 0.8), "negative": (0.0, 0.6)}[example.tone]
                score = round(top * rng.uniform(low, high))
                at = datetime(day.year, day.month, day.day, 8 + rng.randrange(9), rng.randrange(60), tzinfo=zone)
                text_id = records.add(
                    Answer(
                        profile.unit,
                        None,
                        example.lang,
                        question["id"],
                        scale,
                        score,
                        rng.choice(("client", "client", "relative", "other")),
                        example.text,
                    ),
                    int(at.timestamp() * 1000),
                )
                records.set_themes(text_id, example.themes, example.tone, EXAMPLE)
                written += 1
    return written
