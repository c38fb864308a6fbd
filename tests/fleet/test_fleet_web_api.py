"""The reporting API: every endpoint refuses a missing, revoked or foreign token; its figures equal
those computed from the votes, the same in JSON and CSV, with small cells hidden; its OpenAPI document
is valid and describes exactly the routes served; and IT makes and revokes tokens in the browser."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from fleet.db.apitokens import ApiTokenError, ApiTokens, token_hash
from fleet.db.tables import api_tokens, audit_log
from fleet.scores import nps
from fleet.web.api import ENDPOINTS
from fleet.web.apispec import PREFIX
from protocol import TerminalState
from protocol.scales import SCALES

from .conftest import NOON
from .web import Fleet, post_form, store_votes

#: Saturday 2025-03-01 08:00 UTC = 10:00 in Helsinki.
SATURDAY_10 = 1_740_816_000_000
#: Monday 2025-03-03 12:00 UTC = 14:00 in Helsinki.
MONDAY_14 = SATURDAY_10 + 2 * 86_400_000 + 4 * 3_600_000
PERIOD = {"from": "2025-03-01", "to": "2025-03-31"}
#: What each endpoint is asked in the tests that read figures.
ASKED: dict[str, dict[str, str]] = {
    "units": {},
    "terminals": {},
    "scores": {**PERIOD, "period": "week"},
    "daily": PERIOD,
    "reasons": PERIOD,
}
#: The answers stored for Kaukajärvi (misuse presses aside): 30 promoters and 5 passives on Saturday,
#: 5 detractors on Saturday, 3 detractors on Monday who gave a reason.
KAUKAJARVI = [10] * 30 + [8] * 5 + [3] * 5 + [2] * 3
HERVANTA = [9] * 6


@pytest.fixture
def api_fleet(fleet_web: Fleet) -> Fleet:
    """Answers and a placed terminal in each service area (see KAUKAJARVI and HERVANTA)."""
    votes: list[tuple[int, int, dict[str, object]]] = [(SATURDAY_10, a, {}) for a in KAUKAJARVI[:40]]
    votes += [(MONDAY_14, 2, {"role": "relative", "reason": "waiting"})] * 3
    votes += [(SATURDAY_10, 0, {"flags": frozenset({"misuse"})})] * 2
    store_votes(fleet_web, "term-a", "kaukajarvi", votes)
    store_votes(fleet_web, "term-b", "hervanta-oral", [(SATURDAY_10, a, {"reason": "pain"}) for a in HERVANTA])
    for device, unit in (("term-a", "kaukajarvi"), ("term-b", "hervanta-oral")):
        fleet_web.store.record_state(TerminalState(device, True, 1, NOON, "1.4.2"), NOON)
        fleet_web.org.place("test", device, fleet_web.org.tree().by_code[unit].id)
    return fleet_web


def new_token(fleet: Fleet, scope_id: int | None, name: str = "reporting") -> str:
    """A token over ``scope_id`` (None: everything)."""
    return ApiTokens(fleet.store).create("test", name, scope_id)[1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get_json(client: FlaskClient, path: str, token: str, **args: str) -> dict[str, Any]:
    response = client.get(path, query_string=args, headers=bearer(token))
    assert response.status_code == 200, (path, response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    return body


def get_csv(client: FlaskClient, path: str, token: str, **args: str) -> list[list[str]]:
    response = client.get(path, query_string={**args, "format": "csv"}, headers=bearer(token))
    assert response.status_code == 200, (path, response.status_code)
    assert response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def as_csv(value: Any) -> str:
    """A JSON value as the CSV file writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def api_paths(fleet: Fleet) -> set[str]:
    """The API's data routes in the app's URL map (everything under /api/v1 but its description)."""
    return {
        r.rule
        for r in fleet.app.url_map.iter_rules()
        if r.rule.startswith(PREFIX) and r.rule != f"{PREFIX}/openapi.json"
    }


def every_endpoint(fleet: Fleet) -> list[str]:
    """The data endpoints' paths: the declared list, checked against the URL map (so neither misses one)."""
    declared = {PREFIX + ep.path for ep in ENDPOINTS}
    assert declared == api_paths(fleet)
    return sorted(declared)


def assert_refused(response: Any, status: int) -> None:
    assert response.status_code == status, (response.request.path, response.status_code)
    assert response.mimetype == "application/json"
    assert response.get_json()["error"]
    assert "items" not in response.get_json()


# -- refusals -----------------------------------------------------------------------------------


