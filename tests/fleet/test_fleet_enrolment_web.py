"""Enrolment in the fleet web: IT's secrets (shown once), the terminals' JSON endpoints with their
limits, approval from a pending terminal's QR code, and claiming a terminal on a phone."""

from __future__ import annotations

import logging
import re
import secrets
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from fleet.db.store import SqlFleetStore
from fleet.enrolment import Enrolment
from protocol import TerminalState
from protocol.enrolment import (
    MAX_BODY_BYTES,
    EnrolRequest,
    StatusRequest,
    decode_answer,
    decode_error,
    encode_request,
)

from .conftest import NOON
from .web import FakeAccounts, Fleet, build_fleet, csrf, fake_accounts, post_form

_SECRET = re.compile(r'id="new-secret" type="text" readonly value="([A-Za-z0-9_-]+)"')


def password() -> str:
    return secrets.token_urlsafe(32)


def create_secret(client: FlaskClient, **fields: Any) -> tuple[str, str]:
    """Make a secret through the form; the secret and the page that showed it."""
    data = {"name": "Batch 7", "valid_days": "14", **fields}
    page = post_form(client, "/enrolment/", data)
    assert page.status_code == 200, page.get_data(as_text=True)[:2000]
    html = unescape(page.get_data(as_text=True))
    found = _SECRET.search(html)
    assert found is not None
    return found.group(1), html


def post_json(client: FlaskClient, path: str, body: bytes, **kw: Any) -> Any:
    return client.post(path, data=body, content_type="application/json", **kw)


def enrol(client: FlaskClient, secret: str, hardware: str, pw: str) -> Any:
    return post_json(client, "/enrol/v1", encode_request(EnrolRequest(secret, hardware, pw, "hymy-1.0")))


def status(client: FlaskClient, request: str, pw: str) -> Any:
    return post_json(client, "/enrol/v1/status", encode_request(StatusRequest(request, pw)))


@pytest.fixture
def accounts(fleet_web: Fleet) -> FakeAccounts:
    return fake_accounts(fleet_web)


def test_it_sees_a_new_secret_once_with_the_boot_file_and_never_again(fleet_web: Fleet, accounts: FakeAccounts) -> None:
    admin = fleet_web.client("admin")
    secret, html = create_secret(admin, max_uses="20")
    assert 'fleet_url = "http://localhost/"' in html and f'secret = "{secret}"' in html
    assert '# ca_file = "hymy-ca.pem"' in html and 'download="hymy-enrol.toml"' in html
    listing = admin.get("/enrolment/").get_data(as_text=True)
    assert "Batch 7" in listing and "0 of 20" in listing and "active" in listing
    assert secret not in listing


def test_the_boot_file_names_the_public_address_when_one_is_set(tmp_path: Path) -> None:
    with SqlFleetStore(tmp_path / "fleet.db") as store:
        fleet = build_fleet(store, public_url="https://hymy.example.fi")
        _, html = create_secret(fleet.client("admin"))
        assert 'fleet_url = "https://hymy.example.fi/"' in html


def test_a_terminal_enrols_over_json_and_connects_with_the_broker_the_settings_name(tmp_path: Path) -> None:
    with SqlFleetStore(tmp_path / "fleet.db") as store:
        fleet = build_fleet(store, broker_host="10.0.0.5", terminal_broker_host="mqtt.example.fi")
        accounts = fake_accounts(fleet)
        secret, _ = create_secret(fleet.client("admin"))
        pw = password()
        answer = enrol(fleet.client(), secret, "10000000abcd1234", pw)
        assert answer.status_code == 200 and answer.mimetype == "application/json"
        got = decode_answer(answer.data)
        assert (got.status, got.device, got.broker.host, got.broker.port, got.broker.tls) == (
            "enrolled",
            "hymy-abcd1234",
            "mqtt.example.fi",
            8883,
            True,
        )
        assert accounts.logins == {"hymy-abcd1234": (pw, True)}


def test_wrong_secrets_and_bad_bodies_are_refused_with_the_protocols_errors(
    fleet_web: Fleet, accounts: FakeAccounts
) -> None:
    terminal = fleet_web.client()
    wrong = enrol(terminal, "not-the-secret-at-all", "hw-1", password())
    assert (wrong.status_code, decode_error(wrong.data).error) == (403, "secret_unknown")
    bad = post_json(terminal, "/enrol/v1", b'{"v": 1, "secret": "x"}')
    assert (bad.status_code, decode_error(bad.data).error) == (400, "invalid")
    large = post_json(terminal, "/enrol/v1", b"{" + b" " * MAX_BODY_BYTES + b"}")
    assert (large.status_code, decode_error(large.data).error) == (400, "invalid")
    unknown = status(terminal, "r" * 24, password())
    assert (unknown.status_code, decode_error(unknown.data).error) == (404, "unknown_request")
    service: Enrolment = fleet_web.app.extensions["hymy_enrolment"]
    assert service.refusals == {"secret_unknown": 1, "invalid": 2, "unknown_request": 1}


