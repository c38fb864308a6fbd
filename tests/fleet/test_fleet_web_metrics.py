"""The fleet web's settings and its /metrics endpoint for Prometheus (real store on both engines)."""

from __future__ import annotations

import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleet.content import default_config_doc
from fleet.db.store import SqlFleetStore
from fleet.records import IngestStats
from fleet.web import create_app
from fleet.web.settings import Settings, SettingsError, load_settings
from protocol import Ack, ConfigReport, Heartbeat, TerminalState, decode, encode
from protocol.topics import device_topic
from sim.brokers import free_port
from tests.processes import Processes
from tests.waiting import wait_until

from .conftest import NOON, make_batch

TOKEN = "s3cret-token"


def scrape(store: SqlFleetStore, token: str | None, configured: str = TOKEN) -> tuple[int, str]:
    client = create_app(Settings(db="unused", metrics_token=configured), store=store).test_client()
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    response = client.get("/metrics", headers=headers)
    return response.status_code, response.get_data(as_text=True)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_report_terminals_votes_and_rejections_from_the_store(fleet_db: SqlFleetStore) -> None:
    fleet_db.add_vote_batches([make_batch("term-a", range(1, 6))], NOON)
    fleet_db.add_vote_batches([make_batch("term-b", [1, 2], unit=None, synced=False)], NOON)
    fleet_db.assign("term-a", "unit-a")
    fleet_db.record_state(TerminalState("term-a", True, 1, NOON, "1.0"), NOON)
    fleet_db.record_state(TerminalState("term-b", False, 1, NOON, "1.0"), NOON)
    fleet_db.record_heartbeat(Heartbeat("term-a", NOON, 1, "boot-9", False, 1, 7, 30, 0, "1.0"), NOON)
    fleet_db.set_config("term-a", 3, default_config_doc("unit-a"))
    for _ in range(3):
        fleet_db.count_rejection("bad_json", "term-b", "not JSON", NOON)
    fleet_db.count_rejection("foreign_device", None, "claims another id", NOON)
    fleet_db.record_config_report(ConfigReport("term-b", 1, "rejected", "scale nps11 has 11 answers"), NOON)
    now = int(time.time() * 1000)
    fleet_db.record_ingest_stats(IngestStats("ingest-1", now - 60_000, now - 10_000, 50, 40, 1, 4, None, None))
    fleet_db.record_ingest_stats(IngestStats("ingest-1", now - 60_000, now, 80, 60, 1, 4, None, None))
    status, text = scrape(fleet_db, TOKEN)
    assert status == 200
    got = samples(text)
    assert got[("hymy_terminals", (("state", "known"),))] == 2
    assert got[("hymy_terminals", (("state", "online"),))] == 1
    assert got[("hymy_terminals", (("state", "offline"),))] == 1
    assert got[("hymy_terminals", (("state", "lagging"),))] == 1  # term-a: desired 3, applied 0
    assert got[("hymy_terminals", (("state", "unplaced"),))] == 1  # term-b: never placed
    assert got[("hymy_terminal_queue_votes", ())] == 7
    assert got[("hymy_votes", ())] == 7
    assert got[("hymy_votes_uncertain_time", ())] == 2
    assert got[("hymy_rejected_messages", (("reason", "bad_json"),))] == 3
    assert got[("hymy_rejected_messages", (("reason", "foreign_device"),))] == 1
    assert got[("hymy_terminal_oldest_unsent_seconds", ())] == 30
    assert got[("hymy_terminals_config_rejected", ())] == 1
    assert got[("hymy_sign_ins_refused", ())] == 0
    assert got[("hymy_ingest_votes_stored", (("worker", "ingest-1"),))] == 60
    assert got[("hymy_ingest_messages", (("worker", "ingest-1"),))] == 80
    assert got[("hymy_ingest_votes_per_second", (("worker", "ingest-1"),))] == 2.0  # 20 votes in 10 s
    assert 0 <= got[("hymy_ingest_report_age_seconds", (("worker", "ingest-1"),))] < 60


@pytest.mark.parametrize(("token", "configured"), [(None, TOKEN), ("wrong", TOKEN), (TOKEN + "x", TOKEN), ("", "")])
def test_metrics_refuse_a_scraper_without_the_configured_token(
    fleet_db: SqlFleetStore, token: str | None, configured: str
) -> None:
    status, text = scrape(fleet_db, token, configured)
    assert status == 401 and "hymy_votes" not in text
    if not configured:
        assert "HYMY_METRICS_TOKEN" in text  # says how to turn it on


