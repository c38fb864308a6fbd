"""Sending alerts: e-mail over SMTP and JSON to webhooks, and the worker that evaluates and sends.

The worker runs beside the web in ``hymy fleet run`` (or alone: ``hymy fleet alerts``). Every
``interval`` seconds it evaluates the rules (fleet.db.alerts) and sends what the outbox holds; a
failed send is retried later with a doubling wait, and a message is marked sent only after the
server accepted it. A webhook request carries an HMAC-SHA256 signature of its body when a secret is
set, so the receiver can tell it came from this fleet.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from .db.alerts import EMAIL, Alerts, Delivery, Thresholds

log = logging.getLogger("hymy.alerts")

#: What each kind is called in messages.
KIND_TEXT = {
    "terminal_offline": "Terminal offline during opening hours / Palautelaite poissa linjoilta aukioloaikana",
    "negative_spike": "Unusually many negative answers / Poikkeuksellisen paljon kielteisiä vastauksia",
    "under_target": "Under its target / Alle tavoitteen",
    "no_answers": "No answers for several opening days / Ei vastauksia useana aukiolopäivänä",
    "config_rejected": "A terminal rejected its configuration / Palautelaite hylkäsi asetuksensa",
}


@dataclass(frozen=True)
class SendSettings:
    """Where and how to send."""

    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "hymy@localhost"
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    webhook_secret: str = ""
    public_url: str = ""  # the fleet web's address, for links in messages
    timeout_s: float = 10.0


def payload(d: Delivery, settings: SendSettings) -> dict[str, Any]:
    """What a webhook receives (and what an e-mail says): stable names, ISO times."""
    a = d.alert

    def iso(ms: int | None) -> str | None:
        return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")

    return {
        "event": d.event,
        "alert": {
            "id": a.id,
            "kind": a.kind,
            "subject": a.subject,
            "detail": a.detail,
            "opened_at": iso(a.opened_at),
            "resolved_at": iso(a.resolved_at),
            "url": f"{settings.public_url.rstrip('/')}/alerts/{a.id}" if settings.public_url else None,
        },
    }


def send_email(d: Delivery, settings: SendSettings) -> None:
    """Send one alert event by SMTP; raises OSError or smtplib.SMTPException on failure."""
    if not settings.smtp_host:
        raise OSError("no smtp_host is set")
    body = payload(d, settings)
    msg = EmailMessage()
    state = "resolved / ratkennut" if d.event == "resolved" else "new / uusi"
    msg["Subject"] = f"[Hymy] {KIND_TEXT.get(d.alert.kind, d.alert.kind)} – {d.alert.subject} ({state})"
    msg["From"] = settings.smtp_from
    msg["To"] = d.route.target
    lines = [f"{KIND_TEXT.get(d.alert.kind, d.alert.kind)}", f"{d.alert.subject}: {state}", ""]
    lines += [f"{k}: {v}" for k, v in sorted(d.alert.detail.items())]
    if body["alert"]["url"]:
        lines += ["", body["alert"]["url"]]
    msg.set_content("\n".join(lines) + "\n")
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout_s) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(msg)


def send_webhook(d: Delivery, settings: SendSettings) -> None:
    """POST one alert event as JSON; anything but a 2xx answer is a failure (raised as OSError)."""
    data = json.dumps(payload(d, settings), sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "hymy-fleet"}
    if settings.webhook_secret:
        signature = hmac.new(settings.webhook_secret.encode(), data, hashlib.sha256).hexdigest()
        headers["X-Hymy-Signature"] = f"sha256={signature}"
    request = urllib.request.Request(d.route.target, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout_s) as response:  # noqa: S310 - IT's own URL
            if not 200 <= response.status < 300:
                raise OSError(f"webhook answered {response.status}")
    except urllib.error.HTTPError as exc:
        raise OSError(f"webhook answered {exc.code}") from None
    except urllib.error.URLError as exc:
        raise OSError(f"webhook unreachable: {exc.reason}") from None


def deliver(alerts: Alerts, settings: SendSettings) -> tuple[int, int]:
    """Send everything due; return (sent, failed)."""
    sent = failed = 0
    for d in alerts.due():
        try:
            (send_email if d.route.channel == EMAIL else send_webhook)(d, settings)
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            failed += 1
            log.warning("alert %s (%s) to %s failed: %s", d.alert.id, d.event, d.route.channel, exc)
            alerts.failed(d.id, str(exc))
        else:
            sent += 1
            alerts.sent(d.id)
    return sent, failed


class AlertWorker:
    """Evaluate and deliver every ``interval`` seconds in a thread, until stopped."""

    def __init__(self, alerts: Alerts, settings: SendSettings, thresholds: Thresholds, interval: float = 60.0) -> None:
        self.alerts = alerts
        self.settings = settings
        self.thresholds = thresholds
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> tuple[int, int, int, int]:
        """One round: (opened, resolved, sent, failed)."""
        opened, resolved = self.alerts.evaluate(self.thresholds)
        sent, failed = deliver(self.alerts, self.settings)
        return len(opened), len(resolved), sent, failed

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a bad round must not end alerting: log it and try again next time
                log.exception("alert round failed")
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="hymy-alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
