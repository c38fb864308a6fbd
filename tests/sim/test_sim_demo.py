"""``hymy demo`` runs the whole system in one process, shows every unit's results, and stops cleanly."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from fleet.db.store import SqlFleetStore
from sim.brokers import free_port
from sim.demo import device_ids, place_terminals
from sim.patients import DEMO_UNITS
from tests.fleetdb import empty_tables

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"pressed (\d+), stored (\d+), shown (\d+), queued (\d+), rejected (\d+)")


def demo(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    """Start ``hymy demo`` with its temp dirs under ``tmp_path``, so a test can see what it leaves behind."""
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "demo", "--rate", "50", "--every", "1", *args],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(scratch), "PYTHONWARNINGS": "error"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def summary(out: str) -> tuple[int, ...]:
    """The final summary's pressed, stored, shown, queued and rejected counts."""
    found = SUMMARY.search(out)
    assert found, f"no summary in:\n{out}"
    return tuple(int(x) for x in found.groups())


def last_rows(out: str) -> dict[str, int]:
    """n per unit display name in the last results table."""
    table = out[out.rindex("results after") :]
    return {
        u.name: int(m.group(1))
        for u in DEMO_UNITS
        if (m := re.search(re.escape(u.name) + r"\s+\S+ \(.+?\)\s+(\d+)", table))
    }


def test_demo_shows_every_unit_and_counts_every_press_once(tmp_path: Path) -> None:
    port = free_port()
    proc = demo(tmp_path, "--duration", "5", "--port", str(port))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"embedded (amqtt) on 127.0.0.1:{port}" in out
    rows = last_rows(out)
    assert set(rows) == {u.name for u in DEMO_UNITS}, out
    assert all(n > 0 for n in rows.values()), out
    pressed, stored, shown, queued, rejected = summary(out)
    assert pressed == stored == shown == sum(rows.values()) > 0
    assert (queued, rejected) == (0, 0)
    assert "Traceback" not in out + err
    assert list((tmp_path / "tmp").iterdir()) == [], "the temp data dir is removed"


def test_demo_runs_its_fleet_on_postgresql_when_given_a_url(tmp_path: Path, postgres_url: str) -> None:
    empty_tables(postgres_url)
    proc = demo(tmp_path, "--duration", "8", "--port", str(free_port()), "--db", postgres_url)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    pressed, stored, shown, queued, rejected = summary(out)
    assert pressed == stored == shown > 0 and (queued, rejected) == (0, 0), out
    past = re.search(r"history: +([\d,]+) answers of the past 60 days", out)
    assert past, out  # the web's results get a history; the figures above are the live terminals' alone
    texts = re.search(r"([\d,]+) open-feedback answers with texts", out)
    assert texts, out  # and the units' open-feedback pages get scored texts (each one a web vote)
    with SqlFleetStore(postgres_url) as store:
        history = int(past.group(1).replace(",", "")) + int(texts.group(1).replace(",", ""))
        assert store.vote_count() == stored + history


