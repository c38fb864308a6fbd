"""The read-only reporting API, /api/v1: units, terminals, scores, daily counts and reasons, as JSON or
CSV, for reporting systems that IT gives a token (fleet/web/apitokens.py).

Every endpoint is declared once, in ``ENDPOINTS`` (the declaration's types: fleet/web/apispec.py): its
path, parameters and the fields of its rows. That one list registers the routes, parses and checks the
parameters, writes the CSV header and generates the OpenAPI document served at /api/v1/openapi.json,
so the description cannot drift from what is served. Names are snake_case and stay; dates are ISO 8601
(days ``YYYY-MM-DD``, moments UTC).

A request sends ``Authorization: Bearer <token>``. No token, an unknown one or a revoked one: 401. A
token sees its part of the organisation only; a node outside it answers 404, like an unknown one, so
its existence does not leak. Figures come from the rollups through fleet.db.results and are cut into
cells by fleet.figures, exactly as the results pages: a cell with answers but fewer than the staff
minimum has neither its count nor its figure (``n`` and ``value`` null, ``hidden`` true).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException

from protocol.scales import SCALES

from .. import figures as fig
from ..db.apitokens import ApiToken
from ..db.results import Query, Results
from ..org import LOCATION, OrgNode, Tree
from ..store import DEFAULT_TZ
from . import extension, scope
from .access import public, token
from .apispec import PREFIX, ApiError, Endpoint, Field, Param, Row, openapi_document
from .apitokens import tokens

bp = Blueprint("api", __name__, url_prefix=PREFIX)

API_VERSION = "1.0.0"
#: The longest period one request reads, in days (as the results pages).
MAX_DAYS = 3 * 366
#: The default period: this many days up to today.
DEFAULT_DAYS = 30
TOTAL = "total"
#: Decimals of the figures and their intervals.
DECIMALS = 2


@dataclass
class Context:
    """One authorised request: its token, the organisation and the parsed parameters."""

    token: ApiToken
    tree: Tree
    args: dict[str, Any]
    minimum: int
    applied: dict[str, Any] = field(default_factory=dict)

    def node(self) -> OrgNode | None:
        """The node asked for (a location counts as its unit), or the token's; None: everything.
        Raises ApiError 404 for a node that is unknown or outside the token's part."""
        code = self.args.get("node")
        if code is None:
            found = None if self.token.scope_id is None else self.tree.nodes.get(self.token.scope_id)
            if self.token.scope_id is not None and found is None:
                raise ApiError(404, "this token's part of the organisation no longer exists")
        else:
            found = self.tree.by_code.get(code)
            if found is None or not self.tree.within(found.id, self.token.scope_id):
                raise ApiError(404, f"node: no node {code[:64]!r} in this token's part of the organisation")
            if found.kind == LOCATION:  # votes know their unit, not the location inside it
                found = self.tree.unit_of(found.id)
                if found is None:
                    raise ApiError(404, f"node: no node {code[:64]!r} in this token's part of the organisation")
        self.applied["node"] = None if found is None else found.code
        return found

    def units(self) -> tuple[OrgNode | None, tuple[str, ...]]:
        """The node and the codes of the units under it."""
        node = self.node()
        return node, tuple(sorted(self.tree.unit_codes(None if node is None else node.id)))

    def period(self) -> tuple[date, date]:
        """The days asked for: ``from`` … ``to``, by default the last 30 days up to today (Helsinki)."""
        last = self.args.get("to") or datetime.now(ZoneInfo(DEFAULT_TZ)).date()
        first = self.args.get("from") or last - timedelta(days=DEFAULT_DAYS - 1)
        if first > last:
            raise ApiError(400, f"from: {first} is after to ({last}); from must be on or before to")
        if (last - first).days >= MAX_DAYS:
            raise ApiError(400, f"from, to: a request covers at most {MAX_DAYS} days; ask for a shorter period")
        self.applied.update({"from": first.isoformat(), "to": last.isoformat()})
        return first, last

    def questions(self, units: tuple[str, ...], first: date, last: date) -> list[tuple[str, str]]:
        """The (question, scale) pairs answered in the units over the days, narrowed by the parameters."""
        asked_q, asked_s = self.args.get("question"), self.args.get("scale")
        return sorted(
            (q, s)
            for q, s, _n in Results(extension("store")).questions(units, first, last)
            if asked_q in (None, q) and asked_s in (None, s)
        )


# -- the parameters ----------------------------------------------------------------------------

