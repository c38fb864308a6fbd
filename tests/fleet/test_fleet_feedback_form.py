"""The open-feedback form behind a unit's QR code: anonymous answers that join the unit's results."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from fleet.configs import terminal_doc
from fleet.content import default_config_doc
from fleet.db.feedback import WEB, FeedbackRecords
from fleet.db.store import SqlFleetStore
from fleet.db.tables import feedback, metadata, votes
from protocol.configdoc import UI_STRING_KEYS

from .web import Fleet, build_fleet, csrf

TEXT = "Lääkäri oli ystävällinen mutta odotin puolitoista tuntia."
HETU = "131052-308T"  # the population register's own example, its control character right


@pytest.fixture
def fleet(fleet_url: str) -> Iterator[Fleet]:
    """The fleet web on each engine in turn."""
    store = SqlFleetStore(fleet_url)
    try:
        yield build_fleet(store, metrics_token="m")
    finally:
        store.close()


def _records(fleet: Fleet) -> FeedbackRecords:
    return fleet.app.extensions["hymy_feedback"].records  # type: ignore[no-any-return]


def answer(client: FlaskClient, code: str, data: dict[str, Any], lang: str = "fi", addr: str = "198.51.100.7") -> Any:
    """Open the form, then send it as a phone would (the session cookie carries the CSRF token)."""
    token = csrf(client, f"/f/{code}?lang={lang}")
    return client.post(f"/f/{code}", data=dict(data, csrf_token=token, lang=lang), environ_base={"REMOTE_ADDR": addr})


def _rows(fleet: Fleet, table: sa.Table) -> list[Any]:
    with fleet.store.reading() as conn:
        return list(conn.execute(sa.select(table)).all())


def _everything(fleet: Fleet) -> str:
    """Every stored value of every table, as one text (to prove what is not in it)."""
    parts = []
    with fleet.store.reading() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                parts.append(" ".join(str(v) for v in row))
    return "\n".join(parts)


def test_an_answer_joins_the_units_results_under_the_web_channel(fleet: Fleet) -> None:
    phone = fleet.app.test_client()
    page = phone.get("/f/kaukajarvi?lang=fi")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Kuinka todennäköisesti suosittelisit" in html and 'lang="fi"' in html
    sent = answer(phone, "kaukajarvi", {"answer": "9", "role": "relative", "text": TEXT})
    assert sent.status_code == 303 and sent.headers["Location"].endswith("/f/kaukajarvi/thanks?lang=fi")
    assert "Kiitos" in phone.get(sent.headers["Location"]).get_data(as_text=True)
    (vote,) = _rows(fleet, votes)
    assert (vote.channel, vote.unit, vote.answer, vote.scale, vote.role) == (WEB, "kaukajarvi", 9, "nps11", "relative")
    rollup = fleet.store.rollup()
    assert [(k[0], k[5], k[-1], n) for k, n in rollup.items()] == [("kaukajarvi", 9, WEB, 1)]
    # The dashboard's channel filter offers it and counts it under its own name.
    manager = fleet.client("manager")
    results = manager.get(f"/results/{fleet.unit.id}?channel=web").get_data(as_text=True)
    assert "Feedback form (QR code)" in results and 'value="web" checked' in results


def test_the_text_is_stored_with_identity_data_removed_and_no_address_or_cookie_kept(fleet: Fleet) -> None:
    phone = fleet.app.test_client()
    first = phone.get("/f/kaukajarvi")
    cookies = first.headers.getlist("Set-Cookie")
    assert len(cookies) == 1 and cookies[0].startswith("hymy_session=")  # the CSRF token's session only
    text = f"Hetuni on {HETU}, soittakaa 040 123 4567 tai maija.meikalainen@example.fi. Odotin pitkään."
    assert answer(phone, "kaukajarvi", {"answer": "3", "text": text}, addr="203.0.113.77").status_code == 303
    (row,) = _rows(fleet, feedback)
    assert "[ID]" in row.text and "[PHONE]" in row.text and "[EMAIL]" in row.text and row.redactions == 3
    stored = _everything(fleet)
    for secret in (HETU, "040 123 4567", "maija.meikalainen", "203.0.113.77"):
        assert secret not in stored


def test_a_location_address_answers_for_its_unit_and_notes_the_location(fleet: Fleet) -> None:
    room = fleet.org.add("test", "location", fleet.unit.id, "kaukajarvi-lab", name_fi="Laboratorio")
    phone = fleet.app.test_client()
    assert "Laboratorio" in phone.get("/f/kaukajarvi-lab").get_data(as_text=True)
    assert answer(phone, "kaukajarvi-lab", {"answer": "10"}).status_code == 303
    (row,) = _rows(fleet, feedback)
    assert (row.unit, row.location) == ("kaukajarvi", room.code)


@pytest.mark.parametrize("code", ["nope", "pirkanmaa", "phc", "../admin"])
def test_only_units_and_locations_have_a_form(fleet: Fleet, code: str) -> None:
    assert fleet.app.test_client().get(f"/f/{code}").status_code == 404


def test_an_archived_unit_has_no_form(fleet: Fleet) -> None:
    fleet.org.set_archived("test", fleet.unit.id, True)
    assert fleet.app.test_client().get("/f/kaukajarvi").status_code == 404


@pytest.mark.parametrize(
    ("accept", "query", "lang", "words"),
    [
        ("sv", "", "sv", "Hur sannolikt"),
        ("en-GB,en;q=0.8", "", "en", "How likely"),
        ("de", "", "fi", "Kuinka todennäköisesti"),  # not offered: the unit's default
        ("fi", "?lang=sv", "sv", "Vem svarar"),
    ],
)
def test_the_form_speaks_the_persons_language(fleet: Fleet, accept: str, query: str, lang: str, words: str) -> None:
    page = fleet.app.test_client().get(f"/f/kaukajarvi{query}", headers={"Accept-Language": accept})
    html = page.get_data(as_text=True)
    assert f'<html lang="{lang}">' in html and words in html


def test_a_language_added_as_data_brings_its_texts_and_the_rest_is_marked_english(fleet: Fleet) -> None:
    configs = fleet.app.extensions["hymy_configs"]
    cs = configs.create_set("test", "Saame", "nps")
    doc = configs.version(cs.id, 1).doc
    strings = {key: f"se-{key}" for key in UI_STRING_KEYS}
    strings["language_name"] = "Davvisámegiella"
    doc = dict(doc, languages=["fi", "se"], strings={"se": strings})
    doc["question"] = dict(doc["question"], text={"fi": doc["question"]["text"]["fi"], "se": "Man muddui ...?"})
    doc["question"].pop("review", None)
    doc["question"].pop("sources", None)
    version = configs.save_version("test", cs.id, doc)
    configs.publish("test", cs.id, version.version)
    configs.assign("test", f"node:{fleet.unit.id}", cs.id)
    html = fleet.app.test_client().get("/f/kaukajarvi?lang=se").get_data(as_text=True)
    assert '<html lang="se">' in html and "Man muddui ...?" in html and "se-role_client" in html
    assert "Davvisámegiella" in html
    assert '<span lang="en">Send</span>' in html  # the form's own word, from the English catalog


def test_a_flood_is_refused_and_counted_without_touching_stored_answers(fleet_web: Fleet) -> None:
    store = fleet_web.store
    fleet = build_fleet_limits(store, per_unit=3, per_address=100)
    phone = fleet.app.test_client()
    for i in range(3):
        assert answer(phone, "kaukajarvi", {"answer": str(i)}, addr=f"198.51.100.{i}").status_code == 303
    refused = answer(phone, "kaukajarvi", {"answer": "10", "text": "flood"}, addr="198.51.100.99")
    assert refused.status_code == 429 and "Yritä myöhemmin uudelleen" in refused.get_data(as_text=True)
    assert [r.answer for r in _rows(fleet, feedback)] == [0, 1, 2]
    assert len(_rows(fleet, votes)) == 3
    # Another unit is not held up by this one's flood.
    assert answer(phone, "hervanta-oral", {"answer": "8"}).status_code == 303
    metrics = phone.get("/metrics", headers={"Authorization": "Bearer m"}).get_data(as_text=True)
    assert 'hymy_feedback_refusals{reason="rate_unit"} 1.0' in metrics
    assert "hymy_feedback_answers 4.0" in metrics


def build_fleet_limits(store: SqlFleetStore, per_unit: int, per_address: int) -> Fleet:
    """A second app on the same store with the given form limits (the org is already there)."""
    from fleet.web import create_app
    from fleet.web.settings import Settings

    from .web import Fleet as F

    app = create_app(
        Settings(
            db="unused",
            secure_cookies=False,
            secret_key="test",
            metrics_token="m",
            feedback_per_unit=per_unit,
            feedback_per_address=per_address,
        ),
        store=store,
    )
    app.config["TESTING"] = True
    org = app.extensions["hymy_org"]
    t = org.tree()
    nodes = {n.code: n for n in t.nodes.values()}
    return F(
        app,
        store,
        org,
        app.extensions["hymy_accounts"],
        nodes["pirkanmaa"],
        nodes["phc"],
        nodes["oral"],
        nodes["kaukajarvi"],
        nodes["hervanta-oral"],
    )


def test_one_address_cannot_flood_a_unit(fleet_web: Fleet) -> None:
    fleet = build_fleet_limits(fleet_web.store, per_unit=100, per_address=2)
    phone = fleet.app.test_client()
    assert answer(phone, "kaukajarvi", {"answer": "5"}).status_code == 303
    assert answer(phone, "kaukajarvi", {"answer": "6"}).status_code == 303
    refused = answer(phone, "kaukajarvi", {"answer": "7"})
    assert refused.status_code == 429 and "Verkostasi on tullut" in refused.get_data(as_text=True)
    assert answer(phone, "kaukajarvi", {"answer": "7"}, addr="192.0.2.1").status_code == 303
    assert [r.answer for r in _rows(fleet, feedback)] == [5, 6, 7]


def test_a_bot_filling_the_honeypot_is_thanked_and_nothing_is_stored(fleet: Fleet) -> None:
    phone = fleet.app.test_client()
    sent = answer(phone, "kaukajarvi", {"answer": "10", "text": "cheap pills", "website": "http://spam"})
    assert sent.status_code == 303 and "/thanks" in sent.headers["Location"]
    assert _rows(fleet, feedback) == [] and _rows(fleet, votes) == []
    assert fleet.app.extensions["hymy_feedback"].refusals == {"honeypot": 1}


@pytest.mark.parametrize(
    "data",
    [
        {},  # nothing at all
        {"answer": "11"},  # off the scale
        {"answer": "-1", "text": ""},
        {"answer": "x"},
        {"answer": "5", "text": "a" * 1501},  # longer than feedback_max_text
    ],
)
def test_bad_answers_are_explained_and_nothing_is_stored(fleet: Fleet, data: dict[str, str]) -> None:
    sent = answer(fleet.app.test_client(), "kaukajarvi", data)
    assert sent.status_code == 400
    assert 'class="error-summary"' in sent.get_data(as_text=True)
    assert _rows(fleet, feedback) == [] and _rows(fleet, votes) == []


def test_an_oversized_body_is_refused(fleet: Fleet) -> None:
    phone = fleet.app.test_client()
    token = csrf(phone, "/f/kaukajarvi")
    sent = phone.post("/f/kaukajarvi", data={"csrf_token": token, "text": "x" * 70_000})
    assert sent.status_code == 413 and _rows(fleet, feedback) == []


def test_a_post_without_the_forms_token_is_refused(fleet: Fleet) -> None:
    sent = fleet.app.test_client().post("/f/kaukajarvi", data={"answer": "9"})
    assert sent.status_code == 400 and _rows(fleet, feedback) == []


def test_a_text_alone_is_kept_without_a_vote(fleet: Fleet) -> None:
    assert answer(fleet.app.test_client(), "kaukajarvi", {"text": "Kiitos hyvästä palvelusta"}).status_code == 303
    (row,) = _rows(fleet, feedback)
    assert row.answer is None and row.text == "Kiitos hyvästä palvelusta"
    assert _rows(fleet, votes) == []


def test_public_pages_never_show_free_text(fleet: Fleet) -> None:
    phone = fleet.app.test_client()
    for i in range(40):
        assert (
            answer(
                phone, "kaukajarvi", {"answer": "10", "text": f"Salainen palaute {i}"}, addr=f"10.0.0.{i}"
            ).status_code
            == 303
        )
    public = fleet.app.test_client()
    paths = ("/public/", "/public/pirkanmaa", "/public/kaukajarvi", "/public/kaukajarvi/widget")
    for path in (*paths, "/public/kaukajarvi.json"):
        page = public.get(path)
        assert page.status_code == 200, path
        assert "Salainen palaute" not in page.get_data(as_text=True), path


def test_hostile_text_is_shown_to_staff_as_text(fleet: Fleet) -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    assert answer(fleet.app.test_client(), "kaukajarvi", {"answer": "0", "text": hostile}).status_code == 303
    page = fleet.client("manager").get(f"/texts/{fleet.unit.id}").get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page


def test_the_feedback_address_of_a_set_gives_each_unit_its_own_form() -> None:
    from fleet.org import OrgNode

    base = dict(default_config_doc(None), feedback_url="https://hymy.example.fi/f/{unit}")
    unit = OrgNode(1, None, "unit", "kaukajarvi", "K", "", "", None, None, None, None, None, False, 0)
    assert terminal_doc(base, unit)["feedback_url"] == "https://hymy.example.fi/f/kaukajarvi"


def test_the_form_works_without_javascript_and_labels_every_control(fleet: Fleet) -> None:
    html = fleet.app.test_client().get("/f/kaukajarvi?lang=en").get_data(as_text=True)
    assert "<script" not in html
    ids = set(re.findall(r'<(?:input|textarea)[^>]* id="([^"]+)"', html))
    labelled = set(re.findall(r'<label for="([^"]+)"', html))
    assert ids and ids <= labelled
    assert "Do not write health information" in html


def test_staff_read_and_correct_only_their_own_units_texts(fleet: Fleet) -> None:
    phone = fleet.app.test_client()
    assert answer(phone, "kaukajarvi", {"answer": "4", "text": "Parkkipaikkoja ei ollut."}).status_code == 303
    assert answer(phone, "hervanta-oral", {"answer": "9", "text": "Hammaslääkäri oli taitava."}).status_code == 303
    by_unit = {r.unit: r for r in _rows(fleet, feedback)}
    ours, theirs = by_unit["kaukajarvi"], by_unit["hervanta-oral"]
    manager, viewer = fleet.client("manager"), fleet.client("viewer")
    page = manager.get(f"/texts/{fleet.unit.id}").get_data(as_text=True)
    assert "Parkkipaikkoja ei ollut." in page and "Hammaslääkäri" not in page and "Correct the themes" in page
    area = manager.get(f"/texts/{fleet.area.id}").get_data(as_text=True)
    assert "Parkkipaikkoja ei ollut." in area  # an area's page holds its units' texts
    assert manager.get(f"/texts/{fleet.other_unit.id}").status_code == 404  # outside the manager's part
    # A text of another part cannot be corrected through one's own unit's address either.
    path = f"/texts/{fleet.unit.id}/{theirs.id}"
    token = csrf(manager, f"/texts/{fleet.unit.id}")
    assert manager.post(path, data={"csrf_token": token, "theme": "care", "tone": "positive"}).status_code == 404
    # Viewers read but do not correct.
    assert "Parkkipaikkoja ei ollut." in viewer.get(f"/texts/{fleet.unit.id}").get_data(as_text=True)
    assert "Correct the themes" not in viewer.get(f"/texts/{fleet.unit.id}").get_data(as_text=True)
    refused = viewer.post(f"/texts/{fleet.unit.id}/{ours.id}", data={"theme": "parking", "tone": "negative"})
    assert refused.status_code in (400, 403)
    # The manager's correction is kept, shown with who made it, and audited without the text.
    done = manager.post(
        f"/texts/{fleet.unit.id}/{ours.id}",
        data={"csrf_token": token, "theme": ["parking", "facilities"], "tone": "negative"},
    )
    assert done.status_code == 303
    corrected = _records(fleet).text(ours.id)
    assert (
        corrected is not None and corrected.themes == ("facilities", "parking") and corrected.corrected_by == "manager"
    )
    assert "corrected by manager" in manager.get(f"/texts/{fleet.unit.id}").get_data(as_text=True)
    audit = fleet.client("admin").get("/audit").get_data(as_text=True)
    assert f"feedback:{ours.id}" in audit and "Parkkipaikkoja" not in audit
    # Narrowed to one theme, the page lists only that theme's texts.
    narrowed = manager.get(f"/texts/{fleet.area.id}?theme=care").get_data(as_text=True)
    assert "Parkkipaikkoja ei ollut." not in narrowed


def test_control_characters_are_dropped_and_the_rest_is_kept_on_every_engine(fleet: Fleet) -> None:
    typed = "Hyvä\x00 palvelu\x07\r\nKiitos\tpaljon 😊"
    assert answer(fleet.app.test_client(), "kaukajarvi", {"answer": "10", "text": typed}).status_code == 303
    (row,) = _rows(fleet, feedback)
    assert row.text == "Hyvä palvelu\nKiitos\tpaljon 😊"
