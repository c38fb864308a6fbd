"""Who presses the buttons: seeded patient arrivals and each unit's answer distribution.

The demo and the simulator share these, so a run is repeatable from its seed and units differ
the way real ones do (a calm dental clinic, a busy reception). Answers depend only on the unit
and the scale of the question the terminal shows, never on which terminal it is.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fleet.content import default_config_doc
from protocol import validate_config_doc
from protocol.scales import SCALES

#: A four-face question for the demo. No national source for a four-face wording was available,
#: so this text is written by the Hymy project for the demo only, and marked so in the data.
_FACES4_SOURCE = "Hymy demo text, not from a national source (THL or other); not reviewed by native speakers."
FACES4_QUESTION: dict[str, Any] = {
    "id": "hymy-demo-visit",
    "scale": "faces4",
    "text": {
        "fi": "Miten tyytyväinen olit tämänpäiväiseen käyntiisi?",
        "sv": "Hur nöjd var du med ditt besök i dag?",
        "en": "How satisfied were you with your visit today?",
    },
    "sources": {"fi": _FACES4_SOURCE, "sv": _FACES4_SOURCE, "en": _FACES4_SOURCE},
    "review": ["fi", "sv", "en"],
}


@dataclass(frozen=True)
class UnitProfile:
    """One unit of the demo: its id, display name, question and how its patients tend to answer."""

    unit: str  # an identifier, as stored with votes
    name: str  # what people call it, for display only
    question: dict[str, Any] | None = None  # None: the shipped national NPS question
    #: Relative weight of each answer, per scale name; a scale not listed is answered uniformly.
    weights: Mapping[str, Sequence[float]] = field(default_factory=dict)
    misuse_interval_s: float = 1.0

    def config_doc(self) -> dict[str, Any]:
        """The configuration the fleet gives this unit's terminals, valid by the protocol's rules."""
        doc = default_config_doc(self.unit)
        if self.question is not None:
            doc["question"] = copy.deepcopy(self.question)
        doc["misuse_interval_s"] = self.misuse_interval_s
        return validate_config_doc(doc)


DEMO_UNITS: tuple[UnitProfile, ...] = (
    UnitProfile(
        "kontiolahti-tk-vastaanotto",
        "Kontiolahti health centre — reception",
        weights={"nps11": (2, 1, 1, 2, 2, 4, 6, 10, 14, 22, 26)},
    ),
    UnitProfile(
        "joensuu-suunterveys",
        "Joensuu oral health clinic",
        weights={"nps11": (1, 0, 1, 1, 1, 2, 3, 6, 12, 30, 43)},
    ),
    UnitProfile(
        "lieksa-neuvola",
        "Lieksa child health clinic",
        question=FACES4_QUESTION,
        weights={"faces4": (6, 14, 40, 40)},
    ),
)


def answer(profile: UnitProfile | None, scale_name: str, rng: random.Random) -> int:
    """Draw one patient's answer on ``scale_name`` as the unit's patients tend to answer."""
    size = SCALES[scale_name].size
    weights = profile.weights.get(scale_name) if profile is not None else None
    if weights is None or len(weights) != size:
        return rng.randrange(size)
    return rng.choices(range(size), weights=weights)[0]


@dataclass(frozen=True)
class Arrivals:
    """When patients press: a Poisson stream of ``rate_per_min``, but never two within ``min_gap_s``.

    The minimum gap is the time a person needs at the terminal, so simulated presses are not
    flagged as misuse; the exponential part keeps the mean rate.
    """

    rate_per_min: float
    min_gap_s: float = 0.0

    def __post_init__(self) -> None:
        if self.rate_per_min <= 0:
            raise ValueError("rate_per_min must be positive")

    def gap_s(self, rng: random.Random) -> float:
        """Seconds until the next patient presses."""
        mean = 60.0 / self.rate_per_min
        floor = min(self.min_gap_s, mean)
        return floor + (rng.expovariate(1.0 / (mean - floor)) if mean > floor else 0.0)
