"""The terminal registry, one terminal's page (placement history, place, move, retire) and fleet health."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from ..accounts import ADMIN, MANAGER
from ..brokerauth import BrokerAccountsError
from ..org import LOCATION, UNIT, OrgError
from ..records import TerminalStatus
from . import extension, scope
from .access import allow, me
from .forms import AssignForm, PlaceForm, ReplaceTerminalForm, RetireForm, RevokeLoginForm, choices
from .i18n import language

bp = Blueprint("terminals", __name__)

#: Filters of the registry: name → which terminals it keeps.
FILTERS: dict[str, Callable[[TerminalStatus], bool]] = {
    "all": lambda s: True,
    "online": lambda s: bool(s.online),
    "offline": lambda s: s.online is False,
    "lagging": lambda s: s.lags or s.report_status == "rejected",
    "unplaced": lambda s: s.unit is None,
    "backlog": lambda s: bool(s.queue),
}
#: Sort keys of the registry (a column heading's link): name → key of a terminal.
SORTS: dict[str, Callable[[TerminalStatus], Any]] = {
    "device": lambda s: s.device,
    "state": lambda s: (s.online is not False, s.online is None, s.device),
    "unit": lambda s: (s.unit or "", s.device),
    "seen": lambda s: -(s.last_seen or 0),
    "queue": lambda s: (-(s.queue or 0), -(s.oldest or 0)),
    "config": lambda s: (not (s.lags or s.report_status == "rejected"), s.device),
    "fw": lambda s: (s.fw or "", s.device),
}


@bp.get("/terminals")
@allow(ADMIN, MANAGER)
def registry() -> str:
    """Every terminal the person may see, sortable and filterable, retired ones only on request."""
    t = scope.tree()
    shown = request.args.get("show", "all")
    order = request.args.get("sort", "device")
    if shown not in FILTERS and shown != "retired":
        shown = "all"
    if order not in SORTS:
        order = "device"
    org = extension("org")
    retired = org.retired()
    everyone = scope.terminals(t)
    if shown == "retired":
        rows = [s for s in everyone if s.device in retired]
    else:
        rows = [s for s in everyone if s.device not in retired and FILTERS[shown](s)]
    rows.sort(key=SORTS[order])
    counts = {name: sum(1 for s in everyone if s.device not in retired and f(s)) for name, f in FILTERS.items()}
    counts["retired"] = sum(1 for s in everyone if s.device in retired)
    return render_template(
        "terminals/registry.html",
        rows=rows,
        shown=shown,
        order=order,
        counts=counts,
        tree=t,
        rejected=extension("store").rejections_by_device(),
        placements=org.current_placements(),
        live=request.args.get("live") == "1",
        now_ms=int(time.time() * 1000),
    )


def _visible_or_404(device: str) -> tuple[Any, TerminalStatus]:
    t = scope.tree()
    status = extension("store").terminal(device)
    if status is None or not scope.terminal_visible(t, status):
        abort(404)
    return t, status


def unit_choices(t: Any) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """The units and locations the person may place a terminal in, as (id, label) pairs."""
    units = [n for n in scope.visible_nodes(t) if n.kind == UNIT and not n.archived]
    locations = [n for n in scope.visible_nodes(t) if n.kind == LOCATION and not n.archived]
    lang = language()
    # The unit's own name first (what tells units apart), then where it belongs.
    unit_choices = [(n.id, f"{n.name(lang)} ({t.path(n.id)[-2].name(lang)})") for n in units]
    unit_choices.sort(key=lambda c: c[1].casefold())
    loc_choices = [(0, "–")] + [(n.id, f"{n.name(lang)} ({t.path(n.id)[-2].name(lang)})") for n in locations]
    return unit_choices, loc_choices


@bp.get("/terminals/<device>")
@allow(ADMIN, MANAGER)
def terminal(device: str) -> str:
    """One terminal: health, configuration, placement history, and the forms to place or retire it."""
    t, status = _visible_or_404(device)
    org = extension("org")
    place = PlaceForm()
    place.unit.choices, place.location.choices = map(choices, unit_choices(t))
    if status.unit in t.by_code:
        place.unit.data = t.by_code[status.unit].id
    configs = extension("configs")
    target = f"terminal:{device}"
    assign = AssignForm(prefix="t", data={"target": target, "set_id": configs.assignments().get(target, 0)})
    assign.set_id.choices = choices([(0, _("Nothing here (inherit)"))] + [(c.id, c.name) for c in configs.sets()])
    return render_template(
        "terminals/terminal.html",
        s=status,
        tree=t,
        history=org.placements(device),
        gets=configs.for_terminal(device),
        assign_form=assign,
        retired=org.retired().get(device),
        place_form=place,
        retire_form=RetireForm(),
        enrolled=extension("enrolment").latest(device),
        replace_form=ReplaceTerminalForm(),
        revoke_form=RevokeLoginForm(prefix="revoke"),
        desired=extension("store").get_config(device),
        rejected=extension("store").rejections_by_device().get(device, 0),
        audit=org.audit_entries(limit=20, obj=f"terminal:{device}") if me().role == ADMIN else [],
        now_ms=int(time.time() * 1000),
    )


@bp.post("/terminals/<device>/place")
@allow(ADMIN, MANAGER)
def place(device: str) -> BaseResponse:
    """Place or move the terminal; its votes so far keep the unit they were pressed for."""
    t, status = _visible_or_404(device)
    form = PlaceForm()
    form.unit.choices, form.location.choices = map(choices, unit_choices(t))
    if form.validate_on_submit():
        unit = scope.node_or_404(t, form.unit.data)
        location = form.location.data or None
        try:
            extension("org").place(me().username, device, unit.id, location)
        except OrgError as exc:
            flash(_("The terminal could not be placed: %(reason)s", reason=str(exc)), "error")
        else:
            flash(
                _(
                    "Placed in %(unit)s. The terminal gets its configuration within seconds if it is online.",
                    unit=unit.name(language()),
                ),
                "info",
            )
    else:
        flash(_("Choose a unit (and a location of that unit)."), "error")
    return redirect(url_for("terminals.terminal", device=device))


@bp.post("/terminals/<device>/retire")
@allow(ADMIN)
def retire(device: str) -> BaseResponse:
    """Retire the terminal for good (stolen, broken): its broker login revoked, unplaced, hidden, history kept."""
    _visible_or_404(device)
    form = RetireForm()
    if form.validate_on_submit():
        try:  # locked out first: a retired terminal must not keep a working login
            extension("enrolment").revoke(device, me().username, form.reason.data.strip())
        except BrokerAccountsError:
            flash(_("The broker's account store could not be reached: nothing was changed. Try again."), "error")
            return redirect(url_for("terminals.terminal", device=device))
        try:
            extension("org").retire(me().username, device, form.reason.data)
        except OrgError as exc:
            flash(_("The terminal could not be retired: %(reason)s", reason=str(exc)), "error")
        else:
            flash(_("Retired."), "info")
    else:
        flash(_("Say why the terminal is retired."), "error")
    return redirect(url_for("terminals.terminal", device=device))


@bp.get("/health")
@allow(ADMIN)
def health() -> str:
    """Rejections by reason with the recent ones, lagging terminals, uncertain times, throughput, backlog."""
    store = extension("store")
    retired = extension("org").retired()
    known = [s for s in store.terminals() if s.device not in retired]
    lagging = [s for s in known if s.lags or s.report_status == "rejected"]
    total, uncertain = store.vote_totals()
    return render_template(
        "terminals/health.html",
        reasons=sorted(store.rejection_counts().items()),
        recent=store.recent_rejections(50),
        lagging=lagging,
        total=total,
        uncertain=uncertain,
        ingest=store.ingest_stats(),
        backlog=sum(s.queue or 0 for s in known),
        oldest=max((s.oldest or 0 for s in known), default=0),
        unsynced=[s for s in known if s.clock_synced is False],
        now_ms=int(time.time() * 1000),
    )
