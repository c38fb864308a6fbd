"""Configuration sets: versions, the nearest assignment wins, publishing reaches exactly the affected
terminals, and no invalid document is ever published (store on both engines; pages on SQLite)."""

from __future__ import annotations

import pytest

from fleet.configs import TEMPLATES, check_doc, resolve
from fleet.db.configs import Configurations
from fleet.db.org import Organisation
from fleet.db.store import SqlFleetStore
from fleet.errors import ConfigError
from protocol import TerminalState, validate_config_doc

from .conftest import NOON
from .web import Fleet, post_form


@pytest.fixture
def county(fleet_db: SqlFleetStore) -> tuple[Organisation, Configurations, dict[str, int]]:
    org = Organisation(fleet_db)
    configs = Configurations(fleet_db, org)
    region = org.add("t", "region", None, "r", name_fi="Alue")
    area = org.add("t", "area", region.id, "a", name_fi="Palvelualue")
    unit = org.add("t", "unit", area.id, "u", name_fi="Yksikkö", misuse_interval_s=3.0)
    other = org.add("t", "unit", area.id, "v", name_fi="Toinen")
    lobby = org.add("t", "location", unit.id, "lobby", name_fi="Aula")
    for device in ("pi-1", "pi-2", "pi-3"):
        fleet_db.record_state(TerminalState(device, True, 1, NOON, "1.0"), NOON)
    org.place("t", "pi-1", unit.id, lobby.id)
    org.place("t", "pi-2", unit.id)
    org.place("t", "pi-3", other.id)
    ids = {"region": region.id, "area": area.id, "unit": unit.id, "other": other.id, "lobby": lobby.id}
    return org, configs, ids


def _published(configs: Configurations, name: str, template: str) -> int:
    cs = configs.create_set("t", name, template)
    configs.publish("t", cs.id, 1)
    return cs.id


def test_every_shipped_template_is_a_valid_document_with_its_sources() -> None:
    for key, (_name, doc) in TEMPLATES.items():
        assert validate_config_doc(doc) and doc["unit"] is None, key
        assert set(doc["question"]["sources"]) == {"fi", "sv", "en"}, key


def test_the_nearest_assignment_wins_and_says_why(county: tuple[Organisation, Configurations, dict[str, int]]) -> None:
    org, configs, ids = county
    tree = org.tree()
    unit = tree.nodes[ids["unit"]]
    a = {f"node:{ids['region']}": 1}
    assert resolve(a, tree, "pi-1", unit, ids["lobby"]).reason == "region"
    a[f"node:{ids['area']}"] = 2
    assert resolve(a, tree, "pi-1", unit, ids["lobby"]).set_id == 2
    a[f"node:{ids['unit']}"] = 3
    assert resolve(a, tree, "pi-1", unit, ids["lobby"]).reason == "unit"
    a[f"node:{ids['lobby']}"] = 4
    assert resolve(a, tree, "pi-1", unit, ids["lobby"]).set_id == 4
    assert resolve(a, tree, "pi-2", unit, None).set_id == 3  # not in the lobby
    a["terminal:pi-1"] = 5
    found = resolve(a, tree, "pi-1", unit, ids["lobby"])
    assert (found.set_id, found.reason, found.target) == (5, "terminal", "terminal:pi-1")
    assert resolve({}, tree, "pi-1", unit, None).reason == "default"


def test_placed_terminals_get_the_national_question_and_their_units_own_settings(
    county: tuple[Organisation, Configurations, dict[str, int]], fleet_db: SqlFleetStore
) -> None:
    doc = fleet_db.get_config("pi-1").doc  # type: ignore[union-attr]
    assert doc["unit"] == "u" and doc["question"]["id"] == "thl-nps" and doc["misuse_interval_s"] == 3.0
    assert fleet_db.get_config("pi-3").doc["misuse_interval_s"] == 2.0  # type: ignore[union-attr]


def test_publishing_reaches_exactly_the_terminals_that_get_the_set(
    county: tuple[Organisation, Configurations, dict[str, int]], fleet_db: SqlFleetStore
) -> None:
    org, configs, ids = county
    before = {d: fleet_db.get_config(d).version for d in ("pi-1", "pi-2", "pi-3")}  # type: ignore[union-attr]
    faces = configs.create_set("t", "Kasvot", "faces4")
    assert configs.assign("t", f"node:{ids['unit']}", faces.id) == []  # assigned but unpublished: no change
    changed = configs.publish("t", faces.id, 1)
    assert sorted(changed) == ["pi-1", "pi-2"]
    for device in ("pi-1", "pi-2"):
        config = fleet_db.get_config(device)
        assert config is not None and config.version == before[device] + 1
        assert config.doc["question"]["scale"] == "faces4" and config.doc["unit"] == "u"
    assert fleet_db.get_config("pi-3").version == before["pi-3"]  # type: ignore[union-attr]
    assert configs.publish("t", faces.id, 1) == []  # the same again changes nothing
    assert configs.for_terminal("pi-2").set_name == "Kasvot"


