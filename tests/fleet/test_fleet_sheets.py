"""Printable sheets: terminal labels with claim codes, unit posters and stickers with the feedback code.

A QR code cannot be read back here without a decoder, so each drawn code is parsed back from its
``<path>`` into modules and compared with the matrix ``qrcode`` makes for the expected address: the
same modules are the same code.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from fleet.configs import Resolution, unit_resolution
from fleet.org import Tree
from fleet.sheets import LABELS_3X7, PosterTexts, claim_url, label_sheet, poster, qr_matrix
from protocol import TerminalState

from .conftest import NOON
from .web import Fleet

SVG = "{http://www.w3.org/2000/svg}"
FEEDBACK = "https://palaute.example.fi/kaukajarvi?from=poster"
_RUN = re.compile(r"M(\d+) (\d+)h(\d+)v1h-(\d+)z")


def _sheet(response: Any) -> ET.Element:
    """The response's SVG, checked to be an A4 sheet in millimetres."""
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "image/svg+xml"
    root = ET.fromstring(response.get_data())
    assert root.tag == f"{SVG}svg"
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("210mm", "297mm", "0 0 210 297")
    return root


def _codes(element: ET.Element) -> list[list[list[bool]]]:
    """Every QR code drawn under ``element``, parsed back into its modules."""
    found = []
    for box in element.iter(f"{SVG}svg"):
        if box.get("class") != "qr":
            continue
        n = int(box.get("viewBox", "").split()[2])
        cells = [[False] * n for _ in range(n)]
        path = box.find(f"{SVG}path")
        assert path is not None
        d = path.get("d", "")
        assert _RUN.sub("", d) == ""  # nothing but whole-module runs
        for x, y, w, back in _RUN.findall(d):
            assert w == back
            for i in range(int(w)):
                cells[int(y)][int(x) + i] = True
        found.append(cells)
    return found


def _texts(element: ET.Element) -> list[str]:
    """Every text, its lines (broken between words) joined again by spaces."""
    found = []
    for text in element.iter(f"{SVG}text"):
        spans = text.findall(f"{SVG}tspan")
        found.append(" ".join(s.text or "" for s in spans) if spans else text.text or "")
    return found


def _labels(root: ET.Element) -> dict[str, list[list[bool]]]:
    """Each label's terminal id (its monospace text) → its code."""
    labels = {}
    for group in root.iter(f"{SVG}g"):
        if group.get("class") == "label":
            ids = ["".join(t.itertext()) for t in group.iter(f"{SVG}text") if t.get("font-family") == "monospace"]
            (code,) = _codes(group)
            labels["".join(ids)] = code
    return labels


def _terminals(fleet: Fleet, count: int) -> list[str]:
    devices = [f"pi-{i:02d}" for i in range(1, count + 1)]
    for device in devices:
        fleet.store.record_state(TerminalState(device, True, 1, NOON, "1.0"), NOON)
    return devices


def _feedback_set(fleet: Fleet, target: str, url: str | None = FEEDBACK) -> int:
    """A published set whose feedback address is ``url``, assigned to ``target``."""
    configs = fleet.app.extensions["hymy_configs"]
    made = configs.create_set("test", f"Set for {target}", "nps")
    doc = configs.version(made.id, 1).doc
    configs.save_version("test", made.id, dict(doc, feedback_url=url))
    configs.publish("test", made.id, 2)
    configs.assign("test", target, made.id)
    return int(made.id)


# -- labels ------------------------------------------------------------------------------------


def test_a_label_sheet_is_a4_with_one_claim_code_per_terminal_that_carries_its_claim_address(fleet_web: Fleet) -> None:
    devices = _terminals(fleet_web, 5)
    response = fleet_web.client("admin").get("/sheets/labels.svg")
    root = _sheet(response)
    assert response.headers["Content-Disposition"] == 'inline; filename="hymy-labels-1.svg"'
    labels = _labels(root)
    assert sorted(labels) == devices
    for device, code in labels.items():
        assert code == qr_matrix(f"http://localhost/claim/{device}"), device


