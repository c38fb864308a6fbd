"""Configurations: question sets edited in the browser, versioned, assigned, published.

IT administrators create sets from the shipped templates, edit them (a form for the common settings,
the JSON document for everything else), and publish versions; unit managers assign published sets to
their part of the organisation or to single terminals there. Every terminal's page says which set it
gets and why.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from protocol.configdoc import SHIPPED_LANGUAGES

from ..accounts import ADMIN, MANAGER
from ..configs import check_doc
from ..errors import ConfigError
from ..org import KINDS
from . import extension, scope
from .access import allow, me
from .forms import (
    KIND_LABELS,
    TEMPLATE_LABELS,
    AssignForm,
    ConfigDocForm,
    ConfigTextsForm,
    NewConfigForm,
    PublishForm,
    choices,
)
from .i18n import language

bp = Blueprint("configs", __name__, url_prefix="/configs")


@bp.route("/", methods=["GET", "POST"])
@allow(ADMIN, MANAGER)
def index() -> str | BaseResponse | tuple[str, int]:
    """The sets, and (for IT) the form that starts a new one from a shipped template."""
    configs = extension("configs")
    form = NewConfigForm()
    if form.validate_on_submit():
        if me().role != ADMIN:
            abort(403)
        try:
            made = configs.create_set(me().username, form.name.data, form.template.data)
        except ConfigError as exc:
            form.name.errors = [_("The configuration could not be created: %(reason)s", reason=str(exc))]
        else:
            return redirect(url_for("configs.detail", set_id=made.id))
    status = 400 if form.errors else 200
    return render_template("configs/index.html", sets=configs.sets(), form=form), status


def _texts_form(doc: dict[str, Any]) -> ConfigTextsForm:
    texts = doc["question"]["text"]
    data: dict[str, Any] = {f"lang_{lang}": lang in doc["languages"] for lang in SHIPPED_LANGUAGES}
    data.update({f"text_{lang}": texts.get(lang, "") for lang in SHIPPED_LANGUAGES})
    strings = doc.get("strings") or {}
    data.update({f"thanks_{lang}": (strings.get(lang) or {}).get("thanks", "") for lang in SHIPPED_LANGUAGES})
    data.update(
        default_language=doc["default_language"],
        role_question=bool(doc.get("role_question")),
        thanks_s=Decimal(str(doc.get("thanks_s", 5))),
        misuse_interval_s=Decimal(str(doc.get("misuse_interval_s", 2.0))),
        feedback_url=doc.get("feedback_url") or "",
    )
    return ConfigTextsForm(data=data)


def _from_texts(form: ConfigTextsForm, doc: dict[str, Any]) -> dict[str, Any]:
    """The document with the form's settings applied; languages beyond the shipped three stay."""
    out = json.loads(json.dumps(doc))
    others = [lang for lang in out["languages"] if lang not in SHIPPED_LANGUAGES]
    shipped = [lang for lang in SHIPPED_LANGUAGES if getattr(form, f"lang_{lang}").data]
    out["languages"] = shipped + others
    out["default_language"] = form.default_language.data
    texts = out["question"]["text"]
    for lang in SHIPPED_LANGUAGES:
        new = (getattr(form, f"text_{lang}").data or "").strip()
        if new and new != texts.get(lang):
            texts[lang] = new
            review = [r for r in out["question"].get("review", []) if r != lang]  # edited by a person here
            if review:
                out["question"]["review"] = review
            else:
                out["question"].pop("review", None)
            out["question"].setdefault("sources", {})[lang] = f"Edited in the Hymy fleet web by {me().username}"
        elif not new:
            texts.pop(lang, None)
            out["question"].get("sources", {}).pop(lang, None)
            if "review" in out["question"]:
                out["question"]["review"] = [r for r in out["question"]["review"] if r != lang]
                if not out["question"]["review"]:
                    del out["question"]["review"]
    strings = out.setdefault("strings", {})
    for lang in SHIPPED_LANGUAGES:
        thanks = (getattr(form, f"thanks_{lang}").data or "").strip()
        texts_of = strings.setdefault(lang, {})
        if thanks:
            texts_of["thanks"] = thanks
        else:
            texts_of.pop("thanks", None)
        if not texts_of:
            del strings[lang]
    if not strings:
        del out["strings"]
    out["role_question"] = bool(form.role_question.data)
    out["thanks_s"] = float(form.thanks_s.data)
    out["misuse_interval_s"] = float(form.misuse_interval_s.data)
    out["feedback_url"] = (form.feedback_url.data or "").strip() or None
    return out


