"""A short seeded chaos run: terminals on the real device code, real mosquitto and fleet ingest, every fault kind.

Nothing pressed may be lost or stored twice, and every unit's score as pressed must equal the
fleet's, through network cuts, a broker restart, a SIGKILLed ingest, power cuts, a SIGKILLed
terminal process, a wrong clock, replayed, reordered batches and a re-imaged card (a new database under the
same device id, its old one kept for the accounting).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sim.fleetsim import FleetSim, SimConfig
from sim.scenario import FAULT_KINDS, TZ
from tests.fleetdb import empty_tables


def test_a_short_chaos_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    config = SimConfig(
        devices=30,
        processes=1,
        seed=3,
        hours=2.0,
        speed=120.0,
        data=tmp_path,
        fault_kinds=FAULT_KINDS,
        secure=True,  # TLS, a login per terminal, the access rules: every fault on the secured path
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


def test_re_imaged_terminals_lose_and_duplicate_nothing_across_their_old_and_new_databases(tmp_path: Path) -> None:
    config = SimConfig(
        devices=4,
        processes=0,
        seed=5,
        hours=1.5,
        speed=120.0,
        data=tmp_path,
        fault_kinds=("reimage",),
        faults_each=2,
        rate_scale=4.0,
        hardware_every=0,
        start=datetime(2025, 3, 3, 8, 0, tzinfo=TZ),
        drain_timeout_s=60,
    )
    sim = FleetSim(config)
    report = sim.run()
    text = report.format()
    assert report.faults == {"reimage": 2}, text
    assert report.stores == 4 + 2 and "across 6 terminal databases" in text, text
    reimaged = [s for s in sim.slots if s.old_dbs]
    assert len(reimaged) == 2 and all(len(s.old_dbs) == 1 and s.old_dbs[0].exists() for s in reimaged)
    for slot in reimaged:  # both cards were pressed, so both series must be accounted for
        stores = {store for store, _seq in sim.truth.presses(slot.device)}
        assert len(stores) == 2 and "" not in stores, (slot.device, stores)
    assert report.lost == 0 and report.duplicated == 0, text
    assert report.unexpected == 0 and report.mismatched == 0, text
    assert report.drained and report.queued_at_end == 0, text
    assert report.units and all(u.equal for u in report.units), text
    assert report.exit_status() == 0, text


def test_a_chaos_run_on_postgresql_loses_and_duplicates_nothing(tmp_path: Path, postgres_url: str) -> None:
    """The simulator's ingest writes to PostgreSQL (``hymy sim --db postgresql://…``): same guarantees."""
    empty_tables(postgres_url)
    config = SimConfig(
        devices=12,
        processes=1,
        seed=4,
        hours=1.5,
        speed=120.0,
        data=tmp_path,
        fault_kinds=("ingest", "broker", "netcut", "clock", "dupes"),
        hardware_every=0,
        start=datetime(2025, 3, 3, 8, 0, tzinfo=TZ),
        drain_timeout_s=60,
        db=postgres_url,
    )
    report = FleetSim(config).run()
    text = report.format()
    assert report.lost == 0 and report.duplicated == 0 and report.unexpected == 0, text
    assert report.drained and report.pressed > 50, text
    assert report.units and all(u.equal for u in report.units), text
    assert not (tmp_path / "fleet.db").exists()  # the votes went to PostgreSQL
