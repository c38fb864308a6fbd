"""Public results: no sign-in, a small unit says "not enough answers yet", no combination of public
pages gives a hidden figure away, the widget is embeddable only where allowed, the JSON is open."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fleet.store import DEFAULT_TZ
from fleet.web import create_app
from fleet.web.public import trend_months
from fleet.web.settings import Settings

from .web import Fleet, store_votes


def _at(days_ago: int) -> int:
    """10:00 in Helsinki, ``days_ago`` days before today, in ms."""
    day = datetime.now(ZoneInfo(DEFAULT_TZ)).date() - timedelta(days=days_ago)
    return int(datetime(day.year, day.month, day.day, 10, tzinfo=ZoneInfo(DEFAULT_TZ)).timestamp() * 1000)


@pytest.fixture
def public_fleet(fleet_web: Fleet) -> Fleet:
    """Yesterday: Kaukajärvi 10 answers (too few), Hervanta 40 (all 10s) in the same area, and the
    oral health unit 100 in the other area. 40 days ago: Kaukajärvi 35 answers (all 9s)."""
    fleet_web.org.add(
        "test", "unit", fleet_web.area.id, "hervanta", name_fi="Hervannan terveysasema", service_type="health_centre"
    )
    store_votes(fleet_web, "term-a", "kaukajarvi", [(_at(1), 8, {})] * 10 + [(_at(40), 9, {})] * 35)
    store_votes(fleet_web, "term-b", "hervanta", [(_at(1), 10, {})] * 40)
    store_votes(fleet_web, "term-c", "hervanta-oral", [(_at(1), 6, {})] * 100)
    return fleet_web


def data_of(fleet: Fleet, code: str) -> dict[str, object]:
    response = fleet.client().get(f"/public/{code}.json")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    body: dict[str, object] = json.loads(response.get_data(as_text=True))
    return body


def window_of(fleet: Fleet, code: str) -> dict[str, object]:
    (figure,) = data_of(fleet, code)["figures"]  # type: ignore[misc]
    return figure["window"]  # type: ignore[no-any-return]


def test_a_unit_with_too_few_answers_shows_none_and_its_parents_do_not_give_it_away(public_fleet: Fleet) -> None:
    assert window_of(public_fleet, "kaukajarvi") == {"shown": False}
    # The area (50 answers) minus Hervanta (40) would be Kaukajärvi; the region minus the oral area
    # would be the area: both are hidden too.
    assert window_of(public_fleet, "phc") == {"shown": False}
    assert window_of(public_fleet, "pirkanmaa") == {"shown": False}
    assert window_of(public_fleet, "hervanta") == {
        "shown": True,
        "kind": "nps",
        "value": 100.0,
        "low": 83.6,
        "high": 100.0,
        "n": 40,
    }
    assert window_of(public_fleet, "oral")["value"] == -100.0
    text = public_fleet.client().get("/public/kaukajarvi").get_data(as_text=True)
    assert "Not enough answers yet." in text and '<span class="figure">' not in text
    region = public_fleet.client().get("/public/pirkanmaa").get_data(as_text=True)
    assert '<span class="figure">' not in region  # the region's own figure is hidden
    assert '<td class="num">-100</td>' in region  # the oral area is listed as a part, with its figure


def test_the_monthly_trend_shows_only_complete_months_with_enough_answers(public_fleet: Fleet) -> None:
    figure = data_of(public_fleet, "kaukajarvi")["figures"][0]  # type: ignore[index]
    months = {m["month"]: m for m in figure["months"]}
    forty_days_ago = datetime.now(ZoneInfo(DEFAULT_TZ)).date() - timedelta(days=40)
    assert months[forty_days_ago.isoformat()[:7]]["value"] == 100.0  # 35 nines: all promoters
    assert sorted(months) == [m.isoformat()[:7] for m in trend_months()]
    assert all(m["shown"] is False for k, m in months.items() if k != forty_days_ago.isoformat()[:7])


def test_public_pages_need_no_sign_in_but_staff_pages_still_do(public_fleet: Fleet) -> None:
    anonymous = public_fleet.client()
    for path in ("/public/", "/public/pirkanmaa", "/public/hervanta", "/public/hervanta/widget"):
        response = anonymous.get(path)
        assert response.status_code == 200, path
        assert "public" in response.headers["Cache-Control"]
    assert anonymous.get("/results/").status_code == 302
    assert anonymous.get("/public/no-such-unit").status_code == 404
    assert anonymous.get("/public/no-such-unit.json").status_code == 404


def test_an_archived_unit_has_no_public_page(public_fleet: Fleet) -> None:
    hervanta = public_fleet.org.tree().by_code["hervanta"]
    public_fleet.org.set_archived("test", hervanta.id, True)
    assert public_fleet.client().get("/public/hervanta").status_code == 404
    # Its answers still count in the area, where they hide among Kaukajärvi's: the area shows only
    # the two together, neither one alone.
    area = window_of(public_fleet, "phc")
    assert area["n"] == 50 and window_of(public_fleet, "kaukajarvi") == {"shown": False}


def test_the_widget_may_be_embedded_only_by_the_configured_sites(public_fleet: Fleet) -> None:
    closed = public_fleet.client().get("/public/hervanta/widget")
    assert "frame-ancestors 'none'" in closed.headers["Content-Security-Policy"]
    assert closed.headers["X-Frame-Options"] == "DENY"
    settings = Settings(db="unused", secret_key="test", embed_origins="https://www.example-county.fi")
    opened = create_app(settings, store=public_fleet.store).test_client()
    response = opened.get("/public/hervanta/widget")
    assert response.headers["Content-Security-Policy"].endswith("frame-ancestors https://www.example-county.fi")
    assert "X-Frame-Options" not in response.headers
    assert "+100" in response.get_data(as_text=True)
    staff_page = opened.get("/login")
    assert "frame-ancestors 'none'" in staff_page.headers["Content-Security-Policy"]


def test_public_pages_speak_the_language_asked_for(public_fleet: Fleet) -> None:
    client = public_fleet.client()
    assert 'lang="sv"' in client.get("/public/hervanta?lang=sv").get_data(as_text=True)
    assert 'lang="fi"' in client.get("/public/hervanta?lang=fi").get_data(as_text=True)
