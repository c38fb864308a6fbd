"""Opening hours from a configuration's ``hours`` (SPEC 10.1): is the unit open now, and when does it open next.

The meaning of the hours is part of the contract, so it lives here: the terminal flags presses
outside them and the fleet alerts on a terminal that is offline inside them, by the same rules.
Pure functions over the document and an aware datetime (zones come from the tz database).

Hours are local wall-clock times in the configuration's IANA time zone, so a unit that opens at
08:00 opens at 08:00 on both sides of a daylight-saving change. On the spring-forward day a wall
time that does not exist counts from the moment the clocks jump past it; on the fall-back day a
repeated wall time is open both times round. ``24:00`` closes at the end of the day. No hours
(absent or null) means always open; a missing weekday means closed all day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .configdoc import WEEKDAYS

#: How far ahead ``next_opening`` looks: every closed date (at most 366) plus a week.
_HORIZON_DAYS = 366 + 8


class HoursError(ValueError):
    """Opening hours that cannot be evaluated here (a time zone this tz database does not know)."""


def zone(hours: dict[str, Any]) -> ZoneInfo:
    """The hours' time zone, or HoursError naming it when this terminal's tz database lacks it."""
    name = hours["tz"]
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise HoursError(f"hours.tz {name!r} is not a time zone this machine knows") from exc


def check_hours(hours: dict[str, Any] | None) -> None:
    """Raise HoursError if ``hours`` names an unknown zone; the protocol only checks the name's shape."""
    if hours is not None:
        zone(hours)


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _intervals(hours: dict[str, Any], day: date) -> list[tuple[int, int]]:
    """The day's [open, close) intervals in minutes after local midnight; none on a closed date."""
    if day.isoformat() in hours.get("closed_dates", ()):
        return []
    return [(_minutes(a), _minutes(b)) for a, b in hours["weekly"].get(WEEKDAYS[day.weekday()], [])]


def _aware(when: datetime) -> None:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("opening hours need an aware datetime; a naive one has no time zone to compare in")


def is_open(hours: dict[str, Any] | None, when: datetime) -> bool:
    """Whether the unit is open at the aware moment ``when``; no hours means always open."""
    _aware(when)
    if hours is None:
        return True
    local = when.astimezone(zone(hours))
    # Seconds count, so 07:59:59 is before an 08:00 opening.
    seconds = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
    return any(start * 60 <= seconds < end * 60 for start, end in _intervals(hours, local.date()))


def _local_start(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """The first real instant whose local wall time on ``day`` reaches ``minutes`` (DST gaps included)."""
    if minutes >= 24 * 60:  # not an opening time, but keep the helper total
        return _local_start(day + timedelta(days=1), minutes - 24 * 60, tz)
    wall = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=tz)  # fold=0: the earlier of two
    early = wall.replace(fold=1).astimezone(UTC)
    late = wall.astimezone(UTC)
    if early >= late or late.astimezone(tz).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return late.astimezone(tz)
    # The wall time falls in a spring-forward gap: it opens when the clocks jump, found by bisection
    # over whole seconds between the two readings of the missing wall time (pre- and post-jump offset).
    after = late.astimezone(tz).utcoffset()
    lo, hi = int(early.timestamp()), int(late.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, tz)


def next_opening(hours: dict[str, Any] | None, when: datetime) -> datetime | None:
    """The first moment at or after ``when`` that the unit is open (``when`` if open now), in the hours' zone.

    None when it never opens within a year and a week (no weekly hours, or every such day closed).
    With no hours it is always open, so ``when`` itself.
    """
    _aware(when)
    if hours is None:
        return when
    tz = zone(hours)
    if is_open(hours, when):
        return when.astimezone(tz)
    today = when.astimezone(tz).date()
    for offset in range(_HORIZON_DAYS):
        day = today + timedelta(days=offset)
        for start, _end in _intervals(hours, day):
            candidate = _local_start(day, start, tz)
            if candidate >= when:
                return candidate
    return None
