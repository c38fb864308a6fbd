"""Results for residents: public pages per region, service area and unit, a widget to embed, and JSON.

No sign-in. Each page shows, per question and scale, the score of the last 30 complete days with its
count, and the trend by complete month. A node with fewer answers than the public minimum (default
30) says "not enough answers yet", and fleet.publish hides further figures wherever the shown ones
would give a hidden one away by subtraction. The hiding is worked out over the whole organisation
for every request, so every page and format agrees on what is hidden. Complete days and months only:
a figure changes once a day at most, never with each answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, jsonify, render_template
from flask_babel import gettext as _

from protocol.scales import SCALES

from .. import figures as fig
from ..db.results import Query, Results
from ..org import LOCATION, UNIT, OrgNode, Tree
from ..publish import hidden_nodes
from ..scores import NpsScore, Score, score
from ..store import DEFAULT_TZ
from . import extension
from .access import public
from .results import SCALE_LABELS, figure_axis, period_label

bp = Blueprint("public", __name__, url_prefix="/public")
#: Days in the rolling window (complete days, ending yesterday) and complete months in the trend.
WINDOW_DAYS = 30
TREND_MONTHS = 12


@dataclass(frozen=True)
class Figure:
    """One public figure: a node's score on one question and scale, or hidden (None)."""

    score: Score | None
    empty: bool = False  # no answers at all (nothing is hidden)

    @property
    def hidden(self) -> bool:
        return self.score is None


@dataclass
class Published:
    """Every public figure of one question and scale: the window's per node, and each month's."""

    question: str
    scale: str
    window: dict[str, Figure]
    months: dict[date, dict[str, Figure]]
    answered: set[str]  # nodes with answers in the window or a trend month (shown or not)


def _minimum() -> int:
    return int(current_app.config["HYMY"].public_minimum)


def window() -> tuple[date, date]:
    """The last 30 complete days (in the fleet's zone)."""
    yesterday = datetime.now(ZoneInfo(DEFAULT_TZ)).date() - timedelta(days=1)
    return yesterday - timedelta(days=WINDOW_DAYS - 1), yesterday


def trend_months() -> list[date]:
    """The first days of the last 12 complete months, oldest first."""
    at = datetime.now(ZoneInfo(DEFAULT_TZ)).date().replace(day=1)
    out = []
    for _i in range(TREND_MONTHS):
        at = (at - timedelta(days=1)).replace(day=1)
        out.append(at)
    return out[::-1]


def _structure(t: Tree) -> tuple[dict[str, str | None], set[str], list[str]]:
    """Parent codes of regions, areas and units; the archived ones; the unit codes."""
    parent: dict[str, str | None] = {}
    archived: set[str] = set()
    for n in t.nodes.values():
        if n.kind == LOCATION:
            continue
        up = t.nodes.get(n.parent_id) if n.parent_id is not None else None
        parent[n.code] = None if up is None else up.code
        if n.archived or (up is not None and up.archived):
            archived.add(n.code)
    units = sorted(n.code for n in t.nodes.values() if n.kind == UNIT)
    return parent, archived, units


def _figures(
    parent: dict[str, str | None], archived: set[str], by_unit: dict[str, list[int]], scale: str, answered: set[str]
) -> dict[str, Figure]:
    """Sum units up the tree, hide what must be hidden, and score the rest."""
    size = SCALES[scale].size
    totals: dict[str, list[int]] = {code: [0] * size for code in parent}
    for unit, counts in by_unit.items():
        at: str | None = unit
        while at is not None and at in totals:
            totals[at] = [a + b for a, b in zip(totals[at], counts, strict=True)]
            at = parent[at]
    n = {code: sum(c) for code, c in totals.items()}
    answered.update(code for code, k in n.items() if k)
    hidden = hidden_nodes(parent, n, _minimum(), archived)
    return {
        code: Figure(None if code in hidden or not n[code] else score(totals[code], SCALES[scale]), not n[code])
        for code in parent
    }


