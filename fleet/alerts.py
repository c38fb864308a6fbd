"""What the fleet alerts people to, as plain rules over what the store knows; fleet.db.alerts keeps
the alerts (raised once per occurrence, acknowledged, resolved) and fleet.alertsend delivers them.

Each rule returns the *findings* that hold now. A finding's key (kind, subject) names one
occurrence: while it keeps being found, its alert stays open and nothing new is raised; when it is
no longer found, the alert is resolved. Rules are given the keys already open, so that an
occurrence can last past the moment that raised it (a terminal that went offline during opening
hours stays alerted after closing time, until it is back).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from protocol.configdoc import WEEKDAYS
from protocol.hours import HoursError, is_open
from protocol.scales import SCALES

from .org import UNIT, OrgNode, Tree
from .records import DailyCounts, TerminalStatus
from .scores import score

OFFLINE = "terminal_offline"
SPIKE = "negative_spike"
UNDER_TARGET = "under_target"
SILENT = "no_answers"
REJECTED = "config_rejected"
KINDS = (OFFLINE, SPIKE, UNDER_TARGET, SILENT, REJECTED)

#: A spike must be this unlikely under the unit's own baseline (one-sided, exact binomial).
SPIKE_P = 0.001
#: …and have at least this many negative answers (the staff minimum: nobody is recognisable).
SPIKE_MIN_NEGATIVE = 5
#: Days of baseline before today for the spike rule, and the period of the target rule.
BASELINE_DAYS = 28
TARGET_DAYS = 30
#: Days of answers each round reads: enough for the baseline, the target period and a unit's last
#: opening days (a unit open less often than that is taken as silent).
LOOKBACK_DAYS = 62
#: The target rule needs this many answers: fewer leave the interval too wide to say anything.
TARGET_MIN_N = 30

Key = tuple[str, str]


@dataclass(frozen=True)
class Finding:
    """One condition that holds now: its kind, what it is about, the org node whose people see it,
    and the figures behind it (shown with the alert and sent with it)."""

    kind: str
    subject: str  # "terminal:<device>" or "unit:<code>"
    node_id: int | None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return (self.kind, self.subject)


def negative_answers(scale: str) -> frozenset[int]:
    """The answers that count as negative: NPS detractors (0–6), the lower half of a face or agree scale."""
    sc = SCALES[scale]
    return sc.detractors if sc.is_nps else frozenset(range(sc.size // 2))


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X ≥ k) for X ~ Binomial(n, p), summed exactly in log space (n is a day's answers)."""
    if k <= 0:
        return 1.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    logs = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p) + (n - i) * math.log1p(-p)
        for i in range(k, n + 1)
    ]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


def _open_now(node: OrgNode, tz: str, now: datetime) -> bool:
    """Whether the unit is open at ``now`` by its opening hours (none set: always open)."""
    hours = None if node.hours is None else {**node.hours, "tz": node.hours.get("tz", tz)}
    try:
        return is_open(hours, now)
    except HoursError:
        return True  # a zone this machine lacks: alerting too much beats never alerting


def offline(
    terminals: Iterable[TerminalStatus],
    tree: Tree,
    zones: Mapping[str, str],
    now: datetime,
    grace: timedelta,
    already: set[Key],
) -> list[Finding]:
    """Placed terminals offline for longer than ``grace`` while their unit is open (or since an alert
    raised while it was)."""
    now_ms = int(now.timestamp() * 1000)
    out = []
    for t in terminals:
        unit = tree.by_code.get(t.unit or "")
        if unit is None or unit.archived or t.online is not False:
            continue
        since = t.last_seen or 0
        key = (OFFLINE, f"terminal:{t.device}")
        late = now_ms - since >= grace.total_seconds() * 1000
        if key in already or (late and _open_now(unit, zones.get(unit.code, "Europe/Helsinki"), now)):
            out.append(Finding(OFFLINE, key[1], unit.id, {"device": t.device, "unit": unit.code, "since_ms": since}))
    return out


def rejected(terminals: Iterable[TerminalStatus], tree: Tree) -> list[Finding]:
    """Terminals whose latest configuration report rejects the version they should run."""
    out = []
    for t in terminals:
        if t.report_status != "rejected" or t.desired_version is None or t.applied_version >= t.desired_version:
            continue
        unit = tree.by_code.get(t.unit or "")
        out.append(
            Finding(
                REJECTED,
                f"terminal:{t.device}",
                None if unit is None else unit.id,
                {"device": t.device, "version": t.report_version, "reason": t.report_reason or ""},
            )
        )
    return out


