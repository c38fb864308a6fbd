"""Answer scales as plain data: the range of answers and which answers count as positive.

Aggregation and terminals read the same table, so a scale means the same on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scale:
    """One answer scale: answers are the integers ``0 .. size - 1``, 0 the most negative."""

    name: str
    size: int
    #: Answers that count as positive for the positive-share index (empty for NPS).
    positive: frozenset[int]
    #: NPS scales only: answers that count as promoters and detractors.
    promoters: frozenset[int] = frozenset()
    detractors: frozenset[int] = frozenset()

    @property
    def is_nps(self) -> bool:
        """True for the 0–10 recommendation scale, which is scored as NPS."""
        return bool(self.promoters)


SCALES: dict[str, Scale] = {
    # 0–10 "would you recommend": promoters 9–10, passives 7–8, detractors 0–6.
    "nps11": Scale(
        "nps11",
        11,
        positive=frozenset({9, 10}),
        promoters=frozenset({9, 10}),
        detractors=frozenset(range(0, 7)),
    ),
    # Four faces with no middle option (HappyOrNot kind): the two positive faces.
    "faces4": Scale("faces4", 4, positive=frozenset({2, 3})),
    # Five faces: the top two.
    "faces5": Scale("faces5", 5, positive=frozenset({3, 4})),
    # Five-point agree–disagree statement (national model): agree and strongly agree.
    "agree5": Scale("agree5", 5, positive=frozenset({3, 4})),
}


def scale(name: str) -> Scale:
    """Return the scale called ``name``; raises KeyError for an unknown one."""
    return SCALES[name]