FORMAT = Param(
    "format",
    "json: the rows as a JSON object; csv: the same rows as CSV (UTF-8 with a byte-order mark, a header row of "
    "the field names, empty for null, true and false for booleans).",
    enum=("json", "csv"),
    default="json",
)
NODE = Param(
    "node",
    "The code of a region, service area or unit (a location counts as its unit). Default: the token's part of the "
    "organisation (for a token over everything, the whole organisation). A node outside the token's part answers "
    "404, like an unknown one.",
)
FROM = Param(
    "from", "The first day, YYYY-MM-DD (a local day of the units). Default: 29 days before `to`.", format="date"
)
TO = Param(
    "to",
    f"The last day, YYYY-MM-DD, at most {MAX_DAYS} days after `from`. Default: today in Finland.",
    format="date",
)
PERIOD = Param(
    "period",
    "The periods the figures are given for: each day, ISO week (Monday to Sunday), calendar month, or the total "
    "over from … to.",
    enum=(fig.DAY, fig.WEEK, fig.MONTH, TOTAL),
    default=TOTAL,
)
QUESTION = Param("question", "A question id: only its figures. Default: every question answered in the period.")
SCALE = Param("scale", "An answer scale: only figures on it. Default: every scale.", enum=tuple(SCALES))
RANGE = (NODE, FROM, TO, QUESTION, SCALE)

# -- the fields shared by the figures ------------------------------------------------------------

_NODE_F = Field("node", "string", "The node the figures are for (its code); null: the whole organisation.", True)
_QUESTION_F = Field("question", "string", "The question's id, as in the terminals' configurations.")
_SCALE_F = Field("scale", "string", "The answer scale; figures of two scales are never mixed.", enum=tuple(SCALES))
_N_F = Field("n", "integer", "Answers counted; null when hidden.", True)
_HIDDEN_F = Field(
    "hidden",
    "boolean",
    "True when the cell has answers but fewer than the staff minimum: its count and figures are left out.",
)
_FIGURE_FS = (
    _N_F,
    Field(
        "kind",
        "string",
        "The figure: nps (Net Promoter Score, -100 … 100) on the 0–10 scale, positive_share (percent of "
        "positive answers) on the others.",
        enum=("nps", "positive_share"),
    ),
    Field("value", "number", "The figure; null when hidden or when there are no answers.", True),
    Field("low", "number", "The lower end of its 95 % interval; null when there is no figure.", True),
    Field("high", "number", "The upper end of its 95 % interval; null when there is no figure.", True),
    _HIDDEN_F,
)


def _kind(scale: str) -> str:
    return "nps" if SCALES[scale].is_nps else "positive_share"


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, DECIMALS)


def _figure(c: fig.Cell, scale: str) -> Row:
    """A cell's fields: a hidden cell carries neither its count nor its figures."""
    s = c.score
    return {
        "n": c.n,
        "kind": _kind(scale),
        "value": _round(c.value),
        "low": None if s is None else _round(s.low),
        "high": None if s is None else _round(s.high),
        "hidden": c.hidden,
    }


def _minimum() -> int:
    return int(current_app.config["HYMY"].staff_minimum)


# -- the endpoints' rows -------------------------------------------------------------------------


def unit_rows(ctx: Context) -> list[Row]:
    """The regions, service areas and units under the node."""
    node = ctx.node()
    t, sid = ctx.tree, ctx.token.scope_id
    rows = []
    for n in t.subtree(None if node is None else node.id):
        if n.kind == LOCATION:
            continue
        parent = t.nodes.get(n.parent_id) if n.parent_id is not None else None
        rows.append(
            {
                "code": n.code,
                "kind": n.kind,
                "parent": parent.code if parent is not None and t.within(parent.id, sid) else None,
                "name_fi": n.name_fi,
                "name_sv": n.name_sv or None,
                "name_en": n.name_en or None,
                "service_type": n.service_type,
                "oid": n.oid,
                "target": n.target,
                "archived": n.archived,
            }
        )
    return rows


