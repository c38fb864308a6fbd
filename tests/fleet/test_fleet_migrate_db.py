"""`hymy fleet migrate-db`: a SQLite fleet moved into another database shows the same figures, and a
second run adds nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.__main__ import main as fleet_main
from fleet.content import default_config_doc
from fleet.db.store import SqlFleetStore

from .test_fleet_rollup import RECEIVED, mixed_run


def everything(store: SqlFleetStore, devices: list[str]) -> dict[str, object]:
    """What a user can see of a fleet, through the store."""
    return {
        "scores": store.answer_counts(include_misuse=True),
        "days": store.daily_counts(),
        "votes": {d: store.stored_votes(d) for d in devices},
        "terminals": store.terminals(),
        "zones": store.unit_zones(),
        "configs": {d: store.get_config(d) for d in devices},
        "rejections": store.rejection_counts(),
        "recent": store.recent_rejections(),
        "rollup": store.rollup(),
        "months": store.rollup(monthly=True),
    }


def test_a_fleet_moved_to_another_database_shows_the_same_figures_and_moving_it_again_adds_nothing(
    tmp_path: Path, fleet_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = str(tmp_path / "old-fleet.db")
    with SqlFleetStore(source) as old:
        devices = mixed_run(old, seed=3)
        old.set_config("term-1", 2, default_config_doc("unit-a"))
        for i in range(3):
            old.count_rejection("bad_json", "term-2", f"not JSON #{i}", RECEIVED + i)
        before = everything(old, devices)
    assert fleet_main(["migrate-db", "--from", source, "--to", fleet_url]) == 0
    printed = capsys.readouterr().out
    assert "both databases show the same figures" in printed and "votes:" in printed
    with SqlFleetStore(fleet_url) as new:
        assert everything(new, devices) == before
        votes = new.vote_count()
    assert fleet_main(["migrate-db", "--from", source, "--to", fleet_url]) == 0  # again: nothing new
    assert "copied: 0 rows added" in capsys.readouterr().out
    with SqlFleetStore(fleet_url) as new:
        assert everything(new, devices) == before and new.vote_count() == votes
        new.count_rejection("bad_json", "term-2", "after the move", RECEIVED + 10)  # ids carry on after the copied ones
        assert new.recent_rejections(1)[0].detail == "after the move"


def test_moving_a_database_onto_itself_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "fleet.db")
    assert fleet_main(["migrate-db", "--from", db, "--to", f"sqlite:///{db}"]) == 1
    assert "the same database" in capsys.readouterr().err