def test_a_terminal_that_needs_approval_is_pending_until_it_approves_it_from_the_qr_code_page(
    fleet_web: Fleet, accounts: FakeAccounts
) -> None:
    admin = fleet_web.client("admin")
    secret, _ = create_secret(admin, require_approval="y")
    terminal, pw = fleet_web.client(), password()
    pending = decode_answer(enrol(terminal, secret, "10000000cafe0001", pw).data)
    assert pending.status == "pending" and accounts.logins[pending.device] == (pw, False)
    assert decode_answer(status(terminal, pending.request, pw).data).status == "pending"
    assert pending.device in admin.get("/enrolment/").get_data(as_text=True)
    page = f"/enrolment/request/{pending.request}"
    shown = admin.get(page).get_data(as_text=True)
    assert "10000000cafe0001" in shown and "Approve" in shown
    done = post_form(admin, page, {"unit": str(fleet_web.unit.id), "location": "0"})
    assert done.status_code == 302
    assert decode_answer(status(terminal, pending.request, pw).data).status == "enrolled"
    assert accounts.logins[pending.device] == (pw, True)
    assert fleet_web.org.current_placements()[pending.device].unit == "kaukajarvi"


def test_a_refused_terminal_is_told_refused_and_loses_its_login(fleet_web: Fleet, accounts: FakeAccounts) -> None:
    admin = fleet_web.client("admin")
    secret, _ = create_secret(admin, require_approval="y")
    terminal, pw = fleet_web.client(), password()
    pending = decode_answer(enrol(terminal, secret, "10000000cafe0002", pw).data)
    page = f"/enrolment/request/{pending.request}"
    assert post_form(admin, f"{page}/refuse", {}, form_page=page).status_code == 302
    refused = status(terminal, pending.request, pw)
    assert (refused.status_code, decode_error(refused.data).error) == (403, "refused")
    assert pending.device not in accounts.logins


def test_enrolment_attempts_beyond_the_limit_get_429_with_retry_after(tmp_path: Path) -> None:
    with SqlFleetStore(tmp_path / "fleet.db") as store:
        fleet = build_fleet(store, enrol_attempts=3)
        fake_accounts(fleet)
        secret, _ = create_secret(fleet.client("admin"))
        terminal = fleet.client()
        for i in range(3):
            assert enrol(terminal, "a-wrong-enrolment-secret-" + "x" * i, "hw-1", password()).status_code == 403
        limited = enrol(terminal, secret, "hw-1", password())  # even the right secret waits now
        assert limited.status_code == 429
        refusal = decode_error(limited.data)
        assert refusal.error == "rate_limited" and 0 < int(limited.headers["Retry-After"]) <= 900
        assert refusal.retry_after == int(limited.headers["Retry-After"])
        elsewhere = post_json(
            terminal,
            "/enrol/v1",
            encode_request(EnrolRequest(secret, "hw-2", password())),
            environ_base={"REMOTE_ADDR": "192.0.2.9"},
        )
        assert elsewhere.status_code == 200  # another address is not held


def test_a_batch_enrolling_from_one_address_is_not_rate_limited(tmp_path: Path) -> None:
    with SqlFleetStore(tmp_path / "fleet.db") as store:
        fleet = build_fleet(store, enrol_attempts=3)
        fake_accounts(fleet)
        secret, _ = create_secret(fleet.client("admin"))
        terminal = fleet.client()  # thirty terminals behind one hospital NAT, switched on together
        assert all(enrol(terminal, secret, f"hw-{i}", password()).status_code == 200 for i in range(30))


def test_a_pending_terminal_polling_its_status_is_not_rate_limited(tmp_path: Path) -> None:
    with SqlFleetStore(tmp_path / "fleet.db") as store:
        fleet = build_fleet(store, enrol_attempts=3)
        fake_accounts(fleet)
        secret, _ = create_secret(fleet.client("admin"), require_approval="y")
        terminal, pw = fleet.client(), password()
        pending = decode_answer(enrol(terminal, secret, "hw-1", pw).data)
        for _ in range(10):
            assert status(terminal, pending.request, pw).status_code == 200


