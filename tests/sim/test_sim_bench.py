"""`hymy bench` runs end to end and writes every figure it promises (never a timing assertion)."""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Any

import pytest

from sim.bench import main, percentile


def test_percentile_takes_the_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7], 99) == 7


def test_quick_bench_measures_every_figure_beside_its_ceiling(tmp_path: Path, capsys: object) -> None:
    out = tmp_path / "bench.json"
    assert main(["--quick", "--rounds", "1", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    for key in ("ingest_100", "ingest_1"):
        assert results[key]["ours_votes_per_s"][0] > 0
        assert results[key]["bare_votes_per_s"][0] > 0
        assert results[key]["ratio_best"] > 0
    for key in ("press", "press_live"):
        assert results[key]["ours"]["p99_ms"] >= results[key]["ours"]["p50_ms"] > 0
        assert results[key]["bare"]["p99_ms"] > 0
    drain = results["drain"]
    assert drain["queued"] == drain["votes"] == drain["stored_on_fleet"]
    assert drain["drain_s"] >= drain["reconnect_s"] > 0
    fleet = drain["fleet_outage"]  # the broker stays up, the ingest is SIGKILLed and started again
    assert fleet["queued"] == fleet["votes"] == fleet["stored_on_fleet"] == drain["votes"]
    assert fleet["drain_s"] >= fleet["online_s"] > 0
    assert drain["ceiling"]["votes"] == drain["votes"] and drain["ceiling"]["bare_votes_per_s"] > 0
    assert_kiosk_figures(results["kiosk"])


def assert_kiosk_figures(kiosk: dict) -> None:
    """Every input's press-to-stored and thank-you frame beside its bare commit, and the RSS, are there."""
    for name in ("touch", "button", "serial"):
        for what in ("stored", "thanks", "bare"):
            assert kiosk[name][what]["p99_ms"] >= kiosk[name][what]["p50_ms"] > 0
            assert kiosk[name][what]["n"] == kiosk["n"]
        assert kiosk[name]["p99_ratio"] > 0
    assert kiosk["rss_mib"] > 0


def test_the_kiosk_part_gives_each_inputs_latency_beside_a_bare_commit(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "bench.json"
    assert main(["--quick", "--only", "kiosk", "--json", str(out)]) == 0
    assert_kiosk_figures(json.loads(out.read_text())["kiosk"])
    printed = capsys.readouterr().out
    assert "kiosk button -> stored" in printed and "kiosk peak RSS with pygame loaded" in printed


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_the_capacity_part_measures_each_process_beside_the_ingests_ceiling(
    tmp_path: Path, capsys: Any, engine: str, request: pytest.FixtureRequest
) -> None:
    out = tmp_path / "bench.json"
    args = ["--quick", "--only", "capacity", "--rounds", "1", "--json", str(out), "--cap-db", engine]
    if engine == "postgresql":
        args += ["--pg", request.getfixturevalue("postgres_url").rsplit("/", 1)[0]]
    assert main(args) == 0
    capacity = json.loads(out.read_text())["capacity"]
    assert capacity["engine"] == engine
    assert capacity["steps"] and capacity["carries"] >= 0
    for step in capacity["steps"]:
        assert step["load"]["votes_sent"] > 0
        assert step["load"]["ack_p99_s"] >= step["load"]["ack_p50_s"] > 0
        for name in ("ingest", "broker", "load"):
            assert step["processes"][name]["rss_mib"] > 0
            assert step["processes"][name]["cpu_percent"] is not None
        assert isinstance(step["carried"], bool)
    assert max(capacity["ceiling"]["ours_votes_per_s"]) > 0
    assert max(capacity["ceiling"]["bare_votes_per_s"]) > 0
    assert f"capacity on {engine}: one fleet server carries" in capsys.readouterr().out


def test_the_aggregate_part_times_four_dashboard_queries_on_both_engines_beside_a_scan(
    tmp_path: Path, capsys: Any, postgres_url: str
) -> None:
    out = tmp_path / "bench.json"
    server = postgres_url.rsplit("/", 1)[0]  # the test run's server; the bench makes its own scratch database
    assert main(["--quick", "--only", "aggregate", "--pg", server, "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    for engine in ("sqlite", "postgresql"):
        agg = figures[f"aggregate_{engine}"]
        assert agg["votes"] == 50_000 and agg["rollup_rows"] > 0 and agg["generate_s"] >= 0
        for key in ("all_time", "last_31_days", "unit_year_trend", "area_side_by_side"):
            assert len(agg[key]["rollup_s"]) == 3 and len(agg[key]["scan_s"]) == 3
            assert agg[key]["same_n"], (engine, key)  # the rollup counts what the scan counts
        assert agg["all_time"]["n"] == 50_000
    printed = capsys.readouterr().out
    assert "aggregation on sqlite at 50,000 votes" in printed and "aggregation on postgresql" in printed


def test_a_capacity_step_that_cannot_run_is_reported_with_its_cause_and_its_log_kept(
    tmp_path: Path, capsys: Any
) -> None:
    # Run out of file descriptors for real: 2,000 load terminals cannot open their sockets under 512.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))
    try:
        out = tmp_path / "results" / "bench.json"
        code = main(["--quick", "--only", "capacity", "--rounds", "1", "--cap-steps", "10", "2000", "--json", str(out)])
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert code == 0
    capacity = json.loads(out.read_text())["capacity"]
    failed = capacity["steps"][-1]
    assert failed["terminals"] == 2000 and failed["carried"] is False
    assert failed["failed"].startswith("file descriptors")
    assert Path(failed["log"]).exists() and Path(failed["log"]).parent == out.parent
    assert capacity["carries"] == 10 and capacity["limited_by"].startswith("file descriptors")
    printed = capsys.readouterr().out
    assert "NOT carried, the step could not run to its end: file descriptors" in printed
    assert "one fleet server carries 10 terminals" in printed


def test_the_workers_part_measures_ingest_workers_on_postgresql_beside_two_bare_ceilings(
    tmp_path: Path, capsys: Any, postgres_url: str
) -> None:
    out = tmp_path / "bench.json"
    server = postgres_url.rsplit("/", 1)[0]
    assert main(["--quick", "--only", "workers", "--pg", server, "--json", str(out)]) == 0
    workers = json.loads(out.read_text())["workers"]
    # Each run stored every vote once (the part raises otherwise) and says what each side used.
    for key in ("bare_no_store", "bare_postgresql", "workers_1", "workers_2", "workers_4"):
        assert workers[key]["votes_per_s"] > 0
        assert set(workers[key]["cpu_pct"]) == {"ingest", "postgres", "broker", "load"}
    assert workers["workers_4"]["cpu_pct"]["postgres"] > 0  # the database did the storing
    assert "hymy fleet ingest --workers 4" in capsys.readouterr().out