def test_every_endpoint_refuses_a_request_without_a_valid_token(api_fleet: Fleet) -> None:
    client = api_fleet.client()
    revoked = new_token(api_fleet, None, "old")
    tokens = ApiTokens(api_fleet.store)
    tokens.revoke("test", next(t.id for t in tokens.all() if t.name == "old"))
    valid = new_token(api_fleet, None)
    for path in every_endpoint(api_fleet):
        for fmt in ("json", "csv"):
            args = {**ASKED[path.rsplit("/", 1)[1]], "format": fmt}
            missing = client.get(path, query_string=args)
            assert_refused(missing, 401)
            assert missing.headers["WWW-Authenticate"].startswith("Bearer")
            for headers in (
                bearer(revoked),
                bearer("not-a-token"),
                {"Authorization": f"Basic {valid}"},
                {"Authorization": "Bearer "},
            ):
                refused = client.get(path, query_string=args, headers=headers)
                assert_refused(refused, 401)
                assert "WWW-Authenticate" in refused.headers
            assert client.get(path, query_string=args, headers=bearer(valid)).status_code == 200


def test_a_token_for_another_part_of_the_organisation_never_sees_this_part(api_fleet: Fleet) -> None:
    client = api_fleet.client()
    oral = new_token(api_fleet, api_fleet.other_area.id)
    elsewhere = ["kaukajarvi", "phc", "pirkanmaa"]  # the unit, its area, and the region above the token's part
    for path in every_endpoint(api_fleet):
        args = ASKED[path.rsplit("/", 1)[1]]
        for node in elsewhere:
            for fmt in ("json", "csv"):
                refused = client.get(path, query_string={**args, "node": node, "format": fmt}, headers=bearer(oral))
                assert_refused(refused, 404)
        unknown = client.get(path, query_string={**args, "node": "no-such-node"}, headers=bearer(oral))
        assert_refused(unknown, 404)
        assert unknown.get_json() == {"error": "node: no node 'no-such-node' in this token's part of the organisation"}
        own = get_json(client, path, oral, **args)
        text = json.dumps(own) + "\n".join(map(",".join, get_csv(client, path, oral, **args)))
        assert own["items"], path  # its own part has rows…
        assert not any(word in text for word in ("kaukajarvi", "phc", "pirkanmaa", "term-a")), path  # …and only those
    units = get_json(client, f"{PREFIX}/units", oral)["items"]
    assert [(u["code"], u["parent"]) for u in units] == [("oral", None), ("hervanta-oral", "oral")]
    assert [t["device"] for t in get_json(client, f"{PREFIX}/terminals", oral)["items"]] == ["term-b"]


def test_a_unit_token_sees_its_unit_and_a_token_over_everything_sees_every_unit(api_fleet: Fleet) -> None:
    client = api_fleet.client()
    unit = new_token(api_fleet, api_fleet.unit.id)
    everything = new_token(api_fleet, None)
    assert [u["code"] for u in get_json(client, f"{PREFIX}/units", unit)["items"]] == ["kaukajarvi"]
    assert_refused(client.get(f"{PREFIX}/units", query_string={"node": "phc"}, headers=bearer(unit)), 404)
    codes = [u["code"] for u in get_json(client, f"{PREFIX}/units", everything)["items"]]
    assert sorted(codes) == ["hervanta-oral", "kaukajarvi", "oral", "phc", "pirkanmaa"]
    whole = get_json(client, f"{PREFIX}/scores", everything, **PERIOD)["items"]
    assert [(r["node"], r["n"]) for r in whole] == [(None, len(KAUKAJARVI) + len(HERVANTA))]


# -- figures ------------------------------------------------------------------------------------


def nps_of(answers: list[int]) -> tuple[float, float, float]:
    counts = [answers.count(a) for a in range(11)]
    s = nps(counts, SCALES["nps11"])
    assert s.nps is not None and s.low is not None and s.high is not None
    return round(s.nps, 2), round(s.low, 2), round(s.high, 2)


