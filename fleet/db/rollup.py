"""The daily rollup: votes counted per unit, question, scale, local day and answer, kept with the votes.

Every figure the fleet shows is a sum over days, so the rollup is all a figure reads: its size grows
with units × days × answers, not with votes. It is kept in the transaction that changes votes: new
votes are added, and a time correction moves the votes it corrects from their old day to the new one.
Work is gathered as *facts* (a vote's key with its time as a quarter-hour bucket) and folded into
local days only at the end of the transaction, once each unit's zone is read: every zone's UTC offset
is a multiple of 15 minutes, so a quarter hour never straddles a local midnight (nor a local hour: the
hour rollup, the heat map's, is folded from the same facts).

Writes are applied in key order, so concurrent ingest workers on PostgreSQL take row locks in one
order and never deadlock on the rollup. Writers read zones under a shared lock (the store's
``ZONES_LOCK``): changing a zone waits for transactions that used the old one, then rebuilds the
unit's days from its votes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from protocol.scales import SCALES

from ..records import UNCERTAIN
from ..store import DEFAULT_TZ
from .engine import upsert
from .prepared import Prepared
from .tables import HOURS_KEY, ROLLUP_KEY, daily_rollup, hour_rollup, monthly_rollup, terminals, units, votes

#: The quarter hour, in ms: the finest grain a fact keeps of a vote's time.
BUCKET_MS = 15 * 60 * 1000
#: A fact: (unit or "", device if no unit else "", question, scale, bucket, answer, role, reason,
#: misuse, after_hours, uncertain, channel). A key is the same with the local day in place of the bucket.
Fact = tuple[str, str, str, str, int, int, str, str, bool, bool, bool, str]
Key = tuple[str, str, str, str, date, int, str, str, bool, bool, bool, str]
#: An hour key: (unit, device, question, scale, month, weekday, hour, grade, role, misuse, after_hours,
#: channel).
HourKey = tuple[str, str, str, str, date, int, int, int, str, bool, bool, str]
#: The channel of the votes terminals send (the only one ingest stores; SPEC has no channel field).
TERMINAL = "terminal"

_C, _U, _T = votes.c, units.c, terminals.c
_KEY_COLUMNS = ROLLUP_KEY
# Literal constants, not binds: PostgreSQL matches a grouped expression to the selected one bind for bind.
_EMPTY = sa.literal_column("''", sa.Text)
FACT_COLUMNS = (
    sa.func.coalesce(_C.unit, _EMPTY),
    sa.case((_C.unit.is_(None), _C.device), else_=_EMPTY),
    _C.question,
    _C.scale,
    _C.best // sa.literal_column(str(BUCKET_MS), sa.BigInteger),
    _C.answer,
    sa.func.coalesce(_C.role, _EMPTY),
    sa.func.coalesce(_C.reason, _EMPTY),
    _C.misuse,
    sa.func.coalesce(_C.flags.like(sa.literal_column("'%after_hours%'", sa.Text)), sa.false()),
    _C.time_status == sa.literal_column(f"'{UNCERTAIN}'", sa.Text),
    _C.channel,
)


def fact_query(*where: Any) -> sa.Select[Any]:
    """Votes matching ``where`` grouped into facts, each with its count."""
    return sa.select(*FACT_COLUMNS, sa.func.count()).where(*where).group_by(*FACT_COLUMNS)


def grade(scale: str, answer: int) -> int:
    """The side an answer counts on: +1 promoter (NPS) or positive (faces, agree), −1 detractor, else 0.
    Enough for every figure a heat-map cell shows (NPS = promoters − detractors; positive share)."""
    sc = SCALES.get(scale)
    if sc is None:
        return 0
    if sc.is_nps:
        return 1 if answer in sc.promoters else -1 if answer in sc.detractors else 0
    return 1 if answer in sc.positive else 0


def vote_fact(row: Sequence[Any]) -> Fact:
    """The fact of one vote row as the store inserts it (see store._VOTE_ROW for the order)."""
    unit = row[11]
    flags = row[13]
    return (
        unit or "",
        "" if unit else row[0],
        row[3],
        row[4],
        row[18] // BUCKET_MS,
        row[5],
        row[15] or "",
        row[16] or "",
        bool(row[14]),
        flags is not None and "after_hours" in flags,
        row[19] == UNCERTAIN,
        TERMINAL,  # rows the store inserts come from terminals' vote batches
    )


class Facts:
    """Changes to the rollup gathered during one transaction; :meth:`Rollup.apply` writes them."""

    def __init__(self) -> None:
        self.counts: dict[Fact, int] = {}

    def add(self, fact: Fact, n: int = 1) -> None:
        """Count ``n`` votes (negative: take them away) under ``fact``."""
        self.counts[fact] = self.counts.get(fact, 0) + n

    def add_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Count newly stored vote rows."""
        counts = self.counts
        for row in rows:
            fact = vote_fact(row)
            counts[fact] = counts.get(fact, 0) + 1