def test_labels_carry_the_configured_public_address_when_there_is_one(tmp_path: Any) -> None:
    from fleet.db.store import SqlFleetStore

    from .web import build_fleet

    with SqlFleetStore(tmp_path / "fleet.db") as store:
        fleet = build_fleet(store, public_url="https://hymy.example-county.fi")
        _terminals(fleet, 1)
        labels = _labels(_sheet(fleet.client("admin").get("/sheets/labels.svg")))
        assert labels == {"pi-01": qr_matrix("https://hymy.example-county.fi/claim/pi-01")}


def test_more_terminals_than_a_sheet_holds_go_on_pages_the_registry_links_to(fleet_web: Fleet) -> None:
    devices = _terminals(fleet_web, 25)
    fleet_web.org.retire("test", "pi-25", "stolen")
    admin = fleet_web.client("admin")
    first = _labels(_sheet(admin.get("/sheets/labels.svg?page=1")))
    second = _labels(_sheet(admin.get("/sheets/labels.svg?page=2")))
    assert LABELS_3X7.per_sheet == 21
    assert sorted(first) == devices[:21] and sorted(second) == devices[21:24]  # the retired one is left out
    assert admin.get("/sheets/labels.svg?page=3").status_code == 404
    assert admin.get("/sheets/labels.svg?page=0").status_code == 404
    registry = admin.get("/terminals").get_data(as_text=True)
    assert "/sheets/labels.svg?page=1" in registry and "/sheets/labels.svg?page=2" in registry
    assert "/sheets/labels.svg?page=3" not in registry


def test_labels_for_a_selection_of_terminals(fleet_web: Fleet) -> None:
    _terminals(fleet_web, 5)
    admin = fleet_web.client("admin")
    labels = _labels(_sheet(admin.get("/sheets/labels.svg?device=pi-04&device=pi-02")))
    assert list(labels) == ["pi-04", "pi-02"]
    assert admin.get("/sheets/labels.svg?device=pi-04&device=nobody").status_code == 404
    page = admin.get("/terminals/pi-04").get_data(as_text=True)
    assert "/sheets/labels.svg?device=pi-04" in page
    fleet_web.store.assign("pi-01", "kaukajarvi")
    unplaced = admin.get("/terminals?show=unplaced").get_data(as_text=True)
    assert "/sheets/labels.svg?device=pi-02&amp;device=pi-03&amp;device=pi-04&amp;device=pi-05" in unplaced


def test_labels_are_for_it_administrators_only(fleet_web: Fleet) -> None:
    _terminals(fleet_web, 1)
    for role in ("manager", "viewer"):
        assert fleet_web.client(role).get("/sheets/labels.svg").status_code == 403
    assert "/sheets/labels.svg" not in fleet_web.client("manager").get("/terminals").get_data(as_text=True)


def test_a_long_terminal_id_breaks_into_lines_that_read_back_as_the_id() -> None:
    device = "kiosk-tampere-kaukajarvi-01"
    root = ET.fromstring(label_sheet([device], "https://f.example/", "Hymy", "t"))
    assert _labels(root) == {device: qr_matrix(claim_url("https://f.example/", device))}
    with pytest.raises(ValueError):
        label_sheet(["x"] * 22, "https://f.example/", "Hymy", "t")


# -- posters and stickers ----------------------------------------------------------------------


