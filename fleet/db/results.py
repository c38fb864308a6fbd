"""Answer counts for the results pages, read from the rollups by the filters a person chose.

Every read is a grouped sum over rollup rows (never the votes), narrowed to one question and scale
(scales are never mixed), a set of units, a range of local days and the person's switches: roles,
and whether misuse presses and out-of-hours presses count (left out by default). Rows kept under a
terminal (votes that named no unit) count for the unit the terminal is placed in now, as everywhere
else in the fleet.

Sums come back as answer counts (``counts[a]``) per group; the figures and their suppression are
made from them by fleet.figures, the same for a page, a CSV file and the API.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from protocol.scales import SCALES

from .store import SqlFleetStore, spans_of
from .tables import daily_rollup, hour_rollup, monthly_rollup, terminals

_EMPTY = sa.literal_column("''", sa.Text)
_T = terminals.c


@dataclass(frozen=True)
class Query:
    """What a results view shows: one question on one scale, over units and days, with switches."""

    units: tuple[str, ...]
    question: str
    scale: str
    first: date
    last: date
    roles: frozenset[str] | None = None  # None: every role, and votes with none
    misuse: bool = False  # count presses flagged as misuse
    after_hours: bool = False  # count presses outside the unit's opening hours
    channels: frozenset[str] | None = None  # None: answers from every channel

    @property
    def size(self) -> int:
        """How many answers the scale has."""
        return SCALES[self.scale].size


Counts = list[int]


def _in_units(r: Any, units: Collection[str]) -> Any:
    """Rows of ``units``: their own (device "", so the key's prefix narrows the read) and those kept
    under terminals placed in them."""
    wanted = sorted(units)
    return sa.or_(sa.and_(r.unit.in_(wanted), r.device == _EMPTY), sa.and_(r.unit == _EMPTY, _T.unit.in_(wanted)))


def _unit_of(table: sa.Table) -> Any:
    r = table.c
    return sa.case((r.unit == _EMPTY, _T.unit), else_=r.unit)


def _select(table: sa.Table, q: Query, *group: Any, lo: date | None, hi: date | None) -> sa.Select[Any]:
    """Sums of ``table``'s counts grouped by ``group`` (then its answer or grade), filtered by ``q``
    over the days (or months) [lo, hi)."""
    r = table.c
    when = r.month if table is hour_rollup else r.day
    last = r.grade if table is hour_rollup else r.answer
    query = (
        sa.select(*group, last, sa.func.sum(r["count"]))
        .select_from(table.outerjoin(terminals, sa.and_(r.unit == _EMPTY, _T.device == r.device)))
        .where(
            r.question == q.question,
            r.scale == q.scale,
            # A unit's own rows have device "" (rollup.py): saying so lets the key's prefix (unit, device,
            # question, scale, day) narrow the read to the period instead of the unit's whole history.
            _in_units(r, q.units),
        )
        .group_by(*group, last)
    )
    if lo is not None:
        query = query.where(when >= lo)
    if hi is not None:
        query = query.where(when < hi)
    if not q.misuse:
        query = query.where(r.misuse == sa.false())
    if not q.after_hours:
        query = query.where(r.after_hours == sa.false())
    if q.roles is not None:
        query = query.where(r.role.in_(sorted(q.roles)))
    if q.channels is not None:
        query = query.where(r.channel.in_(sorted(q.channels)))
    return query


@dataclass
class Cube:
    """Answer counts of one query by day (or month), role and reason, summed over its units in one
    read; a page takes its total, trend, roles and reasons from it instead of asking once for each.
    Small whatever the number of units: the database adds the units up."""

    size: int
    rows: list[tuple[date, str, str, int, int]]  # day or month, role, reason, answer, count

    def by(self, key: Callable[[tuple[date, str, str, int, int]], Any]) -> dict[Any, Counts]:
        """Answer counts grouped by ``key(row)``."""
        out: dict[Any, Counts] = {}
        size = self.size
        for row in self.rows:
            k = key(row)
            counts = out.get(k)
            if counts is None:
                counts = out[k] = [0] * size
            counts[row[3]] += row[4]
        return out

    def total(self) -> Counts:
        return self.by(lambda r: 0).get(0, [0] * self.size)


class Results:
    """The results' reads on one fleet store."""

    def cube(self, q: Query, by_day: bool) -> Cube:
        """The total, trend, roles and reasons of ``q`` in one read: by day when ``by_day`` (a trend by
        day or week), else whole months from the monthly rollup with the ragged days at either end
        (each row's date is then its month's first day)."""
        spans = [(daily_rollup, q.first, q.last + timedelta(days=1))] if by_day else self._period(q)
        rows: list[tuple[date, str, str, int, int]] = []
        if not q.units:
            return Cube(q.size, rows)
        with self.store.reading() as conn:
            for table, lo, hi in spans:
                r = table.c
                for day, role, reason, answer, n in conn.execute(
                    _select(table, q, r.day, r.role, r.reason, lo=lo, hi=hi)
                ):
                    if 0 <= answer < q.size:
                        d = _as_date(day)
                        rows.append((d if by_day else d.replace(day=1), role, reason, int(answer), int(n)))
        return Cube(q.size, rows)

    def __init__(self, store: SqlFleetStore) -> None:
        self.store = store

    def _sum(
        self, q: Query, tables: Iterable[tuple[sa.Table, date | None, date | None]], *group: Any
    ) -> dict[Any, Counts]:
        out: dict[Any, Counts] = {}
        if not q.units:
            return out
        with self.store.reading() as conn:
            for table, lo, hi in tables:
                for *key, answer, n in conn.execute(_select(table, q, *group, lo=lo, hi=hi)):
                    k = key[0] if len(key) == 1 else tuple(key)
                    counts = out.get(k)
                    if counts is None:
                        counts = out[k] = [0] * q.size
                    if 0 <= answer < q.size:
                        counts[answer] += int(n)
        return out

    def _period(self, q: Query) -> list[tuple[sa.Table, date | None, date | None]]:
        """The period as whole months from the monthly rollup and ragged days from the daily one."""
        return [(monthly_rollup if m else daily_rollup, lo, hi) for m, lo, hi in spans_of(q.first, q.last)]

    def _over_period(
        self, q: Query, group: Callable[[sa.Table], Any], key: Callable[[Any], Any] = lambda k: k
    ) -> dict[Any, Counts]:
        """Answer counts over the period grouped by ``group(table)``, its months and ragged days added
        up under ``key(group value)``."""
        out: dict[Any, Counts] = {}
        for table, lo, hi in self._period(q):
            for k, counts in self._sum(q, [(table, lo, hi)], group(table)).items():
                have = out.setdefault(key(k), [0] * q.size)
                for a, c in enumerate(counts):
                    have[a] += c
        return out

    def total(self, q: Query) -> Counts:
        """Answer counts over the whole selection."""
        return self._over_period(q, lambda t: sa.literal_column("1")).get(1, [0] * q.size)

    def by_unit(self, q: Query) -> dict[str, Counts]:
        """Answer counts per unit (the comparison)."""
        return self._over_period(q, _unit_of)

    def by_day(self, q: Query) -> dict[date, Counts]:
        """Answer counts per local day (the trend by day, or by week summed from days)."""
        found = self._sum(q, [(daily_rollup, q.first, q.last + timedelta(days=1))], daily_rollup.c.day)
        return {_as_date(d): c for d, c in found.items()}

    def by_unit_and_day(self, q: Query) -> dict[tuple[str, date], Counts]:
        """Answer counts per unit and local day (the API's daily counts), from the daily rollup."""
        found = self._sum(
            q, [(daily_rollup, q.first, q.last + timedelta(days=1))], _unit_of(daily_rollup), daily_rollup.c.day
        )
        return {(unit, _as_date(day)): c for (unit, day), c in found.items()}

    def by_month(self, q: Query) -> dict[date, Counts]:
        """Answer counts per month (its first day), the ragged months' days summed into them."""
        return self._over_period(q, lambda t: t.c.day, lambda d: _as_date(d).replace(day=1))

    def by_unit_and_month(self, q: Query) -> dict[tuple[str, date], Counts]:
        """Answer counts per unit and whole month, from the monthly rollup: ``q.first`` must be a
        month's first day and ``q.last`` a month's last (the public trend shows complete months)."""
        r = monthly_rollup.c
        found = self._sum(q, [(monthly_rollup, q.first, q.last + timedelta(days=1))], _unit_of(monthly_rollup), r.day)
        return {(unit, _as_date(day)): c for (unit, day), c in found.items()}

    def by_reason(self, q: Query) -> dict[str, Counts]:
        """Answer counts per follow-up reason ("" when none was given)."""
        return self._over_period(q, lambda t: t.c.reason)

    def heat(self, q: Query) -> dict[tuple[int, int], tuple[int, int, int]]:
        """(answers, positive side, negative side) per (weekday 0 = Monday, local hour), over the whole
        months that the period touches (the hour rollup keeps months)."""
        r = hour_rollup.c
        first, last = q.first.replace(day=1), (q.last.replace(day=1) + timedelta(days=32)).replace(day=1)
        out: dict[tuple[int, int], list[int]] = {}
        if not q.units:
            return {}
        with self.store.reading() as conn:
            for weekday, hour, grade, n in conn.execute(_select(hour_rollup, q, r.weekday, r.hour, lo=first, hi=last)):
                cell = out.setdefault((int(weekday), int(hour)), [0, 0, 0])
                cell[0] += int(n)
                if grade > 0:
                    cell[1] += int(n)
                elif grade < 0:
                    cell[2] += int(n)
        return {k: (v[0], v[1], v[2]) for k, v in out.items()}

    def channels(self, units: Collection[str], first: date, last: date) -> list[str]:
        """The channels answers came through in ``units`` over the days (the filter offers these)."""
        if not units:
            return []
        r = monthly_rollup.c
        query = (
            sa.select(r.channel)
            .distinct()
            .select_from(monthly_rollup.outerjoin(terminals, sa.and_(r.unit == _EMPTY, _T.device == r.device)))
            .where(
                _in_units(r, units),
                r.day >= first.replace(day=1),
                r.day <= last,
            )
        )
        with self.store.reading() as conn:
            return sorted(str(c) for (c,) in conn.execute(query))

    def questions(self, units: Collection[str], first: date, last: date) -> list[tuple[str, str, int]]:
        """(question, scale, answers) asked in ``units`` in the months the days touch, most answered
        first: the question picker's list and order. Read from the monthly rollup alone (without a
        question in the filter, the daily one's key cannot narrow the read to the period), so a
        question asked only outside the days but inside their months is listed too, and its figures
        then say there are no answers."""
        if not units:
            return []
        r = monthly_rollup.c
        query = (
            sa.select(r.question, r.scale, sa.func.sum(r["count"]))
            .select_from(monthly_rollup.outerjoin(terminals, sa.and_(r.unit == _EMPTY, _T.device == r.device)))
            .where(_in_units(r, units), r.day >= first.replace(day=1), r.day <= last)
            .group_by(r.question, r.scale)
        )
        with self.store.reading() as conn:
            found = [(q, s, int(n)) for q, s, n in conn.execute(query) if s in SCALES]
        return sorted(found, key=lambda t: (-t[2], t[0], t[1]))


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
