"""Signing in and out, and the choice of language."""

from __future__ import annotations

import math
import time

from flask import Blueprint, Response, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response as BaseResponse

from . import extension
from .access import STAFF, User, allow, me, public
from .forms import LanguageForm, LoginForm, OwnPasswordForm

bp = Blueprint("auth", __name__)


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else the overview (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("overview.index")


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> str | BaseResponse | tuple[str, int]:
    """The sign-in page; five wrong passwords for a name (or fifty from an address) in 15 minutes wait."""
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if form.validate_on_submit():
        throttle = extension("throttle")
        addr = request.remote_addr or "-"
        wait = throttle.wait_s(form.username.data, addr)
        if wait > 0:
            minutes = math.ceil(wait / 60)
            flash(_("Too many failed sign-ins. Try again in %(minutes)d minutes.", minutes=minutes), "error")
            return render_template("login.html", form=form), 429
        account = extension("accounts").authenticate(form.username.data, form.password.data)
        if account is None:
            throttle.failed(form.username.data, addr)
            flash(_("Wrong username or password."), "error")
            return render_template("login.html", form=form), 401
        throttle.succeeded(form.username.data)
        session.clear()  # a fresh session: nothing from before sign-in carries over (fixation)
        login_user(User(account))
        session["login_at"] = int(time.time())
        session.permanent = True
        return redirect(safe_next(form.next.data))
    return render_template("login.html", form=form)


@bp.post("/logout")
@allow(*STAFF)
def logout() -> BaseResponse:
    """Sign out (a POST with its CSRF token, so no link elsewhere can sign anyone out)."""
    logout_user()
    session.clear()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/language")
@public
def language() -> BaseResponse | Response:
    """Change the language; a signed-in person's choice is kept on their account."""
    form = LanguageForm()
    if form.validate_on_submit():
        session["lang"] = form.lang.data
        if current_user.is_authenticated:
            extension("accounts").update(me().username, me().id, lang=form.lang.data)
    return redirect(safe_next(form.next.data))


@bp.route("/account", methods=["GET", "POST"])
@allow(*STAFF)
def account() -> str | BaseResponse | tuple[str, int]:
    """One's own account: role and part of the organisation, and a new password (other sessions end)."""
    form = OwnPasswordForm()
    accounts = extension("accounts")
    if form.validate_on_submit():
        throttle, addr = extension("throttle"), request.remote_addr or "-"
        if form.new.data != form.again.data:
            form.again.errors = [_("The new passwords differ.")]
        elif throttle.wait_s(me().username, addr) > 0:  # a session left open is no licence to guess
            form.current.errors = [_("Too many failed sign-ins. Try again in %(minutes)d minutes.", minutes=15)]
        elif accounts.authenticate(me().username, form.current.data) is None:
            throttle.failed(me().username, addr)
            form.current.errors = [_("The current password is not right.")]
        else:
            updated = accounts.update(me().username, me().id, password=form.new.data)
            login_user(User(updated))  # this session goes on under the new password; the others end
            flash(_("Password changed. Your other sessions have ended."), "info")
            return redirect(url_for("auth.account"))
    status = 400 if form.errors else 200
    scope = extension("org").node(me().scope_id) if me().scope_id else None
    return render_template("account.html", form=form, scope=scope), status