def test_the_scores_are_those_computed_from_the_votes(api_fleet: Fleet) -> None:
    client = api_fleet.client()
    token = new_token(api_fleet, None)
    total = get_json(client, f"{PREFIX}/scores", token, node="kaukajarvi", **PERIOD)
    assert total["parameters"] == {
        "node": "kaukajarvi",
        "from": "2025-03-01",
        "to": "2025-03-31",
        "question": None,
        "scale": None,
        "period": "total",
        "format": "json",
    }
    [row] = total["items"]
    value, low, high = nps_of(KAUKAJARVI)  # 30 promoters, 8 detractors of 43: +51.16
    assert row == {
        "node": "kaukajarvi",
        "question": "thl-nps",
        "scale": "nps11",
        "period": "total",
        "start": "2025-03-01",
        "end": "2025-03-31",
        "n": 43,
        "kind": "nps",
        "value": value,
        "low": low,
        "high": high,
        "hidden": False,
    }
    assert value == 51.16
    months = get_json(client, f"{PREFIX}/scores", token, node="phc", period="month", **PERIOD)["items"]
    assert [(r["start"], r["end"], r["n"], r["value"]) for r in months] == [("2025-03-01", "2025-03-31", 43, value)]
    region = get_json(client, f"{PREFIX}/scores", token, node="pirkanmaa", **PERIOD)["items"]
    assert region[0]["value"] == nps_of(KAUKAJARVI + HERVANTA)[0]
    days = get_json(client, f"{PREFIX}/daily", token, node="pirkanmaa", **PERIOD)["items"]
    assert [(r["unit"], r["day"], r["n"]) for r in days] == [
        ("hervanta-oral", "2025-03-01", 6),
        ("kaukajarvi", "2025-03-01", 40),
        ("kaukajarvi", "2025-03-03", None),
    ]
    reasons = get_json(client, f"{PREFIX}/reasons", token, node="oral", **PERIOD)["items"]
    assert [(r["reason"], r["n"], r["value"]) for r in reasons] == [("pain", 6, 100.0)]
    assert get_json(client, f"{PREFIX}/scores", token, question="other", **PERIOD)["items"] == []
    assert get_json(client, f"{PREFIX}/scores", token, scale="faces4", **PERIOD)["items"] == []


def test_terminals_and_units_carry_their_fields_with_iso_times(api_fleet: Fleet) -> None:
    client = api_fleet.client()
    token = new_token(api_fleet, api_fleet.area.id)
    [terminal] = get_json(client, f"{PREFIX}/terminals", token)["items"]
    assert terminal == {
        "device": "term-a",
        "unit": "kaukajarvi",
        "online": True,
        "last_seen": "2025-03-01T12:00:00Z",
        "firmware": "1.4.2",
        "applied_version": 0,
        "queue": None,
        "retired": False,
    }
    unit = get_json(client, f"{PREFIX}/units", token, node="kaukajarvi")["items"]
    assert unit == [
        {
            "code": "kaukajarvi",
            "kind": "unit",
            "parent": "phc",
            "name_fi": "Kaukajärven terveysasema",
            "name_sv": None,
            "name_en": "Kaukajärvi health centre",
            "service_type": "health_centre",
            "oid": None,
            "target": None,
            "archived": False,
        }
    ]


def test_json_and_csv_give_the_same_rows_under_the_documented_names(api_fleet: Fleet) -> None:
    client = api_fleet.client()
    token = new_token(api_fleet, None)
    for ep in ENDPOINTS:
        for node in ("pirkanmaa", "kaukajarvi"):
            args = {**ASKED[ep.name], "node": node}
            rows = get_json(client, PREFIX + ep.path, token, **args)["items"]
            table = get_csv(client, PREFIX + ep.path, token, **args)
            names = [f.name for f in ep.fields]
            assert table[0] == names
            assert all(list(r) == names for r in rows), ep.name
            assert table[1:] == [[as_csv(r[n]) for n in names] for r in rows], ep.name
            assert rows, (ep.name, node)


def test_a_cell_with_fewer_answers_than_the_minimum_is_hidden_in_json_and_csv(api_fleet: Fleet) -> None:
    client = api_fleet.client()
    token = new_token(api_fleet, None)
    monday = get_json(client, f"{PREFIX}/scores", token, node="kaukajarvi", period="day", **PERIOD)["items"]
    by_day = {r["start"]: r for r in monday}
    assert by_day["2025-03-03"] == {
        **by_day["2025-03-03"],
        "n": None,
        "value": None,
        "low": None,
        "high": None,
        "hidden": True,
    }
    assert by_day["2025-03-02"]["n"] == 0 and by_day["2025-03-02"]["hidden"] is False  # empty is not hidden
    checked = 0
    for ep in ENDPOINTS:
        if "n" not in [f.name for f in ep.fields]:
            continue
        periods = ("day", "week", "total") if ep.name == "scores" else (None,)
        for args in ({**PERIOD, **({"period": p} if p else {})} for p in periods):
            rows = get_json(client, PREFIX + ep.path, token, node="kaukajarvi", **args)["items"]
            table = get_csv(client, PREFIX + ep.path, token, node="kaukajarvi", **args)
            head = table[0]
            if args.get("period") != "total":  # the total has 43 answers: nothing to hide
                assert any(r["hidden"] for r in rows), f"{ep.name}: the Monday's 3 answers are not hidden"
            for r in rows:
                assert r["n"] is None or r["n"] == 0 or r["n"] >= 5, (ep.name, r)
                if r["hidden"]:
                    assert r["n"] is None and r.get("value") is None and r.get("low") is None, (ep.name, r)
            for line in table[1:]:
                cell = dict(zip(head, line, strict=True))
                if cell["hidden"] == "true":
                    checked += 1
                    assert cell["n"] == "" and cell.get("value", "") == "" and cell.get("high", "") == "", cell
                else:
                    assert cell["n"] == "0" or int(cell["n"]) >= 5, cell
    assert checked >= 3