def test_the_demos_qr_codes_open_a_working_feedback_form(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = demo(
        tmp_path, "--duration", "15", "--port", str(free_port()), "--web-port", str(free_port()), "--data", str(data)
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("feedback:"):
            break
    else:
        pytest.fail("".join(seen))
    url = line.split()[1]
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with browser.open(url, timeout=10) as page:  # the unit's form: its question and a Send button
        html = page.read().decode()
    assert "Kuinka todennäköisesti" in html and 'name="answer"' in html
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token, html
    form = urllib.parse.urlencode({"csrf_token": token.group(1), "answer": "9", "text": "Kiitos!"}).encode()
    with browser.open(url, data=form, timeout=10) as sent:
        assert "/thanks" in sent.url
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    # The summary is the terminals' own: the form's answer is not a press that went missing or appeared.
    pressed, stored, shown, queued, rejected = summary(out)
    assert pressed == stored == shown > 0, out
    # Every terminal's configuration carries its own unit's form as the thank-you QR code.
    with SqlFleetStore(data / "fleet.db") as store:
        docs = {t.device: store.get_config(t.device) for t in store.terminals()}
        urls = {d: c.doc["feedback_url"] for d, c in docs.items() if c is not None}
        units = {t.device: t.unit for t in store.terminals()}
    assert urls and all(u == url.rsplit("/", 1)[0] + f"/{units[d]}" for d, u in urls.items()), urls


def test_demo_falls_back_to_a_free_port_and_keeps_data_when_asked(tmp_path: Path) -> None:
    with socket.socket() as taken, socket.socket() as web_taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        web_taken.bind(("127.0.0.1", 0))  # another program (another demo) on the preferred web port
        web_taken.listen()
        web_busy = web_taken.getsockname()[1]
        args = ("--duration", "2", "--port", str(busy), "--web-port", str(web_busy), "--data", str(tmp_path / "kept"))
        proc = demo(tmp_path, *args)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    said = re.search(rf"port {busy} is taken .* listens on 127\.0\.0\.1:(\d+)", out)
    assert said, out
    assert int(said.group(1)) != busy
    web = re.search(r"web: +http://127\.0\.0\.1:(\d+)/ \(the preferred port is taken\)", out)
    assert web and int(web.group(1)) != web_busy, out
    form = re.search(r"feedback: +http://127\.0\.0\.1:(\d+)/f/", out)
    assert form and form.group(1) == web.group(1), out  # the terminals' QR codes name the port it got
    assert (tmp_path / "kept" / "fleet.db").exists()
    assert len(list((tmp_path / "kept" / "terminals").glob("*.db"))) == 6


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_stops_the_demo_cleanly_and_quickly(tmp_path: Path, sig: signal.Signals) -> None:
    proc = demo(tmp_path, "--port", str(free_port()))
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    seen = ""
    while "fleet:" not in seen and time.monotonic() < deadline:  # running: the first health line is out
        seen += proc.stdout.readline()
    assert "fleet:" in seen, seen
    proc.send_signal(sig)
    rest, err = proc.communicate(timeout=15)  # a stop that hangs fails here; no time is asserted
    out = seen + rest
    assert proc.returncode == 0, err
    assert "Traceback" not in out + err and "Error" not in err, err
    pressed, stored, shown, queued, _ = summary(out)
    assert pressed == stored + queued and shown == stored
    assert list((tmp_path / "tmp").iterdir()) == []


def test_terminals_are_spread_over_units_each_with_its_configuration(tmp_path: Path) -> None:
    with SqlFleetStore(tmp_path / "fleet.db") as store:
        placed = place_terminals(store, device_ids(6), DEMO_UNITS)
        assert sorted(placed.values()) == sorted([u.unit for u in DEMO_UNITS] * 2)
        for device, unit in placed.items():
            config = store.get_config(device)
            assert config is not None and config.doc["unit"] == unit
        # placing again (a kept data dir) keeps the versions
        place_terminals(store, device_ids(6), DEMO_UNITS)
        assert {store.get_config(d).version for d in placed} == {1}  # type: ignore[union-attr]


@pytest.mark.parametrize("port", ["0", "70000", "http"])
def test_a_port_that_cannot_be_one_is_refused_with_a_clear_error(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    from sim.demo import main

    with pytest.raises(SystemExit) as exited:
        main(["--port", port])
    assert exited.value.code == 2
    assert "argument --port" in capsys.readouterr().err


def test_the_demo_serves_the_fleet_web_where_its_terminals_appear_live(tmp_path: Path) -> None:
    import http.cookiejar
    import urllib.parse
    import urllib.request

    web_port = free_port()
    proc = demo(tmp_path, "--duration", "25", "--port", str(free_port()), "--web-port", str(web_port))
    try:
        assert proc.stdout is not None
        line = ""
        while "web:" not in line:
            line = proc.stdout.readline()
            assert line, "the demo ended before saying where its web is"
        said = re.search(r"web:\s+(http://127\.0\.0\.1:(\d+)/)\s+sign in as (\S+) / (\S+)", line)
        assert said, line
        url, port, user, password = said.group(1), int(said.group(2)), said.group(3), said.group(4)
        assert port == web_port
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        login = opener.open(url + "login").read().decode()
        token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', login)
        assert token
        form = urllib.parse.urlencode({"username": user, "password": password, "csrf_token": token.group(1)})
        overview = opener.open(url + "login", data=form.encode()).read().decode()
        assert "Kontiolahti health centre" in overview
        deadline = time.monotonic() + 20
        page = ""
        while time.monotonic() < deadline:
            page = opener.open(url + "terminals?show=online").read().decode()
            if all(d in page for d in device_ids(6)) and "version 1 applied" in page:
                break
            time.sleep(0.5)
        assert all(d in page for d in device_ids(6)), page
        assert "version 1 applied" in page and "Lieksa child health clinic" in page
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in out + err
