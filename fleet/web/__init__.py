"""The fleet's web application: an application factory, one blueprint per area.

``create_app(settings)`` opens the fleet store named by the settings (migrating it, as every fleet
process does) and registers the blueprints. Served in production by waitress (``hymy fleet serve``):
pure Python, threads rather than forked workers, so one process holds one store connection and runs
the same on a server and on a Raspberry Pi.
"""

from __future__ import annotations

from flask import Flask

from ..store import FleetStore, open_store
from .settings import Settings


def create_app(settings: Settings, store: FleetStore | None = None) -> Flask:
    """The fleet web for ``settings``; ``store``: an open store to use instead of opening settings.db."""
    app = Flask(__name__)
    app.config["HYMY"] = settings
    app.extensions["hymy_store"] = store if store is not None else open_store(settings.db)
    from .metrics import bp as metrics_bp

    app.register_blueprint(metrics_bp)
    return app
