"""The fleet web's settings: defaults, then a TOML file, then ``HYMY_``-prefixed environment variables.

Each later source overrides the earlier ones, so a systemd unit or a container can change one value
(``HYMY_METRICS_TOKEN``) without editing the file an administrator keeps.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "HYMY_"


class SettingsError(ValueError):
    """A settings file or variable that cannot be used; the message names it."""


@dataclass(frozen=True)
class Settings:
    """What the fleet web needs to run."""

    #: The fleet database: a SQLite file or a postgresql:// URL.
    db: str = "fleet.db"
    #: Bearer token a Prometheus scraper sends for /metrics; empty: /metrics refuses every request.
    metrics_token: str = field(default="", repr=False)
    #: Signs the session cookies. Empty: a random key per start (everyone signs in again after a restart).
    secret_key: str = field(default="", repr=False)
    #: A session ends after this many minutes without a request…
    session_idle_minutes: int = 60
    #: …and at the latest this many hours after signing in.
    session_max_hours: int = 10
    #: Failed sign-ins allowed per username (and ten times that per address) in 15 minutes.
    login_attempts: int = 5
    #: Send cookies only over HTTPS (set false only for a plain-HTTP test or demo on loopback).
    secure_cookies: bool = True
    #: Reverse proxies in front that set X-Forwarded-For and -Proto (the county's TLS proxy: 1). Their
    #: headers are believed from that many hops only, so HSTS is sent and sign-in limits count the
    #: real address; 0: no proxy, the headers are ignored.
    proxy_hops: int = field(default=0, metadata={"least": 0})
    #: Staff results: a breakdown cell (a day, an hour of the week, a role, a reason, a unit) with fewer
    #: answers than this shows "fewer than N" instead of its figures, so nobody is recognisable.
    staff_minimum: int = 5
    #: Public pages: a region, service area or unit with fewer answers than this in a period shows "not
    #: enough answers yet" (and figures that would give such a one away are hidden too).
    public_minimum: int = 30
    #: Web sites allowed to embed the public widget in an iframe, space-separated
    #: ("https://www.example-county.fi"); empty: no site may.
    embed_origins: str = ""
    #: The fleet web's own address as people reach it (https://hymy.example-county.fi), for links in
    #: alert messages; empty: messages carry no link.
    public_url: str = ""
    #: Alerts: where e-mail goes out (empty smtp_host: e-mail routes fail and are retried, and logged).
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "hymy@localhost"
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_starttls: bool = False
    #: Signs webhook bodies (X-Hymy-Signature: sha256=HMAC); empty: unsigned.
    webhook_secret: str = field(default="", repr=False)
    #: A terminal offline this long during opening hours raises an alert.
    alert_offline_minutes: int = 15
    #: A unit with terminals but no answers on this many opening days in a row raises an alert.
    alert_silent_days: int = 3
    #: Seconds between rounds of the alert worker (``hymy fleet run``, ``hymy fleet alerts``).
    alert_interval_s: int = 60
    #: The broker the fleet (ingest, publishing, account changes) connects to.
    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    #: The fleet's own broker login (``hymy fleet broker-config`` makes one); empty: anonymous.
    broker_username: str = ""
    broker_password: str = field(default="", repr=False)
    #: The CA certificate that signed the broker's TLS certificate; set: the fleet connects over TLS.
    broker_ca_file: str = ""
    #: Where terminals' broker logins are kept: "dynsec" (Mosquitto's dynamic-security plugin,
    #: changed over MQTT with the admin login below) or "none" (an open broker: the demo only).
    broker_accounts: str = "none"
    broker_admin_username: str = ""
    broker_admin_password: str = field(default="", repr=False)
    #: What enrolled terminals are told to connect to (their way to the broker may differ from the
    #: fleet's: a public name and the TLS port). Empty host: broker_host.
    terminal_broker_host: str = ""
    terminal_broker_port: int = 8883
    terminal_broker_tls: bool = True
    #: Refused enrolment requests allowed per address in 15 minutes (then 429 until the window passes).
    enrol_attempts: int = 20
    #: Open feedback: answers the form accepts per unit in 10 minutes, and per address in 10 minutes
    #: (addresses are counted in memory under a keyed hash that changes every restart, never stored;
    #: a ward's Wi-Fi or a mobile operator puts many phones behind one address, hence not fewer);
    #: beyond either the form says "try again later" and stores nothing.
    feedback_per_unit: int = 300
    feedback_per_address: int = 20
    #: Longest free text the form takes, in characters.
    feedback_max_text: int = 1500
    #: The theme step: "builtin" (offline, on this server) or "openai" (the county's own
    #: OpenAI-compatible service at themes_url, with themes_model; its key in themes_api_key).
    themes_method: str = "builtin"
    themes_url: str = ""
    themes_model: str = ""
    themes_api_key: str = field(default="", repr=False)

    def send_settings(self) -> Any:
        """How alerts are sent (fleet.alertsend.SendSettings), from the settings of the same names."""
        from ..alertsend import SendSettings

        return SendSettings(**{f.name: getattr(self, f.name) for f in fields(SendSettings) if hasattr(self, f.name)})

    def thresholds(self) -> Any:
        """The alert rules' settings (fleet.db.alerts.Thresholds)."""
        from ..db.alerts import Thresholds

        return Thresholds(offline_minutes=self.alert_offline_minutes, silent_days=self.alert_silent_days)


def _coerce(name: str, value: Any, kind: Any, where: str, least: int = 1) -> Any:
    if kind in (int, "int"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise SettingsError(f"{where}: {name} must be a whole number, got {value!r}")
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(f"{where}: {name} must be a whole number, got {value!r}") from None
        if number < least:
            raise SettingsError(f"{where}: {name} must be at least {least}, got {number}")
        return number
    if kind in (bool, "bool"):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise SettingsError(f"{where}: {name} must be true or false, got {value!r}")
    if not isinstance(value, str):
        raise SettingsError(f"{where}: {name} must be a string, got {value!r}")
    return value


def load_settings(file: Path | None = None, environ: Mapping[str, str] | None = None, **given: Any) -> Settings:
    """Defaults, overridden by ``file`` (TOML, top-level keys), then by ``HYMY_<KEY>`` variables, then by
    ``given`` (command-line options; None means not given)."""
    settings = Settings()
    kinds = {f.name: f.type for f in fields(Settings)}
    least = {f.name: f.metadata.get("least", 1) for f in fields(Settings)}
    if file is not None:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"settings file {file}: {exc}") from exc
        unknown = sorted(set(data) - set(kinds))
        if unknown:
            raise SettingsError(f"settings file {file}: unknown setting(s) {', '.join(unknown)}")
        settings = replace(
            settings, **{k: _coerce(k, v, kinds[k], f"settings file {file}", least[k]) for k, v in data.items()}
        )
    env = os.environ if environ is None else environ
    from_env = {
        n: _coerce(n, env[ENV_PREFIX + n.upper()], kinds[n], ENV_PREFIX + n.upper(), least[n])
        for n in kinds
        if ENV_PREFIX + n.upper() in env
    }
    settings = replace(settings, **from_env)
    chosen = {k: _coerce(k, v, kinds[k], "option", least[k]) for k, v in given.items() if v is not None and k in kinds}
    settings = replace(settings, **chosen)
    if settings.themes_method not in ("builtin", "openai"):
        raise SettingsError(f"themes_method must be builtin or openai, got {settings.themes_method[:40]!r}")
    if settings.themes_method == "openai" and not (settings.themes_url and settings.themes_model):
        raise SettingsError("themes_method openai needs themes_url and themes_model")
    return settings
