"""The organisation and terminals in the fleet web: forms that validate and explain, placement history,
retirement and the audit log, through the pages people use."""

from __future__ import annotations

import io
import re
from html import unescape as html_unescape
from typing import Any

import pytest

from fleet.org import OrgError, check_oid, parse_hours, y_tunnus_ok
from protocol import Heartbeat, TerminalState

from .conftest import NOON, make_batch
from .web import Fleet, csrf, post_form

UNIT_FORM = {
    "code": "tesoma",
    "name_fi": "Tesoman terveysasema",
    "name_sv": "Tesoma hälsostation",
    "name_en": "Tesoma health centre",
    "oid": "1.2.246.10.2048198.10.17",
    "service_type": "health_centre",
    "tz": "Europe/Helsinki",
    "misuse_interval_s": "2.5",
    "target": "75",
    "hours_mon": "08:00-16:00",
    "hours_tue": "8.00-12.00, 13:00-16:00",
}


@pytest.mark.parametrize(
    ("oid", "good"),
    [
        ("1.2.246.10.2048198.10.1", True),  # Turku, business ID 0204819-8 (JHS 159's own example)
        ("1.2.246.10.02048198.10.1", True),  # with its leading zero
        ("1.2.246.10.2048197.10.1", False),  # check digit wrong
        ("1.2.246.10.2048198.11.1", False),  # not the organisation register's branch
        ("1.2.246.10.2048198", False),
        ("2048198", False),
    ],
)
def test_an_organisation_oid_is_checked_down_to_the_business_ids_check_digit(oid: str, good: bool) -> None:
    if good:
        assert check_oid(oid) == oid
    else:
        with pytest.raises(OrgError):
            check_oid(oid)


def test_business_ids_with_remainder_one_are_never_valid() -> None:
    assert y_tunnus_ok("02048198") and not y_tunnus_ok("02048197")
    assert y_tunnus_ok("00000107") and y_tunnus_ok("00001003")  # weights 4 and 8: check digits 11-4, 11-8
    assert not any(y_tunnus_ok(f"0000030{d}") for d in range(10))  # 3*4 = 12, remainder 1: never issued


def test_opening_hours_are_read_per_weekday_and_checked_as_the_terminal_checks_them() -> None:
    hours = parse_hours({"mon": "8.00-16:00", "fri": "08:00-12:00, 13:00-15:30"}, "Europe/Helsinki")
    assert hours == {
        "tz": "Europe/Helsinki",
        "weekly": {"mon": [["08:00", "16:00"]], "fri": [["08:00", "12:00"], ["13:00", "15:30"]]},
    }
    assert parse_hours({}, "Europe/Helsinki") is None
    for bad in ("16:00-08:00", "8-16", "08:00-12:00, 11:00-13:00", "25:00-26:00"):
        with pytest.raises(OrgError):
            parse_hours({"tue": bad}, "Europe/Helsinki")


def test_an_it_administrator_adds_a_unit_with_every_field_and_sees_it(fleet_web: Fleet) -> None:
    admin = fleet_web.client("admin")
    response = post_form(admin, f"/org/new?kind=unit&parent={fleet_web.area.id}", UNIT_FORM)
    assert response.status_code == 302, response.get_data(as_text=True)
    unit = fleet_web.org.tree().by_code["tesoma"]
    assert (unit.name_sv, unit.oid, unit.service_type, unit.target) == (
        "Tesoma hälsostation",
        "1.2.246.10.2048198.10.17",
        "health_centre",
        75,
    )
    assert unit.misuse_interval_s == 2.5
    assert unit.hours == {
        "tz": "Europe/Helsinki",
        "weekly": {"mon": [["08:00", "16:00"]], "tue": [["08:00", "12:00"], ["13:00", "16:00"]]},
    }
    assert fleet_web.store.unit_zones()["tesoma"] == "Europe/Helsinki"
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Tesoma health centre" in page and "1.2.246.10.2048198.10.17" in page and "13:00-16:00" in page