@bp.route("/<int:set_id>", methods=["GET", "POST"])
@allow(ADMIN, MANAGER)
def detail(set_id: int) -> str | BaseResponse | tuple[str, int]:
    """A set: its versions, the check of the newest, the forms to change it, and where it is assigned."""
    configs = extension("configs")
    cs = configs.get_set(set_id)
    if cs is None:
        abort(404)
    latest = configs.version(set_id, cs.latest)
    assert latest is not None
    texts = _texts_form(latest.doc) if request.method == "GET" or "lang_fi" not in request.form else ConfigTextsForm()
    doc_form = ConfigDocForm(data={"doc": json.dumps(latest.doc, ensure_ascii=False, indent=2, sort_keys=True)})
    if request.method == "POST":
        if me().role != ADMIN:
            abort(403)
        if "doc" in request.form:
            doc_form = ConfigDocForm()
            if doc_form.validate_on_submit():
                try:
                    doc = json.loads(doc_form.doc.data)
                    if not isinstance(doc, dict):
                        raise ValueError("not an object")
                    configs.save_version(me().username, set_id, doc)
                except ValueError as exc:
                    doc_form.doc.errors = [_("The document is not valid JSON: %(reason)s", reason=str(exc))]
                except ConfigError as exc:
                    doc_form.doc.errors = [_("The document cannot be used: %(reason)s", reason=str(exc))]
                else:
                    flash(_("Saved as a new version. Publish it when it is ready."), "info")
                    return redirect(url_for("configs.detail", set_id=set_id))
        elif texts.validate_on_submit():
            try:
                configs.save_version(me().username, set_id, _from_texts(texts, latest.doc))
            except ConfigError as exc:
                texts.form_errors.append(_("The configuration cannot be used: %(reason)s", reason=str(exc)))
            else:
                flash(_("Saved as a new version. Publish it when it is ready."), "info")
                return redirect(url_for("configs.detail", set_id=set_id))
    status = 400 if texts.errors or doc_form.errors else 200
    t = scope.tree()
    lang = language()
    assigned = [(target, _target_name(t, target, lang)) for target, s in configs.assignments().items() if s == set_id]
    return render_template(
        "configs/detail.html",
        cs=cs,
        versions=configs.versions(set_id),
        latest=latest,
        check=check_doc(latest.doc),
        texts=texts,
        doc_form=doc_form,
        publish_form=PublishForm(),
        assigned=assigned,
        templates=TEMPLATE_LABELS,
    ), status


@bp.post("/<int:set_id>/publish/<int:version>")
@allow(ADMIN)
def publish(set_id: int, version: int) -> BaseResponse:
    """Publish a version: every terminal that gets this set is sent its new document."""
    configs = extension("configs")
    if configs.version(set_id, version) is None:
        abort(404)
    if PublishForm().validate_on_submit():
        try:
            changed = configs.publish(me().username, set_id, version)
        except ConfigError as exc:
            flash(_("This version cannot be published: %(reason)s", reason=str(exc)), "error")
        else:
            flash(
                _("Version %(v)s published; %(n)s terminals get a new configuration.", v=version, n=len(changed)),
                "info",
            )
    return redirect(url_for("configs.detail", set_id=set_id))


def _target_name(t: Any, target: str, lang: str) -> str:
    kind, _, ident = target.partition(":")
    if kind == "node" and ident.isdigit() and int(ident) in t.nodes:
        return " › ".join(n.name(lang) for n in t.path(int(ident)))
    return ident


@bp.get("/assignments")
@allow(ADMIN, MANAGER)
def assignments() -> str:
    """The organisation with the set each part is assigned, and the set each one gets from above."""
    configs = extension("configs")
    t = scope.tree()
    sets = {s.id: s for s in configs.sets()}
    assigned = configs.assignments()
    nodes = [n for n in scope.visible_nodes(t) if not n.archived]
    options = choices([(0, _("Nothing here (inherit)"))] + [(s.id, s.name) for s in sets.values()])
    rows = []
    for n in nodes:
        inherited = next(
            (assigned[f"node:{p.id}"] for p in reversed(t.path(n.id)[:-1]) if f"node:{p.id}" in assigned), None
        )
        form = AssignForm(prefix=f"n{n.id}", data={"target": f"node:{n.id}", "set_id": assigned.get(f"node:{n.id}", 0)})
        form.set_id.choices = options
        rows.append((n, form, sets.get(inherited) if inherited else None))
    return render_template("configs/assignments.html", rows=rows, sets=sets, tree=t, kinds=KIND_LABELS, order=KINDS)


@bp.post("/assign")
@allow(ADMIN, MANAGER)
def assign() -> BaseResponse:
    """Assign a set to a part of the organisation or to one terminal (within the person's part)."""
    configs = extension("configs")
    prefix = next((k.split("-")[0] for k in request.form if k.endswith("-target")), "")
    form = AssignForm(prefix=prefix)
    form.set_id.choices = choices([(0, "–")] + [(s.id, s.name) for s in configs.sets()])
    back = request.referrer if request.referrer and request.referrer.startswith(request.host_url) else None
    if not form.validate_on_submit():
        flash(_("Choose a configuration."), "error")
        return redirect(back or url_for("configs.assignments"))
    target = form.target.data
    t = scope.tree()
    kind, _sep, ident = target.partition(":")
    if kind == "node" and ident.isdigit():
        scope.node_or_404(t, int(ident))
    elif kind == "terminal":
        status = extension("store").terminal(ident)
        if status is None or not scope.terminal_visible(t, status):
            abort(404)
    else:
        abort(404)
    changed = configs.assign(me().username, target, form.set_id.data or None)
    flash(_("Assigned; %(n)s terminals get a new configuration.", n=len(changed)), "info")
    return redirect(back or url_for("configs.assignments"))
