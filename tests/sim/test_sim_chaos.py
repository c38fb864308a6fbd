"""A short seeded chaos run: terminals on the real device code, real mosquitto and fleet ingest, every fault kind.

Nothing pressed may be lost or stored twice, and every unit's score as pressed must equal the
fleet's, through network cuts, a broker restart, a SIGKILLed ingest, power cuts, a SIGKILLed
terminal process, a wrong clock and replayed, reordered batches.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sim.fleetsim import FleetSim, SimConfig
from sim.scenario import FAULT_KINDS, TZ


def test_a_short_chaos_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    config = SimConfig(
        devices=30,
        processes=1,
        seed=3,
        hours=2.0,
        speed=120.0,
        data=tmp_path,
        fault_kinds=FAULT_KINDS,
        hardware_every=5,
        start=datetime(2025, 3, 3, 8, 0, tzinfo=TZ),
        drain_timeout_s=60,
    )
    report = FleetSim(config).run()
    text = report.format()
    assert report.lost == 0 and report.duplicated == 0, text
    assert report.unexpected == 0 and report.mismatched == 0, text
    assert report.drained, text
    assert report.faults == {kind: 1 for kind in FAULT_KINDS}, text
    assert report.pressed > 300, text
    assert report.units and all(u.equal for u in report.units), text
    assert {"touch", "buttons", "serial"} <= set(report.inputs), text
    assert report.exit_status() == 0, text
