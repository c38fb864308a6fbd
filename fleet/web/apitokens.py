"""API tokens, for IT: the bearer tokens reporting systems read /api/v1 with, each over a part of the
organisation; made here (the token is shown once), listed, and revoked."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from ..accounts import ADMIN
from ..db.apitokens import ApiTokenError, ApiTokens
from ..org import LOCATION, Tree
from . import extension, scope
from .access import allow, me
from .forms import ApiTokenForm, RevokeTokenForm, choices
from .i18n import language

bp = Blueprint("apitokens", __name__, url_prefix="/api-tokens")


def tokens() -> ApiTokens:
    """The app's API tokens."""
    return ApiTokens(extension("store"))


def _scopes(t: Tree) -> list[tuple[int, str]]:
    """The parts a token may cover: everything, or a region, service area or unit (votes know units)."""
    return [(0, _("The whole organisation"))] + [
        (n.id, " › ".join(p.name(language()) for p in t.path(n.id)))
        for n in t.subtree(None)
        if not n.archived and n.kind != LOCATION
    ]


@bp.route("/", methods=["GET", "POST"])
@allow(ADMIN)
def index() -> str | BaseResponse | tuple[str, int]:
    """Every token, and the form to make one; a new token is shown on the answer to the form, once."""
    t = scope.tree()
    form = ApiTokenForm()
    form.scope.choices = choices(_scopes(t))
    if form.validate_on_submit():
        try:
            made, plain = tokens().create(me().username, form.name.data, form.scope.data or None)
        except ApiTokenError as exc:
            form.form_errors.append(_("The token could not be created: %(reason)s", reason=str(exc)))
        else:
            return render_template("apitokens/created.html", token=made, plain=plain, tree=t)
    status = 400 if form.errors else 200
    return render_template(
        "apitokens/index.html", tokens=tokens().all(), form=form, revoke=RevokeTokenForm(), tree=t
    ), status


@bp.post("/<int:token_id>/revoke")
@allow(ADMIN)
def revoke(token_id: int) -> BaseResponse:
    """Revoke a token: reporting systems that use it are refused from the next request on."""
    found = tokens().get(token_id)
    if found is None:
        abort(404)
    if not RevokeTokenForm().validate_on_submit():
        abort(400)
    tokens().revoke(me().username, token_id)
    flash(_("The token “%(name)s” is revoked.", name=found.name), "info")
    return redirect(url_for("apitokens.index"))
