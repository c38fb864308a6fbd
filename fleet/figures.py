"""The figures a results view shows, made from answer counts: scores with intervals, and cells hidden
below the minimum.

Anonymous toward staff too (DESIGN guarantee 7): a breakdown cell (a day, a week, an hour of the
week, a role, a reason, an answer of the distribution, a unit) with fewer answers than the minimum
shows neither its count nor its figure, only that it has fewer than the minimum. Pages, CSV files and
the API all take their cells from here, so no format can show what another hides. A cell with no
answers at all is shown as empty (0): nobody is recognisable in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from protocol.scales import SCALES

from .scores import Score, score

#: Staff views: a cell needs at least this many answers to show its figures (the issue's default).
STAFF_MINIMUM = 5
DAY, WEEK, MONTH = "day", "week", "month"
PERIODS = (DAY, WEEK, MONTH)


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell of a breakdown. ``hidden``: it has answers, but fewer than the minimum, so ``n`` and
    ``score`` are None. An empty cell has n 0 and no score."""

    key: Any
    n: int | None
    score: Score | None
    hidden: bool

    @property
    def value(self) -> float | None:
        """The cell's headline figure (NPS or positive share), None when hidden or empty."""
        return None if self.score is None else self.score.value


def cell(key: Any, counts: Sequence[int], scale: str, minimum: int) -> Cell:
    """The cell of ``counts`` (answer counts on ``scale``), hidden when 0 < n < ``minimum``."""
    n = sum(counts)
    if 0 < n < minimum:
        return Cell(key, None, None, True)
    return Cell(key, n, score(counts, SCALES[scale]) if n else None, False)


def count_cell(key: Any, n: int, minimum: int) -> Cell:
    """A cell that is only a count (an answer of the distribution)."""
    if 0 < n < minimum:
        return Cell(key, None, None, True)
    return Cell(key, n, None, False)


def sides_counts(scale: str, n: int, positive: int, negative: int) -> list[int]:
    """Answer counts with the same score as ``positive`` and ``negative`` answers of ``n`` (the hour
    rollup keeps sides, not answers): promoters as 10, detractors as 0, the rest as 7 (NPS); positive
    as the top answer and the rest as 0 (faces, agree)."""
    sc = SCALES[scale]
    counts = [0] * sc.size
    if sc.is_nps:
        counts[max(sc.promoters)] = positive
        counts[min(sc.detractors)] = negative
        counts[7] = n - positive - negative
    else:
        counts[sc.size - 1] = positive
        counts[0] = n - positive
    return counts


def period_start(day: date, period: str) -> date:
    """The first day of the day's period (the Monday of its ISO week, the first of its month)."""
    if period == WEEK:
        return day - timedelta(days=day.weekday())
    if period == MONTH:
        return day.replace(day=1)
    return day


def periods(first: date, last: date, period: str) -> list[date]:
    """The starts of every period that [first, last] touches, in order (empty ones too)."""
    out: list[date] = []
    at = period_start(first, period)
    while at <= last:
        out.append(at)
        if period == DAY:
            at += timedelta(days=1)
        elif period == WEEK:
            at += timedelta(days=7)
        else:
            at = (at + timedelta(days=32)).replace(day=1)
    return out


def trend(
    counts: Mapping[date, Sequence[int]], first: date, last: date, period: str, scale: str, minimum: int
) -> list[Cell]:
    """A cell per period from counts per day (or per month for ``MONTH``), empty periods included."""
    size = SCALES[scale].size
    summed: dict[date, list[int]] = {p: [0] * size for p in periods(first, last, period)}
    for day, c in counts.items():
        have = summed.get(period_start(day, period))
        if have is not None:
            for a, x in enumerate(c):
                have[a] += x
    return [cell(p, c, scale, minimum) for p, c in summed.items()]


def coarser(period: str, cells: Sequence[Cell]) -> str | None:
    """The next coarser period to offer when some cells are hidden (None: none hidden, or months)."""
    if not any(c.hidden for c in cells):
        return None
    return {DAY: WEEK, WEEK: MONTH}.get(period)


def distribution(counts: Sequence[int], minimum: int) -> list[Cell]:
    """A count cell per answer, 0 (the most negative) first."""
    return [count_cell(a, n, minimum) for a, n in enumerate(counts)]


def breakdown(counts: Mapping[Any, Sequence[int]], scale: str, minimum: int) -> list[Cell]:
    """A cell per key (role, reason, unit), most answered first; hidden cells last, in key order."""
    cells = [cell(k, c, scale, minimum) for k, c in counts.items() if sum(c)]
    return sorted(cells, key=lambda c: (c.hidden, -(c.n or 0), str(c.key)))


def ranked(counts: Mapping[Any, Sequence[int]], scale: str, minimum: int) -> list[Cell]:
    """A cell per unit ranked by its figure, best first; hidden and empty ones after, by key."""
    cells = [cell(k, c, scale, minimum) for k, c in counts.items() if sum(c)]
    return sorted(cells, key=lambda c: (c.value is None, -(c.value or 0.0), str(c.key)))


def heat(
    sides: Mapping[tuple[int, int], tuple[int, int, int]], scale: str, minimum: int
) -> dict[tuple[int, int], Cell]:
    """A cell per (weekday, hour) that has answers, from (n, positive, negative)."""
    return {k: cell(k, sides_counts(scale, n, pos, neg), scale, minimum) for k, (n, pos, neg) in sides.items() if n}


def hours_shown(cells: Mapping[tuple[int, int], Cell]) -> list[int]:
    """The hours from the first to the last that has answers on any day (a clinic's day, not 24)."""
    hours = [h for _, h in cells]
    return list(range(min(hours), max(hours) + 1)) if hours else []
