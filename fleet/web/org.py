"""The organisation: region → service area → unit → location, with forms that explain bad values."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from protocol.configdoc import WEEKDAYS

from ..accounts import ADMIN, MANAGER
from ..org import KINDS, PARENT_KIND, UNIT, OrgError, OrgNode, hours_text, parse_hours
from . import extension, scope
from .access import STAFF, allow, me
from .forms import (
    KIND_LABELS,
    SERVICE_LABELS,
    WEEKDAY_LABELS,
    ApplyImportForm,
    ArchiveForm,
    ImportForm,
    NodeForm,
    RestoreForm,
)

bp = Blueprint("org", __name__, url_prefix="/org")


@bp.get("/")
@allow(*STAFF)
def index() -> str:
    """The hierarchy the person may see, as nested lists; archived nodes only when asked."""
    t = scope.tree()
    show_archived = request.args.get("archived") == "1"
    nodes = [n for n in scope.visible_nodes(t) if show_archived or not n.archived]
    roots = [n for n in nodes if n.parent_id is None or n.parent_id not in {m.id for m in nodes}]
    return render_template(
        "org/index.html",
        tree=t,
        roots=roots,
        shown={n.id for n in nodes},
        show_archived=show_archived,
        kinds=KIND_LABELS,
        can_edit=me().role in (ADMIN, MANAGER),
    )


@bp.get("/<int:node_id>")
@allow(*STAFF)
def node(node_id: int) -> str:
    """One node: its fields, its path and what lies under it; a unit also shows its terminals."""
    t = scope.tree()
    n = scope.node_or_404(t, node_id)
    org = extension("org")
    tz = org.zone(n.code) if n.kind == UNIT else None
    terminals = []
    if n.kind == UNIT and me().role in (ADMIN, MANAGER):
        terminals = [s for s in extension("store").terminals() if s.unit == n.code]
    return render_template(
        "org/node.html",
        node=n,
        tree=t,
        tz=tz,
        hours=hours_text(n.hours),
        weekdays=WEEKDAYS,
        weekday_labels=WEEKDAY_LABELS,
        kinds=KIND_LABELS,
        services=SERVICE_LABELS,
        terminals=terminals,
        can_edit=_may_edit(t, n),
        archive_form=ArchiveForm(),
        restore_form=RestoreForm(),
    )


def _may_edit(t: Any, n: OrgNode) -> bool:
    if me().role == ADMIN:
        return True
    return me().role == MANAGER and t.within(n.id, scope.scope_id())


def _may_add_under(t: Any, parent: OrgNode | None) -> bool:
    if me().role == ADMIN:
        return True
    return me().role == MANAGER and parent is not None and t.within(parent.id, scope.scope_id())


@bp.route("/new", methods=["GET", "POST"])
@allow(ADMIN, MANAGER)
def new() -> str | BaseResponse | tuple[str, int]:
    """Add a node under a parent (a region at the top)."""
    t = scope.tree()
    kind = request.args.get("kind", "region")
    if kind not in KINDS:
        abort(404)
    parent_id = request.args.get("parent", type=int)
    parent = None if parent_id is None else scope.node_or_404(t, parent_id)
    if (PARENT_KIND[kind] is None) != (parent is None) or (parent and parent.kind != PARENT_KIND[kind]):
        abort(404)
    if not _may_add_under(t, parent):
        abort(403)
    form = NodeForm()
    if form.validate_on_submit():
        try:
            made = extension("org").add(me().username, kind, parent_id, form.code.data, **_fields(form, kind))
        except OrgError as exc:
            _explain(form, exc)
        else:
            flash(_("Saved."), "info")
            return redirect(url_for("org.node", node_id=made.id))
    status = 400 if form.errors else 200
    return render_template(
        "org/form.html", form=form, kind=kind, parent=parent, node=None, tree=t, kinds=KIND_LABELS, weekdays=WEEKDAYS
    ), status


@bp.route("/<int:node_id>/edit", methods=["GET", "POST"])
@allow(ADMIN, MANAGER)
def edit(node_id: int) -> str | BaseResponse | tuple[str, int]:
    """Change a node's names and settings; its code and kind stay."""
    t = scope.tree()
    n = scope.node_or_404(t, node_id)
    if not _may_edit(t, n):
        abort(403)
    org = extension("org")
    form = NodeForm(obj=None if request.method == "POST" else _Values(n, org))
    form.code.data = n.code  # shown, never changed: votes and terminals carry it
    if form.validate_on_submit():
        try:
            fields = _fields(form, n.kind)
            tz = fields.pop("tz", None)
            org.update(me().username, node_id, tz=tz, **fields)
        except OrgError as exc:
            _explain(form, exc)
        else:
            flash(_("Saved."), "info")
            return redirect(url_for("org.node", node_id=node_id))
    status = 400 if form.errors else 200
    parent = t.nodes.get(n.parent_id) if n.parent_id is not None else None
    return render_template(
        "org/form.html", form=form, kind=n.kind, parent=parent, node=n, tree=t, kinds=KIND_LABELS, weekdays=WEEKDAYS
    ), status