def test_the_staff_minimum_setting_decides_what_is_hidden(api_fleet: Fleet) -> None:
    api_fleet.app.config["HYMY"] = type(api_fleet.app.config["HYMY"])(
        db="unused", secure_cookies=False, secret_key="test", staff_minimum=50
    )
    token = new_token(api_fleet, None)
    [row] = get_json(api_fleet.client(), f"{PREFIX}/scores", token, node="kaukajarvi", **PERIOD)["items"]
    assert row["hidden"] is True and row["n"] is None


# -- parameters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ({"period": "year"}, "period: 'year' is not allowed; use one of day, week, month, total"),
        ({"from": "2025-13-01"}, "from: '2025-13-01' is not a date; use YYYY-MM-DD"),
        ({"to": "1.3.2025"}, "to: '1.3.2025' is not a date"),
        ({"to": "20250301"}, "to: '20250301' is not a date"),
        ({"from": "2025-03-31", "to": "2025-03-01"}, "from: 2025-03-31 is after to (2025-03-01)"),
        ({"from": "2020-01-01", "to": "2025-03-01"}, "a request covers at most 1098 days"),
        ({"scale": "stars"}, "scale: 'stars' is not allowed; use one of nps11, faces4, faces5, agree5"),
        ({"format": "xml"}, "format: 'xml' is not allowed; use one of json, csv"),
        ({"node": ""}, "node: give a value"),
        ({"unit": "kaukajarvi"}, "unit: not a parameter of /api/v1/scores; it takes node, from, to"),
    ],
)
def test_a_bad_parameter_is_refused_naming_the_parameter_and_what_it_takes(
    api_fleet: Fleet, args: dict[str, str], said: str
) -> None:
    response = api_fleet.client().get(f"{PREFIX}/scores", query_string=args, headers=bearer(new_token(api_fleet, None)))
    assert_refused(response, 400)
    assert said in response.get_json()["error"]


def test_the_period_defaults_to_the_last_30_days_in_finland(api_fleet: Fleet) -> None:
    token = new_token(api_fleet, None)
    today = datetime.now(ZoneInfo("Europe/Helsinki")).date()
    applied = get_json(api_fleet.client(), f"{PREFIX}/scores", token)["parameters"]
    if date.fromisoformat(applied["to"]) != today:  # midnight passed during the request
        today = date.fromisoformat(applied["to"])
    assert applied["from"] == (today - timedelta(days=29)).isoformat()


# -- the description ----------------------------------------------------------------------------


def test_the_openapi_document_is_valid_and_describes_exactly_the_routes_served(api_fleet: Fleet) -> None:
    client = api_fleet.client()
    response = client.get(f"{PREFIX}/openapi.json")  # no token: it holds no data
    assert response.status_code == 200 and response.mimetype == "application/json"
    doc = response.get_json()
    validate(doc)
    served = {r.rule for r in api_fleet.app.url_map.iter_rules() if r.rule.startswith(PREFIX)}
    assert set(doc["paths"]) == served
    assert "fewer than 5" in doc["info"]["description"]
    token = new_token(api_fleet, None)
    for ep in ENDPOINTS:
        operation = doc["paths"][PREFIX + ep.path]["get"]
        assert {p["name"] for p in operation["parameters"]} == {p.name for p in ep.params}
        assert {"401", "404", "400"} <= set(operation["responses"])
        schema = dict(operation["responses"]["200"]["content"]["application/json"]["schema"])
        schema["components"] = doc["components"]  # its rows' $ref resolve inside the document
        body = get_json(client, PREFIX + ep.path, token, **ASKED[ep.name])
        assert body["items"], ep.name
        Draft202012Validator(schema).validate(body)


# -- tokens in the browser ------------------------------------------------------------------------

_NEW_TOKEN = re.compile(r'id="new-token" type="text" readonly value="([^"]+)"')