@pytest.mark.parametrize(
    ("field", "value", "explained"),
    [
        ("oid", "1.2.246.10.2048197.10.1", "valid business ID"),
        ("code", "has space", "letters, digits"),
        ("code", "kaukajarvi", "taken by another node"),
        ("name_fi", "", "This field is required"),
        ("tz", "Mars/Olympus", "time zone such as Europe/Helsinki"),
        ("target", "150", "between -100 and 100"),
        ("misuse_interval_s", "-1", "between 0 and 3600"),
        ("hours_wed", "16:00-08:00", "Write opening hours as 08:00-16:00"),
        ("service_type", "spa", "Not a valid choice"),
    ],
)
def test_a_bad_value_is_explained_beside_its_field_and_nothing_is_saved(
    fleet_web: Fleet, field: str, value: str, explained: str
) -> None:
    admin = fleet_web.client("admin")
    before = fleet_web.org.tree().nodes
    response = post_form(admin, f"/org/new?kind=unit&parent={fleet_web.area.id}", dict(UNIT_FORM, **{field: value}))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert explained in html
    assert 'aria-invalid="true"' in html or "error-summary" in html
    assert fleet_web.org.tree().nodes == before
    assert fleet_web.org.audit_entries() == [] or all(
        e.action != "unit.create" or "tesoma" not in e.object for e in fleet_web.org.audit_entries()
    )


def test_editing_a_unit_keeps_its_code_and_logs_before_and_after(fleet_web: Fleet) -> None:
    admin = fleet_web.client("admin")
    path = f"/org/{fleet_web.unit.id}/edit"
    form = dict(UNIT_FORM, code="renamed", name_fi="Kaukajärven sote-keskus", tz="Europe/Stockholm")
    assert post_form(admin, path, form).status_code == 302
    unit = fleet_web.org.node(fleet_web.unit.id)
    assert unit is not None and unit.code == "kaukajarvi" and unit.name_fi == "Kaukajärven sote-keskus"
    assert fleet_web.store.unit_zones()["kaukajarvi"] == "Europe/Stockholm"
    entry = fleet_web.org.audit_entries(obj="unit:kaukajarvi")[0]
    assert (entry.actor, entry.action) == ("admin", "unit.update")
    assert entry.before["name_fi"] == "Kaukajärven terveysasema" and entry.after["name_fi"] == "Kaukajärven sote-keskus"
    assert entry.before["tz"] == "Europe/Helsinki" and entry.after["tz"] == "Europe/Stockholm"
    log = admin.get("/audit").get_data(as_text=True)
    assert "Unit: changed" in log and "Kaukajärven sote-keskus" in log


def test_a_node_with_live_children_cannot_be_archived_and_an_archived_one_can_be_restored(fleet_web: Fleet) -> None:
    admin = fleet_web.client("admin")
    area = fleet_web.area.id
    post_form(admin, f"/org/{area}/archive", {}, form_page=f"/org/{area}")
    assert not fleet_web.org.node(area).archived  # type: ignore[union-attr]
    unit = fleet_web.unit.id
    post_form(admin, f"/org/{unit}/archive", {}, form_page=f"/org/{unit}")
    assert fleet_web.org.node(unit).archived  # type: ignore[union-attr]
    assert "Kaukajärvi health centre" not in admin.get("/org/").get_data(as_text=True)
    assert "Kaukajärvi health centre" in admin.get("/org/?archived=1").get_data(as_text=True)
    post_form(admin, f"/org/{unit}/restore", {}, form_page=f"/org/{unit}")
    assert not fleet_web.org.node(unit).archived  # type: ignore[union-attr]
    actions = [e.action for e in fleet_web.org.audit_entries(obj="unit:kaukajarvi")]
    assert actions[:2] == ["unit.restore", "unit.archive"]


def test_a_unit_manager_adds_a_location_in_their_unit_but_not_a_unit_elsewhere(fleet_web: Fleet) -> None:
    manager = fleet_web.client("manager")
    made = post_form(
        manager, f"/org/new?kind=location&parent={fleet_web.unit.id}", {"code": "lobby", "name_fi": "Aula"}
    )
    assert made.status_code == 302
    assert fleet_web.org.tree().by_code["lobby"].parent_id == fleet_web.unit.id
    elsewhere = manager.get(f"/org/new?kind=unit&parent={fleet_web.other_area.id}")
    assert elsewhere.status_code == 404
    assert manager.get("/org/new?kind=region").status_code == 403


