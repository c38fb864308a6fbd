"""The first page after signing in: the person's part of the fleet at a glance."""

from __future__ import annotations

from flask import Blueprint, render_template

from ..accounts import ADMIN, VIEWER
from ..org import UNIT
from . import extension, scope
from .access import STAFF, allow, me

bp = Blueprint("overview", __name__)


@bp.get("/")
@allow(*STAFF)
def index() -> str:
    """Units, terminals (online, offline, lagging, not placed) and, for IT, rejected messages."""
    t = scope.tree()
    units = [n for n in scope.visible_nodes(t) if n.kind == UNIT and not n.archived]
    figures: dict[str, int] = {"units": len(units)}
    rejected = 0
    if me().role != VIEWER:
        retired = extension("org").retired()
        terminals = [s for s in scope.terminals(t) if s.device not in retired]
        figures.update(
            terminals=len(terminals),
            online=sum(1 for s in terminals if s.online),
            offline=sum(1 for s in terminals if s.online is False),
            lagging=sum(1 for s in terminals if s.lags),
            unplaced=sum(1 for s in terminals if s.unit is None),
        )
    if me().role == ADMIN:
        rejected = sum(extension("store").rejection_counts().values())
    from .alerts import alerts_of, visible

    alerts = sum(1 for a in alerts_of().open_alerts() if visible(t, a))
    return render_template("overview.html", figures=figures, units=units, tree=t, rejected=rejected, alerts=alerts)
