"""What people wrote: a node's open-feedback texts for its staff, by theme and tone over time.

Only staff whose part of the organisation holds the unit see its texts (public pages never show
free text). Themes over time are a chart and the same figures as a table; each theme links to the
texts behind it. Unit managers and administrators correct a text's themes and tone; the correction
is kept, audited (without the text) and taught to the built-in method.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers.response import Response as BaseResponse

from ..accounts import ADMIN, MANAGER
from ..db.feedback import EXAMPLE, FeedbackRecords, FeedbackText, theme_series
from ..org import LOCATION
from ..store import DEFAULT_TZ
from ..themes.model import MIXED, NEGATIVE, POSITIVE, THEMES, TONES
from . import extension, scope
from .access import STAFF, allow, me
from .results import CHANNEL_LABELS, ROLE_LABELS, answer_label, date_arg, period_label

bp = Blueprint("texts", __name__, url_prefix="/texts")

THEME_LABELS = {
    "waiting": _l("Waiting time"),
    "friendliness": _l("Friendliness of the staff"),
    "information": _l("Information"),
    "facilities": _l("Premises and cleanliness"),
    "phone": _l("Reaching us by phone"),
    "appointments": _l("Getting an appointment"),
    "parking": _l("Parking and getting here"),
    "care": _l("Quality of care"),
    "language": _l("Service in one's own language"),
    "digital": _l("Online services"),
}
TONE_LABELS = {POSITIVE: _l("positive"), NEGATIVE: _l("negative"), MIXED: _l("mixed")}
#: Tone colours for the chart (each at least 4.5:1 against white; the legend and table name them).
TONE_COLOURS = {POSITIVE: "#1d6b33", MIXED: "#8a4b00", NEGATIVE: "#a4161a"}
PERIODS = {"week": _l("Week"), "month": _l("Month")}
DEFAULT_DAYS = 90
MAX_DAYS = 3 * 366
PAGE = 100


def records() -> FeedbackRecords:
    """The open-feedback answers of the app's store."""
    return extension("feedback").records  # type: ignore[no-any-return]


def _dates() -> tuple[date, date, list[str]]:
    """The window from ``from`` and ``to``, checked as the results page checks them."""
    notes: list[str] = []
    last = date_arg(request.args, "to", datetime.now(ZoneInfo(DEFAULT_TZ)).date(), notes)
    first = date_arg(request.args, "from", last - timedelta(days=DEFAULT_DAYS - 1), notes)
    if first > last:
        first, last = last, first
    if (last - first).days >= MAX_DAYS:
        first = last - timedelta(days=MAX_DAYS - 1)
    return first, last, notes


def _node(node_id: int) -> Any:
    t = scope.tree()
    node = scope.node_or_404(t, node_id)
    if node.kind == LOCATION:
        unit = t.unit_of(node.id)
        if unit is None:
            abort(404)
        node = unit
    return t, node


@bp.get("/<int:node_id>")
@allow(*STAFF)
def node(node_id: int) -> str:
    """A node's texts: themes over time with their tone, then the texts (one theme's, one tone's)."""
    t, n = _node(node_id)
    first, last, notes = _dates()
    span = (last - first).days + 1
    period = request.args.get("period", "")
    if period not in PERIODS:
        period = "week" if span <= 26 * 7 else "month"
    theme = request.args.get("theme") or None
    if theme not in THEMES:
        theme = None
    tone = request.args.get("tone") or None
    if tone not in TONES:
        tone = None
    units = t.unit_codes(n.id)
    everything = records().texts(units, first, last)
    zones = extension("store").unit_zones()
    series = theme_series(everything, first, last, period, zones)
    shown = [x for x in everything if (theme is None or theme in x.themes) and (tone is None or x.tone == tone)]
    page = max(1, request.args.get("page", 1, type=int) or 1)
    ranked = sorted(series.totals, key=lambda th: (-series.totals[th], THEMES.index(th)))
    chart = {
        "kind": "stacked",
        "labels": [str(THEME_LABELS[th]) for th in ranked],
        "value_label": _("Texts"),
        "stacks": [
            {
                "label": str(TONE_LABELS[tn]),
                "colour": TONE_COLOURS[tn],
                "values": [sum(series.counts[th].get(p, {}).get(tn, 0) for p in series.periods) for th in ranked],
            }
            for tn in (NEGATIVE, MIXED, POSITIVE)
        ],
    }
    args = {"from": first.isoformat(), "to": last.isoformat(), "period": period}
    return render_template(
        "texts/node.html",
        node=n,
        tree=t,
        notes=notes,
        args=args,
        theme=theme,
        tone=tone,
        series=series,
        ranked=ranked,
        chart=chart,
        texts=shown[(page - 1) * PAGE : page * PAGE],
        total=len(shown),
        all_count=len(everything),
        pending=sum(1 for x in everything if x.tone is None),
        page=page,
        pages=max(1, -(-len(shown) // PAGE)),
        period=period,
        periods=PERIODS,
        period_label=period_label,
        theme_labels=THEME_LABELS,
        tone_labels=TONE_LABELS,
        themes=THEMES,
        tones=TONES,
        role_labels=ROLE_LABELS,
        channel_labels=CHANNEL_LABELS,
        answer_label=answer_label,
        can_correct=me().role in (ADMIN, MANAGER),
        method_label=method_label,
    )


def method_label(x: FeedbackText) -> str:
    """Who gave a text its themes, for the list."""
    if x.corrected_by:
        return _("corrected by %(name)s", name=x.corrected_by)
    if x.method is None:
        return _("themes not assigned yet")
    if x.method == EXAMPLE:
        return _("a labelled example text (demo data)")
    if x.method.startswith("openai"):
        return _("assigned by the county's AI service")
    return _("assigned automatically")


@bp.post("/<int:node_id>/<int:text_id>")
@allow(ADMIN, MANAGER)
def correct(node_id: int, text_id: int) -> BaseResponse:
    """Correct one text's themes and tone (the text must belong to a unit of the node)."""
    t, n = _node(node_id)
    found = records().text(text_id)
    if found is None or found.unit not in t.unit_codes(n.id):
        abort(404)
    themes = [th for th in request.form.getlist("theme") if th in THEMES]
    tone = request.form.get("tone", "")
    if tone not in TONES:
        flash(_("Choose the text's tone."), "error")
    else:
        records().correct(me().username, text_id, themes, tone)
        flash(_("The text's themes were saved. Later texts like it are assigned accordingly."), "ok")
    back: dict[str, Any] = {
        k: v for k, v in request.args.items() if k in ("from", "to", "period", "theme", "tone", "page")
    }
    return redirect(url_for("texts.node", node_id=node_id, **back) + f"#text-{text_id}", 303)
