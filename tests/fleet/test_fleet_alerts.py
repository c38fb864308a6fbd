"""Alerts: each rule raises once per occurrence and resolves when its condition ends; people of the
part see and acknowledge them; e-mail (a real SMTP server) and webhooks (a local HTTP server) deliver
them with retries, exactly once."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fleet import alerts as rules
from fleet.alertsend import AlertWorker, SendSettings
from fleet.db.alerts import Alerts, Thresholds
from fleet.org import parse_hours
from protocol import ConfigReport, TerminalState

from .web import Fleet, post_form, store_votes

HELSINKI = ZoneInfo("Europe/Helsinki")
#: Wednesday 2025-03-05 10:00 in Helsinki.
WEDNESDAY_10 = datetime(2025, 3, 5, 10, 0, tzinfo=HELSINKI)
OFFICE_HOURS = {d: "08:00-16:00" for d in ("mon", "tue", "wed", "thu", "fri")}


class Clock:
    """A settable clock for the rules."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at.timestamp()


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


@pytest.fixture
def clock() -> Clock:
    return Clock(WEDNESDAY_10)


@pytest.fixture
def alerting(fleet_web: Fleet, clock: Clock) -> Alerts:
    fleet_web.org.update("test", fleet_web.unit.id, hours=parse_hours(OFFICE_HOURS, "Europe/Helsinki"))
    return Alerts(fleet_web.store, fleet_web.org, clock=clock)


def go_offline(fleet: Fleet, device: str, at: datetime) -> None:
    fleet.store.record_state(TerminalState(device, True, 1, ms(at) - 3_600_000, "1.0"), ms(at) - 3_600_000)
    fleet.org.place("test", device, fleet.unit.id)
    fleet.store.record_state(TerminalState(device, False, 1, ms(at), "1.0"), ms(at))


def kinds(alerting: Alerts) -> list[tuple[str, str]]:
    return sorted((a.kind, a.subject) for a in alerting.open_alerts())


def test_an_offline_terminal_in_opening_hours_is_alerted_once_and_resolved_when_back(
    fleet_web: Fleet, alerting: Alerts, clock: Clock
) -> None:
    go_offline(fleet_web, "pi-1", WEDNESDAY_10 - timedelta(minutes=30))
    # A little history so the unit is not also silent.
    store_votes(fleet_web, "pi-1", "kaukajarvi", [(ms(WEDNESDAY_10 - timedelta(hours=1)), 9, {})] * 3)
    opened, _ = alerting.evaluate()
    assert [(a.kind, a.subject) for a in opened] == [(rules.OFFLINE, "terminal:pi-1")]
    assert alerting.evaluate() == ([], [])  # still offline: the same alert, not a new one
    clock.at = WEDNESDAY_10.replace(hour=18)  # closed now, and still offline: the occurrence goes on
    assert alerting.evaluate() == ([], [])
    assert kinds(alerting) == [(rules.OFFLINE, "terminal:pi-1")]
    fleet_web.store.record_state(TerminalState("pi-1", True, 2, ms(clock.at), "1.0"), ms(clock.at))
    _, resolved = alerting.evaluate()
    assert [a.subject for a in resolved] == ["terminal:pi-1"] and kinds(alerting) == []


def test_an_offline_terminal_outside_opening_hours_is_not_alerted(
    fleet_web: Fleet, alerting: Alerts, clock: Clock
) -> None:
    saturday = WEDNESDAY_10 + timedelta(days=3)
    clock.at = saturday
    go_offline(fleet_web, "pi-1", saturday - timedelta(hours=2))
    store_votes(fleet_web, "pi-1", "kaukajarvi", [(ms(saturday - timedelta(days=3)), 9, {})] * 3)
    alerting.evaluate()
    assert (rules.OFFLINE, "terminal:pi-1") not in kinds(alerting)
    clock.at = saturday + timedelta(days=2)  # Monday 10:00: open, and it is still offline
    alerting.evaluate()
    assert (rules.OFFLINE, "terminal:pi-1") in kinds(alerting)