def test_a_poster_is_a4_with_the_unit_name_and_a_code_of_its_feedback_address(fleet_web: Fleet) -> None:
    _feedback_set(fleet_web, f"node:{fleet_web.area.id}")
    response = fleet_web.client("manager").get(f"/sheets/units/{fleet_web.unit.id}/poster.svg?lang=en")
    root = _sheet(response)
    assert response.headers["Content-Disposition"] == 'inline; filename="hymy-poster-kaukajarvi-en.svg"'
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert _codes(root) == [qr_matrix(FEEDBACK)]
    texts = _texts(root)
    assert "Kaukajärvi health centre" in texts
    assert "Tell us how we did — scan the code" in texts
    assert "Do not write health or identity information" in texts
    finnish = _sheet(fleet_web.client("viewer").get(f"/sheets/units/{fleet_web.unit.id}/poster.svg?lang=fi"))
    assert "Kaukajärven terveysasema" in _texts(finnish)
    assert fleet_web.client("viewer").get(f"/sheets/units/{fleet_web.unit.id}/poster.svg?lang=de").status_code == 404


def test_a_sheet_is_self_contained_and_served_so_the_browser_shows_it(fleet_web: Fleet) -> None:
    _feedback_set(fleet_web, f"node:{fleet_web.area.id}")
    response = fleet_web.client("admin").get(f"/sheets/units/{fleet_web.unit.id}/poster.svg")
    text = response.get_data(as_text=True)
    assert "href" not in text and "url(" not in text and "@import" not in text and "<script" not in text
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "style-src 'unsafe-inline'" in csp
    assert response.headers["Content-Disposition"].startswith("inline; filename=")


def test_a_hostile_unit_name_is_escaped_on_the_poster_and_the_stickers(fleet_web: Fleet) -> None:
    hostile = 'K <script>x</script> & "co" ]]> <!--'
    fleet_web.org.update("test", fleet_web.unit.id, name_en=hostile)
    _feedback_set(fleet_web, f"node:{fleet_web.unit.id}")
    admin = fleet_web.client("admin")
    for sheet in ("poster", "stickers"):
        root = _sheet(admin.get(f"/sheets/units/{fleet_web.unit.id}/{sheet}.svg?lang=en"))
        assert not list(root.iter(f"{SVG}script"))
        assert hostile in _texts(root), sheet


def test_the_hostile_name_is_one_text_node_on_the_poster() -> None:
    name = "<b>&amp;\"'</b>"
    root = ET.fromstring(poster(name, FEEDBACK, "en", PosterTexts("Scan", "No health data"), name))
    assert name in _texts(root) and root.findtext(f"{SVG}title") == name


def test_a_sticker_sheet_holds_many_copies_of_the_code_and_the_name(fleet_web: Fleet) -> None:
    _feedback_set(fleet_web, f"node:{fleet_web.area.id}")
    response = fleet_web.client("manager").get(f"/sheets/units/{fleet_web.unit.id}/stickers.svg?lang=sv")
    root = _sheet(response)
    assert response.headers["Content-Disposition"] == 'inline; filename="hymy-stickers-kaukajarvi-sv.svg"'
    codes = _codes(root)
    assert len(codes) == 24 and all(c == qr_matrix(FEEDBACK) for c in codes)
    names = [t for t in _texts(root) if "Kaukaj" in t]
    assert len(names) == 24  # no Swedish name: the Finnish one


def test_a_manager_outside_the_unit_gets_not_found(fleet_web: Fleet) -> None:
    _feedback_set(fleet_web, f"node:{fleet_web.region.id}")
    for role in ("manager", "viewer"):
        client = fleet_web.client(role)
        for sheet in ("poster", "stickers"):
            assert client.get(f"/sheets/units/{fleet_web.other_unit.id}/{sheet}.svg").status_code == 404
    assert fleet_web.client("manager").get(f"/sheets/units/{fleet_web.area.id}/poster.svg").status_code == 404
    assert fleet_web.client("admin").get(f"/sheets/units/{fleet_web.other_unit.id}/poster.svg").status_code == 200


