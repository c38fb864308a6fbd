"""Who may use the fleet web: every route states its roles, sign-in is guarded, forms carry CSRF tokens.

The route walk reads the application's URL map, so a route added later is walked too: one that states
no rule fails here (and is refused at run time), one that lets the wrong role in fails here.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fleet.web.access import PUBLIC, TOKEN, access_of, allow
from protocol import TerminalState

from .conftest import NOON
from .web import PASSWORD, Fleet, csrf, post_form, sign_in

ROLES = ("admin", "manager", "viewer")


def _url(fleet: Fleet, rule: Any) -> str:
    values: dict[str, Any] = {}
    for arg in rule.arguments:
        converter = rule._converters[arg].__class__.__name__
        if converter == "IntegerConverter":
            values[arg] = fleet.unit.id if "node" in arg else 1
        elif arg == "device":
            values[arg] = "pi-1"
        elif arg == "filename":
            values[arg] = "hymy.css"
        else:
            values[arg] = "x"
    if rule.endpoint == "org.new":  # a form for a unit in the managers' area (a region is for IT only)
        values.update(kind="unit", parent=fleet.area.id)
    with fleet.app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **values)


def _routes(app: Flask) -> list[Any]:
    return sorted(app.url_map.iter_rules(), key=lambda r: r.rule)


@pytest.fixture
def walked(fleet_web: Fleet) -> Fleet:
    fleet_web.store.record_state(TerminalState("pi-1", True, 1, NOON, "1.0"), NOON)
    fleet_web.store.assign("pi-1", "kaukajarvi")
    return fleet_web


def _call(client: FlaskClient, method: str, url: str, token: str) -> int:
    if method == "GET":
        response = client.get(url)
    else:
        response = client.post(url, data={"csrf_token": token})
    response.close()
    return response.status_code


def test_every_route_states_who_may_use_it(fleet_web: Fleet) -> None:
    undeclared = [r.endpoint for r in _routes(fleet_web.app) if access_of(fleet_web.app, r.endpoint) is None]
    assert undeclared == []


def test_every_route_refuses_anonymous_visitors_unless_it_is_public(walked: Fleet) -> None:
    client = walked.client()
    token = csrf(client, "/login")
    for rule in _routes(walked.app):
        rule_access = access_of(walked.app, rule.endpoint)
        url = _url(walked, rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            status = _call(client, method, url, token)
            if rule_access == PUBLIC:
                assert status not in (401, 403), (method, url, status)
            elif rule_access == TOKEN:
                assert status == 401, (method, url, status)
            elif method == "GET":
                assert status == 302, (method, url, status)
                assert client.get(url).headers["Location"].startswith("/login?next="), url
            else:
                assert status == 401, (method, url, status)


@pytest.mark.parametrize("role", ROLES)
def test_every_route_refuses_a_role_it_is_not_for_and_admits_the_roles_it_is_for(walked: Fleet, role: str) -> None:
    client = walked.client(role)
    token = csrf(client, "/")
    checked = 0
    for rule in _routes(walked.app):
        rule_access = access_of(walked.app, rule.endpoint)
        if rule_access in (PUBLIC, TOKEN) or rule.endpoint == "auth.logout":
            continue
        url = _url(walked, rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            status = _call(client, method, url, token)
            checked += 1
            if role in rule_access:
                assert status not in (401, 403), (role, method, url, status)
            else:
                assert status == 403, (role, method, url, status)
    assert checked > 10


def test_a_route_that_states_no_rule_is_refused_to_everyone(fleet_web: Fleet) -> None:
    app = fleet_web.app
    app.add_url_rule("/forgotten", "forgotten", lambda: "secret")
    app.add_url_rule("/stated", "stated", allow("admin")(lambda: "fine"))
    admin = fleet_web.client("admin")
    assert admin.get("/forgotten").status_code == 403
    assert admin.get("/stated").status_code == 200


def test_signing_in_with_a_wrong_password_is_refused_without_saying_which_part_was_wrong(fleet_web: Fleet) -> None:
    client = fleet_web.client()
    wrong_password = sign_in(client, "admin", "not the password")
    unknown_user = sign_in(client, "nobody", PASSWORD)
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert "Wrong username or password" in wrong_password.get_data(as_text=True)
    assert "Wrong username or password" in unknown_user.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_sign_in_attempts_are_limited_per_username(fleet_web: Fleet) -> None:
    client = fleet_web.client()
    for _ in range(5):
        assert sign_in(client, "manager", "guess guess guess").status_code == 401
    refused = sign_in(client, "manager", PASSWORD)  # even the right password waits now
    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.get_data(as_text=True)
    assert sign_in(fleet_web.client(), "viewer", PASSWORD).status_code == 302  # another name is not held


def test_passwords_are_stored_as_argon2id_hashes(fleet_web: Fleet) -> None:
    import sqlalchemy as sa

    from fleet.db.tables import accounts

    with fleet_web.store.reading() as conn:
        hashes = [h for (h,) in conn.execute(sa.select(accounts.c.password_hash))]
    assert hashes and all(h.startswith("$argon2id$") and PASSWORD not in h for h in hashes)


def test_a_session_ends_at_its_absolute_limit(fleet_web: Fleet) -> None:
    client = fleet_web.client("admin")
    assert client.get("/").status_code == 200
    with client.session_transaction() as session:
        session["login_at"] = time.time() - 11 * 3600  # the default limit is 10 hours
    assert client.get("/").status_code == 302


def test_a_session_cookie_is_http_only_and_expires_when_idle(fleet_web: Fleet) -> None:
    client = fleet_web.client()
    response = sign_in(client, "admin")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Expires=" in cookie  # a permanent session: the idle limit rides on the cookie's age
    assert fleet_web.app.permanent_session_lifetime.total_seconds() == 60 * 60


def test_a_new_password_or_a_disabled_account_ends_its_sessions(fleet_web: Fleet) -> None:
    manager = fleet_web.client("manager")
    viewer = fleet_web.client("viewer")
    assert manager.get("/").status_code == viewer.get("/").status_code == 200
    ids = {a.username: a.id for a in fleet_web.accounts.all()}
    fleet_web.accounts.update("test", ids["manager"], password="a brand new passphrase")
    fleet_web.accounts.update("test", ids["viewer"], disabled=True)
    assert manager.get("/").status_code == 302
    assert viewer.get("/").status_code == 302
    assert sign_in(fleet_web.client(), "viewer").status_code == 401


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(fleet_web: Fleet) -> None:
    client = fleet_web.client("admin")
    before = fleet_web.org.tree().nodes
    response = client.post("/org/new?kind=region", data={"code": "evil", "name_fi": "Evil"})
    assert response.status_code == 400
    assert "The form had expired" in response.get_data(as_text=True)
    assert fleet_web.org.tree().nodes == before
    made = post_form(client, "/org/new?kind=region", {"code": "good", "name_fi": "Hyvä"})
    assert made.status_code == 302


def test_sign_in_sends_people_back_only_to_pages_of_this_site(fleet_web: Fleet) -> None:
    for target, expected in [("/terminals", "/terminals"), ("https://evil.example/", "/"), ("//evil.example", "/")]:
        client = fleet_web.client()
        response = post_form(client, "/login", {"username": "admin", "password": PASSWORD, "next": target})
        assert response.headers["Location"] == expected


def test_every_page_carries_the_security_headers(fleet_web: Fleet) -> None:
    client = fleet_web.client("admin")
    for path in ("/login", "/", "/org/", "/terminals"):
        h = client.get(path).headers
        csp = h["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in h  # plain HTTP here
    secure = client.get("/", base_url="https://fleet.example")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")


def test_no_page_has_inline_script_or_style(fleet_web: Fleet) -> None:
    client = fleet_web.client("admin")
    for path in ("/login", "/", "/org/", f"/org/{fleet_web.unit.id}", "/terminals", "/health", "/accounts/", "/audit"):
        html = client.get(path).get_data(as_text=True)
        assert "<script" not in html and "style=" not in html and "<style" not in html, path


def test_people_see_only_their_part_of_the_organisation(fleet_web: Fleet) -> None:
    manager = fleet_web.client("manager")
    assert manager.get(f"/org/{fleet_web.unit.id}").status_code == 200
    assert manager.get(f"/org/{fleet_web.other_unit.id}").status_code == 404
    assert manager.get(f"/org/{fleet_web.other_unit.id}/edit").status_code == 404
    page = manager.get("/org/").get_data(as_text=True)
    assert "Kaukajärvi" in page and "Hervanta" not in page
    viewer = fleet_web.client("viewer")
    assert viewer.get(f"/org/{fleet_web.unit.id}/edit").status_code == 403


def test_a_person_changes_their_own_password_and_their_other_sessions_end(fleet_web: Fleet) -> None:
    here, elsewhere = fleet_web.client("viewer"), fleet_web.client("viewer")
    wrong = post_form(
        here,
        "/account",
        {"current": "not it at all", "new": "a brand new passphrase", "again": "a brand new passphrase"},
    )
    assert wrong.status_code == 400 and "current password is not right" in wrong.get_data(as_text=True)
    differ = post_form(here, "/account", {"current": PASSWORD, "new": "a brand new passphrase", "again": "another"})
    assert differ.status_code == 400 and "passwords differ" in differ.get_data(as_text=True)
    done = post_form(
        here, "/account", {"current": PASSWORD, "new": "a brand new passphrase", "again": "a brand new passphrase"}
    )
    assert done.status_code == 302
    assert here.get("/").status_code == 200  # this session goes on
    assert elsewhere.get("/").status_code == 302  # the other one ended
    assert sign_in(fleet_web.client(), "viewer", "a brand new passphrase").status_code == 302
    assert sign_in(fleet_web.client(), "viewer", PASSWORD).status_code == 401


def test_behind_a_tls_proxy_hsts_is_sent_and_sign_in_limits_count_the_real_address(tmp_path: Any) -> None:
    from fleet.db.store import SqlFleetStore

    from .web import build_fleet

    with SqlFleetStore(tmp_path / "fleet.db") as store:
        fleet = build_fleet(store, proxy_hops=1)
        client = fleet.client()
        proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.7", "Referer": "https://localhost/login"}
        assert client.get("/login", headers=proxied).headers["Strict-Transport-Security"].startswith("max-age=")
        assert "Strict-Transport-Security" not in client.get("/login").headers
        throttle = fleet.app.extensions["hymy_throttle"]
        token = csrf(client, "/login")
        client.post("/login", data={"username": "x", "password": "y", "csrf_token": token}, headers=proxied)
        assert throttle._failures.get("addr:192.0.2.7")  # the address the proxy saw, not the proxy's


def test_without_a_proxy_forwarded_headers_are_ignored(fleet_web: Fleet) -> None:
    client = fleet_web.client()
    forged = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.7"}
    assert "Strict-Transport-Security" not in client.get("/login", headers=forged).headers
    token = csrf(client, "/login")
    client.post("/login", data={"username": "x", "password": "y", "csrf_token": token}, headers=forged)
    assert "addr:192.0.2.7" not in fleet_web.app.extensions["hymy_throttle"]._failures
