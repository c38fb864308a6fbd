"""Scores from answer counts: NPS with an adjusted-Wald interval, positive share with Wilson's.

Pure functions over counts indexed by answer (``counts[a]`` votes answered ``a``), so the same
figures come out whatever store or web page asks. One figure never mixes scales: the caller
keys results by (unit, question, scale) and passes one scale's counts at a time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from protocol.scales import Scale

#: z for a two-sided 95 % interval.
Z95 = 1.959963984540054
#: Below this many answers a figure is shown with a warning: one vote moves it too much.
SMALL_SAMPLE = 30
#: Adjusted-Wald pseudo-answers added before the NPS interval (Rocks 2016; Sauro & Lewis 2021):
#: ¾ promoter and ¾ detractor in 3 answers, so the other 1½ are passives.
NPS_ADD_PROMOTERS = NPS_ADD_DETRACTORS = 0.75
NPS_ADD_ANSWERS = 3


@dataclass(frozen=True, slots=True)
class NpsScore:
    """Net Promoter Score (−100…100) of one (unit, question, nps scale), with its 95 % interval."""

    n: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None  # None when n == 0: no answers, no figure
    low: float | None
    high: float | None
    small_sample: bool

    @property
    def kind(self) -> str:
        """Which figure this is, for tables that show both kinds."""
        return "nps"

    @property
    def value(self) -> float | None:
        """The headline figure."""
        return self.nps


@dataclass(frozen=True, slots=True)
class ShareScore:
    """Share of positive answers (percent) of one (unit, question, face or agree scale), Wilson 95 %."""

    n: int
    positive: int
    share: float | None  # percent; None when n == 0
    low: float | None
    high: float | None
    small_sample: bool

    @property
    def kind(self) -> str:
        """Which figure this is, for tables that show both kinds."""
        return "positive_share"

    @property
    def value(self) -> float | None:
        """The headline figure."""
        return self.share


Score = NpsScore | ShareScore


def _check(counts: Sequence[int], sc: Scale) -> int:
    if len(counts) != sc.size:
        raise ValueError(f"{sc.name} needs {sc.size} counts, got {len(counts)}")
    if any(c < 0 for c in counts):
        raise ValueError(f"counts must not be negative: {list(counts)}")
    return sum(counts)


def _clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def nps(counts: Sequence[int], sc: Scale) -> NpsScore:
    """NPS = 100 · (promoters − detractors) / n, with a 95 % adjusted-Wald interval.

    The interval first adds three pseudo-answers, ¾ promoter, ¾ detractor and 1½ passive, then takes
    the normal interval of the difference of two proportions: n' = n + 3, p' = (promoters + ¾) / n',
    d' = (detractors + ¾) / n', 100 · (p' − d' ± 1.96 · sqrt((p' + d' − (p' − d')²) / n')), clipped
    to −100…100. Rocks (2016, The American Statistician) and Sauro & Lewis (MeasuringU, 2021) found it
    the best of the usual NPS intervals. The plain (Wald) interval on the +1/0/−1 mean shrinks to a
    point when everyone answers alike (30 promoters of 30 gave 100…100: "certain") and near the
    NPS 75–90 of Finnish health-care units covers the true score well under 95 % of the time; the
    adjusted one does neither (exact coverage in the tests). The pseudo-answers pull its centre a
    little towards 0, so with a single answer it leaves out the headline (one promoter: −48.5…98.5).
    """
    if not sc.is_nps:
        raise ValueError(f"{sc.name} is not an NPS scale")
    n = _check(counts, sc)
    promoters = sum(counts[a] for a in sc.promoters)
    detractors = sum(counts[a] for a in sc.detractors)
    passives = n - promoters - detractors
    if n == 0:
        return NpsScore(0, 0, 0, 0, None, None, None, True)
    n_adj = n + NPS_ADD_ANSWERS
    p = (promoters + NPS_ADD_PROMOTERS) / n_adj
    d = (detractors + NPS_ADD_DETRACTORS) / n_adj
    centre = p - d
    # No max(0, …) needed: the 1½ passives keep p + d < 1, so p + d − (p − d)² ≥ (p + d)(1 − p − d) > 0.
    se = math.sqrt((p + d - centre * centre) / n_adj)
    return NpsScore(
        n,
        promoters,
        passives,
        detractors,
        100.0 * (promoters - detractors) / n,
        _clip(100.0 * (centre - Z95 * se), -100.0, 100.0),
        _clip(100.0 * (centre + Z95 * se), -100.0, 100.0),
        n < SMALL_SAMPLE,
    )


def wilson(positive: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion, as fractions; stays inside 0…1 even at 0 % or 100 %."""
    if n <= 0:
        raise ValueError("a proportion needs n > 0")
    p = positive / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # At 0 % and 100 % the bound is exactly 0 or 1; floating point would give 0.9999999999999999.
    low = 0.0 if positive == 0 else max(0.0, centre - half)
    high = 1.0 if positive == n else min(1.0, centre + half)
    return low, high


def positive_share(counts: Sequence[int], sc: Scale) -> ShareScore:
    """Percent of answers in the scale's positive set (two positive faces of four, top two of five)."""
    n = _check(counts, sc)
    positive = sum(counts[a] for a in sc.positive)
    if n == 0:
        return ShareScore(0, 0, None, None, None, True)
    low, high = wilson(positive, n)
    return ShareScore(n, positive, 100.0 * positive / n, 100.0 * low, 100.0 * high, n < SMALL_SAMPLE)


def score(counts: Sequence[int], sc: Scale) -> Score:
    """The figure a scale is reported by: NPS for the 0–10 scale, positive share for the others."""
    return nps(counts, sc) if sc.is_nps else positive_share(counts, sc)
