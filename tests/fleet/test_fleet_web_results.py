"""Staff results: the figures equal those computed from the votes, every breakdown hides cells under the
minimum in every format, the filters work, and nobody sees results outside their part."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest

from fleet.web.results import PARTS

from .web import Fleet, store_votes

#: Saturday 2025-03-01 08:00 UTC = 10:00 in Helsinki.
SATURDAY_10 = 1_740_816_000_000
#: Monday 2025-03-03 12:00 UTC = 14:00 in Helsinki.
MONDAY_14 = SATURDAY_10 + 2 * 86_400_000 + 4 * 3_600_000
PERIOD = {"from": "2025-03-01", "to": "2025-03-31"}
_TABLE = re.compile(r'<table class="figures" id="table-(\w+)">(.*?)</table>', re.S)
_ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
_CELL = re.compile(r"<t[hd][^>]*>(.*?)</t[hd]>", re.S)


@pytest.fixture
def results_fleet(fleet_web: Fleet) -> Fleet:
    """40 answers on Saturday morning, 3 on Monday afternoon (relatives, the waiting time), 2 misuse
    presses; and a like unit (a health centre too) with 2 answers."""
    votes: list[tuple[int, int, dict[str, object]]] = [(SATURDAY_10, 10, {})] * 30
    votes += [(SATURDAY_10, 8, {})] * 5 + [(SATURDAY_10, 3, {})] * 5
    votes += [(MONDAY_14, 2, {"role": "relative", "reason": "waiting"})] * 3
    votes += [(SATURDAY_10, 0, {"flags": frozenset({"misuse"})})] * 2
    store_votes(fleet_web, "term-a", "kaukajarvi", votes)
    fleet_web.org.add(
        "test", "unit", fleet_web.area.id, "hervanta", name_fi="Hervannan terveysasema", service_type="health_centre"
    )
    store_votes(fleet_web, "term-b", "hervanta", [(SATURDAY_10, 9, {})] * 2)
    return fleet_web


def page(client, path: str, **args: object) -> str:  # type: ignore[no-untyped-def]
    response = client.get(path, query_string=args)
    assert response.status_code == 200, response.status_code
    return str(response.get_data(as_text=True))


def tables_of(text: str) -> dict[str, list[list[str]]]:
    """The rows of each results table on a page, as plain text cells (header row first)."""
    out = {}
    for part, body in _TABLE.findall(text):
        rows = [
            [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in _CELL.findall(r)] for r in _ROW.findall(body)
        ]
        out[part] = [r for r in rows if r]
    return out


def csv_of(client, node_id: int, part: str, **args: object) -> list[list[str]]:  # type: ignore[no-untyped-def]
    response = client.get(f"/results/{node_id}/{part}.csv", query_string=args)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_the_unit_page_shows_the_score_computed_from_the_votes(results_fleet: Fleet) -> None:
    client = results_fleet.client("manager")
    text = page(client, f"/results/{results_fleet.unit.id}", **PERIOD)
    # 43 answers without the misuse presses: 30 promoters, 8 detractors: NPS 22/43 = 51.2.
    assert '<span class="figure">+51</span>' in text
    assert "43 answers" in text
    with_misuse = page(client, f"/results/{results_fleet.unit.id}", misuse="1", **PERIOD)
    assert '<span class="figure">+44</span>' in with_misuse  # 2 more detractors: 20/45 = 44.4
    assert "45 answers" in with_misuse


def test_every_breakdown_hides_cells_under_the_minimum_in_the_page_and_in_csv(results_fleet: Fleet) -> None:
    client = results_fleet.client("manager")
    node = results_fleet.unit.id
    text = page(client, f"/results/{node}", **PERIOD)
    shown = tables_of(text)
    assert set(shown) == set(PARTS) - {"heatmap"}  # the heat map is a grid, checked below
    for part in PARTS:
        rows = csv_of(client, node, part, **PERIOD)
        head, body = rows[0], rows[1:]
        n_at = head.index("Answers")
        counts = [r[n_at] for r in body]
        assert "fewer than 5" in counts, f"{part}: the small cell is not hidden ({counts})"
        for r in body:
            n = r[n_at]
            assert n == "fewer than 5" or int(n) == 0 or int(n) >= 5, f"{part}: a cell shows {n} answers: {r}"
            if n == "fewer than 5":
                assert not any(re.search(r"\d", v) for v in r[n_at + 1 :]), f"{part}: a hidden cell shows {r}"
        if part != "heatmap":
            assert shown[part] == rows, f"{part}: the page and the CSV file differ"
    # The heat map: Monday 14–15 has 3 answers, so it shows only "<5".
    grid = text[text.index('<table class="heat">') :]
    grid = grid[: grid.index("</table>")]
    monday = re.search(r"<th scope=\"row\">Monday</th>(.*?)</tr>", grid, re.S)
    assert monday is not None and "&lt;5" in monday.group(1)
    assert not re.search(r"<small>[1-4]</small>", grid)
    assert "<small>40</small>" in grid  # Saturday 10–11


def test_no_view_shows_a_time_of_day_finer_than_the_hour(results_fleet: Fleet) -> None:
    client = results_fleet.client("admin")
    text = page(client, f"/results/{results_fleet.unit.id}", **PERIOD)
    main = text[text.index("<main") : text.index("</main>")]
    assert not re.search(r"\b\d{1,2}[:.]\d{2}\b", re.sub(r"<[^>]+>", " ", main))
    heat = csv_of(client, results_fleet.unit.id, "heatmap", **PERIOD)
    assert {r[1] for r in heat[1:]} == {"10–11", "14–15"}


def test_the_trend_offers_a_coarser_period_when_days_are_hidden(results_fleet: Fleet) -> None:
    client = results_fleet.client("manager")
    text = page(client, f"/results/{results_fleet.unit.id}", period="day", **PERIOD)
    assert "Show by week" in text
    by_month = page(client, f"/results/{results_fleet.unit.id}", period="month", **PERIOD)
    assert "Show by" not in by_month
    assert tables_of(by_month)["trend"][1][:2] == ["March 2025", "43"]


def test_the_role_filter_and_the_question_choice_narrow_every_figure(results_fleet: Fleet) -> None:
    client = results_fleet.client("manager")
    text = page(client, f"/results/{results_fleet.unit.id}", role="none", **PERIOD)
    assert "40 answers" in text  # the relatives' 3 are left out
    text = page(client, f"/results/{results_fleet.unit.id}", role="relative", **PERIOD)
    assert "Fewer than 5 answers: no figure is shown" in text


def test_the_comparison_ranks_like_units_and_hides_the_small_one(results_fleet: Fleet) -> None:
    client = results_fleet.client("manager")
    rows = csv_of(client, results_fleet.unit.id, "comparison", **PERIOD)
    assert [r[:4] for r in rows[1:]] == [
        ["1", "Kaukajärvi health centre", "Health centre reception", "43"],
        ["", "Hervannan terveysasema", "Health centre reception", "fewer than 5"],
    ]


def test_an_area_page_sums_its_units(results_fleet: Fleet) -> None:
    client = results_fleet.client("manager")
    text = page(client, f"/results/{results_fleet.area.id}", **PERIOD)
    assert "45 answers" in text  # 43 + 2


def test_results_outside_ones_part_are_not_found_and_anonymous_people_sign_in(results_fleet: Fleet) -> None:
    viewer = results_fleet.client("viewer")
    assert viewer.get(f"/results/{results_fleet.unit.id}", query_string=PERIOD).status_code == 200
    assert viewer.get(f"/results/{results_fleet.other_unit.id}").status_code == 404
    assert viewer.get(f"/results/{results_fleet.other_unit.id}/trend.csv").status_code == 404
    assert viewer.get(f"/results/{results_fleet.region.id}").status_code == 404
    anonymous = results_fleet.client()
    response = anonymous.get(f"/results/{results_fleet.unit.id}/trend.csv")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_bad_filter_values_are_explained_and_replaced(results_fleet: Fleet) -> None:
    client = results_fleet.client("manager")
    text = page(client, f"/results/{results_fleet.unit.id}", **{"from": "<script>", "to": "2025-03-31"})
    assert "is not a date" in text and "<script>" not in text
    assert client.get(f"/results/{results_fleet.unit.id}/secrets.csv").status_code == 404
    swapped = page(client, f"/results/{results_fleet.unit.id}", **{"from": "2025-03-31", "to": "2025-03-01"})
    assert "swapped" in swapped and "43 answers" in swapped


def test_the_printable_report_heads_with_the_figure_its_answers_and_the_months(results_fleet: Fleet) -> None:
    client = results_fleet.client("manager")
    text = page(client, f"/results/{results_fleet.unit.id}/report", **{"from": "2025-03", "to": "2025-03"})
    assert re.search(r"NPS \+51</strong>,\s+43 answers, March 2025", text), text[text.find("headline") :][:400]
    tables = tables_of(text)
    assert set(tables) == {"trend", "reasons", "comparison"}
    assert tables["trend"][0][0] == "Week"  # one month: by week
    assert "fewer than 5" in [r[1] for r in tables["trend"][1:]]  # the week of Monday's 3 answers
    several = page(client, f"/results/{results_fleet.unit.id}/report", **{"from": "2025-01", "to": "2025-03"})
    assert "January 2025 – March 2025" in several and tables_of(several)["trend"][0][0] == "Month"
    assert results_fleet.client("viewer").get(f"/results/{results_fleet.other_unit.id}/report").status_code == 404


def test_the_channel_filter_keeps_the_answers_of_the_chosen_channels(results_fleet: Fleet) -> None:
    import sqlalchemy as sa

    store = results_fleet.store
    with store.transaction():  # Hervanta's two answers as if given on the feedback form (issue 15's channel)
        store._conn.execute(sa.text("UPDATE votes SET channel = 'web' WHERE device = 'term-b'"))
    store.rebuild_rollup()
    client = results_fleet.client("manager")
    area = f"/results/{results_fleet.area.id}"
    everything = page(client, area, **PERIOD)
    assert "45 answers" in everything and 'name="channel" value="web"' in everything
    assert "43 answers" in page(client, area, channel="terminal", **PERIOD)
    only_web = page(client, area, channel="web", **PERIOD)
    assert "Fewer than 5 answers: no figure is shown" in only_web
    assert "45 answers" in page(client, area, channel=["terminal", "web"], **PERIOD)
    assert "45 answers" in page(client, area, channel="carrier-pigeon", **PERIOD)  # unknown: ignored
