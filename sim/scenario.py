"""What a simulation run is made of: units with patients by hour of day, and a seeded fault schedule.

Everything here is data and pure functions of a seed, so a run can be repeated and tested
without a broker. Times are simulated seconds from the start of the run; hours of day are local
time in Finland, where the units are.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .patients import DEMO_UNITS, UnitProfile

TZ = ZoneInfo("Europe/Helsinki")
HOUR_S = 3600.0

#: Patients per hour at one terminal through a weekday: closed at night, a morning and an afternoon peak.
RECEPTION_HOURS = (0, 0, 0, 0, 0, 0, 0, 6, 24, 30, 28, 20, 22, 26, 24, 16, 8, 3, 0, 0, 0, 0, 0, 0)
CLINIC_HOURS = (0, 0, 0, 0, 0, 0, 0, 0, 10, 14, 14, 8, 10, 14, 12, 6, 0, 0, 0, 0, 0, 0, 0, 0)

FAULT_KINDS = ("netcut", "broker", "ingest", "powercut", "kill", "clock", "dupes", "reimage")
#: Kinds aimed at one in-process terminal (``kill`` aims at a terminal process instead).
TERMINAL_KINDS = frozenset({"netcut", "powercut", "clock", "reimage"})
#: What each fault kind does, for --help and the report.
FAULT_HELP = {
    "netcut": "a terminal's network is cut (connections dropped, new ones refused) for minutes or hours",
    "broker": "the MQTT broker is stopped and started again on the same port",
    "ingest": "the fleet ingest process is SIGKILLed and started again",
    "powercut": "an in-process terminal loses power: socket dropped without goodbye, restarted from its database",
    "kill": "a terminal process is SIGKILLed mid-write and restarted from its database",
    "clock": "a terminal reboots with a wrong, unsynchronised wall clock that syncs later",
    "dupes": "vote batches are captured and delivered again later, duplicated and out of order",
    "reimage": "a terminal is taken out of service, its card re-imaged: a fresh database (new store id, seqs"
    " from 1) under the same device id",
}
#: Simulated seconds each kind lasts: (shortest, longest).
FAULT_DURATION_S: dict[str, tuple[float, float]] = {
    "netcut": (5 * 60, 2 * HOUR_S),
    "broker": (60, 10 * 60),
    "ingest": (60, 10 * 60),
    "powercut": (2 * 60, 30 * 60),
    "kill": (2 * 60, 20 * 60),
    "clock": (10 * 60, HOUR_S),
    "dupes": (10 * 60, 30 * 60),
    "reimage": (5 * 60, 30 * 60),  # out of service: its backlog drains, then the card is swapped
}


@dataclass(frozen=True)
class UnitLoad:
    """A unit's patients: how they answer (profile) and how many come per hour of day to each terminal."""

    profile: UnitProfile
    per_hour: tuple[float, ...] = RECEPTION_HOURS

    def __post_init__(self) -> None:
        if len(self.per_hour) != 24 or any(r < 0 for r in self.per_hour):
            raise ValueError("per_hour needs 24 rates, none negative")

    def rate_at(self, wall_ms: int) -> float:
        """Patients per hour at the local hour of ``wall_ms``."""
        return self.per_hour[datetime.fromtimestamp(wall_ms / 1000, TZ).hour]