def test_a_unit_without_a_feedback_address_gets_a_page_saying_how_to_set_one(fleet_web: Fleet) -> None:
    manager = fleet_web.client("manager")
    response = manager.get(f"/sheets/units/{fleet_web.unit.id}/poster.svg")
    assert response.status_code == 409 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "has no feedback address" in page and "No configuration set is assigned" in page
    set_id = _feedback_set(fleet_web, f"node:{fleet_web.unit.id}", url=None)
    page = manager.get(f"/sheets/units/{fleet_web.unit.id}/stickers.svg").get_data(as_text=True)
    assert "Set for node:" in page and f"/configs/{set_id}" in page
    assert "Feedback link shown as a QR code" in page


def test_the_unit_node_page_links_to_its_posters_and_stickers_in_each_language(fleet_web: Fleet) -> None:
    page = fleet_web.client("viewer").get(f"/org/{fleet_web.unit.id}").get_data(as_text=True)
    for lang in ("fi", "sv", "en"):
        assert f"/sheets/units/{fleet_web.unit.id}/poster.svg?lang={lang}" in page
        assert f"/sheets/units/{fleet_web.unit.id}/stickers.svg?lang={lang}" in page
    area = fleet_web.client("viewer").get(f"/org/{fleet_web.area.id}").get_data(as_text=True)
    assert "/sheets/" not in area


def test_the_unit_resolution_takes_the_nearest_assignment_from_the_unit_up(fleet_web: Fleet) -> None:
    tree: Tree = fleet_web.org.tree()
    unit, area, region = fleet_web.unit, fleet_web.area, fleet_web.region
    assert unit_resolution({}, tree, unit) == Resolution(None, None, "default")
    assert unit_resolution({f"node:{region.id}": 1}, tree, unit) == Resolution(1, f"node:{region.id}", "region")
    both = {f"node:{region.id}": 1, f"node:{area.id}": 2, "terminal:pi-1": 3}
    assert unit_resolution(both, tree, unit) == Resolution(2, f"node:{area.id}", "area")
    both[f"node:{unit.id}"] = 4
    assert unit_resolution(both, tree, unit) == Resolution(4, f"node:{unit.id}", "unit")


def test_a_poster_follows_the_unit_s_own_set_over_the_area_s(fleet_web: Fleet) -> None:
    _feedback_set(fleet_web, f"node:{fleet_web.area.id}")
    _feedback_set(fleet_web, f"node:{fleet_web.unit.id}", url="https://palaute.example.fi/own")
    root = _sheet(fleet_web.client("admin").get(f"/sheets/units/{fleet_web.unit.id}/poster.svg"))
    assert _codes(root) == [qr_matrix("https://palaute.example.fi/own")]


def test_each_unit_and_location_poster_carries_its_own_form_address_from_one_set(fleet_web: Fleet) -> None:
    _feedback_set(fleet_web, f"node:{fleet_web.region.id}", "https://hymy.example.fi/f/{unit}")
    lab = fleet_web.org.add(
        "test", "location", fleet_web.unit.id, "kaukajarvi-lab", name_fi="Laboratorio", name_en="Laboratory"
    )
    admin = fleet_web.client("admin")
    unit_poster = _sheet(admin.get(f"/sheets/units/{fleet_web.unit.id}/poster.svg?lang=en"))
    assert _codes(unit_poster) == [qr_matrix("https://hymy.example.fi/f/kaukajarvi")]
    other = _sheet(admin.get(f"/sheets/units/{fleet_web.other_unit.id}/poster.svg?lang=en"))
    assert _codes(other) == [qr_matrix("https://hymy.example.fi/f/hervanta-oral")]
    response = admin.get(f"/sheets/units/{lab.id}/stickers.svg?lang=en")
    assert response.headers["Content-Disposition"] == 'inline; filename="hymy-stickers-kaukajarvi-lab-en.svg"'
    stickers = _sheet(response)
    assert set(map(str, _codes(stickers))) == {str(qr_matrix("https://hymy.example.fi/f/kaukajarvi-lab"))}
    assert any("Laboratory" in t for t in _texts(stickers))