@bp.post("/<int:node_id>/archive")
@allow(ADMIN, MANAGER)
def archive(node_id: int) -> BaseResponse:
    """Archive a node: hidden from lists and placement, its history kept."""
    return _set_archived(node_id, True, ArchiveForm())


@bp.post("/<int:node_id>/restore")
@allow(ADMIN, MANAGER)
def restore(node_id: int) -> BaseResponse:
    """Bring an archived node back."""
    return _set_archived(node_id, False, RestoreForm())


def _set_archived(node_id: int, archived: bool, form: Any) -> BaseResponse:
    t = scope.tree()
    n = scope.node_or_404(t, node_id)
    if not _may_edit(t, n) or (me().role != ADMIN and n.id == scope.scope_id()):
        abort(403)
    if form.validate_on_submit():
        try:
            extension("org").set_archived(me().username, node_id, archived)
            flash(_("Archived.") if archived else _("Restored."), "info")
        except OrgError:
            flash(_("Archive the nodes under it first."), "error")
    return redirect(url_for("org.node", node_id=node_id))


class _Values:
    """A node's fields as a form object reads them."""

    def __init__(self, n: OrgNode, org: Any) -> None:
        self.code, self.name_fi, self.name_sv, self.name_en = n.code, n.name_fi, n.name_sv, n.name_en
        self.oid, self.service_type, self.target = n.oid, n.service_type or "", n.target
        self.misuse_interval_s = None if n.misuse_interval_s is None else Decimal(str(n.misuse_interval_s))
        self.tz = org.zone(n.code) if n.kind == UNIT else "Europe/Helsinki"
        for day, text in hours_text(n.hours).items():
            setattr(self, f"hours_{day}", text)


def _fields(form: NodeForm, kind: str) -> dict[str, Any]:
    """The form's values for Organisation.add/update; unit-only fields only for units."""
    out: dict[str, Any] = {
        "name_fi": form.name_fi.data,
        "name_sv": form.name_sv.data or "",
        "name_en": form.name_en.data or "",
    }
    if kind == UNIT:
        tz = (form.tz.data or "Europe/Helsinki").strip()
        try:
            hours = parse_hours({d: getattr(form, f"hours_{d}").data for d in WEEKDAYS}, tz)
        except OrgError as exc:
            day = str(exc).split(":")[0].removeprefix("hours.weekly.").split(" ")[0]
            field: Any = getattr(form, f"hours_{day if day in WEEKDAYS else 'mon'}")
            field.errors = [
                _("Write opening hours as 08:00-16:00; several separated by commas; each opening before it closes.")
            ]
            raise
        out.update(
            oid=form.oid.data or None,
            service_type=form.service_type.data or None,
            tz=tz,
            hours=hours,
            misuse_interval_s=None if form.misuse_interval_s.data is None else float(form.misuse_interval_s.data),
            target=form.target.data,
        )
    return out


def _explain(form: NodeForm, exc: OrgError) -> None:
    """Put a store-side refusal on the field it concerns (the message in the form's language)."""
    text = str(exc)
    if text.startswith("code:"):
        form.code.errors = [_("That code is taken by another node.")]
    elif text.startswith("parent:"):
        form.form_errors.append(_("The parent node cannot take this node (archived, or of the wrong kind)."))
    elif not any(getattr(form, f"hours_{d}").errors for d in WEEKDAYS):
        form.form_errors.append(_("The value could not be saved: %(reason)s", reason=text))


@bp.route("/import", methods=["GET", "POST"])
@allow(ADMIN)
def import_csv() -> str | BaseResponse | tuple[str, int]:
    """A county's units from a CSV file: first a dry run showing every change, then apply it at once."""
    from ..orgimport import apply_import, plan_import

    org = extension("org")
    form, apply_form = ImportForm(), ApplyImportForm()
    plan, text, status = None, "", 200
    if "text" in request.form:
        if apply_form.validate_on_submit():
            text = apply_form.text.data
            plan = plan_import(text, org.tree(), org.store.unit_zones())
            try:
                done = apply_import(plan, text, org, me().username)
            except OrgError as exc:
                flash(_("Nothing was changed: %(reason)s", reason=str(exc)), "error")
                status = 409
            else:
                extension("configs").sync()  # units' hours and misuse intervals reach their terminals
                flash(_("Imported: %(a)s added, %(c)s changed.", a=done.added, c=done.changed), "info")
                return redirect(url_for("org.index"))
    elif form.validate_on_submit():
        raw = form.file.data.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            form.file.errors = [_("The file is not UTF-8 text. Save it as CSV UTF-8 and try again.")]
            status = 400
        else:
            plan = plan_import(text, org.tree(), org.store.unit_zones())
            apply_form.text.data = text
            status = 200 if plan.ok else 400
    elif request.method == "POST":
        status = 400
    return render_template("org/import.html", form=form, apply_form=apply_form, plan=plan), status
