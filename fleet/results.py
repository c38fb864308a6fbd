"""Turn the store's daily answer counts into scores per unit, question and scale, and print them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from protocol.scales import SCALES

from .records import AnswerCounts, DailyCounts
from .scores import Score, score

#: A figure's identity: never two scales in one figure.
Key = tuple[str | None, str, str]  # (unit, question, scale)


def scores_by_unit(daily: Iterable[DailyCounts | AnswerCounts]) -> dict[Key, Score]:
    """Sum the days (or periods) and score each (unit, question, scale) on its own."""
    totals: dict[Key, list[int]] = {}
    for d in daily:
        key = (d.unit, d.question, d.scale)
        total = totals.get(key)
        if total is None:
            totals[key] = list(d.counts)
        else:
            for a, c in enumerate(d.counts):
                total[a] += c
    return {key: score(counts, SCALES[key[2]]) for key, counts in totals.items()}


def scores_by_day(daily: Iterable[DailyCounts]) -> dict[tuple[str | None, str, str, date], Score]:
    """Score each (unit, question, scale, day), for trends."""
    return {(d.unit, d.question, d.scale, d.day): score(d.counts, SCALES[d.scale]) for d in daily}


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f}"


def format_table(scores: dict[Key, Score]) -> str:
    """A plain-text table of scores, one row per (unit, question, scale), for logs and the CLI."""
    header = f"{'unit':<20} {'question':<16} {'scale':<7} {'n':>7} {'figure':<14} {'value':>6}  95% interval"
    lines = [header, "-" * len(header)]
    for (unit, question, scale_name), s in sorted(scores.items(), key=lambda kv: (kv[0][0] or "", *kv[0][1:])):
        interval = "" if s.low is None else f"{_fmt(s.low)}–{_fmt(s.high)}"
        flag = "  (small sample)" if s.small_sample and s.n else ""
        label = "NPS" if s.kind == "nps" else "positive %"
        lines.append(
            f"{unit or '(unassigned)':<20} {question:<16} {scale_name:<7} {s.n:>7} {label:<14} {_fmt(s.value):>6}"
            f"  {interval}{flag}"
        )
    return "\n".join(lines)