def test_when_the_broker_account_store_fails_enrolment_answers_503_and_takes_no_use(
    fleet_web: Fleet, accounts: FakeAccounts
) -> None:
    admin = fleet_web.client("admin")
    secret, _ = create_secret(admin, max_uses="1")
    accounts.failing = True
    down = enrol(fleet_web.client(), secret, "hw-1", password())
    assert (down.status_code, decode_error(down.data).error) == (503, "unavailable")
    assert "0 of 1" in admin.get("/enrolment/").get_data(as_text=True)
    accounts.failing = False
    assert enrol(fleet_web.client(), secret, "hw-1", password()).status_code == 200


def test_the_secret_and_the_password_never_reach_pages_the_audit_log_or_the_logs(
    fleet_web: Fleet, accounts: FakeAccounts, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = fleet_web.client("admin")
    secret, _ = create_secret(admin, require_approval="y")
    terminal, pw = fleet_web.client(), password()
    pending = decode_answer(enrol(terminal, secret, "10000000cafe0003", pw).data)
    enrol(terminal, secret[:-2] + "zz", "hw-2", pw)  # a near miss
    post_form(admin, f"/enrolment/request/{pending.request}", {"unit": "0"})
    pages = [admin.get(p).get_data(as_text=True) for p in ("/enrolment/", f"/enrolment/request/{pending.request}")]
    pages.append(admin.get("/audit").get_data(as_text=True))
    fleet_web.store.record_state(TerminalState(pending.device, True, 1, NOON, "1.0"), NOON)
    pages.append(admin.get(f"/terminals/{pending.device}").get_data(as_text=True))
    entries = repr(fleet_web.org.audit_entries(limit=1000))
    logged = caplog.text + repr([r.args for r in caplog.records])
    for text in (*pages, entries, logged):
        assert secret not in text and secret[:-2] not in text and pw not in text
    assert "terminal.enrol" in entries and "enrolment_secret.create" in entries


def test_the_replace_button_makes_a_one_use_secret_that_enrols_a_new_card_as_the_same_terminal(
    fleet_web: Fleet, accounts: FakeAccounts
) -> None:
    admin = fleet_web.client("admin")
    secret, _ = create_secret(admin)
    old = decode_answer(enrol(fleet_web.client(), secret, "10000000aaaa0001", password()).data)
    fleet_web.store.record_state(TerminalState(old.device, True, 1, NOON, "1.0"), NOON)
    fleet_web.org.place("admin", old.device, fleet_web.unit.id)
    page = f"/terminals/{old.device}"
    assert "Replace this terminal" in admin.get(page).get_data(as_text=True)
    made = post_form(admin, f"/enrolment/replace/{old.device}", {}, form_page=page)
    assert made.status_code == 200
    html = made.get_data(as_text=True)
    found = _SECRET.search(html)
    assert found is not None and old.device in html
    pw = password()
    new = decode_answer(enrol(fleet_web.client(), found.group(1), "10000000bbbb0002", pw).data)
    assert new.device == old.device and accounts.logins[old.device] == (pw, True)
    assert fleet_web.store.terminal(old.device).unit == "kaukajarvi"  # type: ignore[union-attr]
    again = enrol(fleet_web.client(), found.group(1), "10000000cccc0003", password())
    assert decode_error(again.data).error == "secret_used_up"


def test_retiring_a_terminal_also_revokes_its_broker_login(fleet_web: Fleet, accounts: FakeAccounts) -> None:
    admin = fleet_web.client("admin")
    secret, _ = create_secret(admin)
    pw = password()
    got = decode_answer(enrol(fleet_web.client(), secret, "10000000aaaa0001", pw).data)
    fleet_web.store.record_state(TerminalState(got.device, True, 1, NOON, "1.0"), NOON)
    page = f"/terminals/{got.device}"
    accounts.failing = True  # the broker's account store is down: nothing happens, the page says so
    failed = post_form(admin, f"{page}/retire", {"reason": "stolen"}, form_page=page)
    assert failed.status_code == 302 and got.device not in fleet_web.org.retired()
    accounts.failing = False
    assert post_form(admin, f"{page}/retire", {"reason": "stolen"}, form_page=page).status_code == 302
    assert got.device in fleet_web.org.retired() and got.device not in accounts.logins
    refused = status(fleet_web.client(), got.request, pw)
    assert decode_error(refused.data).error == "refused"


def test_it_revokes_a_lost_terminals_login_from_its_page(fleet_web: Fleet, accounts: FakeAccounts) -> None:
    admin = fleet_web.client("admin")
    secret, _ = create_secret(admin)
    got = decode_answer(enrol(fleet_web.client(), secret, "10000000aaaa0001", password()).data)
    fleet_web.store.record_state(TerminalState(got.device, True, 1, NOON, "1.0"), NOON)
    page = f"/terminals/{got.device}"
    token = csrf(admin, page)
    admin.post(f"/enrolment/revoke/{got.device}", data={"revoke-csrf_token": token, "revoke-reason": "lost"})
    assert got.device not in accounts.logins
    assert "revoked: it cannot connect" in admin.get(page).get_data(as_text=True)


# -- claiming ------------------------------------------------------------------------------------------


def enrolled_terminal(fleet: Fleet, hardware: str = "10000000abcd0001") -> str:
    """A terminal enrolled with a fresh secret (not placed, never connected)."""
    service: Enrolment = fleet.app.extensions["hymy_enrolment"]
    _, plain = service.create_secret("test", "Batch", valid_days=1)
    return service.enrol(EnrolRequest(plain, hardware, password())).device


def test_a_manager_opens_the_claim_qr_code_signs_in_and_places_the_terminal_in_their_unit(
    fleet_web: Fleet, accounts: FakeAccounts
) -> None:
    device = enrolled_terminal(fleet_web)
    phone = fleet_web.client()
    to_login = phone.get(f"/claim/{device}")
    assert to_login.status_code == 302 and to_login.headers["Location"] == f"/login?next=/claim/{device}"
    signed_in = post_form(
        phone, "/login", {"username": "manager", "password": "correct horse battery", "next": f"/claim/{device}"}
    )
    assert signed_in.headers["Location"] == f"/claim/{device}"
    page = phone.get(f"/claim/{device}").get_data(as_text=True)
    assert device in page and "Kaukajärvi" in page and "Hervanta" not in page  # only units of their own
    outside = post_form(phone, f"/claim/{device}", {"unit": str(fleet_web.other_unit.id), "location": "0"})
    assert outside.status_code == 400 and device not in fleet_web.org.current_placements()
    placed = post_form(phone, f"/claim/{device}", {"unit": str(fleet_web.unit.id), "location": "0"})
    assert placed.status_code == 302
    assert "configuration within seconds" in phone.get(placed.headers["Location"]).get_data(as_text=True)
    assert fleet_web.store.terminal(device).unit == "kaukajarvi"  # type: ignore[union-attr]


def test_a_manager_cannot_claim_a_terminal_placed_outside_their_part_or_one_unknown(
    fleet_web: Fleet, accounts: FakeAccounts
) -> None:
    device = enrolled_terminal(fleet_web)
    fleet_web.org.place("admin", device, fleet_web.other_unit.id)
    manager = fleet_web.client("manager")
    assert manager.get(f"/claim/{device}").status_code == 404
    assert manager.get("/claim/hymy-00000000").status_code == 404
    assert manager.get("/claim/Not_An_Id").status_code == 404
    assert fleet_web.client("viewer").get(f"/claim/{device}").status_code == 403
    assert fleet_web.client("admin").get(f"/claim/{device}").status_code == 200  # IT may move any terminal


def test_a_retired_revoked_or_unapproved_terminal_cannot_be_claimed(fleet_web: Fleet, accounts: FakeAccounts) -> None:
    service: Enrolment = fleet_web.app.extensions["hymy_enrolment"]
    revoked = enrolled_terminal(fleet_web, "10000000abcd0001")
    service.revoke(revoked, "test", "lost")
    retired = enrolled_terminal(fleet_web, "10000000abcd0002")
    fleet_web.store.record_state(TerminalState(retired, True, 1, NOON, "1.0"), NOON)
    fleet_web.org.retire("test", retired, "broken")
    _, plain = service.create_secret("test", "Approved", valid_days=1, require_approval=True)
    waiting = service.enrol(EnrolRequest(plain, "10000000abcd0003", password())).device
    manager = fleet_web.client("manager")
    for device, why in [(revoked, "revoked or refused"), (retired, "retired"), (waiting, "waiting for IT")]:
        page = manager.get(f"/claim/{device}").get_data(as_text=True)
        assert why in page and 'id="claim-submit"' not in page, device
        post_form(manager, f"/claim/{device}", {"unit": str(fleet_web.unit.id)}, form_page="/terminals")
        assert device not in fleet_web.org.current_placements()