def _fact(values: Sequence[Any]) -> Fact:
    """A fact from a grouped row: booleans come back as 0/1 from SQLite."""
    u, d, q, s, b, a, role, reason, misuse, after_hours, uncertain, channel = values
    return (u, d, q, s, int(b), int(a), role, reason, bool(misuse), bool(after_hours), bool(uncertain), channel)


class Zones:
    """Which zone each unit's days are in, and where each unitless vote's terminal is placed."""

    def __init__(self, tz: dict[str, str], placement: dict[str, str | None]) -> None:
        self.tz = tz
        self.placement = placement
        self.missing: set[str] = set()  # units seen that have no row yet (given the default zone)
        self._zones: dict[str, ZoneInfo] = {}
        self._times: dict[tuple[str, int], datetime] = {}

    def zone_name(self, unit: str, device: str) -> str:
        """The zone of a fact's days: its unit's, or its terminal's unit's; the default for neither."""
        placed = unit or self.placement.get(device) or ""
        if not placed:
            return DEFAULT_TZ
        name = self.tz.get(placed)
        if name is None:
            self.missing.add(placed)
            return DEFAULT_TZ
        return name

    def local(self, unit: str, device: str, bucket: int) -> datetime:
        """The local time a quarter-hour bucket starts at in the fact's zone."""
        name = self.zone_name(unit, device)
        t = self._times.get((name, bucket))
        if t is None:
            zone = self._zones.get(name)
            if zone is None:
                zone = self._zones[name] = ZoneInfo(name)
            t = self._times[(name, bucket)] = datetime.fromtimestamp(bucket * BUCKET_MS / 1000, zone)
        return t

    def day(self, unit: str, device: str, bucket: int) -> date:
        """The local day a quarter-hour bucket falls on in the fact's zone."""
        return self.local(unit, device, bucket).date()

    def fold(self, facts: dict[Fact, int]) -> tuple[dict[Key, int], dict[HourKey, int]]:
        """Facts summed into day keys and into hour keys (both local)."""
        keyed: dict[Key, int] = {}
        hours: dict[HourKey, int] = {}
        for fact, n in facts.items():
            if n:
                self.add(fact, n, keyed, hours)
        return keyed, hours

    def add(self, fact: Fact, n: int, keyed: dict[Key, int], hours: dict[HourKey, int]) -> None:
        """Add ``n`` votes of ``fact`` to its day key and its hour key."""
        u, d, q, s, bucket, answer, role, reason, misuse, after_hours, uncertain, channel = fact
        t = self.local(u, d, bucket)
        day = t.date()
        key: Key = (u, d, q, s, day, answer, role, reason, misuse, after_hours, uncertain, channel)
        keyed[key] = keyed.get(key, 0) + n
        side = grade(s, answer)
        hour: HourKey = (u, d, q, s, day.replace(day=1), t.weekday(), t.hour, side, role, misuse, after_hours, channel)
        hours[hour] = hours.get(hour, 0) + n


def add_units(conn: Connection, unit_ids: Iterable[str]) -> None:
    """Give units the default zone if they have no row yet (in sorted order: no lock cycles)."""
    wanted = sorted(set(unit_ids))
    if wanted:
        stmt = upsert(conn, units).values([{"unit": u, "tz": DEFAULT_TZ} for u in wanted])
        conn.execute(stmt.on_conflict_do_nothing(index_elements=[_U.unit]))


