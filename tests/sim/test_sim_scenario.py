"""Patients by unit and hour of day and the fault schedule are repeatable from a seed and keep their rates."""

from __future__ import annotations

import random
from datetime import datetime

import pytest

from sim.scenario import (
    CLINIC_HOURS,
    FAULT_KINDS,
    TERMINAL_KINDS,
    TZ,
    Fault,
    UnitLoad,
    default_units,
    faults_from_json,
    next_arrival_ms,
    random_faults,
    units_from_json,
)
from sim.simclock import SimClock, TimeBase

MONDAY_0000 = int(datetime(2025, 3, 3, 0, 0, tzinfo=TZ).timestamp() * 1000)


def arrivals(load: UnitLoad, seed: int, hours: float) -> list[int]:
    rng = random.Random(seed)
    out: list[int] = []
    t = MONDAY_0000
    while (t := next_arrival_ms(load, t, rng) or 2**62) < MONDAY_0000 + hours * 3_600_000:
        out.append(t)
    return out


def test_the_same_seed_gives_the_same_patients() -> None:
    load = default_units()[0]
    assert arrivals(load, 7, 24) == arrivals(load, 7, 24)
    assert arrivals(load, 7, 24) != arrivals(load, 8, 24)


def test_patients_come_only_in_open_hours_at_each_hours_rate() -> None:
    load = UnitLoad(default_units()[1].profile, CLINIC_HOURS)
    times = arrivals(load, 1, 24 * 200)
    hours = [datetime.fromtimestamp(t / 1000, TZ).hour for t in times]
    assert set(hours) == {h for h, r in enumerate(CLINIC_HOURS) if r > 0}
    assert hours.count(9) / 200 == pytest.approx(CLINIC_HOURS[9], rel=0.1)
    assert hours.count(15) / 200 == pytest.approx(CLINIC_HOURS[15], rel=0.15)


def test_a_unit_that_never_opens_has_no_patients() -> None:
    assert next_arrival_ms(UnitLoad(default_units()[0].profile, (0,) * 24), MONDAY_0000, random.Random(1)) is None


def test_units_and_faults_from_a_scenario_file() -> None:
    units = units_from_json([{"unit": "u-1", "weights": {"nps11": [1] * 11}, "per_hour": [2] * 24}])
    assert units[0].profile.unit == "u-1" and units[0].rate_at(MONDAY_0000) == 2
    assert faults_from_json([{"at_s": 9, "kind": "broker", "duration_s": 60}]) == [Fault(9, "broker", 60)]
    with pytest.raises(ValueError):
        Fault(1, "meteor", 1)
    with pytest.raises(ValueError):
        UnitLoad(units[0].profile, (1,) * 23)


def test_the_fault_schedule_is_seeded_has_each_kind_and_ends_before_the_run() -> None:
    terminals, procs = [f"t-{i}" for i in range(10)], ["p-1"]
    one = random_faults(FAULT_KINDS, 2, 7200, 5, terminals, procs)
    assert one == random_faults(FAULT_KINDS, 2, 7200, 5, terminals, procs)
    assert one != random_faults(FAULT_KINDS, 2, 7200, 6, terminals, procs)
    assert sorted(f.kind for f in one) == sorted(FAULT_KINDS * 2)
    assert all(f.at_s + f.duration_s <= 0.8 * 7200 + 1 for f in one)
    assert {f.target for f in one if f.kind == "kill"} == {"p-1"}
    aimed = [f.target for f in one if f.kind in TERMINAL_KINDS]
    assert "reimage" in TERMINAL_KINDS and len(aimed) == 2 * len(TERMINAL_KINDS)
    assert all(t in terminals for t in aimed) and len(set(aimed)) == len(aimed)  # one fault per terminal


def test_sim_clock_runs_fast_reboots_and_syncs() -> None:
    real = [100.0]
    base = TimeBase(MONDAY_0000, speed=60, real=lambda: real[0])
    clock = SimClock(base, "t-1")
    real[0] += 1
    assert clock.wall_ms() == MONDAY_0000 + 60_000 and clock.mono_ms() == 60_000
    clock.reboot(synced=False, wrong_by_ms=-86_400_000)
    assert clock.boot_id() == "t-1-boot-2" and clock.mono_ms() == 0 and not clock.synced()
    assert clock.wall_ms() == MONDAY_0000 + 60_000 - 86_400_000
    clock.sync()
    assert clock.synced() and clock.wall_ms() == base.now_ms()