def test_settings_come_from_defaults_then_a_file_then_the_environment_then_options(tmp_path: Path) -> None:
    assert load_settings(None, environ={}) == Settings()
    file = tmp_path / "hymy.toml"
    file.write_text('db = "from-file.db"\nmetrics_token = "file-token"\n')
    assert load_settings(file, environ={}) == Settings("from-file.db", "file-token")
    env = {"HYMY_METRICS_TOKEN": "env-token", "OTHER": "x"}
    assert load_settings(file, environ=env) == Settings("from-file.db", "env-token")
    assert load_settings(file, environ=env, db="given.db") == Settings("given.db", "env-token")
    assert load_settings(file, environ=env, db=None).db == "from-file.db"  # an option not given changes nothing


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("db = 5\n", "db must be a string"),
        ("colour = 'red'\n", "unknown setting(s) colour"),
        ("db = \n", "settings file"),
    ],
)
def test_a_bad_settings_file_is_refused_with_what_is_wrong(tmp_path: Path, text: str, error: str) -> None:
    file = tmp_path / "hymy.toml"
    file.write_text(text)
    with pytest.raises(SettingsError, match=error.replace("(", r"\(").replace(")", r"\)")):
        load_settings(file, environ={})


def test_hymy_fleet_serve_answers_metrics_over_http(tmp_path: Path, processes: Processes) -> None:
    db = tmp_path / "fleet.db"
    with SqlFleetStore(db) as store:
        store.add_vote_batches([make_batch("term-a", [1, 2, 3])], NOON)
    port = free_port()
    settings = tmp_path / "hymy.toml"
    settings.write_text(f'db = "{db}"\nmetrics_token = "{TOKEN}"\n')
    proc = processes.start("serve", "fleet", "serve", "--settings", str(settings), "--port", str(port))
    wait_until(lambda: _listening(port) or proc.poll() is not None, 30, "the server to listen")
    assert proc.poll() is None, processes.log("serve")
    url = f"http://127.0.0.1:{port}/metrics"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    refused.value.close()
    assert refused.value.code == 401
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert samples(response.read().decode())[("hymy_votes", ())] == 3


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_hymy_fleet_run_ingests_and_serves_in_one_process_and_stops_on_sigterm(
    tmp_path: Path, processes: Processes, mosquitto: Any, mqtt_probe: Any
) -> None:
    db = tmp_path / "fleet.db"
    port = free_port()
    broker = f"{mosquitto.host}:{mosquitto.port}"
    proc = processes.start("run", "fleet", "--db", str(db), "run", "--broker", broker, "--port", str(port))
    wait_until(lambda: _listening(port) or proc.poll() is not None, 30, "the server to listen")
    assert proc.poll() is None, processes.log("run")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as response:
        assert response.status == 200
    terminal = mqtt_probe(mosquitto, "term-a")
    terminal.subscribe(device_topic("term-a", "ack"))
    wait_until(lambda: _ingest_ready(db), 30, "the ingest to report")

    def acked() -> bool:  # as a terminal does: send until acknowledged (the ingest may still be subscribing)
        terminal.publish(device_topic("term-a", "votes"), encode(make_batch("term-a", [1, 2])))
        return not terminal.messages.empty() or _wait_message(terminal)

    wait_until(acked, 30, "an ack")
    assert isinstance(decode((m := terminal.expect()).topic, m.payload), Ack)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0, processes.log("run")
    with SqlFleetStore(db) as store:
        assert store.vote_count() == 2


def _wait_message(probe: Any) -> bool:
    time.sleep(0.5)
    return not probe.messages.empty()


def _ingest_ready(db: Path) -> bool:
    with SqlFleetStore(db) as store:
        return bool(store.ingest_stats())


def test_metrics_count_refused_enrolments_by_error(fleet_db: SqlFleetStore) -> None:
    from protocol.enrolment import ENROL_PATH, EnrolRequest, encode_request

    client = create_app(Settings(db="unused", metrics_token=TOKEN), store=fleet_db).test_client()
    body = encode_request(EnrolRequest("no-such-secret-0123456789", "10000000deadbeef", "p" * 40))
    for _ in range(2):
        assert client.post(f"/{ENROL_PATH}", data=body, content_type="application/json").status_code == 403
    assert client.post(f"/{ENROL_PATH}", data=b"{}", content_type="application/json").status_code == 400
    got = samples(client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True))
    assert got[("hymy_enrol_refusals", (("error", "secret_unknown"),))] == 2
    assert got[("hymy_enrol_refusals", (("error", "invalid"),))] == 1