def test_a_spike_of_negative_answers_against_the_units_own_baseline(fleet_web: Fleet, alerting: Alerts) -> None:
    # 28 days of 40 answers a day, 4 of them detractors (10 %).
    past = []
    for d in range(1, 29):
        day = WEDNESDAY_10 - timedelta(days=d)
        past += [(ms(day), 10, {})] * 36 + [(ms(day), 3, {})] * 4
    store_votes(fleet_web, "pi-1", "kaukajarvi", past)
    today_ok = [(ms(WEDNESDAY_10 - timedelta(hours=1)), 10, {})] * 27 + [(ms(WEDNESDAY_10), 2, {})] * 3
    store_votes(fleet_web, "pi-2", "kaukajarvi", today_ok)
    assert not [k for k in kinds(alerting) if k[0] == rules.SPIKE]
    alerting.evaluate()
    assert not [k for k in kinds(alerting) if k[0] == rules.SPIKE], "3 of 30 is the usual share"
    store_votes(fleet_web, "pi-3", "kaukajarvi", [(ms(WEDNESDAY_10), 1, {})] * 12)  # 15 of 42 today
    opened, _ = alerting.evaluate()
    assert [(a.kind, a.subject) for a in opened] == [(rules.SPIKE, "unit:kaukajarvi:thl-nps")]
    assert opened[0].detail["negative"] == 15 and opened[0].detail["p"] < rules.SPIKE_P


def test_a_fixed_count_is_not_a_spike_where_negative_answers_are_usual(fleet_web: Fleet, alerting: Alerts) -> None:
    past = []
    for d in range(1, 29):
        day = WEDNESDAY_10 - timedelta(days=d)
        past += [(ms(day), 10, {})] * 20 + [(ms(day), 3, {})] * 20  # half are detractors, every day
    store_votes(fleet_web, "pi-1", "kaukajarvi", past)
    store_votes(fleet_web, "pi-2", "kaukajarvi", [(ms(WEDNESDAY_10), 10, {})] * 15 + [(ms(WEDNESDAY_10), 1, {})] * 15)
    alerting.evaluate()
    assert not [k for k in kinds(alerting) if k[0] == rules.SPIKE]


def test_a_unit_clearly_under_its_target_is_alerted(fleet_web: Fleet, alerting: Alerts) -> None:
    fleet_web.org.update("test", fleet_web.unit.id, target=80)
    month = []
    for d in range(1, 31):
        month += [(ms(WEDNESDAY_10 - timedelta(days=d)), 10, {})] * 3 + [
            (ms(WEDNESDAY_10 - timedelta(days=d)), 7, {})
        ] * 2
    store_votes(fleet_web, "pi-1", "kaukajarvi", month)  # NPS 60 of 150 answers: its interval ends below 80
    opened, _ = alerting.evaluate()
    assert (rules.UNDER_TARGET, "unit:kaukajarvi:thl-nps") in [(a.kind, a.subject) for a in opened]
    fleet_web.org.update("test", fleet_web.unit.id, target=65)  # 60 with its interval reaching past 65: not clear
    _, resolved = alerting.evaluate()
    assert [a.kind for a in resolved] == [rules.UNDER_TARGET]


def test_no_answers_for_three_opening_days_is_alerted_and_an_answer_resolves_it(
    fleet_web: Fleet, alerting: Alerts, clock: Clock
) -> None:
    fleet_web.store.record_state(TerminalState("pi-1", True, 1, ms(WEDNESDAY_10), "1.0"), ms(WEDNESDAY_10))
    fleet_web.org.place("test", "pi-1", fleet_web.unit.id)
    # Last answers on Thursday the week before: Fri, Mon, Tue had none (the weekend is closed).
    store_votes(fleet_web, "pi-1", "kaukajarvi", [(ms(WEDNESDAY_10 - timedelta(days=6)), 9, {})] * 5)
    clock.at = WEDNESDAY_10.replace(hour=7)  # before opening on Wednesday
    opened, _ = alerting.evaluate()
    assert [(a.kind, a.subject) for a in opened] == [(rules.SILENT, "unit:kaukajarvi")]
    clock.at = WEDNESDAY_10
    store_votes(fleet_web, "pi-2", "kaukajarvi", [(ms(WEDNESDAY_10 - timedelta(minutes=5)), 9, {})])
    _, resolved = alerting.evaluate()
    assert [a.kind for a in resolved] == [rules.SILENT]


