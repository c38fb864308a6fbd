"""Counting presses by what identifies a *press*, independent of how the fleet keys its rows.

A terminal's database holds every press it made; each is (boot, monotonic reading, question,
answer): two presses of one boot can never share a monotonic millisecond and an answer by chance
in a test. Comparing these multisets between the terminals and the fleet finds a vote stored
twice under different keys (say, resent under a new store id), which a check by the fleet's own
primary key can never see.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from fleet.store import FleetStore

Press = tuple[str, int, str, int]  # (boot, mono, question, answer)


def pressed(*databases: Path) -> Counter[Press]:
    """Every press recorded in these terminal databases (a terminal's old cards included)."""
    found: Counter[Press] = Counter()
    for path in databases:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            found.update(conn.execute("SELECT boot, mono, question, answer FROM votes"))
        finally:
            conn.close()
    return found


def stored(fleet: FleetStore, device: str) -> Counter[Press]:
    """Every press the fleet holds for ``device``, whatever store or seq it was filed under."""
    return Counter((v.boot, v.mono, v.question, v.answer) for v in fleet.stored_votes(device))


def lost_and_duplicated(pressed: Counter[Press], stored: Counter[Press]) -> tuple[int, int]:
    """(presses the fleet lacks, extra copies the fleet holds) — both 0 when exactly once."""
    lost = sum((pressed - stored).values())
    duplicated = sum((stored - pressed).values())
    return lost, duplicated


def assert_exactly_once(fleet: FleetStore, terminals: Iterable[tuple[str, list[Path]]]) -> None:
    """Fail naming the device if any press is missing or counted twice at the fleet."""
    for device, databases in terminals:
        lost, duplicated = lost_and_duplicated(pressed(*databases), stored(fleet, device))
        assert (lost, duplicated) == (0, 0), f"{device}: {lost} presses lost, {duplicated} stored twice"