def _iso_moment(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def terminal_rows(ctx: Context) -> list[Row]:
    """The terminals placed in the units under the node (for everything: every terminal, placed or not)."""
    node = ctx.node()
    codes = None if node is None else ctx.tree.unit_codes(node.id)
    retired = extension("org").retired()
    return [
        {
            "device": s.device,
            "unit": s.unit,
            "online": s.online,
            "last_seen": _iso_moment(s.last_seen),
            "firmware": s.fw,
            "applied_version": s.applied_version,
            "queue": s.queue,
            "retired": s.device in retired,
        }
        for s in extension("store").terminals()
        if codes is None or s.unit in codes
    ]


def _period_end(start: date, period: str) -> date:
    if period == fig.WEEK:
        return start + timedelta(days=6)
    if period == fig.MONTH:
        return (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return start


def score_rows(ctx: Context) -> list[Row]:
    """Figures per question and scale and per period, over the units under the node."""
    node, units = ctx.units()
    first, last = ctx.period()
    period = ctx.args["period"]
    results = Results(extension("store"))
    rows = []
    for question, scale in ctx.questions(units, first, last):
        q = Query(units, question, scale, first, last)
        if period == TOTAL:
            cells = [(first, last, fig.cell(first, results.total(q), scale, ctx.minimum))]
        else:
            by_time = results.by_month(q) if period == fig.MONTH else results.by_day(q)
            trend = fig.trend(by_time, first, last, period, scale, ctx.minimum)
            cells = [(max(c.key, first), min(_period_end(c.key, period), last), c) for c in trend]
        for start, end, c in cells:
            rows.append(
                {
                    "node": None if node is None else node.code,
                    "question": question,
                    "scale": scale,
                    "period": period,
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    **_figure(c, scale),
                }
            )
    return rows


def daily_rows(ctx: Context) -> list[Row]:
    """Answers per unit, question, scale and local day (days with answers only)."""
    _node, units = ctx.units()
    first, last = ctx.period()
    results = Results(extension("store"))
    rows = []
    for question, scale in ctx.questions(units, first, last):
        counts = results.by_unit_and_day(Query(units, question, scale, first, last))
        for (unit, day), c in sorted(counts.items()):
            if sum(c):
                cell = fig.cell(day, c, scale, ctx.minimum)
                rows.append(
                    {
                        "unit": unit,
                        "question": question,
                        "scale": scale,
                        "day": day.isoformat(),
                        "n": cell.n,
                        "hidden": cell.hidden,
                    }
                )
    rows.sort(key=lambda r: (r["unit"], r["question"], r["scale"], r["day"]))
    return rows


def reason_rows(ctx: Context) -> list[Row]:
    """Figures per follow-up reason, per question and scale, over the units under the node."""
    node, units = ctx.units()
    first, last = ctx.period()
    results = Results(extension("store"))
    rows = []
    for question, scale in ctx.questions(units, first, last):
        counts = {k: c for k, c in results.by_reason(Query(units, question, scale, first, last)).items() if k}
        for c in fig.breakdown(counts, scale, ctx.minimum):
            rows.append(
                {
                    "node": None if node is None else node.code,
                    "question": question,
                    "scale": scale,
                    "reason": c.key,
                    **_figure(c, scale),
                }
            )
    return rows


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "/units",
        "units",
        "Regions, service areas and units",
        "The organisation under the node, depth first (locations inside units are left out).",
        "Unit",
        (NODE, FORMAT),
        (
            Field("code", "string", "The node's stable id; a unit's is the unit id its terminals report."),
            Field("kind", "string", "What the node is.", enum=("region", "area", "unit")),
            Field("parent", "string", "The parent's code; null at the top of the token's part.", True),
            Field("name_fi", "string", "The name in Finnish."),
            Field("name_sv", "string", "The name in Swedish; null when not given.", True),
            Field("name_en", "string", "The name in English; null when not given.", True),
            Field("service_type", "string", "A unit's service type (like units are compared), or null.", True),
            Field("oid", "string", "The SOTE organisation register OID, or null.", True),
            Field("target", "integer", "The unit's target score, or null.", True),
            Field("archived", "boolean", "True for a node no longer in use (its past figures remain)."),
        ),
        unit_rows,
    ),
    Endpoint(
        "/terminals",
        "terminals",
        "Terminals",
        "The terminals placed in the units under the node, with their last known state.",
        "Terminal",
        (NODE, FORMAT),
        (
            Field("device", "string", "The terminal's id."),
            Field("unit", "string", "The code of the unit it is placed in; null when not placed.", True),
            Field("online", "boolean", "Whether it is connected; null before its first state.", True),
            Field("last_seen", "string", "When it was last heard from (UTC), or null.", True, format="date-time"),
            Field("firmware", "string", "Its software version, or null.", True),
            Field("applied_version", "integer", "The configuration version it runs (0: none yet)."),
            Field("queue", "integer", "Answers waiting on it to be sent, as it last said; or null.", True),
            Field("retired", "boolean", "True for a terminal taken out of service for good."),
        ),
        terminal_rows,
    ),
    Endpoint(
        "/scores",
        "scores",
        "Scores by period",
        "The figure of each question and scale over the units under the node, per period. Presses flagged as "
        "misuse and presses outside opening hours are left out, as on the results pages.",
        "Score",
        (*RANGE, PERIOD, FORMAT),
        (
            _NODE_F,
            _QUESTION_F,
            _SCALE_F,
            Field("period", "string", "The period asked for.", enum=PERIOD.enum),
            Field("start", "string", "The first day counted in this row.", format="date"),
            Field("end", "string", "The last day counted in this row.", format="date"),
            *_FIGURE_FS,
        ),
        score_rows,
    ),
    Endpoint(
        "/daily",
        "daily",
        "Daily counts",
        "Answers per unit, question, scale and local day, for the days that have answers (misuse and out-of-hours "
        "presses left out).",
        "DailyCount",
        (*RANGE, FORMAT),
        (
            Field("unit", "string", "The unit's code."),
            _QUESTION_F,
            _SCALE_F,
            Field("day", "string", "The unit's local day.", format="date"),
            _N_F,
            _HIDDEN_F,
        ),
        daily_rows,
    ),
    Endpoint(
        "/reasons",
        "reasons",
        "Reasons",
        "The figure of the answers that gave each follow-up reason, per question and scale, over the units under "
        "the node; most answered first, hidden cells last.",
        "Reason",
        (*RANGE, FORMAT),
        (_NODE_F, _QUESTION_F, _SCALE_F, Field("reason", "string", "The reason's id."), *_FIGURE_FS),
        reason_rows,
    ),
)


