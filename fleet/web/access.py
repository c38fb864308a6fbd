"""Who may use which route: every view states its roles, and a request hook refuses the rest.

A view carries ``@allow(ADMIN, MANAGER)`` (signed-in people with one of these roles), ``@public``
(anyone: the sign-in page, later the residents' pages) or ``@token`` (its own bearer-token check,
like /metrics). The check runs in ``before_request`` for the endpoint's view, so a route that states
nothing is refused to everyone (403) rather than open: a new route cannot forget. Objects are then
checked against the person's part of the hierarchy by the views (404 outside it, so that nothing's
existence leaks).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, abort, current_app, redirect, request, session, url_for
from flask_login import LoginManager, current_user, logout_user

from ..accounts import ADMIN, MANAGER, VIEWER, Account

F = TypeVar("F", bound=Callable[..., Any])
PUBLIC = "public"
TOKEN = "token"
ROLES_ATTR = "hymy_access"
#: Every role that signs in.
STAFF = (ADMIN, MANAGER, VIEWER)


def allow(*roles: str) -> Callable[[F], F]:
    """Let signed-in people with one of ``roles`` use this view."""

    def mark(view: F) -> F:
        setattr(view, ROLES_ATTR, frozenset(roles))
        return view

    return mark


def public(view: F) -> F:
    """Let anyone use this view, signed in or not."""
    setattr(view, ROLES_ATTR, PUBLIC)
    return view


def token(view: F) -> F:
    """This view checks its own bearer token (no session)."""
    setattr(view, ROLES_ATTR, TOKEN)
    return view


def access_of(app: Flask, endpoint: str) -> Any:
    """What a route declared: a frozenset of roles, PUBLIC, TOKEN, or None (nothing: refused)."""
    if endpoint == "static":
        return PUBLIC
    view = app.view_functions.get(endpoint)
    return getattr(view, ROLES_ATTR, None)


class User:
    """The signed-in person, for Flask-Login."""

    is_active = True
    is_anonymous = False
    is_authenticated = True

    def __init__(self, account: Account) -> None:
        self.account = account

    def get_id(self) -> str:
        # The password's hash is part of the id: a new password (or a reset) ends every old session.
        return f"{self.account.id}:{self.account.session_key}"

    @property
    def role(self) -> str:
        return self.account.role


def init_access(app: Flask) -> None:
    """Flask-Login, session expiry and the per-route check."""
    manager = LoginManager(app)
    manager.session_protection = "basic"

    @manager.user_loader
    def load(user_id: str) -> User | None:
        ident, _, key = user_id.partition(":")
        if not ident.isdigit():
            return None
        account = app.extensions["hymy_accounts"].get(int(ident))
        if account is None or account.disabled or account.session_key != key:
            return None
        return User(account)

    @app.before_request
    def check_access() -> Any:
        endpoint = request.endpoint
        if endpoint is None:
            return None  # 404 or 405: Flask answers it
        rule = access_of(app, endpoint)
        if rule in (PUBLIC, TOKEN):
            return None
        if rule is None:
            current_app.logger.error("route %s states no access rule: refused", endpoint)
            abort(403)
        if not current_user.is_authenticated or _expired():
            if current_user.is_authenticated:
                logout_user()
            session.pop("login_at", None)
            if request.method == "GET":
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            abort(401)
        session.permanent = True  # the idle limit: the cookie's age, renewed on each request
        if current_user.role not in rule:
            abort(403)
        return None


def _expired() -> bool:
    """True when the session is older than the absolute limit since sign-in."""
    login_at = session.get("login_at")
    limit = current_app.config["HYMY"].session_max_hours * 3600
    return not isinstance(login_at, int | float) or time.time() - login_at > limit


def me() -> Account:
    """The signed-in person's account (only inside views that require one)."""
    user: User = current_user  # type: ignore[assignment]
    return user.account