def _seen(fleet: Fleet, device: str, **fields: object) -> None:
    fleet.store.record_state(TerminalState(device, True, 1, NOON, "1.2.0"), NOON)
    hb = dict(
        wall=NOON,
        mono=1000,
        boot="b",
        synced=True,
        uptime=3600,
        queue=3,
        oldest=120,
        cfg=0,
        fw="1.2.0",
        temp=48.5,
        disk=2048,
    )
    hb.update(fields)
    fleet.store.record_heartbeat(Heartbeat(device, **hb), NOON)  # type: ignore[arg-type]


def test_placing_and_moving_a_terminal_keeps_its_history_and_never_moves_its_votes(fleet_web: Fleet) -> None:
    _seen(fleet_web, "pi-7")
    admin = fleet_web.client("admin")
    page = "/terminals/pi-7"
    assert post_form(admin, f"{page}/place", {"unit": fleet_web.unit.id, "location": 0}, page).status_code == 302
    desired = fleet_web.store.get_config("pi-7")
    assert desired is not None and desired.doc["unit"] == "kaukajarvi" and desired.version == 1
    fleet_web.store.add_vote_batches([make_batch("pi-7", range(1, 6), unit="kaukajarvi")], NOON)
    assert post_form(admin, f"{page}/place", {"unit": fleet_web.other_unit.id, "location": 0}, page).status_code == 302
    history = fleet_web.org.placements("pi-7")
    assert [p.unit for p in history] == ["hervanta-oral", "kaukajarvi"]
    assert history[0].until_ms is None and history[1].until_ms == history[0].since_ms
    assert fleet_web.store.get_config("pi-7").doc["unit"] == "hervanta-oral"  # type: ignore[union-attr]
    counts = {c.unit: sum(c.counts) for c in fleet_web.store.answer_counts()}
    assert counts == {"kaukajarvi": 5}  # the votes stay with the unit they were pressed for
    html = admin.get(page).get_data(as_text=True)
    assert "Placement history" in html and "Hervannan hammashoitola" in html and "Kaukajärvi health centre" in html
    assert [e.action for e in fleet_web.org.audit_entries(obj="terminal:pi-7")] == ["terminal.place"] * 2


def test_a_unit_manager_places_terminals_only_in_their_own_units(fleet_web: Fleet) -> None:
    _seen(fleet_web, "pi-8")
    fleet_web.org.place("test", "pi-8", fleet_web.unit.id)
    manager = fleet_web.client("manager")
    page = "/terminals/pi-8"
    refused = post_form(manager, f"{page}/place", {"unit": fleet_web.other_unit.id, "location": 0}, page)
    assert refused.status_code == 302
    assert fleet_web.store.terminal("pi-8").unit == "kaukajarvi"  # type: ignore[union-attr]
    _seen(fleet_web, "pi-9")
    fleet_web.org.place("test", "pi-9", fleet_web.other_unit.id)
    assert manager.get("/terminals/pi-9").status_code == 404


def test_a_retired_terminal_leaves_the_registry_but_keeps_its_history(fleet_web: Fleet) -> None:
    _seen(fleet_web, "pi-3")
    fleet_web.org.place("test", "pi-3", fleet_web.unit.id)
    admin = fleet_web.client("admin")
    page = "/terminals/pi-3"
    assert post_form(admin, f"{page}/retire", {"reason": "stolen from the lobby"}, page).status_code == 302
    assert "pi-3" not in admin.get("/terminals").get_data(as_text=True)
    assert "pi-3" in admin.get("/terminals?show=retired").get_data(as_text=True)
    assert fleet_web.store.terminal("pi-3").unit is None  # type: ignore[union-attr]
    assert [p.until_ms is not None for p in fleet_web.org.placements("pi-3")] == [True]
    assert "stolen from the lobby" in admin.get(page).get_data(as_text=True)
    with pytest.raises(OrgError):
        fleet_web.org.place("test", "pi-3", fleet_web.unit.id)