def published(t: Tree) -> list[Published]:
    """Every question and scale answered anywhere in the window or the trend's months, with its figures."""
    parent, archived, units = _structure(t)
    results = Results(extension("store"))
    first, last = window()
    months = trend_months()
    month_last = (months[-1] + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    out = []
    for question, scale, _n in results.questions(units, months[0], last):  # the most answered first
        q = Query(tuple(units), question, scale, first, last)
        answered: set[str] = set()
        in_window = _figures(parent, archived, results.by_unit(q), scale, answered)
        monthly = results.by_unit_and_month(Query(tuple(units), question, scale, months[0], month_last))
        per_month = {
            m: _figures(parent, archived, {u: c for (u, mm), c in monthly.items() if mm == m}, scale, answered)
            for m in months
        }
        out.append(Published(question, scale, in_window, per_month, answered))
    return out


def _node(t: Tree, code: str) -> OrgNode:
    node = t.by_code.get(code)
    if node is None or node.kind == LOCATION or node.archived:
        abort(404)
    if any(p.archived for p in t.path(node.id)):
        abort(404)
    return node


def _lang() -> str:
    from .i18n import language

    return language()


def _figure_json(f: Figure) -> dict[str, Any]:
    if f.score is None:
        return {"shown": False, "n": 0} if f.empty else {"shown": False}
    s = f.score
    return {
        "shown": True,
        "kind": s.kind,
        "value": round(s.value, 1) if s.value is not None else None,
        "low": None if s.low is None else round(s.low, 1),
        "high": None if s.high is None else round(s.high, 1),
        "n": s.n,
    }


def _relevant(node: OrgNode, figures: list[Published]) -> list[Published]:
    """The questions answered under this node (in its window or any trend month), shown or not."""
    return [p for p in figures if node.code in p.answered]


def text_of(f: Figure) -> str:
    """A public figure as text."""
    if f.empty:
        return "–"
    if f.score is None:
        return _("not enough answers yet")
    v = f.score.value or 0.0
    return f"{v:+.0f}" if isinstance(f.score, NpsScore) else f"{v:.0f} %"


@bp.get("/")
@public
def index() -> Response:
    """The regions."""
    t = extension("org").tree()
    regions = [n for n in t.children(None) if not n.archived]
    return _public(render_template("public/index.html", regions=regions))


@dataclass
class Page:
    """What every format of a node's public figures starts from."""

    tree: Tree
    node: OrgNode
    figures: list[Published]
    first: date
    last: date
    questions: dict[str, dict[str, str]]

    def wording(self, question: str) -> str:
        """A question's wording in the reader's language, else Finnish, else its id."""
        texts = self.questions.get(question, {})
        return texts.get(_lang()) or texts.get("fi") or question

    def template_args(self) -> dict[str, Any]:
        """What the page and the widget templates share."""
        return {
            "node": self.node,
            "figures": self.figures,
            "first": self.first,
            "last": self.last,
            "text_of": text_of,
            "wording": self.wording,
            "scale_labels": SCALE_LABELS,
            "period_label": period_label,
        }


def _page(code: str) -> Page:
    """The published figures of the node with ``code`` (404 for none, a location or an archived one)."""
    t = extension("org").tree()
    n = _node(t, code)
    first, last = window()
    questions, _reasons = extension("configs").texts()
    return Page(t, n, _relevant(n, published(t)), first, last, questions)


@bp.get("/<code>")
@public
def node(code: str) -> Response:
    """A region's, service area's or unit's public page."""
    page = _page(code)
    t, n, figures = page.tree, page.node, page.figures
    months = trend_months()
    charts = {}
    for i, p in enumerate(figures):
        nps = SCALES[p.scale].is_nps
        cells = [p.months[m][n.code] for m in months]
        charts[i] = {
            "kind": "trend",
            "labels": [period_label(m, fig.MONTH) for m in months],
            "value": [None if c.score is None else c.score.value for c in cells],
            "low": [None if c.score is None else c.score.low for c in cells],
            "high": [None if c.score is None else c.score.high for c in cells],
            **figure_axis(nps),
        }
    return _public(
        render_template(
            "public/node.html",
            tree=t,
            charts=charts,
            children=[c for c in t.children(n.id) if not c.archived and c.kind != LOCATION],
            months=months,
            **page.template_args(),
        )
    )


@bp.get("/<code>/widget")
@public
def widget(code: str) -> Response:
    """A small page for the county's own web site to embed (an iframe): the headline figures only."""
    response = _public(render_template("public/widget.html", **_page(code).template_args()))
    origins = current_app.config["HYMY"].embed_origins.split()
    ancestors = " ".join(origins) if origins else "'none'"
    from . import CSP

    response.headers["Content-Security-Policy"] = CSP.replace("frame-ancestors 'none'", f"frame-ancestors {ancestors}")
    return response


@bp.get("/<code>.json")
@public
def data(code: str) -> Response:
    """The public figures of a node as JSON, for the county's own designs (any site may read them)."""
    page = _page(code)
    t, n, figures, first, last, questions = page.tree, page.node, page.figures, page.first, page.last, page.questions
    body = {
        "node": {"code": n.code, "kind": n.kind, "name": {"fi": n.name_fi, "sv": n.name_sv, "en": n.name_en}},
        "window": {"first": first.isoformat(), "last": last.isoformat()},
        "minimum": _minimum(),
        "figures": [
            {
                "question": p.question,
                "question_text": questions.get(p.question, {}),
                "scale": p.scale,
                "window": _figure_json(p.window[n.code]),
                "months": [{"month": m.isoformat()[:7], **_figure_json(p.months[m][n.code])} for m in trend_months()],
                "children": [
                    {"code": c.code, "kind": c.kind, **_figure_json(p.window.get(c.code, Figure(None)))}
                    for c in t.children(n.id)
                    if not c.archived and c.kind != LOCATION
                ],
            }
            for p in figures
        ],
    }
    response = jsonify(body)
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.context_processor
def minimum() -> dict[str, Any]:
    return {"public_minimum": _minimum()}


def _public(html: str) -> Response:
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "public, max-age=300"  # figures change once a day
    return response