def next_arrival_ms(load: UnitLoad, after_ms: int, rng: random.Random, scale: float = 1.0) -> int | None:
    """Wall ms of the next patient after ``after_ms``: Poisson within each hour at that hour's rate.

    Memorylessness makes this exact for piecewise constant rates: draw a gap at the current
    hour's rate; if it crosses into the next hour, start again from the hour boundary.
    Returns None when the unit never opens.
    """
    if scale <= 0 or not any(load.per_hour):
        return None
    t = after_ms
    for _ in range(24 * 8):  # a week of hour boundaries at most
        rate = load.rate_at(t) * scale
        hour_end = (t // 3_600_000 + 1) * 3_600_000  # Finland's offsets are whole hours
        if rate > 0:
            at = t + int(rng.expovariate(rate / 3_600_000))
            if at < hour_end:
                return at
        t = hour_end
    return None


def default_units() -> list[UnitLoad]:
    """The demo's three units, a busy reception and two calmer clinics."""
    hours = (RECEPTION_HOURS, CLINIC_HOURS, CLINIC_HOURS)
    return [UnitLoad(profile, per_hour) for profile, per_hour in zip(DEMO_UNITS, hours, strict=True)]


def units_from_json(data: Sequence[Mapping[str, Any]]) -> list[UnitLoad]:
    """Units from a scenario file: unit, name, optional question, weights per scale, per_hour (24 rates)."""
    out = []
    for item in data:
        profile = UnitProfile(
            unit=str(item["unit"]),
            name=str(item.get("name", item["unit"])),
            question=item.get("question"),
            weights={k: tuple(float(w) for w in v) for k, v in item.get("weights", {}).items()},
            misuse_interval_s=float(item.get("misuse_interval_s", 1.0)),
        )
        profile.config_doc()  # a bad question fails here, before anything starts
        out.append(UnitLoad(profile, tuple(float(r) for r in item.get("per_hour", RECEPTION_HOURS))))
    if not out:
        raise ValueError("a scenario needs at least one unit")
    return out


@dataclass(frozen=True, order=True)
class Fault:
    """One fault: what, when (simulated seconds from the start), for how long and against which target."""

    at_s: float
    kind: str
    duration_s: float
    target: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
        if self.at_s < 0 or self.duration_s < 0:
            raise ValueError("fault times must not be negative")


def random_faults(
    kinds: Sequence[str],
    each: int,
    run_s: float,
    seed: int,
    terminals: Sequence[str],
    processes: Sequence[str] = (),
) -> list[Fault]:
    """``each`` faults of every kind at seeded random times, all ending by 80 % of the run.

    Terminal faults pick seeded targets, each a different terminal while there are enough (``kill``
    among the terminal processes, which it restarts); durations are
    drawn from the kind's range but shrunk to fit the run.
    """
    rng = random.Random(f"faults-{seed}")
    out: list[Fault] = []
    used: set[str] = set()  # one terminal fault per terminal where there are enough, so none is skipped
    for kind in kinds:
        pool = processes if kind == "kill" else terminals if kind in TERMINAL_KINDS else [None]
        if not pool:
            continue
        for _ in range(each):
            lo, hi = FAULT_DURATION_S[kind]
            duration = min(rng.uniform(lo, hi), 0.25 * run_s)
            at = rng.uniform(0.1 * run_s, max(0.1 * run_s, 0.8 * run_s - duration))
            free = [t for t in pool if t not in used] or list(pool)
            target = rng.choice(free)
            if target is not None and kind != "kill":
                used.add(target)
            out.append(Fault(round(at, 1), kind, round(duration, 1), target))
    return sorted(out)


def faults_from_json(data: Sequence[Mapping[str, Any]]) -> list[Fault]:
    """An explicit schedule from a scenario file: at_s, kind, duration_s, optional target."""
    return sorted(Fault(float(f["at_s"]), str(f["kind"]), float(f.get("duration_s", 0)), f.get("target")) for f in data)


@dataclass
class Scenario:
    """Units and an optional fixed fault schedule, as read from a scenario JSON file."""

    units: list[UnitLoad] = field(default_factory=default_units)
    faults: list[Fault] | None = None


def load_scenario(path: Path) -> Scenario:
    """Read ``{"units": [...], "faults": [...]}``; either key may be left out."""
    data = json.loads(path.read_text(encoding="utf-8"))
    units = units_from_json(data["units"]) if "units" in data else default_units()
    faults = faults_from_json(data["faults"]) if "faults" in data else None
    return Scenario(units, faults)
