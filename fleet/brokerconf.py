"""``hymy fleet broker-config``: a complete, commented Mosquitto configuration for production.

One renderer serves production, the security tests and the secured chaos run, so what is tested is
what IT installs: a TLS listener for the terminals, no anonymous access, persistence, the
dynamic-security plugin holding every login and access rule (``fleet.brokerauth``), and
``set_tcp_nodelay true`` (without it the median delivery latency measured here was about 20 ms,
with it a few ms, because Nagle's algorithm holds back the small MQTT packets).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .brokerauth import dynsec_file

#: Where Debian's mosquitto package puts the plugin (amd64 and arm64).
PLUGIN_PATHS = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
)
ADMIN_USERNAME = "hymy-accounts"
FLEET_USERNAME = "hymy-fleet"


def find_plugin() -> str:
    """The dynamic-security plugin's path on this machine (the Debian amd64 path if none is found)."""
    return next((p for p in PLUGIN_PATHS if Path(p).exists()), PLUGIN_PATHS[0])


@dataclass(frozen=True)
class BrokerConfig:
    """What the generated configuration needs to know about this installation."""

    #: The TLS listener the terminals (and a fleet on another machine) use.
    tls_port: int = 8883
    tls_host: str = ""  # empty: every interface
    certfile: str = "/etc/mosquitto/certs/broker.pem"
    keyfile: str = "/etc/mosquitto/certs/broker.key"
    #: A plain listener on loopback for a fleet on the same machine; 0: none.
    local_port: int = 1883
    persistence_dir: str = "/var/lib/mosquitto"
    dynsec_file: str = "/var/lib/mosquitto/dynamic-security.json"
    plugin: str = field(default_factory=find_plugin)
    #: Logging: "syslog" (the journal) in production, or a file path.
    log_dest: str = "syslog"


def render_config(c: BrokerConfig) -> str:
    """The mosquitto.conf text, every line explained."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# Mosquitto for a Hymy fleet, written by `hymy fleet broker-config` ({stamp}).",
        "# Mosquitto 2.0 or later. Reload (SIGHUP) or restart after editing; the logins and access",
        "# rules are NOT in this file: they live in the dynamic-security file below, which the fleet",
        "# changes over MQTT as terminals enrol and are revoked (and the broker saves).",
        "",
        "# Every listener shares these settings.",
        "per_listener_settings false",
        "# Nobody gets in without a login: not even to read.",
        "allow_anonymous false",
        "",
        "# Logins and access rules: each terminal may publish only its own votes, state, heartbeat and",
        "# configuration report and read only its own acks and configuration and the fleet state;",
        "# only the fleet's login may publish acks, configurations and the fleet state.",
        f"plugin {c.plugin}",
        f"plugin_opt_config_file {c.dynsec_file}",
        "",
        "# Keep queued messages and retained state (configurations, terminals' state) across restarts.",
        "persistence true",
        f"persistence_location {c.persistence_dir.rstrip('/')}/",
        "autosave_interval 60",
        "",
        "# Send small MQTT packets at once instead of waiting to fill a TCP segment (Nagle): the",
        "# median vote-to-ack latency measured here went from about 20 ms to a few ms.",
        "set_tcp_nodelay true",
        "# A terminal back from weeks offline may have a long backlog for the fleet to drain.",
        "max_queued_messages 100000",
        "max_inflight_messages 100",
        "",
        "# Terminals: TLS only. The terminals trust the CA that signed this certificate (it goes on",
        "# their boot partition with the enrolment file) and check the broker's host name.",
        f"listener {c.tls_port}{' ' + c.tls_host if c.tls_host else ''}",
        f"certfile {c.certfile}",
        f"keyfile {c.keyfile}",
        "tls_version tlsv1.2",
    ]
    if c.local_port:
        lines += [
            "",
            "# The fleet on this same machine: plain MQTT on loopback only (still with its login).",
            f"listener {c.local_port} 127.0.0.1",
        ]
    lines += [
        "",
        "# Connections and refusals go to the log (never passwords: Mosquitto does not log them).",
        f"log_dest {c.log_dest}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Written:
    """What ``write`` produced: the files, and the fleet's settings lines (they hold passwords)."""

    config: Path
    dynsec: Path
    fleet_settings: Path


def _private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only (created so, never briefly world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    path.chmod(0o600)


def write(directory: Path, c: BrokerConfig, *, ca_file: str = "", fleet_host: str = "127.0.0.1") -> Written:
    """Write mosquitto.conf, a first dynamic-security file and the fleet's broker settings into ``directory``.

    Fresh random passwords for the administrator login (the fleet manages terminal logins with
    it) and the fleet's own login; they appear only in the two owner-only files.
    """
    directory.mkdir(parents=True, exist_ok=True)
    admin_pw, fleet_pw = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    config = directory / "mosquitto.conf"
    config.write_text(render_config(c), encoding="utf-8")
    dynsec = directory / "dynamic-security.json"
    _private(dynsec, json.dumps(dynsec_file((ADMIN_USERNAME, admin_pw), (FLEET_USERNAME, fleet_pw)), indent=2))
    port = c.local_port if c.local_port and fleet_host in ("127.0.0.1", "localhost") else c.tls_port
    tls = port == c.tls_port
    settings = [
        "# The fleet's broker login: add these lines to the fleet's settings file (hymy fleet run --settings).",
        f'broker_host = "{fleet_host}"',
        f"broker_port = {port}",
        f'broker_username = "{FLEET_USERNAME}"',
        f'broker_password = "{fleet_pw}"',
        f'broker_ca_file = "{ca_file}"' if tls else '# broker_ca_file = ""  # loopback: no TLS needed',
        'broker_accounts = "dynsec"',
        f'broker_admin_username = "{ADMIN_USERNAME}"',
        f'broker_admin_password = "{admin_pw}"',
        "# What enrolled terminals are told: the broker's public name and its TLS port.",
        '# terminal_broker_host = "mqtt.example-county.fi"',
        f"terminal_broker_port = {c.tls_port}",
        "terminal_broker_tls = true",
    ]
    fleet_settings = directory / "fleet-broker.toml"
    _private(fleet_settings, "\n".join(settings) + "\n")
    return Written(config, dynsec, fleet_settings)
