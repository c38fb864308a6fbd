"""Opening hours: local wall times in the unit's zone, closed dates, 24:00, and daylight-saving days in Helsinki."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from device.hours import HoursError, check_hours, is_open, next_opening

# 2024 in Europe/Helsinki: clocks jump 03:00 -> 04:00 on Sun 31 March, fall back 04:00 -> 03:00 on Sun 27 October.
HOURS: dict[str, Any] = {
    "tz": "Europe/Helsinki",
    "weekly": {
        "mon": [["08:00", "16:00"]],
        "tue": [["08:00", "16:00"]],
        "wed": [["08:00", "16:00"]],
        "thu": [["08:00", "16:00"]],
        "fri": [["08:00", "16:00"]],
        # no "sat": closed all day
        "sun": [["03:30", "05:00"], ["20:00", "24:00"]],
    },
    "closed_dates": ["2024-12-24"],
}


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


@pytest.mark.parametrize(
    ("when", "open_"),
    [
        ("2024-03-25T07:59:59+02:00", False),  # Monday, a second before opening
        ("2024-03-25T08:00:00+02:00", True),
        ("2024-03-25T06:00:00+00:00", True),  # the same instant in UTC
        ("2024-03-25T15:59:59+02:00", True),
        ("2024-03-25T16:00:00+02:00", False),  # close is exclusive
        ("2024-06-03T05:00:00+00:00", True),  # summer: 08:00 EEST is 05:00 UTC
        ("2024-06-03T04:59:59+00:00", False),
        ("2024-03-30T12:00:00+02:00", False),  # Saturday has no hours
        ("2024-12-24T10:00:00+02:00", False),  # a closed date on a Tuesday
        ("2024-12-25T10:00:00+02:00", True),  # the day after is an ordinary Wednesday
        ("2024-03-24T23:59:59+02:00", True),  # an interval ending 24:00 runs to midnight
        ("2024-03-25T00:00:00+02:00", False),  # ...and not into Monday
        ("2024-03-31T02:59:59+02:00", False),  # spring forward: just before the jump
        ("2024-03-31T04:00:00+03:00", True),  # wall 04:00, past the missing 03:30 opening
        ("2024-03-31T04:59:59+03:00", True),
        ("2024-03-31T05:00:00+03:00", False),
        ("2024-10-27T02:59:59+03:00", False),  # fall back
        ("2024-10-27T03:30:00+03:00", True),  # the first 03:30
        ("2024-10-27T03:59:59+03:00", True),
        ("2024-10-27T03:30:00+02:00", True),  # 03:00-04:00 comes round again: the second 03:30 is open too
        ("2024-10-27T05:00:00+02:00", False),
    ],
)
def test_is_open_follows_local_wall_time(when: str, open_: bool) -> None:
    assert is_open(HOURS, at(when)) is open_


@pytest.mark.parametrize(
    ("when", "opens"),
    [
        ("2024-03-25T07:00:00+02:00", "2024-03-25T08:00:00+02:00"),
        ("2024-03-25T10:00:00+02:00", "2024-03-25T10:00:00+02:00"),  # open now: now
        ("2024-03-25T16:00:00+02:00", "2024-03-26T08:00:00+02:00"),
        ("2024-03-24T06:00:00+02:00", "2024-03-24T20:00:00+02:00"),  # the day's second interval
        ("2024-03-29T17:00:00+02:00", "2024-03-31T04:00:00+03:00"),  # 03:30 does not exist: opens at the jump
        ("2024-10-25T17:00:00+03:00", "2024-10-27T03:30:00+03:00"),  # the first of two 03:30s
        ("2024-12-23T17:00:00+02:00", "2024-12-25T08:00:00+02:00"),  # skips the closed date
        ("2024-03-29T15:00:00+00:00", "2024-03-31T04:00:00+03:00"),  # asked in UTC
    ],
)
def test_next_opening_is_the_first_open_moment(when: str, opens: str) -> None:
    got = next_opening(HOURS, at(when))
    # Timestamps, since PEP 495 makes a repeated wall time unequal to every other zone's datetime.
    assert got is not None and got.timestamp() == at(opens).timestamp()
    assert got.utcoffset() == at(opens).utcoffset()  # given in the unit's zone
    assert is_open(HOURS, got)


def test_no_hours_means_always_open() -> None:
    when = at("2024-03-30T03:00:00+02:00")
    assert is_open(None, when)
    assert next_opening(None, when) == when


def test_next_opening_is_none_when_the_unit_never_opens() -> None:
    assert next_opening({"tz": "Europe/Helsinki", "weekly": {}}, at("2024-03-25T08:00:00+02:00")) is None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        is_open(HOURS, datetime(2024, 3, 25, 8))


def test_unknown_time_zone_is_a_clear_error() -> None:
    hours = dict(HOURS, tz="Mars/Olympus_Mons")
    with pytest.raises(HoursError, match="Mars/Olympus_Mons"):
        check_hours(hours)
    with pytest.raises(HoursError):
        is_open(hours, at("2024-03-25T08:00:00+02:00"))


def test_known_zones_and_no_hours_pass_the_check() -> None:
    check_hours(HOURS)
    check_hours(None)
    check_hours(dict(HOURS, tz="UTC"))