def test_it_creates_a_token_sees_it_once_and_revokes_it_and_the_audit_log_never_holds_it(api_fleet: Fleet) -> None:
    admin = api_fleet.client("admin")
    assert admin.get("/api-tokens/").status_code == 200
    made = post_form(admin, "/api-tokens/", {"name": "Raportointi", "scope": api_fleet.area.id})
    assert made.status_code == 200
    page = made.get_data(as_text=True)
    found = _NEW_TOKEN.search(page)
    assert found is not None, page
    token = found.group(1)
    assert "shown only this once" in page
    assert made.headers["Cache-Control"] == "no-store"
    reader = api_fleet.client()
    assert [u["code"] for u in get_json(reader, f"{PREFIX}/units", token)["items"]] == ["phc", "kaukajarvi"]
    listing = admin.get("/api-tokens/").get_data(as_text=True)
    assert "Raportointi" in listing and token not in listing  # shown once only
    [record] = ApiTokens(api_fleet.store).all()
    assert record.last_used_at is not None and record.scope_id == api_fleet.area.id
    revoked = post_form(admin, f"/api-tokens/{record.id}/revoke", {}, form_page="/api-tokens/")
    assert revoked.status_code == 302
    assert_refused(reader.get(f"{PREFIX}/units", headers=bearer(token)), 401)
    assert "revoked" in admin.get("/api-tokens/").get_data(as_text=True)
    with api_fleet.store.reading() as conn:
        log = [r._mapping for r in conn.execute(sa.select(audit_log).where(audit_log.c.object.like("api_token:%")))]
        stored = conn.execute(sa.select(api_tokens.c.token_hash)).scalar_one()
    assert [(e["actor"], e["action"]) for e in log] == [("admin", "api_token.create"), ("admin", "api_token.revoke")]
    assert stored == token_hash(token) and stored != token
    assert not any(token in str(e) or stored in str(e) for e in log)
    audit_page = admin.get("/audit").get_data(as_text=True)
    assert "API token: created" in audit_page and "API token: revoked" in audit_page
    assert token not in audit_page and stored not in audit_page


def test_a_token_without_a_name_is_not_made(api_fleet: Fleet) -> None:
    refused = post_form(api_fleet.client("admin"), "/api-tokens/", {"name": " ", "scope": 0})
    assert refused.status_code == 400
    assert ApiTokens(api_fleet.store).all() == []


@pytest.mark.parametrize("role", ["manager", "viewer"])
def test_only_it_manages_tokens(api_fleet: Fleet, role: str) -> None:
    made = ApiTokens(api_fleet.store).create("test", "reporting", None)[0]
    client = api_fleet.client(role)
    assert client.get("/api-tokens/").status_code == 403
    refused = post_form(client, f"/api-tokens/{made.id}/revoke", {}, form_page="/")
    assert refused.status_code == 403
    assert ApiTokens(api_fleet.store).get(made.id) == made
    assert "/api-tokens" not in client.get("/").get_data(as_text=True)


def test_a_token_notes_its_last_use_at_most_once_a_minute(api_fleet: Fleet) -> None:
    now = [1_000.0]
    tokens = ApiTokens(api_fleet.store, clock=lambda: now[0])
    made, token = tokens.create("test", "reporting", None)
    assert made.last_used_at is None
    assert tokens.check(token) == made
    assert tokens.get(made.id).last_used_at == 1_000_000  # type: ignore[union-attr]
    now[0] += 30
    tokens.check(token)
    assert tokens.get(made.id).last_used_at == 1_000_000  # type: ignore[union-attr]
    now[0] += 31
    tokens.check(token)
    assert tokens.get(made.id).last_used_at == 1_061_000  # type: ignore[union-attr]
    assert tokens.check("") is None and tokens.check(token + "x") is None


def test_a_token_covers_a_region_an_area_or_a_unit_and_nothing_that_does_not_exist(api_fleet: Fleet) -> None:
    tokens = ApiTokens(api_fleet.store)
    room = api_fleet.org.add("test", "location", api_fleet.unit.id, "kaukajarvi-aula", name_fi="Aula")
    with pytest.raises(ApiTokenError, match="not a location"):
        tokens.create("test", "reporting", room.id)
    with pytest.raises(ApiTokenError, match="no organisation node"):
        tokens.create("test", "reporting", 9999)
    assert tokens.all() == []
    token = new_token(api_fleet, api_fleet.unit.id)
    client = api_fleet.client()
    located = get_json(client, f"{PREFIX}/scores", token, node="kaukajarvi-aula", **PERIOD)  # a location: its unit
    assert located["parameters"]["node"] == "kaukajarvi" and located["items"][0]["n"] == len(KAUKAJARVI)
