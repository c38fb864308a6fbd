"""The results pages at scale: each main view's server time beside the rollup reads it makes, in one run.

Runs on a store that ``aggbench.generate`` filled (a year of votes from 1,000 terminals in 50 units):
it adds the organisation those units belong to (one region, five service areas of ten health
centres), a signed-in administrator and an API token, then times each view through the Flask test
client (the whole request in this process: routing, access checks, rollup reads, figures, template;
no network) and, beside it, the store's rollup reads for the same figures called directly.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fleet.db.accounts import Accounts
from fleet.db.org import Organisation
from fleet.db.results import Query, Results
from fleet.db.store import SqlFleetStore
from fleet.store import DEFAULT_TZ
from fleet.web import create_app
from fleet.web.settings import Settings

from .aggbench import UNITS

AREAS = 5
_TOKEN = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def _timed(fn: Callable[[], Any], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def build_org(store: SqlFleetStore) -> dict[str, Any]:
    """The region, areas and units of the generated votes; returns their ids and codes."""
    org = Organisation(store)
    tree = org.tree()
    if "bench-region" in tree.by_code:
        region = tree.by_code["bench-region"]
    else:
        region = org.add("bench", "region", None, "bench-region", name_fi="Vertailualue")
        for a in range(AREAS):
            area = org.add("bench", "area", region.id, f"bench-area-{a}", name_fi=f"Palvelualue {a}")
            for u in range(a * UNITS // AREAS, (a + 1) * UNITS // AREAS):
                org.add(
                    "bench", "unit", area.id, f"unit-{u:02d}", name_fi=f"Terveysasema {u}", service_type="health_centre"
                )
    tree = org.tree()
    return {
        "region": tree.by_code["bench-region"],
        "area": tree.by_code["bench-area-0"],
        "unit": tree.by_code["unit-07"],
        "units": tuple(sorted(tree.unit_codes(None))),
        "area_units": tuple(sorted(tree.unit_codes(tree.by_code["bench-area-0"].id))),
    }


def bench_views(store: SqlFleetStore, rounds: int = 5) -> dict[str, Any]:
    """Server time of each main view and of its rollup reads alone, in seconds per round."""
    nodes = build_org(store)
    password = secrets.token_urlsafe(12)
    accounts = Accounts(store)
    username = f"bench-{secrets.token_hex(4)}"
    accounts.create("bench", username, password, "admin", None, "en")
    app = create_app(Settings(db="unused", secret_key=secrets.token_hex(16), secure_cookies=False), store=store)
    client = app.test_client()
    login = client.get("/login").get_data(as_text=True)
    found = _TOKEN.search(login)
    assert found is not None
    client.post("/login", data={"username": username, "password": password, "csrf_token": found.group(1)})
    token = _api_token(store, app)
    today = datetime.now(ZoneInfo(DEFAULT_TZ)).date()
    month, year = today - timedelta(days=29), today - timedelta(days=364)
    results = Results(store)
    region, area, unit = nodes["region"], nodes["area"], nodes["unit"]

    def q(units: tuple[str, ...], first: date) -> Query:
        return Query(units, "thl-nps", "nps11", first, today)

    def page_reads(query: Query, by_month: bool, like: tuple[str, ...] | None = None) -> None:
        """The reads a results page makes: total, trend, roles and reasons in one cube, the heat map,
        and the comparison (a unit's like units: every health centre here; an area's own units)."""
        results.cube(query, by_day=not by_month)
        results.heat(query)
        results.by_unit(Query(like or query.units, query.question, query.scale, query.first, query.last))

    def public_reads() -> None:
        from fleet.web.public import published

        with app.test_request_context("/public/"):
            published(Organisation(store).tree())

    def get(path: str, **headers: str) -> Callable[[], Any]:
        def call() -> Any:
            response = client.get(path, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: {response.status_code}")
            return response

        return call

    views: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "region_dashboard_30_days": (
            get(f"/results/{region.id}"),
            lambda: page_reads(q(nodes["units"], month), False),
        ),
        "unit_year_by_month": (
            get(f"/results/{unit.id}?from={year}&to={today}&period=month"),
            lambda: page_reads(q((unit.code,), year), True, nodes["units"]),
        ),
        "comparison_area_year_csv": (
            get(f"/results/{area.id}/comparison.csv?from={year}&to={today}"),
            lambda: results.by_unit(q(nodes["area_units"], year)),
        ),
        "public_region_page": (get("/public/bench-region"), public_reads),
    }
    if token is not None:
        views["api_unit_scores_by_month"] = (
            get(
                f"/api/v1/scores?node={unit.code}&from={year}&to={today}&period=month",
                Authorization=f"Bearer {token}",
            ),
            lambda: results.by_month(q((unit.code,), year)),
        )
    out: dict[str, Any] = {}
    for name, (view, reads) in views.items():
        view()  # warm: templates compiled, caches filled, as on a server that has been up
        out[name] = {"view_s": _timed(view, rounds), "rollup_s": _timed(reads, rounds)}
    return out


def _api_token(store: SqlFleetStore, app: Any) -> str | None:
    """A token for the whole organisation, if this fleet has the API."""
    try:
        from fleet.db.apitokens import ApiTokens
    except ImportError:
        return None
    _record, plain = ApiTokens(store).create("bench", "bench", None)
    return str(plain)
