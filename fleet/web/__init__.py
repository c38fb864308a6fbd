"""The fleet's web application: an application factory, one blueprint per area.

``create_app(settings)`` opens the fleet store named by the settings (migrating it, as every fleet
process does) and registers the blueprints: sign-in and language (``auth``), the overview, results
for staff, the public pages, the organisation, the terminals and the fleet's health, accounts, the
audit log, and /metrics. Served in production by waitress (``hymy fleet serve``): pure Python,
threads rather than forked workers, so one process holds one store connection and runs the same on a
server and on a Raspberry Pi.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Flask, Response, request
from flask_wtf.csrf import CSRFProtect

from ..db.accounts import Accounts
from ..db.configs import Configurations
from ..db.org import Organisation
from ..db.store import SqlFleetStore
from ..enrolment import Enrolment
from ..store import FleetStore, open_store
from .access import init_access
from .i18n import init_i18n
from .settings import Settings
from .throttle import LoginThrottle

#: No inline script or style, nothing from elsewhere, no framing (clickjacking), forms post only here.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def create_app(settings: Settings, store: FleetStore | None = None) -> Flask:
    """The fleet web for ``settings``; ``store``: an open store to use instead of opening settings.db."""
    app = Flask(__name__)
    app.config["HYMY"] = settings
    app.config.update(
        SECRET_KEY=settings.secret_key or secrets.token_hex(32),
        PERMANENT_SESSION_LIFETIME=settings.session_idle_minutes * 60,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_NAME="hymy_session",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session that holds it
        MAX_CONTENT_LENGTH=5 * 1024 * 1024,  # the largest upload: a county's units as CSV
    )
    if settings.proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    if not settings.secret_key:
        app.logger.warning("no secret_key set: sessions end when the fleet web restarts")
    opened = store if store is not None else open_store(settings.db)
    if not isinstance(opened, SqlFleetStore):
        raise TypeError("the fleet web needs the SQL fleet store")
    app.extensions["hymy_store"] = opened
    app.extensions["hymy_org"] = org = Organisation(opened)
    app.extensions["hymy_configs"] = Configurations(opened, org)
    app.extensions["hymy_accounts"] = Accounts(opened)
    app.extensions["hymy_throttle"] = LoginThrottle(settings.login_attempts, settings.login_attempts * 10)
    app.extensions["hymy_enrolment"] = Enrolment.from_settings(opened, settings)
    app.extensions["hymy_feedback"] = _feedback_service(opened, settings)
    CSRFProtect(app)
    init_i18n(app)
    init_access(app)

    from .accounts import bp as accounts_bp
    from .alerts import bp as alerts_bp
    from .api import bp as api_bp
    from .apitokens import bp as apitokens_bp
    from .audit import bp as audit_bp
    from .auth import bp as auth_bp
    from .configs import bp as configs_bp
    from .metrics import bp as metrics_bp
    from .org import bp as org_bp
    from .overview import bp as overview_bp
    from .public import bp as public_bp
    from .results import bp as results_bp
    from .sheets import bp as sheets_bp
    from .terminals import bp as terminals_bp

    blueprints = (auth_bp, overview_bp, results_bp, public_bp, org_bp, terminals_bp, configs_bp, accounts_bp, audit_bp)
    for bp in (*blueprints, alerts_bp, apitokens_bp, api_bp, metrics_bp):
        app.register_blueprint(bp)
    app.register_blueprint(sheets_bp)
    from .enrolment import bp as enrolment_bp

    app.register_blueprint(enrolment_bp)
    from .feedback import bp as feedback_bp
    from .texts import bp as texts_bp

    app.register_blueprint(feedback_bp)
    app.register_blueprint(texts_bp)

    _error_pages(app)
    from .audit import action_label

    app.jinja_env.globals["action_label"] = action_label

    @app.after_request
    def headers(response: Response) -> Response:
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Content-Type-Options", "nosniff")
        if "frame-ancestors 'none'" in h["Content-Security-Policy"]:  # not the widget, which sites embed
            h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "same-origin")
        if request.is_secure:
            h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if response.mimetype == "text/html":
            h.setdefault("Cache-Control", "no-store")  # staff pages are not kept by shared browsers
        return response

    return app


def _feedback_service(store: SqlFleetStore, settings: Settings) -> Any:
    """The open-feedback service: the form's limits and the configured theme method."""
    from ..db.feedback import FeedbackRecords
    from ..feedback import FeedbackService, FormThrottle, Themes, ThemeSettings

    records = FeedbackRecords(store)
    themes = ThemeSettings(settings.themes_method, settings.themes_url, settings.themes_model, settings.themes_api_key)
    throttle = FormThrottle(settings.feedback_per_unit, settings.feedback_per_address)
    service = FeedbackService(records, throttle, Themes(records, themes))
    if records.pending(1):  # texts left without themes (a crash, a restore, the demo's history)
        service.kick()
    return service


def extension(name: str) -> Any:
    """One of the app's shared objects (store, org, accounts, throttle) for the current request."""
    from flask import current_app

    return current_app.extensions[f"hymy_{name}"]


def _error_pages(app: Flask) -> None:
    """Errors as pages in the person's language, never a stack trace."""
    from flask import render_template
    from flask_babel import gettext as _
    from flask_wtf.csrf import CSRFError
    from werkzeug.exceptions import HTTPException

    def texts() -> dict[int, tuple[str, str]]:
        return {
            400: (_("The request could not be understood"), _("Please go back and try again.")),
            401: (_("Please sign in"), _("Your session has ended. Sign in again to go on.")),
            403: (_("Not allowed"), _("Your role does not allow this page.")),
            404: (_("Not found"), _("There is nothing here, or it is outside your part of the organisation.")),
            405: (_("Not allowed"), _("This address does not take that kind of request.")),
            413: (_("Too large"), _("The file is larger than the fleet accepts (5 MB).")),
            500: (_("Something went wrong"), _("The fleet could not complete this. The error has been logged.")),
        }

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> tuple[str, int]:
        app.logger.warning("refused a form without a valid CSRF token: %s %s", request.method, request.path)
        title, text = _("The form had expired"), _("Please go back, reload the page and send the form again.")
        return render_template("error.html", code=400, title=title, text=text), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        code = exc.code or 500
        if code not in texts():
            return exc
        title, text = texts()[code]
        return render_template("error.html", code=code, title=title, text=text), code

    @app.errorhandler(Exception)
    def server_error(exc: Exception) -> tuple[str, int]:
        app.logger.exception("unexpected error on %s %s", request.method, request.path)
        title, text = texts()[500]
        return render_template("error.html", code=500, title=title, text=text), 500