def test_a_rejected_configuration_is_alerted_until_the_terminal_applies_one(fleet_web: Fleet, alerting: Alerts) -> None:
    now = ms(WEDNESDAY_10)
    fleet_web.store.record_state(TerminalState("pi-1", True, 1, now, "1.0"), now)
    fleet_web.org.place("test", "pi-1", fleet_web.unit.id)  # gets its configuration, version 1
    store_votes(fleet_web, "pi-1", "kaukajarvi", [(now - 60_000, 9, {})])
    version = fleet_web.store.terminal("pi-1").desired_version  # type: ignore[union-attr]
    fleet_web.store.record_config_report(ConfigReport("pi-1", version, "rejected", "5 buttons, 4 faces"), now)
    opened, _ = alerting.evaluate()
    assert [(a.kind, a.detail["reason"]) for a in opened] == [(rules.REJECTED, "5 buttons, 4 faces")]
    fleet_web.store.record_config_report(ConfigReport("pi-1", version, "applied"), now)
    _, resolved = alerting.evaluate()
    assert [a.kind for a in resolved] == [rules.REJECTED]


def test_the_binomial_tail_is_exact() -> None:
    assert rules.binomial_tail(0, 10, 0.3) == 1.0
    assert rules.binomial_tail(10, 10, 0.5) == pytest.approx(0.5**10)
    assert rules.binomial_tail(2, 3, 0.5) == pytest.approx(0.5)  # 3/8 + 1/8


# -- people --------------------------------------------------------------------------------------


def test_people_of_the_part_see_and_acknowledge_alerts_others_do_not(fleet_web: Fleet, alerting: Alerts) -> None:
    go_offline(fleet_web, "pi-1", WEDNESDAY_10 - timedelta(hours=1))
    store_votes(fleet_web, "pi-1", "kaukajarvi", [(ms(WEDNESDAY_10 - timedelta(hours=2)), 9, {})])
    (alert,), _ = alerting.evaluate()
    manager = fleet_web.client("manager")
    page = manager.get("/alerts/").get_data(as_text=True)
    assert "pi-1" in page
    results = manager.get(f"/results/{fleet_web.unit.id}").get_data(as_text=True)
    assert "Open alerts" in results and "Terminal offline during opening hours" in results
    assert "pi-1 – Kaukaj" in results  # which terminal, not only what kind
    response = post_form(manager, f"/alerts/{alert.id}/acknowledge", {"comment": "<b>Cable</b> checked"}, "/alerts/")
    assert response.status_code == 302
    acked = alerting.get(alert.id)
    assert acked is not None and acked.acked_by == "manager" and acked.ack_comment == "<b>Cable</b> checked"
    page = manager.get("/alerts/").get_data(as_text=True)
    assert "&lt;b&gt;Cable&lt;/b&gt; checked" in page and "<b>Cable</b>" not in page
    other = fleet_web.accounts.create(
        "test", "oral-manager", "correct horse battery", "manager", fleet_web.other_area.id, "en"
    )
    outsider = fleet_web.client(other.username)
    assert "pi-1" not in outsider.get("/alerts/").get_data(as_text=True)
    assert outsider.get(f"/alerts/{alert.id}").status_code == 404
    assert fleet_web.client().get("/alerts/").status_code == 302  # anonymous: sign in


def test_an_empty_acknowledgement_is_refused_with_a_reason(fleet_web: Fleet, alerting: Alerts) -> None:
    go_offline(fleet_web, "pi-1", WEDNESDAY_10 - timedelta(hours=1))
    store_votes(fleet_web, "pi-1", "kaukajarvi", [(ms(WEDNESDAY_10 - timedelta(hours=2)), 9, {})])
    (alert,), _ = alerting.evaluate()
    admin = fleet_web.client("admin")
    response = post_form(admin, f"/alerts/{alert.id}/acknowledge", {"comment": "   "}, "/alerts/")
    assert response.status_code == 200 and "Say what is being done about it." in response.get_data(as_text=True)
    assert alerting.get(alert.id).acked_at is None  # type: ignore[union-attr]


# -- delivery ------------------------------------------------------------------------------------


