"""``/metrics``: the fleet's health as Prometheus metrics, for the monitoring a county's IT already runs.

The figures are read from the store at each scrape (a fresh registry per request), so every process
serving the web reports the same numbers: terminals by state, votes counted (from the rollup, never a
scan of the votes) and those with uncertain times, and rejected messages by reason. A scraper must
send ``Authorization: Bearer <metrics_token>``; with no token configured the endpoint refuses all.
"""

from __future__ import annotations

import hmac
import time

from flask import Blueprint, Response, current_app
from flask import request as flask_request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from ..store import FleetStore
from .access import token

bp = Blueprint("metrics", __name__)


def _authorised(token: str) -> bool:
    header = flask_request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


@bp.get("/metrics")
@token
def metrics() -> Response:
    """The figures in Prometheus' text format, or 401 without the right bearer token."""
    token = current_app.config["HYMY"].metrics_token
    if not _authorised(token):
        why = "set metrics_token (HYMY_METRICS_TOKEN) to enable /metrics" if not token else "bad or missing token"
        return Response(
            f"401 unauthorised: {why}\n", 401, {"WWW-Authenticate": 'Bearer realm="hymy"'}, mimetype="text/plain"
        )
    store: FleetStore = current_app.extensions["hymy_store"]
    registry = CollectorRegistry()
    terminals = Gauge("hymy_terminals", "Terminals known to the fleet, by state", ["state"], registry=registry)
    known = store.terminals()
    counts = {
        "known": len(known),
        "online": sum(1 for t in known if t.online),
        "offline": sum(1 for t in known if t.online is False),
        "lagging": sum(1 for t in known if t.lags),
        "unplaced": sum(1 for t in known if t.unit is None),
    }
    for state, n in counts.items():
        terminals.labels(state).set(n)
    queued = Gauge(
        "hymy_terminal_queue_votes", "Votes waiting on terminals, as their heartbeats last said", registry=registry
    )
    queued.set(sum(t.queue or 0 for t in known))
    Gauge(
        "hymy_terminal_oldest_unsent_seconds",
        "Age of the oldest vote any terminal still holds unsent",
        registry=registry,
    ).set(max((t.oldest or 0 for t in known), default=0))
    rejecting = Gauge(
        "hymy_terminals_config_rejected", "Terminals whose last configuration report was a rejection", registry=registry
    )
    rejecting.set(sum(1 for t in known if t.report_status == "rejected"))
    stored = Gauge(
        "hymy_ingest_votes_stored", "Votes an ingest process stored since it started", ["worker"], registry=registry
    )
    messages = Gauge(
        "hymy_ingest_messages", "Messages an ingest process took since it started", ["worker"], registry=registry
    )
    rate = Gauge(
        "hymy_ingest_votes_per_second",
        "Votes an ingest process stored per second lately",
        ["worker"],
        registry=registry,
    )
    silent = Gauge(
        "hymy_ingest_report_age_seconds",
        "Seconds since an ingest process last wrote its counters",
        ["worker"],
        registry=registry,
    )
    throttle = current_app.extensions["hymy_throttle"]
    Gauge(
        "hymy_sign_ins_refused",
        "Sign-ins refused by the attempt limit since this web process started",
        registry=registry,
    ).set(throttle.refused)
    refusals = Gauge(
        "hymy_enrol_refusals",
        "Enrolment requests refused since this web process started, by the protocol's error",
        ["error"],
        registry=registry,
    )
    for error, count in sorted(current_app.extensions["hymy_enrolment"].refusals.items()):
        refusals.labels(error).set(count)
    _feedback_metrics(registry)
    now_ms = time.time() * 1000
    for s in store.ingest_stats():
        stored.labels(s.worker).set(s.votes)
        messages.labels(s.worker).set(s.messages)
        rate.labels(s.worker).set(s.recent_rate or 0.0)
        silent.labels(s.worker).set(max(0.0, (now_ms - s.at) / 1000))
    total, uncertain = store.vote_totals()
    Gauge("hymy_votes", "Votes counted", registry=registry).set(total)
    Gauge("hymy_votes_uncertain_time", "Votes whose press time is uncertain", registry=registry).set(uncertain)
    rejected = Gauge(
        "hymy_rejected_messages", "Messages rejected since the start, by reason", ["reason"], registry=registry
    )
    for reason, n in sorted(store.rejection_counts().items()):
        rejected.labels(reason).set(n)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def _feedback_metrics(registry: CollectorRegistry) -> None:
    """The open-feedback form's answers, refusals and redactions, and the theme step's work."""
    service = current_app.extensions["hymy_feedback"]
    Gauge("hymy_feedback_answers", "Answers stored from the open-feedback form", registry=registry).set(
        service.records.answer_count()
    )
    refused = Gauge(
        "hymy_feedback_refusals",
        "Form answers refused since this web process started, by reason (rate limits, honeypot, invalid)",
        ["reason"],
        registry=registry,
    )
    for reason, n in sorted(service.refusals.items()):
        refused.labels(reason).set(n)
    removed = Gauge(
        "hymy_feedback_redactions",
        "Personal details removed from texts since this web process started, by kind",
        ["kind"],
        registry=registry,
    )
    for kind, n in sorted(service.redactions.items()):
        removed.labels(kind).set(n)
    assigned = Gauge(
        "hymy_themes_assigned",
        "Texts given themes since this web process started, by method",
        ["method"],
        registry=registry,
    )
    for method, n in sorted(service.themes.assigned.items()):
        assigned.labels(method).set(n)
    Gauge(
        "hymy_themes_failures",
        "Times the configured theme method failed and the built-in one assigned instead",
        registry=registry,
    ).set(service.themes.failures)