def test_a_terminals_own_assignment_beats_its_units(
    county: tuple[Organisation, Configurations, dict[str, int]], fleet_db: SqlFleetStore
) -> None:
    org, configs, ids = county
    configs.assign("t", f"node:{ids['area']}", _published(configs, "Viisi", "faces5"))
    assert configs.assign("t", "terminal:pi-2", _published(configs, "Väite", "agree5")) == ["pi-2"]
    scales = {d: fleet_db.get_config(d).doc["question"]["scale"] for d in ("pi-1", "pi-2", "pi-3")}  # type: ignore[union-attr]
    assert scales == {"pi-1": "faces5", "pi-2": "agree5", "pi-3": "faces5"}
    assert configs.assign("t", "terminal:pi-2", None) == ["pi-2"]
    assert fleet_db.get_config("pi-2").doc["question"]["scale"] == "faces5"  # type: ignore[union-attr]
    actions = [e.action for e in org.audit_entries(obj="terminal:pi-2")]
    assert actions.count("config.assign") == 2


def test_an_invalid_document_is_never_saved_nor_published(
    county: tuple[Organisation, Configurations, dict[str, int]], fleet_db: SqlFleetStore
) -> None:
    _org, configs, ids = county
    cs = configs.create_set("t", "Saame", "nps")
    doc = configs.version(cs.id, 1).doc  # type: ignore[union-attr]
    sami = dict(doc, languages=["fi", "se"])
    sami["question"] = dict(doc["question"], text=dict(doc["question"]["text"], se="Man muddui ..."))
    with pytest.raises(ConfigError, match="strings.se must supply every interface text"):
        configs.save_version("t", cs.id, sami)
    with pytest.raises(ConfigError, match="default_language"):
        configs.save_version("t", cs.id, dict(doc, default_language="de"))
    assert configs.get_set(cs.id).latest == 1  # type: ignore[union-attr]


def test_the_check_before_publishing_names_missing_languages_and_texts_awaiting_review() -> None:
    doc = TEMPLATES["faces4"][1]
    found = check_doc(doc)
    assert found.error is None and ("review", "fi, sv, en") in found.warnings
    only_finnish = dict(doc, languages=["fi"], default_language="fi")
    assert ("not_offered", "sv, en") in check_doc(only_finnish).warnings
    assert check_doc(dict(doc, languages=[])).error is not None


def test_it_edits_publishes_and_the_terminal_page_says_which_set_it_gets(fleet_web: Fleet) -> None:
    fleet_web.store.record_state(TerminalState("pi-9", True, 1, NOON, "1.0"), NOON)
    fleet_web.org.place("test", "pi-9", fleet_web.unit.id)
    admin = fleet_web.client("admin")
    made = post_form(admin, "/configs/", {"name": "Terveysasemat", "template": "nps"})
    assert made.status_code == 302
    page = made.headers["Location"]
    form = {
        "lang_fi": "y",
        "lang_sv": "y",
        "lang_en": "y",
        "default_language": "fi",
        "text_fi": "Suosittelisitko meitä?",
        "text_sv": "",
        "text_en": "Would you recommend us?",
        "thanks_s": "6",
        "misuse_interval_s": "2",
        "role_question": "y",
        "feedback_url": "https://palaute.example.fi/k",
        "thanks_fi": "Kiitos palautteesta!",
    }
    refused = post_form(admin, page, form)
    assert refused.status_code == 400 and "question text lacks languages" in refused.get_data(as_text=True)
    form["lang_sv"] = ""
    assert post_form(admin, page, form).status_code == 302
    html = admin.get(page).get_data(as_text=True)
    assert "Shipped languages not offered: sv" in html
    set_id = int(page.rsplit("/", 1)[1])
    post_form(
        admin,
        "/configs/assign",
        {f"n{fleet_web.area.id}-target": f"node:{fleet_web.area.id}", f"n{fleet_web.area.id}-set_id": set_id},
        "/configs/assignments",
    )
    published = post_form(admin, f"{page}/publish/2", {}, page)
    assert published.status_code == 302
    doc = fleet_web.store.get_config("pi-9").doc  # type: ignore[union-attr]
    assert doc["question"]["text"] == {"fi": "Suosittelisitko meitä?", "en": "Would you recommend us?"}
    assert doc["languages"] == ["fi", "en"] and doc["role_question"] and doc["thanks_s"] == 6
    assert doc["strings"] == {"fi": {"thanks": "Kiitos palautteesta!"}} and doc["feedback_url"].endswith("/k")
    terminal = admin.get("/terminals/pi-9").get_data(as_text=True)
    assert "Terveysasemat" in terminal and "version 2" in terminal and "Assigned to its service area" in terminal
    log = admin.get("/audit").get_data(as_text=True)
    assert "Configuration: published" in log and "Configuration: assigned" in log and "saved as a new version" in log


def test_a_unit_manager_assigns_sets_in_their_part_only_and_cannot_publish(fleet_web: Fleet) -> None:
    cs = fleet_web.app.extensions["hymy_configs"].create_set("test", "Kasvot", "faces4")
    manager = fleet_web.client("manager")
    mine = post_form(
        manager,
        "/configs/assign",
        {f"n{fleet_web.unit.id}-target": f"node:{fleet_web.unit.id}", f"n{fleet_web.unit.id}-set_id": cs.id},
        "/configs/assignments",
    )
    assert mine.status_code == 302
    other = fleet_web.other_unit.id
    refused = post_form(
        manager,
        "/configs/assign",
        {f"n{other}-target": f"node:{other}", f"n{other}-set_id": cs.id},
        "/configs/assignments",
    )
    assert refused.status_code == 404
    assert post_form(manager, f"/configs/{cs.id}/publish/1", {}, "/configs/assignments").status_code == 403
    assert fleet_web.app.extensions["hymy_configs"].assignments() == {f"node:{fleet_web.unit.id}": cs.id}