class _Writes:
    """Adding counts to one rollup table and deleting the rows brought to zero."""

    def __init__(
        self, conn: Connection, dialect: Dialect, table: sa.Table, key: tuple[str, ...] = _KEY_COLUMNS
    ) -> None:
        cols = table.c
        self.key = key
        params: dict[str, Any] = {c: sa.bindparam(f"k_{c}") for c in key}
        stmt = upsert(conn, table).values(**params, count=sa.bindparam("k_count"))
        self.add = stmt.on_conflict_do_update(
            index_elements=[cols[c] for c in key], set_={"count": cols["count"] + stmt.excluded["count"]}
        )
        where = [cols[c] == sa.bindparam(f"k_{c}") for c in key]
        self.drop_empty = sa.delete(table).where(*where, cols["count"] == sa.literal_column("0"))
        self.prepared: tuple[Prepared, Prepared] | None = None
        if _positional(dialect):
            self.prepared = (Prepared(self.add, dialect), Prepared(self.drop_empty, dialect))
            names = [f"k_{c}" for c in key]
            if list(self.prepared[0].names) != [*names, "k_count"] or list(self.prepared[1].names) != names:
                raise TypeError(f"{table.name}: rollup statements compiled with parameters in another order")
        # The driver gets raw values: SQLite keeps dates as ISO text (SQLAlchemy's own format for Date).
        self._day: Callable[[date], Any] = date.isoformat if dialect.name == "sqlite" else (lambda d: d)
        self._at = 4  # the date column's place in the key (day or month), after unit, device, question, scale

    def write(self, conn: Connection, keyed: Mapping[tuple[Any, ...], int]) -> None:
        """Add counts to the rows (in key order: concurrent writers lock rows in one order)."""
        items = sorted((k, n) for k, n in keyed.items() if n)
        if not items:
            return
        emptied = [k for k, n in items if n < 0]
        if self.prepared is None:
            names = [f"k_{c}" for c in self.key]
            conn.execute(self.add, [{**dict(zip(names, k, strict=True)), "k_count": n} for k, n in items])
            if emptied:
                conn.execute(self.drop_empty, [dict(zip(names, k, strict=True)) for k in emptied])
            return
        add, drop = self.prepared
        day, at = self._day, self._at
        add.executemany(conn, [(*k[:at], day(k[at]), *k[at + 1 :], n) for k, n in items])
        if emptied:
            drop.executemany(conn, [(*k[:at], day(k[at]), *k[at + 1 :]) for k in emptied])


def _positional(dialect: Dialect) -> bool:
    """True on the store's own engines (positional parameters); Alembic's default engine is not."""
    return dialect.paramstyle in ("qmark", "format", "numeric")


def by_month(keyed: dict[Key, int]) -> dict[Key, int]:
    """Day keys summed into month keys (the month's first day in place of the day)."""
    months: dict[Key, int] = {}
    for k, n in keyed.items():
        key: Key = (*k[:4], k[4].replace(day=1), *k[5:])  # type: ignore[assignment]
        months[key] = months.get(key, 0) + n
    return months


