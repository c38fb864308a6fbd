"""Opening hours as short lines a person reads at a glance: "ma–pe 8.00–16.00", "Avataan ti 8.00".

Weekday abbreviations are shipped for fi, sv and en. The protocol's interface texts have no
weekday names, so a configured language without them (a Sámi one) borrows the first offered
language that has them, usually Finnish, rather than inventing words.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from protocol.configdoc import WEEKDAYS

DAY_NAMES: dict[str, tuple[str, ...]] = {
    "fi": ("ma", "ti", "ke", "to", "pe", "la", "su"),
    "sv": ("må", "ti", "on", "to", "fr", "lö", "sö"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}


def day_names(lang: str, fallbacks: Sequence[str] = ()) -> tuple[str, ...]:
    """Weekday abbreviations for ``lang``, else for the first fallback that has them, else English."""
    for tag in (lang, *fallbacks):
        if tag in DAY_NAMES:
            return DAY_NAMES[tag]
    return DAY_NAMES["en"]


def clock_time(hhmm: str, lang: str) -> str:
    """ "08:00" as Finns and Finland-Swedes write it ("8.00"), or as English does ("08:00")."""
    if lang == "en":
        return hhmm
    h, m = hhmm.split(":")
    return f"{int(h)}.{m}"


def weekly_lines(hours: dict[str, Any], lang: str, fallbacks: Sequence[str] = ()) -> list[str]:
    """One line per run of consecutive days with the same hours; closed days are left out."""
    names = day_names(lang, fallbacks)
    weekly = hours["weekly"]
    spans = [tuple(tuple(pair) for pair in weekly.get(day, [])) for day in WEEKDAYS]
    lines = []
    i = 0
    while i < 7:
        j = i
        while j + 1 < 7 and spans[j + 1] == spans[i]:
            j += 1
        if spans[i]:
            days = names[i] if i == j else f"{names[i]}–{names[j]}"
            times = ", ".join(f"{clock_time(a, lang)}–{clock_time(b, lang)}" for a, b in spans[i])
            lines.append(f"{days} {times}")
        i = j + 1
    return lines


def moment(when: datetime, lang: str, fallbacks: Sequence[str] = ()) -> str:
    """A local moment as weekday, date and time: "ti 14.3. 8.00" ("Tue 14 Mar 08:00" in English)."""
    name = day_names(lang, fallbacks)[when.weekday()]
    if name in DAY_NAMES["en"]:
        return f"{name} {when.day} {when.strftime('%b')} {clock_time(when.strftime('%H:%M'), 'en')}"
    return f"{name} {when.day}.{when.month}. {clock_time(when.strftime('%H:%M'), lang)}"