class _Hook(BaseHTTPRequestHandler):
    answers: list[int] = []
    received: list[tuple[dict[str, Any], str]] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((json.loads(body), self.headers.get("X-Hymy-Signature", "")))
        self.send_response(self.answers.pop(0) if self.answers else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[_Hook]]]:
    class Hook(_Hook):
        answers: list[int] = [500]
        received: list[tuple[dict[str, Any], str]] = []

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", Hook
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def smtp() -> Iterator[tuple[int, list[Any]]]:
    from aiosmtpd.controller import Controller

    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's API
            received.append(envelope)
            return "250 OK"

    with socket.socket() as probe:  # a free port (aiosmtpd checks its server by connecting to the port given)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


def test_alerts_are_delivered_by_email_and_webhook_once_with_retries(
    fleet_web: Fleet, alerting: Alerts, clock: Clock, webhook: tuple[str, type[_Hook]], smtp: tuple[int, list[Any]]
) -> None:
    url, hook = webhook
    port, mails = smtp
    alerting.add_route("test", fleet_web.area.id, "email", "kaukajarvi-it@example.fi")
    alerting.add_route("test", fleet_web.other_area.id, "email", "oral@example.fi")  # another part: nothing
    alerting.add_route("test", None, "webhook", url)
    settings = SendSettings(
        smtp_host="127.0.0.1", smtp_port=port, webhook_secret="s3cret", public_url="https://hymy.example"
    )
    worker = AlertWorker(alerting, settings, Thresholds())
    go_offline(fleet_web, "pi-1", WEDNESDAY_10 - timedelta(hours=1))
    store_votes(fleet_web, "pi-1", "kaukajarvi", [(ms(WEDNESDAY_10 - timedelta(hours=2)), 9, {})])
    assert worker.run_once() == (1, 0, 1, 1)  # opened; the e-mail went, the webhook answered 500
    assert [m.rcpt_tos for m in mails] == [["kaukajarvi-it@example.fi"]]
    assert "pi-1" in mails[0].content.decode() and "https://hymy.example/alerts/" in mails[0].content.decode()
    assert worker.run_once() == (0, 0, 0, 0)  # the retry waits
    clock.at += timedelta(minutes=1)
    assert worker.run_once() == (0, 0, 1, 0)  # retried and accepted
    assert len(hook.received) == 2 and hook.received[1][0]["event"] == "opened"
    import hashlib
    import hmac as hmac_

    body = json.dumps(hook.received[1][0], sort_keys=True).encode()
    assert hook.received[1][1] == "sha256=" + hmac_.new(b"s3cret", body, hashlib.sha256).hexdigest()
    fleet_web.store.record_state(TerminalState("pi-1", True, 2, ms(clock.at), "1.0"), ms(clock.at))
    assert worker.run_once() == (0, 1, 2, 0)  # resolved: both routes told once
    assert worker.run_once() == (0, 0, 0, 0)
    assert len(mails) == 2 and len(hook.received) == 3 and hook.received[2][0]["event"] == "resolved"


def test_a_route_must_be_an_address(alerting: Alerts) -> None:
    from fleet.db.alerts import AlertError

    for channel, target in (("email", "not an address"), ("webhook", "ftp://x"), ("sms", "+358")):
        with pytest.raises(AlertError):
            alerting.add_route("test", None, channel, target)


def test_the_alerts_command_runs_one_round_and_says_what_it_did(
    fleet_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from fleet.__main__ import main as fleet_main
    from fleet.content import default_config_doc
    from fleet.db.store import SqlFleetStore

    with SqlFleetStore(fleet_url) as store:
        now = int(datetime.now(HELSINKI).timestamp() * 1000)
        store.record_state(TerminalState("pi-9", True, 1, now, "1.0"), now)
        store.record_config_report(ConfigReport("pi-9", 1, "rejected", "unknown scale"), now)
        store.set_config("pi-9", 1, default_config_doc(None))
    assert fleet_main(["--db", fleet_url, "alerts", "--once"]) == 0
    assert "alerts: 1 opened, 0 resolved; messages: 0 sent, 0 failed" in capsys.readouterr().out
    assert fleet_main(["--db", fleet_url, "alerts", "--once"]) == 0
    assert "alerts: 0 opened, 0 resolved" in capsys.readouterr().out