# -- serving -----------------------------------------------------------------------------------


def _authorised() -> ApiToken:
    """The request's token, if it is one and not revoked; else ApiError 401."""
    scheme, _sep, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiError(
            401, "send an API token: Authorization: Bearer <token>", {"WWW-Authenticate": 'Bearer realm="hymy"'}
        )
    found = tokens().check(given.strip())
    if found is None:
        raise ApiError(
            401,
            "the token is unknown or revoked",
            {"WWW-Authenticate": 'Bearer realm="hymy", error="invalid_token"'},
        )
    return found


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    # json.dumps, not jsonify: the fields keep their documented order.
    text = json.dumps(body, ensure_ascii=False)
    return Response(text, status, {"Cache-Control": "no-store", **(headers or {})}, mimetype="application/json")


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _csv(ep: Endpoint, rows: list[Row], applied: Mapping[str, Any]) -> Response:
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    names = [f.name for f in ep.fields]
    writer.writerow(names)
    writer.writerows([_csv_value(r[n]) for n in names] for r in rows)
    period = f"-{applied['from']}-{applied['to']}" if "from" in applied else ""
    filename = f"hymy-{ep.name}{period}.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


def _serve(ep: Endpoint) -> Callable[[], Response]:
    @token
    def view() -> Response:
        found = _authorised()
        args = ep.parse(request.args.to_dict(flat=False))
        ctx = Context(found, scope.tree(), args, _minimum())
        rows = ep.rows(ctx)
        applied = {p.name: ctx.applied.get(p.name, _plain(args.get(p.name))) for p in ep.params}
        if args["format"] == "csv":
            return _csv(ep, rows, applied)
        return _json({"parameters": applied, "items": rows})

    view.__name__ = ep.name
    view.__doc__ = ep.summary
    return view


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


for _ep in ENDPOINTS:
    bp.add_url_rule(_ep.path, _ep.name, _serve(_ep), methods=["GET"])


@bp.errorhandler(ApiError)
def api_error(exc: ApiError) -> Response:
    """A refusal as JSON."""
    return _json({"error": exc.message}, exc.status, exc.headers)


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    """Any other HTTP error of the API as JSON too (not the staff pages' HTML)."""
    return _json({"error": exc.description or exc.name}, exc.code or 500)


@bp.get("/openapi.json")
@public
def openapi() -> Response:
    """The API's OpenAPI document (no token needed: it describes, it holds no data)."""
    minimum = _minimum()
    info = {
        "title": "Hymy reporting API",
        "version": API_VERSION,
        "description": (
            "Read-only figures of the feedback terminals for reporting systems. Each request sends a token "
            "that IT creates (Authorization: Bearer <token>); a token sees one part of the organisation. "
            f"A cell with answers but fewer than {minimum} has neither its count nor its figures: n and value "
            "are null and hidden is true. Every endpoint gives the same rows as CSV with format=csv."
        ),
    }
    return _json(openapi_document(ENDPOINTS, info))