class Rollup:
    """The rollups' writes on one engine: statements built once, and compiled to the driver's SQL on the
    store's own engines (positional parameters, as the ingest hot path runs them; see prepared.py)."""

    def __init__(self, conn: Connection, dialect: Dialect) -> None:
        self._days = _Writes(conn, dialect, daily_rollup)
        self._months = _Writes(conn, dialect, monthly_rollup)
        self._hours = _Writes(conn, dialect, hour_rollup, HOURS_KEY)
        # The hot path's reads, run per boot, per unit and per terminal: a Core SELECT … IN (…) costs
        # more to build than a drain takes to store. (A zone cannot change meanwhile: the store holds
        # the zones lock shared, see store.ZONES_LOCK.) Only the store's engines run them; a migration
        # on another engine only rebuilds.
        self._hot: tuple[Prepared, Prepared, Prepared] | None = None
        if _positional(dialect):
            self._hot = (
                Prepared(
                    fact_query(
                        _C.device == sa.bindparam("k_device"),
                        _C.boot == sa.bindparam("k_boot"),
                        _C.synced == sa.false(),
                    ),
                    dialect,
                ),
                Prepared(sa.select(_U.tz).where(_U.unit == sa.bindparam("k_unit")), dialect),
                Prepared(sa.select(_T.unit).where(_T.device == sa.bindparam("k_device")), dialect),
            )
        self._known_units: set[str] = set()

    def _hot_path(self) -> tuple[Prepared, Prepared, Prepared]:
        if self._hot is None:
            raise TypeError("the rollup's hot path needs an engine with positional parameters (the store's)")
        return self._hot

    def _zones(self, conn: Connection, unit_ids: set[str], devices: set[str]) -> Zones:
        """The zones of ``unit_ids`` and of the units ``devices`` are placed in."""
        _, zone_of, placed_in = self._hot_path()
        placement: dict[str, str | None] = {}
        for device in sorted(devices):
            row = placed_in.execute(conn, {"k_device": device}).fetchone()
            placement[device] = None if row is None else row[0]
        tz: dict[str, str] = {}
        for unit in sorted(unit_ids | {u for u in placement.values() if u}):
            row = zone_of.execute(conn, {"k_unit": unit}).fetchone()
            if row is not None:
                tz[unit] = row[0]
        return Zones(tz, placement)

    def add_boot(self, conn: Connection, facts: Facts, device: str, boot: str, sign: int) -> bool:
        """Count (``sign`` 1) or take away (−1) the unsynchronised votes of one boot (a correction);
        False when the boot has none (so there is nothing to correct)."""
        rows = self._hot_path()[0].execute(conn, {"k_device": device, "k_boot": boot}).fetchall()
        for *fact, n in rows:
            facts.add(_fact(fact), sign * int(n))
        return bool(rows)

    def apply(self, conn: Connection, facts: Facts) -> None:
        """Fold ``facts`` into days in each unit's zone and add them to the rollups."""
        counts = {f: n for f, n in facts.counts.items() if n}
        if not counts:
            return
        unit_ids = {f[0] for f in counts if f[0]}
        devices = {f[1] for f in counts if not f[0]}
        new_units = unit_ids - self._known_units
        if new_units:
            add_units(conn, new_units)
        zones = self._zones(conn, unit_ids, devices)
        if zones.missing:  # a placement unit seen for the first time
            add_units(conn, zones.missing)
        self._known_units |= unit_ids
        keyed, hours = zones.fold(counts)
        self.write(conn, keyed, hours)

    def write(self, conn: Connection, keyed: dict[Key, int], hours: dict[HourKey, int] | None) -> None:
        """Add day counts to the daily rollup, their sums to the monthly one and hour counts to the hour
        rollup (None: not that one); rows brought to zero go."""
        self._days.write(conn, keyed)
        self._months.write(conn, by_month(keyed))
        if hours is not None:
            self._hours.write(conn, hours)

    def rebuild(
        self, conn: Connection, *where: Any, scope: Callable[[sa.Table], Any] | None = None, hours: bool = True
    ) -> int:
        """Recompute the rollups from the votes matching ``where`` (all when none), after deleting the
        rows ``scope(table)`` selects in each (all when None). ``hours`` False leaves the hour rollup
        alone (a migration older than its table). Returns the daily rows written."""
        for table in (daily_rollup, monthly_rollup, *((hour_rollup,) if hours else ())):
            conn.execute(sa.delete(table).where(scope(table) if scope is not None else sa.true()))
        keyed, hour_keyed, missing = self.recount(conn, *where)
        if missing:
            add_units(conn, missing)
        self.write(conn, keyed, hour_keyed if hours else None)
        self._known_units |= missing
        return len(keyed)

    def recount(self, conn: Connection, *where: Any) -> tuple[dict[Key, int], dict[HourKey, int], set[str]]:
        """The daily and hour rollups of the votes matching ``where``, counted from the votes (nothing
        written), and the units seen that have no zone row yet.

        Zones and placements are read once; the votes are grouped into facts by the database and
        streamed, so memory holds the rollup's rows, not the votes.
        """
        tz = {unit: name for unit, name in conn.execute(sa.select(_U.unit, _U.tz))}
        placement = {device: unit for device, unit in conn.execute(sa.select(_T.device, _T.unit))}
        zones = Zones(tz, placement)
        keyed: dict[Key, int] = {}
        hours: dict[HourKey, int] = {}
        result = conn.execute(fact_query(*where).execution_options(stream_results=True, yield_per=50_000))
        for *values, n in result:
            zones.add(_fact(values), int(n), keyed, hours)
        self._known_units |= set(tz)
        return {k: n for k, n in keyed.items() if n}, {k: n for k, n in hours.items() if n}, zones.missing


def rollup_rows(conn: Connection, table: sa.Table = daily_rollup) -> dict[tuple[Any, ...], int]:
    """Every non-empty row of a rollup table by its key (booleans as bool), for checks and tests."""
    key = HOURS_KEY if table is hour_rollup else _KEY_COLUMNS
    flags = {i for i, c in enumerate(key) if c in ("misuse", "after_hours", "uncertain")}
    cols = [table.c[c] for c in key]
    rows = conn.execute(sa.select(*cols, table.c["count"]).where(table.c["count"] != 0))
    return {tuple(bool(v) if i in flags else v for i, v in enumerate(k)): int(n) for *k, n in rows}
