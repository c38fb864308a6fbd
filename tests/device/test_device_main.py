"""The headless terminal: stdin lines become stored votes, with or without a broker."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from device.__main__ import main
from device.clock import SystemClock
from device.store import VoteStore
from sim.brokers import free_port
from tests.waiting import wait_until

DEVICE = "term-0001"


def pending_count(path: Path) -> int:
    """Undelivered votes, read through a second connection while the terminal runs."""
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM votes WHERE delivered IS NULL").fetchone()[0])
    finally:
        conn.close()


def test_headless_records_stdin_presses_with_no_broker(store_path: Path, config_doc: dict) -> None:
    with VoteStore(store_path, DEVICE, SystemClock()) as store:
        store.save_config(1, config_doc)
    out = io.StringIO()
    argv = ["--db", str(store_path), "--device", DEVICE, "--broker", f"127.0.0.1:{free_port()}"]
    assert main(argv, stdin=io.StringIO("3\n\nnine\n7\n0\n"), stdout=out) == 0
    lines = out.getvalue().splitlines()
    stored = [json.loads(line.removeprefix("stored ")) for line in lines if line.startswith("stored ")]
    assert [(v["seq"], v["answer"]) for v in stored] == [(1, 3), (2, 0)]
    assert sum(line.startswith("refused") for line in lines) == 2
    with VoteStore(store_path, DEVICE, SystemClock()) as store:
        assert store.depth() == 2


def test_headless_unplaced_terminal_takes_config_from_the_fleet_then_delivers(
    store_path: Path, broker: Any, fake_fleet: Callable[..., Any], config_doc: dict
) -> None:
    fleet = fake_fleet()
    fleet.publish_config(DEVICE, 2, config_doc)
    read_fd, write_fd = os.pipe()
    out = io.StringIO()
    argv = ["--db", str(store_path), "--device", DEVICE, "--broker", f"{broker.host}:{broker.port}"]
    with os.fdopen(read_fd) as stdin, os.fdopen(write_fd, "w") as feed:
        runner = threading.Thread(target=lambda: main(argv, stdin=stdin, stdout=out))
        runner.start()
        wait_until(lambda: "configuration 2 applied" in out.getvalue(), what="configuration applied")
        feed.write("2\n")
        feed.flush()
        fleet.wait_for(lambda: fleet.seqs == {1}, what="the press reached the fleet")
        wait_until(lambda: pending_count(store_path) == 0, what="the ack marked it delivered")
        feed.close()
        runner.join(10)
    assert not runner.is_alive()
    assert out.getvalue().startswith("unplaced")
    with VoteStore(store_path, DEVICE, SystemClock()) as store:
        assert store.depth() == 0
        assert store.load_config() == (2, config_doc)


def test_help_shows_the_kiosk_and_names_the_headless_mode(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "--settings" in out and "--screenshot" in out and "--headless" in out


def test_the_desktop_settings_file_is_valid() -> None:
    from device.settings import load_settings

    settings = load_settings(Path(__file__).parents[2] / "device" / "kiosk.desktop.toml")
    assert settings.input.kind == "keyboard" and settings.screen is not None and not settings.screen.fullscreen


def test_a_terminal_refuses_to_start_on_another_terminals_database(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with VoteStore(store_path, DEVICE, SystemClock()) as store:
        store.record("q-visit", "faces4", 1, "fi")
    argv = ["--db", str(store_path), "--device", "term-0002", "--broker", f"127.0.0.1:{free_port()}"]
    assert main(argv, stdin=io.StringIO("3\n"), stdout=io.StringIO()) == 1
    error = capsys.readouterr().err
    assert "belongs to terminal 'term-0001', not 'term-0002'" in error
    with VoteStore(store_path, DEVICE, SystemClock()) as store:  # untouched, still its owner's
        assert store.depth() == 1
