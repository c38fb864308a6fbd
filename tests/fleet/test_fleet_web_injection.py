"""Everything people type is inert on every page: markup and script submitted into every text field of
every form come back escaped, whether the form stored them or refused them."""

from __future__ import annotations

from flask.testing import FlaskClient

from protocol import TerminalState

from .conftest import NOON
from .web import PASSWORD, Fleet, post_form

PAYLOAD = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>'"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _pages(fleet: Fleet, client: FlaskClient) -> dict[str, str]:
    tree = fleet.org.tree()
    paths = [
        "/",
        "/org/",
        "/org/?archived=1",
        "/terminals",
        "/terminals?show=retired",
        "/health",
        "/accounts/",
        "/audit",
        "/terminals/pi-1",
        f"/audit?object={PAYLOAD}",
        "/configs/",
        "/configs/assignments",
    ]
    paths += [f"/org/{n}" for n in tree.nodes] + [f"/org/{n}/edit" for n in tree.nodes]
    paths += [f"/accounts/{a.id}" for a in fleet.accounts.all()]
    paths += [f"/configs/{c.id}" for c in fleet.app.extensions["hymy_configs"].sets()]
    return {p: client.get(p).get_data(as_text=True) for p in paths}


def _assert_inert(html: str, where: str) -> None:
    assert "<script>alert" not in html and "<img src=x" not in html and "onerror=alert(2)>" not in html, where


def test_markup_in_every_text_field_is_shown_escaped_on_every_page(fleet_web: Fleet) -> None:
    admin = fleet_web.client("admin")
    fleet_web.store.record_state(TerminalState("pi-1", True, 1, NOON, PAYLOAD[:60]), NOON)
    unit_form = {
        "code": "xss-unit",
        "name_fi": PAYLOAD,
        "name_sv": PAYLOAD,
        "name_en": PAYLOAD,
        "tz": "Europe/Helsinki",
    }
    responses = [
        post_form(
            admin, "/org/new?kind=region", {"code": "xss", "name_fi": PAYLOAD, "name_sv": PAYLOAD, "name_en": PAYLOAD}
        ),
        post_form(admin, f"/org/new?kind=unit&parent={fleet_web.area.id}", unit_form),
        post_form(
            admin,
            f"/org/new?kind=unit&parent={fleet_web.area.id}",
            dict(
                unit_form,
                code="bad code",
                oid=PAYLOAD,
                tz=PAYLOAD,
                hours_mon=PAYLOAD,
                target=PAYLOAD,
                misuse_interval_s=PAYLOAD,
            ),
        ),  # refused: every value comes back in the form
        post_form(admin, f"/org/{fleet_web.unit.id}/edit", dict(unit_form, hours_tue=PAYLOAD)),
        post_form(
            admin,
            "/accounts/",
            {"username": PAYLOAD, "password": PAYLOAD, "role": "viewer", "scope": fleet_web.area.id, "lang": "fi"},
        ),
        post_form(admin, "/terminals/pi-1/place", {"unit": fleet_web.unit.id, "location": 0}, "/terminals/pi-1"),
        post_form(admin, "/terminals/pi-1/retire", {"reason": PAYLOAD}, "/terminals/pi-1"),
        post_form(admin.application.test_client(), "/login", {"username": PAYLOAD, "password": PASSWORD}),
        post_form(admin, "/configs/", {"name": PAYLOAD, "template": "nps"}),
        post_form(admin, "/configs/", {"name": "ok", "template": PAYLOAD}),
    ]
    configs = fleet_web.app.extensions["hymy_configs"]
    set_id = configs.sets()[0].id
    page = f"/configs/{set_id}"
    texts = {
        "lang_fi": "y",
        "lang_en": "y",
        "default_language": "fi",
        "text_fi": PAYLOAD,
        "text_en": PAYLOAD,
        "thanks_s": "5",
        "misuse_interval_s": "2",
        "feedback_url": PAYLOAD,
    }
    responses.append(post_form(admin, page, texts))  # refused: the link is no address; every value comes back
    responses.append(post_form(admin, page, dict(texts, feedback_url="")))  # stored
    responses.append(post_form(admin, page, {"doc": PAYLOAD}, page))
    responses.append(post_form(admin, page, {"doc": '{"question": "' + PAYLOAD.replace('"', "") + '"}'}, page))
    for r in responses:
        _assert_inert(r.get_data(as_text=True), r.request.path)
    assert fleet_web.org.tree().by_code["xss"].name_fi == PAYLOAD  # stored as typed, shown escaped
    fleet_web.store.count_rejection("bad_json", "pi-1", PAYLOAD, NOON)
    pages = _pages(fleet_web, admin)
    for path, html in pages.items():
        _assert_inert(html, path)
    shown = [p for p, html in pages.items() if ESCAPED in html]
    assert "/org/" in shown and "/health" in shown and "/audit" in shown and "/terminals/pi-1" in shown
    assert "/configs/" in shown and f"/configs/{set_id}" in shown