def test_the_registry_answers_it_questions_and_filters_and_sorts(fleet_web: Fleet) -> None:
    _seen(fleet_web, "pi-a", queue=0, oldest=None)
    _seen(fleet_web, "pi-b", queue=40, oldest=3600, synced=False)
    fleet_web.store.record_state(TerminalState("pi-c", False, 1, NOON, "1.1.0"), NOON)
    fleet_web.org.place("test", "pi-a", fleet_web.unit.id)
    admin = fleet_web.client("admin")
    html = admin.get("/terminals").get_data(as_text=True)
    for shown in (
        "pi-a",
        "pi-b",
        "pi-c",
        "1.2.0",
        "48.5",
        "2,048",
        "not synchronised",
        "waiting for 1",
        "not placed",
        "Kaukajärvi health centre",
    ):
        assert shown in html, shown
    offline = admin.get("/terminals?show=offline").get_data(as_text=True)
    assert "pi-c" in offline and "pi-a" not in offline
    unplaced = admin.get("/terminals?show=unplaced").get_data(as_text=True)
    assert "pi-b" in unplaced and "pi-a" not in unplaced
    lagging = admin.get("/terminals?show=lagging").get_data(as_text=True)
    assert "pi-a" in lagging and "pi-b" not in lagging
    by_queue = admin.get("/terminals?sort=queue").get_data(as_text=True)
    assert by_queue.index("pi-b") < by_queue.index("pi-a")


def test_the_health_page_shows_rejections_lagging_terminals_uncertain_times_and_backlog(fleet_web: Fleet) -> None:
    _seen(fleet_web, "pi-a", queue=12, oldest=600)
    fleet_web.org.place("test", "pi-a", fleet_web.unit.id)
    fleet_web.store.count_rejection("bad_json", "pi-a", "payload is not JSON: Expecting value", NOON)
    fleet_web.store.add_vote_batches([make_batch("pi-a", [1, 2], synced=False, boot="b2")], NOON)
    html = fleet_web.client("admin").get("/health").get_data(as_text=True)
    assert "bad_json" in html and "payload is not JSON" in html
    assert "waiting for 1" in html
    assert "Votes with uncertain times" in html
    assert "12" in html and "10 min" in html


COUNTY_CSV = (
    "kind;code;parent;name_fi;name_sv;name_en;oid;service_type;tz\n"
    "area;kotihoito;pirkanmaa;Kotihoito;Hemvård;Home care;;;\n"
    "unit;kotihoito-akaa;kotihoito;Akaan kotihoito;Akaa hemvård;Akaa home care;1.2.246.10.2048198.10.3;home_care;"
    "Europe/Helsinki\n"
    "location;akaa-toimisto;kotihoito-akaa;Toimisto;Kontor;Office;;;\n"
).encode("utf-8-sig")


def _upload(client: Any, data: bytes) -> Any:
    token = csrf(client, "/org/import")
    return client.post(
        "/org/import",
        data={"csrf_token": token, "file": (io.BytesIO(data), "units.csv")},
        content_type="multipart/form-data",
    )


def test_it_imports_a_countys_units_from_csv_after_a_dry_run_that_changes_nothing(fleet_web: Fleet) -> None:
    admin = fleet_web.client("admin")
    before = fleet_web.org.tree().nodes
    dry = _upload(admin, COUNTY_CSV)
    html = dry.get_data(as_text=True)
    assert dry.status_code == 200 and "3 to add, 0 to change" in html and "Apply these changes" in html
    assert fleet_web.org.tree().nodes == before  # a dry run stores nothing
    text = re.search(r'name="text" type="hidden" value="([^"]*)"', html)
    assert text is not None
    applied = admin.post(
        "/org/import", data={"csrf_token": csrf(admin, "/org/import"), "text": html_unescape(text.group(1))}
    )
    assert applied.status_code == 302
    tree = fleet_web.org.tree()
    assert tree.by_code["kotihoito-akaa"].name_sv == "Akaa hemvård"
    assert tree.by_code["akaa-toimisto"].parent_id == tree.by_code["kotihoito-akaa"].id
    assert {e.action for e in fleet_web.org.audit_entries()} >= {"area.create", "unit.create", "location.create"}


def test_a_bad_csv_file_shows_every_wrong_row_and_offers_nothing_to_apply(fleet_web: Fleet) -> None:
    admin = fleet_web.client("admin")
    bad = COUNTY_CSV.replace(b"1.2.246.10.2048198.10.3", b"1.2.246.10.2048197.10.3").replace(b"home_care", b"spa")
    response = _upload(admin, bad)
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "line 3" in html and "Apply these changes" not in html
    latin1 = _upload(admin, "kind,code,name_fi\nregion,ä,Ä\n".encode("latin-1"))
    assert latin1.status_code == 400 and "not UTF-8" in latin1.get_data(as_text=True)
    assert "kotihoito" not in fleet_web.org.tree().by_code
