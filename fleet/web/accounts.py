"""Accounts, for IT: who may sign in, with which role, over which part of the organisation."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from ..accounts import ADMIN, AccountError
from . import extension, scope
from .access import allow, me
from .forms import ROLE_LABELS, AccountEditForm, AccountForm, choices
from .i18n import language

bp = Blueprint("accounts", __name__, url_prefix="/accounts")


def _scopes(t: Any) -> list[tuple[int, str]]:
    return [(0, _("The whole organisation"))] + [
        (n.id, " › ".join(p.name(language()) for p in t.path(n.id))) for n in t.subtree(None) if not n.archived
    ]


@bp.route("/", methods=["GET", "POST"])
@allow(ADMIN)
def index() -> str | BaseResponse | tuple[str, int]:
    """Every account, and the form to add one."""
    t = scope.tree()
    form = AccountForm()
    form.scope.choices = choices(_scopes(t))
    accounts = extension("accounts")
    if form.validate_on_submit():
        try:
            accounts.create(
                me().username,
                form.username.data,
                form.password.data,
                form.role.data,
                form.scope.data or None,
                form.lang.data,
            )
        except AccountError as exc:
            form.form_errors.append(_("The account could not be created: %(reason)s", reason=str(exc)))
        else:
            flash(_("Account created."), "info")
            return redirect(url_for("accounts.index"))
    status = 400 if form.errors else 200
    return render_template("accounts/index.html", accounts=accounts.all(), form=form, tree=t, roles=ROLE_LABELS), status


@bp.route("/<int:account_id>", methods=["GET", "POST"])
@allow(ADMIN)
def edit(account_id: int) -> str | BaseResponse | tuple[str, int]:
    """Change an account's role, scope or password, or disable it (which ends its sessions)."""
    t = scope.tree()
    accounts = extension("accounts")
    account = accounts.get(account_id)
    if account is None:
        abort(404)
    form = AccountEditForm(data={"role": account.role, "scope": account.scope_id or 0, "disabled": account.disabled})
    form.scope.choices = choices(_scopes(t))
    if form.validate_on_submit():
        if account.id == me().id and (form.disabled.data or form.role.data != ADMIN):
            form.form_errors.append(_("You cannot disable your own account or take away your own role."))
        else:
            try:
                accounts.update(
                    me().username,
                    account_id,
                    role=form.role.data,
                    scope_id=form.scope.data or None,
                    disabled=form.disabled.data,
                    password=form.password.data or None,
                )
            except AccountError as exc:
                form.form_errors.append(_("The account could not be changed: %(reason)s", reason=str(exc)))
            else:
                flash(_("Saved."), "info")
                return redirect(url_for("accounts.index"))
    status = 400 if form.errors else 200
    return render_template("accounts/edit.html", account=account, form=form, roles=ROLE_LABELS), status
