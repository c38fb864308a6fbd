"""Alerts in the browser: the open and recent alerts of the person's part, acknowledging them with a
comment, and (for IT) where alerts are delivered."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse
from wtforms import SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length

from .. import alerts as rules
from ..accounts import ADMIN, MANAGER
from ..db.alerts import CHANNELS, Alert, AlertError, Alerts
from ..org import LOCATION, Tree
from . import extension, scope
from .access import STAFF, allow, me
from .forms import choices
from .i18n import language

bp = Blueprint("alerts", __name__, url_prefix="/alerts")

KIND_LABELS = {
    rules.OFFLINE: _l("Terminal offline during opening hours"),
    rules.SPIKE: _l("Unusually many negative answers today"),
    rules.UNDER_TARGET: _l("Clearly under its target, last 30 days"),
    rules.SILENT: _l("No answers on recent opening days"),
    rules.REJECTED: _l("A terminal rejected its configuration"),
}
CHANNEL_LABELS = {"email": _l("E-mail"), "webhook": _l("Webhook")}


class AckForm(FlaskForm):  # type: ignore[misc]
    comment = TextAreaField(
        _l("What is being done about it"),
        validators=[DataRequired(_l("Say what is being done about it.")), Length(max=1000)],
        render_kw={"rows": 2},
    )
    submit = SubmitField(_l("Acknowledge"))


class RouteForm(FlaskForm):  # type: ignore[misc]
    node = SelectField(_l("Alerts of"))
    channel = SelectField(_l("Send by"), choices=choices(CHANNEL_LABELS.items()))
    target = StringField(
        _l("Address"),
        validators=[DataRequired(), Length(max=2000)],
        description=_l("An e-mail address, or the https:// address of a webhook that takes JSON."),
    )
    submit = SubmitField(_l("Add"))


class RemoveForm(FlaskForm):  # type: ignore[misc]
    submit = SubmitField(_l("Remove"))


def alerts_of() -> Alerts:
    return Alerts(extension("store"), extension("org"))


def visible(t: Tree, alert: Alert) -> bool:
    """IT sees every alert; others those of nodes in their part."""
    sid = scope.scope_id()
    if sid is None:
        return True
    return alert.node_id is not None and alert.node_id in t.nodes and t.within(alert.node_id, sid)


def alert_subject(t: Tree, alert: Alert, lang: str) -> str:
    """What an alert is about, for people: the unit's name, or the terminal and its unit."""
    node = t.nodes.get(alert.node_id) if alert.node_id is not None else None
    where = node.name(lang) if node is not None else ""
    if alert.subject.startswith("terminal:"):
        device = alert.subject.split(":", 1)[1]
        return f"{device} – {where}" if where else device
    return where or alert.subject


@bp.get("/")
@allow(*STAFF)
def index() -> str:
    """Open alerts first, then those resolved in the last 30 days, of the person's part."""
    t = scope.tree()
    shown = [a for a in alerts_of().recent() if visible(t, a)]
    return render_template(
        "alerts/index.html",
        open_alerts=[a for a in shown if a.open],
        resolved=[a for a in shown if not a.open],
        tree=t,
        kinds=KIND_LABELS,
        subject=alert_subject,
        form=AckForm(),
        can_ack=me().role in (ADMIN, MANAGER),
    )


def _get(alert_id: int) -> Alert:
    alert = alerts_of().get(alert_id)
    if alert is None or not visible(scope.tree(), alert):
        abort(404)
    return alert


def _detail(alert: Alert, form: AckForm) -> str:
    return render_template(
        "alerts/detail.html",
        alert=alert,
        tree=scope.tree(),
        kinds=KIND_LABELS,
        subject=alert_subject,
        deliveries=alerts_of().deliveries(alert.id) if me().role == ADMIN else [],
        form=form,
        can_ack=me().role in (ADMIN, MANAGER),
    )


@bp.get("/<int:alert_id>")
@allow(*STAFF)
def detail(alert_id: int) -> str:
    """One alert: its figures, who acknowledged it and how, and (for IT) its deliveries."""
    return _detail(_get(alert_id), AckForm())


@bp.post("/<int:alert_id>/acknowledge")
@allow(ADMIN, MANAGER)
def acknowledge(alert_id: int) -> Any:
    """Acknowledge with a comment; an empty one is refused with the reason."""
    alert = _get(alert_id)
    form = AckForm()
    if form.validate_on_submit():
        try:
            alerts_of().acknowledge(me().username, alert.id, form.comment.data or "")
        except AlertError as exc:
            form.comment.errors = [str(exc)]
        else:
            flash(_("Alert acknowledged."), "success")
            return redirect(url_for("alerts.index"))
    elif not form.comment.errors:
        form.comment.errors = [_("Say what is being done about it.")]
    return _detail(alert, form)


@bp.route("/routes", methods=["GET", "POST"])
@allow(ADMIN)
def routes() -> Any:
    """Where alerts are delivered, by part of the organisation; add and remove."""
    t = scope.tree()
    alerts = alerts_of()
    form = RouteForm()
    nodes = [n for n in t.subtree(None) if n.kind != LOCATION and not n.archived]
    lang = language()
    form.node.choices = choices([("", _("The whole organisation"))] + [(str(n.id), n.name(lang)) for n in nodes])
    if form.validate_on_submit():
        node_id = int(form.node.data) if form.node.data else None
        try:
            alerts.add_route(me().username, node_id, form.channel.data or "", form.target.data or "")
        except AlertError as exc:
            form.target.errors = [str(exc)]
        else:
            flash(_("Alerts will be delivered there."), "success")
            return redirect(url_for("alerts.routes"))
    return render_template(
        "alerts/routes.html",
        routes=alerts.routes(),
        tree=t,
        form=form,
        remove=RemoveForm(),
        channels=CHANNEL_LABELS,
        channel_names=CHANNELS,
    )


@bp.post("/routes/<int:route_id>/remove")
@allow(ADMIN)
def remove_route(route_id: int) -> BaseResponse:
    """Stop delivering to a route."""
    if RemoveForm().validate_on_submit():
        try:
            alerts_of().remove_route(me().username, route_id)
        except AlertError:
            abort(404)
        flash(_("The route was removed."), "success")
    return redirect(url_for("alerts.routes"))