def _sum(days: Iterable[DailyCounts], size: int) -> list[int]:
    total = [0] * size
    for d in days:
        for a, c in enumerate(d.counts):
            total[a] += c
    return total


def spikes(daily: Sequence[DailyCounts], tree: Tree, today: date) -> list[Finding]:
    """Units whose share of negative answers today is far above their own last 28 days."""
    by_key: dict[tuple[str, str, str], list[DailyCounts]] = {}
    for d in daily:
        if d.unit is not None and d.scale in SCALES:
            by_key.setdefault((d.unit, d.question, d.scale), []).append(d)
    out = []
    for (unit_code, question, scale), days in sorted(by_key.items()):
        unit = tree.by_code.get(unit_code)
        if unit is None or unit.archived:
            continue
        size, negative = SCALES[scale].size, negative_answers(scale)
        now = _sum((d for d in days if d.day == today), size)
        base = _sum((d for d in days if today - timedelta(days=BASELINE_DAYS) <= d.day < today), size)
        k, n = sum(now[a] for a in negative), sum(now)
        base_k, base_n = sum(base[a] for a in negative), sum(base)
        if k < SPIKE_MIN_NEGATIVE or base_n == 0:
            continue
        p0 = (base_k + 1) / (base_n + 2)  # smoothed: a baseline with no negatives is not certainty
        tail = binomial_tail(k, n, p0)
        if tail < SPIKE_P:
            detail = {"question": question, "scale": scale, "negative": k, "answers": n, "baseline": round(p0, 4)}
            out.append(Finding(SPIKE, f"unit:{unit_code}:{question}", unit.id, {**detail, "p": tail}))
    return out


def under_target(daily: Sequence[DailyCounts], tree: Tree, first: date, last: date) -> list[Finding]:
    """Units with a target whose figure over [first, last] is below it beyond doubt: the whole 95 %
    interval is under the target."""
    totals: dict[tuple[str, str, str], list[DailyCounts]] = {}
    for d in daily:
        if d.unit is not None and first <= d.day <= last and d.scale in SCALES:
            totals.setdefault((d.unit, d.question, d.scale), []).append(d)
    out = []
    for (unit_code, question, scale), days in sorted(totals.items()):
        unit = tree.by_code.get(unit_code)
        if unit is None or unit.archived or unit.target is None:
            continue
        s = score(_sum(days, SCALES[scale].size), SCALES[scale])
        if s.n >= TARGET_MIN_N and s.high is not None and s.high < unit.target:
            detail = {"question": question, "scale": scale, "value": s.value, "high": s.high, "n": s.n}
            out.append(
                Finding(UNDER_TARGET, f"unit:{unit_code}:{question}", unit.id, {**detail, "target": unit.target})
            )
    return out


def opening_days(node: OrgNode, before: date, count: int) -> list[date]:
    """The last ``count`` days before ``before`` on which the unit opens at all (by its weekly hours
    and closed dates; no hours: every day), newest first; at most a year back."""
    out: list[date] = []
    day = before - timedelta(days=1)
    for _ in range(366):
        if len(out) == count:
            break
        hours = node.hours
        if hours is None or (
            hours.get("weekly", {}).get(WEEKDAYS[day.weekday()])
            and day.isoformat() not in hours.get("closed_dates", ())
        ):
            out.append(day)
        day -= timedelta(days=1)
    return out


def silent(daily: Sequence[DailyCounts], tree: Tree, placed: set[str], today: date, days: int) -> list[Finding]:
    """Units with terminals that had no answers at all on their last ``days`` opening days (nor today)."""
    answered: dict[str, set[date]] = {}
    for d in daily:
        if d.unit is not None and any(d.counts):
            answered.setdefault(d.unit, set()).add(d.day)
    out = []
    for code in sorted(placed):
        unit = tree.by_code.get(code)
        if unit is None or unit.kind != UNIT or unit.archived:
            continue
        recent = opening_days(unit, today, days)
        seen = answered.get(code, set())
        if len(recent) == days and today not in seen and not seen.intersection(recent):
            out.append(Finding(SILENT, f"unit:{code}", unit.id, {"days": days, "since": recent[-1].isoformat()}))
    return out
