"""The figures people read equal what the terminals recorded: simulated terminals (the real device
code, over a real Mosquitto and the real ingest) record yesterday's answers; the staff dashboard in
Chromium, its CSV file, the API and the public page all show the score computed here from the votes
the terminals themselves returned."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By

from device.clock import FakeClock
from fleet.db.apitokens import ApiTokens
from fleet.db.store import SqlFleetStore
from fleet.ingest import Ingest
from fleet.scores import nps
from fleet.web.browser import CHROMIUM, chromium, page_url, sign_in
from fleet.web.server import WebServer
from protocol.scales import SCALES
from sim.terminals import SimTerminal

from .web import PASSWORD, Fleet, build_fleet

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason="Debian's chromium is not installed")
HELSINKI = ZoneInfo("Europe/Helsinki")
WEIGHTS = (1, 0, 1, 1, 2, 2, 4, 8, 12, 20, 25)


def _wait(check: Any, what: str, clocks: list[FakeClock], timeout: float = 60.0) -> None:
    """Wait for ``check``, letting the terminals' clocks run (a second per tick) meanwhile."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        for c in clocks:
            c.advance(1000)
        time.sleep(0.05)


@pytest.fixture
def pressed(mosquitto: Any, tmp_path: Path) -> Iterator[tuple[Fleet, str, list[int]]]:
    """Two placed terminals record 50 answers each, 90 s apart, yesterday morning; returns the fleet,
    the web's address and the answers of the votes the terminals returned (none flagged)."""
    yesterday = datetime.now(HELSINKI).date() - timedelta(days=1)
    start = int(datetime(yesterday.year, yesterday.month, yesterday.day, 9, tzinfo=HELSINKI).timestamp() * 1000)
    store = SqlFleetStore(tmp_path / "fleet.db")
    fleet = build_fleet(store)
    ingest = Ingest(SqlFleetStore(tmp_path / "fleet.db"), mosquitto.host, mosquitto.port)
    ingest.config_poll_s = 0.3
    ingest.start()
    server = WebServer(fleet.app, "127.0.0.1", 0)
    server.start()
    clocks = [FakeClock(wall_ms=start, synced=True) for _ in range(2)]
    sims = [
        SimTerminal(f"pi-{i}", tmp_path / f"pi-{i}.db", mosquitto.host, mosquitto.port, rng=random.Random(i), clock=c)
        for i, c in enumerate(clocks)
    ]
    try:
        for s in sims:
            s.start()
        assert ingest.wait_ready(10)
        for s in sims:
            _wait(lambda s=s: (t := store.terminal(s.device_id)) is not None and bool(t.online), "online", clocks)
            fleet.org.place("test", s.device_id, fleet.unit.id)
            _wait(lambda s=s: s.doc() is not None, "configured", clocks)
        rng = random.Random(7)
        answers: list[int] = []
        for _ in range(50):
            for s, c in zip(sims, clocks, strict=True):
                c.advance(90_000)
                vote = s.terminal.press(rng.choices(range(11), weights=WEIGHTS)[0])
                assert not vote.flags, vote
                answers.append(vote.answer)
        _wait(lambda: store.vote_count() == len(answers), "every vote stored", clocks)
        yield fleet, server.url, answers
    finally:
        for s in sims:
            s.stop()
        server.stop()
        ingest.stop()
        ingest.store.close()
        store.close()


def test_dashboard_csv_api_and_public_page_show_the_figures_of_the_pressed_votes(
    pressed: tuple[Fleet, str, list[int]],
) -> None:
    fleet, url, answers = pressed
    counts = [Counter(answers)[a] for a in range(11)]
    expected = nps(counts, SCALES["nps11"])
    assert expected.nps is not None and expected.n == 100
    day = (datetime.now(HELSINKI).date() - timedelta(days=1)).isoformat()
    period = {"from": day, "to": day}
    # The staff dashboard, in a real browser.
    driver = chromium()
    try:
        sign_in(driver, url, "manager", PASSWORD)
        driver.get(page_url(url, f"/results/{fleet.unit.id}?from={day}&to={day}"))
        headline = driver.find_element(By.CSS_SELECTOR, "section.headline").text
        assert f"{expected.nps:+.0f}" in headline and "100 answers" in headline, headline
        drawn = driver.execute_script(
            "const c = document.querySelector('canvas[data-chart=chart-distribution]');"
            " return Chart.getChart(c).data.datasets[0].data;"
        )
        assert [n or 0 for n in drawn] == [n if n == 0 or n >= 5 else 0 for n in counts]
    finally:
        driver.quit()
    # Its CSV file: each answer's count, small ones hidden.
    client = fleet.client("manager")
    rows = client.get(f"/results/{fleet.unit.id}/distribution.csv", query_string=period).get_data(as_text=True)
    shown = [line.split(",")[1] for line in rows.lstrip("\ufeff").splitlines()[1:]]
    assert shown == [str(n) if n == 0 or n >= 5 else "fewer than 5" for n in counts]
    # The API.
    _record, token = ApiTokens(fleet.store).create("test", "e2e", None)
    api = fleet.app.test_client().get(
        "/api/v1/scores",
        query_string={"node": "kaukajarvi", "period": "total", **period},
        headers={"Authorization": f"Bearer {token}"},
    )
    (row,) = json.loads(api.get_data(as_text=True))["items"]
    assert (row["n"], row["value"]) == (100, round(expected.nps, 2))
    assert (row["low"], row["high"]) == (round(expected.low or 0, 2), round(expected.high or 0, 2))
    # The public page (yesterday is inside its last 30 complete days).
    public = json.loads(fleet.app.test_client().get("/public/kaukajarvi.json").get_data(as_text=True))
    (figure,) = public["figures"]
    assert (figure["window"]["n"], figure["window"]["value"]) == (100, round(expected.nps, 1))
