"""Results for staff: a unit's, a service area's or a region's scores, trend, answers, heat map,
reasons, roles and the comparison of like units, each as a chart, a table and a CSV file.

Every figure comes from the rollups through fleet.db.results and is cut into cells by fleet.figures,
which hides any cell under the minimum: the page, its CSV files and (later) the API show the same
cells. The filters travel in the address (a GET form), so a view can be bookmarked and shared.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for
from flask_babel import format_date, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as BaseResponse

from protocol.scales import SCALES

from .. import figures as fig
from ..db.results import Cube, Query, Results
from ..org import LOCATION, UNIT, OrgNode, Tree
from ..scores import NpsScore
from ..store import DEFAULT_TZ
from . import extension, scope
from .access import STAFF, allow, me
from .forms import SERVICE_LABELS

bp = Blueprint("results", __name__, url_prefix="/results")

ROLE_LABELS = {
    "client": _l("Client"),
    "relative": _l("Relative"),
    "other": _l("Other"),
    "": _l("Not asked or not answered"),
}
CHANNEL_LABELS = {"terminal": _l("Terminal in the waiting room"), "web": _l("Feedback form (QR code)")}
#: The role filter's values in the address ("none": the terminal did not ask).
ROLE_ARGS = ("client", "relative", "other", "none")
PERIOD_LABELS = {fig.DAY: _l("Day"), fig.WEEK: _l("Week"), fig.MONTH: _l("Month")}
SCALE_LABELS = {
    "nps11": _l("0–10 recommendation"),
    "faces4": _l("four faces"),
    "faces5": _l("five faces"),
    "agree5": _l("agree–disagree"),
}
#: The parts that have a table and a CSV file.
PARTS = ("trend", "distribution", "heatmap", "reasons", "roles", "comparison")
#: The longest period a view reads (a longer one is cut, with a note).
MAX_DAYS = 3 * 366


@dataclass
class Selection:
    """What the person asked to see, checked: the node, its units, the query and how to show it."""

    node: OrgNode
    units: tuple[str, ...]
    query: Query | None  # None: nothing answered in the period
    period: str
    questions: list[tuple[str, str, int]]
    notes: list[str] = field(default_factory=list)
    args: dict[str, Any] = field(default_factory=dict)
    channels: list[str] = field(default_factory=list)  # the channels answers came through, for the filter


def _today() -> date:
    return datetime.now(ZoneInfo(DEFAULT_TZ)).date()


def date_arg(args: Mapping[str, Any], name: str, default: date, notes: list[str]) -> date:
    text = str(args.get(name, "")).strip()
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        notes.append(_("“%(text)s” is not a date (YYYY-MM-DD); showing %(day)s instead.", text=text[:20], day=default))
        return default


def selection(node_id: int, given: Mapping[str, Any] | None = None) -> Selection:
    """The node (within the person's part, else 404) and the filters from the address (or ``given``),
    each checked; a bad value is replaced by its default and explained in a note."""
    args_in: Any = request.args if given is None else given
    t = scope.tree()
    node = scope.node_or_404(t, node_id)
    if node.kind == LOCATION:  # votes know their unit, not the location inside it
        unit = t.unit_of(node.id)
        if unit is None:
            abort(404)
        node = unit
    units = tuple(sorted(t.unit_codes(node.id)))
    notes: list[str] = []
    today = _today()
    last = date_arg(args_in, "to", today, notes)
    first = date_arg(args_in, "from", last - timedelta(days=29), notes)
    if first > last:
        notes.append(_("The start was after the end; they have been swapped."))
        first, last = last, first
    if (last - first).days >= MAX_DAYS:
        first = last - timedelta(days=MAX_DAYS - 1)
        notes.append(_("A view covers at most three years; the start has been moved to %(day)s.", day=first))
    results = Results(extension("store"))
    questions = results.questions(units, first, last)
    wanted = args_in.get("q", "")
    chosen = next((q for q in questions if f"{q[0]}|{q[1]}" == wanted), questions[0] if questions else None)
    span = (last - first).days + 1
    period = args_in.get("period", "")
    if period not in fig.PERIODS:
        period = fig.DAY if span <= 62 else fig.WEEK if span <= 26 * 7 else fig.MONTH
    roles_given = [r for r in _list(args_in, "role") if r in ROLE_ARGS]
    roles = frozenset("" if r == "none" else r for r in roles_given) if roles_given else None
    misuse = args_in.get("misuse") == "1"
    after_hours = args_in.get("after_hours") == "1"
    offered = results.channels(units, first, last)
    channels_given = [c for c in _list(args_in, "channel") if c in offered]
    channels = frozenset(channels_given) if channels_given else None
    query = None
    if chosen is not None:
        query = Query(units, chosen[0], chosen[1], first, last, roles, misuse, after_hours, channels)
    args = {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "period": period,
        **({"q": f"{chosen[0]}|{chosen[1]}"} if chosen else {}),
        **({"role": sorted(roles_given)} if roles_given else {}),
        **({"channel": sorted(channels_given)} if channels_given else {}),
        **({"misuse": "1"} if misuse else {}),
        **({"after_hours": "1"} if after_hours else {}),
    }
    return Selection(node, units, query, period, questions, notes, args, offered)


def _list(args: Any, name: str) -> list[str]:
    """Every value of a repeated parameter (a request's MultiDict, or a list in a plain mapping)."""
    if hasattr(args, "getlist"):
        return [str(v) for v in args.getlist(name)]
    value = args.get(name)
    return [] if value is None else [str(v) for v in (value if isinstance(value, list | tuple) else [value])]


def _minimum() -> int:
    return int(current_app.config["HYMY"].staff_minimum)


def _like_units(t: Tree, node: OrgNode) -> list[OrgNode]:
    """The units compared on the node's page: for a unit, the units of its service type that the
    person may see; for an area or region, its own units."""
    if node.kind == UNIT:
        visible = [n for n in scope.visible_nodes(t) if n.kind == UNIT and not n.archived]
        return [n for n in visible if n.service_type == node.service_type or n.id == node.id]
    return [n for n in t.subtree(node.id) if n.kind == UNIT and not n.archived]


@dataclass
class Figures:
    """Everything a results page shows, as cells."""

    total: fig.Cell
    trend: list[fig.Cell]
    coarser: str | None
    distribution: list[fig.Cell]
    heat: dict[tuple[int, int], fig.Cell]
    hours: list[int]
    heat_months: tuple[date, date]
    reasons: list[fig.Cell]
    reasons_total: int | None
    roles: list[fig.Cell]
    comparison: list[tuple[str, list[fig.Cell]]]  # (service type, ranked unit cells)
    names: dict[str, OrgNode]


def figures_of(sel: Selection, parts: Collection[str] = PARTS) -> Figures:
    """Read and cut the page's parts (a CSV file reads only its own: the heat map and the comparison
    are the reads the others do not share)."""
    q = sel.query
    assert q is not None
    minimum = _minimum()
    results = Results(extension("store"))
    t = scope.tree()
    # One read for the total, trend, roles and reasons; the heat map and the comparison read their own
    # (a CSV file of one of those reads only that).
    need_cube = bool(set(parts) & {"trend", "distribution", "reasons", "roles"})
    cube = results.cube(q, by_day=sel.period != fig.MONTH) if need_cube else Cube(q.size, [])
    total = cube.total()
    by_time = cube.by(lambda r: r[0])
    trend = fig.trend(by_time, q.first, q.last, sel.period, q.scale, minimum)
    heat = fig.heat(results.heat(q), q.scale, minimum) if "heatmap" in parts else {}
    reason_counts = {k: c for k, c in cube.by(lambda r: r[2]).items() if k}
    reasons = fig.breakdown(reason_counts, q.scale, minimum)
    with_reason = sum(sum(c) for c in reason_counts.values())
    roles = fig.breakdown(cube.by(lambda r: r[1]), q.scale, minimum)
    like = _like_units(t, sel.node) if "comparison" in parts else []
    names = {n.code: n for n in like}
    by_unit: dict[str, list[int]] = {}
    if names:
        compare_q = Query(
            tuple(sorted(names)), q.question, q.scale, q.first, q.last, q.roles, q.misuse, q.after_hours, q.channels
        )
        by_unit = results.by_unit(compare_q)
    groups: dict[str, dict[str, list[int]]] = {}
    for code, counts in by_unit.items():
        if code in names:
            groups.setdefault(names[code].service_type or "other", {})[code] = counts
    comparison = [(st, fig.ranked(g, q.scale, minimum)) for st, g in sorted(groups.items())]
    first_month = q.first.replace(day=1)
    last_month = q.last.replace(day=1)
    return Figures(
        total=fig.cell("total", total, q.scale, minimum),
        trend=trend,
        coarser=fig.coarser(sel.period, trend),
        distribution=fig.distribution(total, minimum) if fig.cell("t", total, q.scale, minimum).n else [],
        heat=heat,
        hours=fig.hours_shown(heat),
        heat_months=(first_month, last_month),
        reasons=reasons,
        reasons_total=None if 0 < with_reason < minimum else with_reason,
        roles=roles,
        comparison=comparison,
        names=names,
    )


# -- labels ------------------------------------------------------------------------------------


def _lang() -> str:
    return str(get_locale() or "fi")[:2]


def question_label(question: str, scale: str, texts: dict[str, dict[str, str]]) -> str:
    """A question's wording in the reader's language (else Finnish, else its id), with its scale."""
    wording = texts.get(question, {})
    text = wording.get(_lang()) or wording.get("fi") or question
    return f"{text} ({SCALE_LABELS.get(scale, scale)})"


def period_label(start: date, period: str) -> str:
    """A period for people: 2 Dec 2026, week 49/2026, December 2026."""
    if period == fig.WEEK:
        year, week, _wd = start.isocalendar()
        return _("week %(week)s/%(year)s", week=week, year=year)
    if period == fig.MONTH:
        return str(format_date(start, "LLLL yyyy"))
    return str(format_date(start, "medium"))


def weekday_names() -> list[str]:
    """Monday … Sunday in the reader's language."""
    monday = date(2024, 1, 1)  # a Monday
    return [str(format_date(monday + timedelta(days=i), "EEEE")) for i in range(7)]


def figure_text(c: fig.Cell, minimum: int) -> str:
    """A cell's headline figure as text: "78", "74 %", "fewer than 5", or "–"."""
    if c.hidden:
        return _("fewer than %(n)s", n=minimum)
    if c.score is None:
        return "–"
    if isinstance(c.score, NpsScore):
        return f"{c.score.value:+.0f}" if c.score.value else "0"
    return f"{c.score.value:.0f} %"


def interval_text(c: fig.Cell) -> str:
    """A cell's 95 % interval as text ("71 … 84"), empty when it has none."""
    s = c.score
    if s is None or s.low is None or s.high is None:
        return ""
    unit = "" if isinstance(s, NpsScore) else " %"
    return f"{s.low:.0f} … {s.high:.0f}{unit}"


def answer_label(scale: str, answer: int) -> str:
    """An answer for people: 0…10 as numbers, faces and statements by name."""
    if scale == "nps11":
        return str(answer)
    names = {
        "faces4": [_("very unhappy"), _("unhappy"), _("happy"), _("very happy")],
        "faces5": [_("very unhappy"), _("unhappy"), _("neutral"), _("happy"), _("very happy")],
        "agree5": [
            _("strongly disagree"),
            _("disagree"),
            _("neither agree nor disagree"),
            _("agree"),
            _("strongly agree"),
        ],
    }
    labels = names.get(scale)
    return labels[answer] if labels and 0 <= answer < len(labels) else str(answer)


def reason_label(reason: str, texts: dict[str, dict[str, str]]) -> str:
    """A follow-up reason's wording in the reader's language, else its id."""
    wording = texts.get(reason, {})
    return wording.get(_lang()) or wording.get("fi") or reason


# -- tables: one function per part, shared by the page and its CSV file ---------------------------


def table(part: str, sel: Selection, f: Figures) -> tuple[list[str], list[list[str]]]:
    """The header and rows of one part, as text (hidden cells say "fewer than N")."""
    assert sel.query is not None
    q, m = sel.query, _minimum()
    _questions, reasons = extension("configs").texts()
    value_head = _("NPS") if SCALES[q.scale].is_nps else _("Positive %")

    def figure_row(label: str, c: fig.Cell) -> list[str]:
        n = _("fewer than %(n)s", n=m) if c.hidden else f"{c.n}"
        return [label, n, "" if c.hidden else figure_text(c, m), interval_text(c)]

    head = [_("Answers"), value_head, _("%(p)s interval", p="95 %")]
    if part == "trend":
        return [PERIOD_LABELS[sel.period].capitalize(), *head], [
            figure_row(period_label(c.key, sel.period), c) for c in f.trend
        ]
    if part == "distribution":
        rows: list[list[str]] = []
        total = f.total.n or 0
        for c in f.distribution:
            share = "" if c.hidden or not total else f"{100 * (c.n or 0) / total:.0f} %"
            n = _("fewer than %(n)s", n=m) if c.hidden else f"{c.n}"
            rows.append([answer_label(q.scale, c.key), n, share])
        return [_("Answer"), _("Answers"), _("Share")], rows
    if part == "heatmap":
        names = weekday_names()
        return [_("Weekday"), _("Hour"), *head], [
            figure_row(names[wd], c)[:1] + [f"{h:02d}–{h + 1:02d}"] + figure_row("", c)[1:]
            for (wd, h), c in sorted(f.heat.items())
        ]
    if part == "reasons":
        return [_("Reason"), *head], [figure_row(reason_label(c.key, reasons), c) for c in f.reasons]
    if part == "roles":
        return [_("Respondent"), *head], [figure_row(str(ROLE_LABELS.get(c.key, c.key)), c) for c in f.roles]
    if part == "comparison":
        rows = []
        for st, cells in f.comparison:
            for rank, c in enumerate(cells, 1):
                node = f.names[c.key]
                rows.append(
                    [str(rank) if c.value is not None else "", node.name(_lang()), str(SERVICE_LABELS.get(st, st))]
                    + figure_row("", c)[1:]
                )
        return [_("Rank"), _("Unit"), _("Service type"), *head], rows
    abort(404)


def figure_axis(nps: bool) -> dict[str, Any]:
    """A score chart's labels and bounds: NPS −100…100, a positive share 0…100 %."""
    return {
        "value_label": _("NPS") if nps else _("Positive %"),
        "interval_label": _("%(p)s interval", p="95 %"),
        "target_label": _("Target"),
        **({"y_min": -100, "y_max": 100} if nps else {"y_min": 0, "y_max": 100}),
    }


def chart(part: str, sel: Selection, f: Figures) -> dict[str, Any]:
    """The chart of the trend or the distribution as the data results.js draws (the same cells as
    its table); the comparison's are comparison_charts'."""
    assert sel.query is not None
    q = sel.query
    common = figure_axis(SCALES[q.scale].is_nps)
    if part == "trend":
        cells = f.trend
        return {
            "kind": "trend",
            "labels": [period_label(c.key, sel.period) for c in cells],
            "value": [c.value for c in cells],
            "low": [None if c.score is None else c.score.low for c in cells],
            "high": [None if c.score is None else c.score.high for c in cells],
            "target": sel.node.target if sel.node.kind == UNIT else None,
            **common,
        }
    if part == "distribution":
        return {
            "kind": "bars",
            "labels": [answer_label(q.scale, c.key) for c in f.distribution],
            "value": [c.n for c in f.distribution],
            "value_label": _("Answers"),
        }
    raise ValueError(f"no chart for {part!r}")


def comparison_charts(sel: Selection, f: Figures) -> list[tuple[str, dict[str, Any]]]:
    """A ranges chart per service type (unlike units are never ranked together)."""
    assert sel.query is not None
    nps = SCALES[sel.query.scale].is_nps
    out = []
    for st, group in f.comparison:
        cells = [c for c in group if c.value is not None]
        if cells:
            out.append((st, _ranges(sel, f, cells, nps)))
    return out


def _ranges(sel: Selection, f: Figures, cells: list[fig.Cell], nps: bool) -> dict[str, Any]:
    return {
        "kind": "ranges",
        "labels": [f.names[c.key].name(_lang()) for c in cells],
        "value": [c.value for c in cells],
        "low": [None if c.score is None else c.score.low for c in cells],
        "high": [None if c.score is None else c.score.high for c in cells],
        "target": sel.node.target if sel.node.kind == UNIT else None,
        **figure_axis(nps),
    }


def heat_class(c: fig.Cell, nps: bool) -> str:
    """A shading class for a heat-map cell (the figure itself is always written in the cell)."""
    if c.value is None:
        return "heat-none"
    v = (c.value + 100) / 2 if nps else c.value  # 0…100
    return f"heat-{min(4, int(v // 20))}"


# -- views -------------------------------------------------------------------------------------


@bp.get("/")
@allow(*STAFF)
def index() -> BaseResponse:
    """The results of the person's own part: their node, or the first region for an administrator."""
    t = scope.tree()
    visible = [n for n in scope.visible_nodes(t) if not n.archived]
    if not visible:
        return Response(render_template("results/empty.html"), mimetype="text/html")
    return redirect(url_for("results.node", node_id=visible[0].id))


@bp.get("/<int:node_id>")
@allow(*STAFF)
def node(node_id: int) -> str:
    """A node's results page."""
    sel = selection(node_id)
    t = scope.tree()
    questions, _reasons = extension("configs").texts()
    f = figures_of(sel) if sel.query is not None else None
    tables = {p: table(p, sel, f) for p in PARTS} if f is not None else {}
    charts = {p: chart(p, sel, f) for p in ("trend", "distribution")} if f is not None else {}
    from .alerts import KIND_LABELS, alert_subject, alerts_of, visible

    alerts = [
        a
        for a in alerts_of().open_alerts()
        if visible(t, a) and a.node_id is not None and a.node_id in t.nodes and t.within(a.node_id, sel.node.id)
    ]
    return render_template(
        "results/node.html",
        alerts=alerts,
        alert_kinds=KIND_LABELS,
        alert_subject=alert_subject,
        sel=sel,
        f=f,
        tables=tables,
        charts=charts,
        comparison_charts=comparison_charts(sel, f) if f is not None else [],
        tree=t,
        children=[c for c in t.children(sel.node.id) if not c.archived and c.kind != LOCATION],
        question_label=lambda q, s: question_label(q, s, questions),
        minimum=_minimum(),
        figure_text=figure_text,
        interval_text=interval_text,
        weekday_names=weekday_names(),
        heat_class=heat_class,
        period_label=period_label,
        periods=PERIOD_LABELS,
        roles=ROLE_LABELS,
        channel_labels=CHANNEL_LABELS,
        role_args=ROLE_ARGS,
        nps=bool(sel.query and SCALES[sel.query.scale].is_nps),
        service_labels=SERVICE_LABELS,
        can_see_terminals=me().role != "viewer",
    )


def _month_arg(text: str, default: date) -> date:
    """A month given as YYYY-MM (its first day), else ``default``."""
    try:
        return date.fromisoformat(f"{text.strip()[:7]}-01")
    except ValueError:
        return default


@bp.get("/<int:node_id>/report")
@allow(*STAFF)
def report(node_id: int) -> str:
    """A printable report of whole months (?from=YYYY-MM&to=YYYY-MM; default the last complete month):
    the headline figure with n, the trend, the reasons and the comparison. The browser prints it or
    saves it as PDF (a print stylesheet)."""
    last_month = (_today().replace(day=1) - timedelta(days=1)).replace(day=1)
    first = _month_arg(request.args.get("from", ""), last_month)
    last = _month_arg(request.args.get("to", ""), first)
    if last < first:
        first, last = last, first
    end = (last + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    period = fig.WEEK if first == last else fig.MONTH
    given: dict[str, Any] = {"from": first.isoformat(), "to": end.isoformat(), "period": period}
    if request.args.get("q"):
        given["q"] = request.args["q"]
    sel = selection(node_id, given)
    questions, _reasons = extension("configs").texts()
    f = figures_of(sel) if sel.query is not None else None
    return render_template(
        "results/report.html",
        sel=sel,
        f=f,
        tables={p: table(p, sel, f) for p in ("trend", "reasons", "comparison")} if f is not None else {},
        charts={"trend": chart("trend", sel, f)} if f is not None else {},
        tree=scope.tree(),
        question_label=lambda q, s: question_label(q, s, questions),
        months=(first, last),
        minimum=_minimum(),
        figure_text=figure_text,
        interval_text=interval_text,
        period_label=period_label,
        nps=bool(sel.query and SCALES[sel.query.scale].is_nps),
    )


@bp.get("/<int:node_id>/<part>.csv")
@allow(*STAFF)
def download(node_id: int, part: str) -> Response:
    """One part's table as CSV (UTF-8 with a byte-order mark, so spreadsheet programs read ä and ö)."""
    if part not in PARTS:
        abort(404)
    sel = selection(node_id)
    head: list[str] = [_("Answers")]
    rows: list[list[str]] = []
    if sel.query is not None:
        head, rows = table(part, sel, figures_of(sel, {part}))
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(head)
    writer.writerows(rows)
    name = f"hymy-{sel.node.code}-{part}-{sel.args['from']}-{sel.args['to']}.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def csv_url(part: str, sel: Selection) -> str:
    """The address of a part's CSV file with the page's filters."""
    return url_for("results.download", node_id=sel.node.id, part=part, **sel.args)


@bp.app_context_processor
def helpers() -> dict[str, Any]:
    return {"csv_url": csv_url}
