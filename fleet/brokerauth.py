"""The broker's accounts: each terminal's login and access rules, kept by the fleet.

Guarantee 6 rests on the broker refusing what a terminal may not do, so the fleet keeps the
broker's account store in step with enrolment and revocation. Two implementations, chosen by the
``broker_accounts`` setting:

- ``dynsec``: Mosquitto's dynamic-security plugin, driven over MQTT on
  ``$CONTROL/dynamic-security/v1`` with an administrator login. Each terminal is a client whose
  username and client id are both its device id, with a role of its own holding exactly
  ``protocol.access.terminal_rules``. Deleting the client disconnects it at once (the plugin kicks
  it) and it cannot log in again. Changes take effect without a restart and the broker saves them.
- ``none``: an open broker (the zero-set-up demo's embedded one). Nothing is confined; the fleet
  logs a warning at start so nobody mistakes it for production.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import ssl
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from protocol.access import PUBLISH, Rule, fleet_rules, terminal_rules

from .errors import FleetError
from .mqtt import tls_context

log = logging.getLogger(__name__)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = "$CONTROL/dynamic-security/v1/response"
#: The role of the fleet's own login (ingest and publishing), created by ``broker-config``.
FLEET_ROLE = "hymy-fleet"
#: A terminal's role is this prefix and its device id.
TERMINAL_ROLE_PREFIX = "hymy-terminal-"
#: Mosquitto's dynamic-security file hashes passwords with PBKDF2-SHA512 at this many rounds.
DYNSEC_ITERATIONS = 101


class BrokerAccountsError(FleetError):
    """The broker's account store could not be reached or refused a command (the message says which)."""


class BrokerAccounts(Protocol):
    """Where terminals' broker logins live; every method is idempotent so a retry is always safe."""

    def add_terminal(self, device: str, password: str, *, enabled: bool = True) -> None:
        """Create (or replace) the terminal's login with ``password`` and its own access rules."""

    def enable_terminal(self, device: str, enabled: bool = True) -> None:
        """Let the terminal log in (approved), or not (a disabled login is also disconnected)."""

    def remove_terminal(self, device: str) -> None:
        """Delete the terminal's login: it is disconnected at once and cannot log in again."""

    def describe(self) -> str:
        """One line for logs and the health page: which store, where."""


class NoAccounts:
    """An open broker: accepts every call and confines nobody (the demo's embedded broker)."""

    def add_terminal(self, device: str, password: str, *, enabled: bool = True) -> None:
        log.info("open broker: %s needs no login", device)

    def enable_terminal(self, device: str, enabled: bool = True) -> None:
        pass

    def remove_terminal(self, device: str) -> None:
        log.warning("open broker: %s cannot be locked out (no broker accounts are kept)", device)

    def describe(self) -> str:
        return "none (open broker: terminals are not confined)"


def _acls(rules: Iterable[Rule]) -> list[dict[str, Any]]:
    """Rules as dynamic-security ACL entries (literal topics for a terminal, patterns for the fleet)."""
    acls: list[dict[str, Any]] = []
    for rule in rules:
        if rule.action == PUBLISH:
            acls.append({"acltype": "publishClientSend", "topic": rule.topic, "allow": True})
        else:
            wild = "+" in rule.topic or "#" in rule.topic
            kind = "subscribePattern" if wild else "subscribeLiteral"
            acls.append({"acltype": kind, "topic": rule.topic, "allow": True})
    return acls


def fleet_acls() -> list[dict[str, Any]]:
    """The fleet's rules, plus their MQTT 5 shared-subscription forms: the plugin checks a
    ``$share/<group>/…`` filter as written, so several ingest workers need them spelled out."""
    acls = _acls(fleet_rules())
    shared = [dict(acl, topic=f"$share/+/{acl['topic']}") for acl in acls if acl["acltype"].startswith("subscribe")]
    return acls + shared


def terminal_commands(device: str, password: str, enabled: bool) -> list[dict[str, Any]]:
    """The dynamic-security commands that (re)create one terminal's login and role."""
    role = TERMINAL_ROLE_PREFIX + device
    commands: list[dict[str, Any]] = [
        {"command": "deleteClient", "username": device},
        {"command": "deleteRole", "rolename": role},
        {"command": "createRole", "rolename": role, "acls": _acls(terminal_rules(device))},
        {
            "command": "createClient",
            "username": device,
            "password": password,
            "clientid": device,  # nobody else can take over its session, and it cannot take another's
            "roles": [{"rolename": role}],
        },
    ]
    if not enabled:
        commands.append({"command": "disableClient", "username": device})
    return commands


class DynsecAccounts:
    """Mosquitto's dynamic-security plugin, over one short MQTT connection per change."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        ca_file: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self._username = username
        self._password = password
        self._ca_file = ca_file
        self._timeout_s = timeout_s
        self._lock = threading.Lock()  # one change at a time: responses are matched by order

    def describe(self) -> str:
        return f"Mosquitto dynamic security at {self.host}:{self.port}{' (TLS)' if self._ca_file else ''}"

    def add_terminal(self, device: str, password: str, *, enabled: bool = True) -> None:
        self.run(terminal_commands(device, password, enabled), tolerate=("deleteClient", "deleteRole"))

    def enable_terminal(self, device: str, enabled: bool = True) -> None:
        self.run([{"command": "enableClient" if enabled else "disableClient", "username": device}])

    def remove_terminal(self, device: str) -> None:
        commands = [
            {"command": "deleteClient", "username": device},
            {"command": "deleteRole", "rolename": TERMINAL_ROLE_PREFIX + device},
        ]
        self.run(commands, tolerate=("deleteClient", "deleteRole"))

    def run(self, commands: Sequence[dict[str, Any]], tolerate: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Send ``commands`` in one message and return the responses; an error not tolerated raises.

        ``tolerate``: commands whose "not found" error is expected (deleting what is not there).
        """
        with self._lock:
            responses = self._exchange({"commands": list(commands)})
        for command, response in zip(commands, responses, strict=False):
            error = response.get("error")
            if error and not (command["command"] in tolerate and "not found" in str(error).lower()):
                name = command.get("username") or command.get("rolename") or ""
                raise BrokerAccountsError(f"broker refused {command['command']} {name}: {error}")
        return responses

    def _exchange(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        done = threading.Event()
        connected = threading.Event()
        answer: list[list[dict[str, Any]]] = []
        failure: list[str] = []
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"hymy-accounts-{secrets.token_hex(4)}")
        client.username_pw_set(self._username, self._password)
        if self._ca_file:
            client.tls_set_context(tls_context(self._ca_file))

        def on_connect(c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if reason.is_failure:
                failure.append(f"login refused: {reason}")
                done.set()
                return
            c.subscribe(RESPONSE_TOPIC, 1)

        def on_subscribe(c: paho.Client, _u: Any, _m: int, reasons: Any, _p: Any) -> None:
            if any(r.is_failure for r in reasons):
                failure.append("may not read the dynamic-security responses (is this the admin login?)")
                done.set()
                return
            connected.set()
            c.publish(CONTROL_TOPIC, json.dumps(message), qos=1)

        def on_message(_c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
            try:
                responses = json.loads(msg.payload)["responses"]
            except (ValueError, KeyError, TypeError):
                return
            answer.append(responses)
            done.set()

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        try:
            client.connect(self.host, self.port, keepalive=30)
        except (OSError, ValueError, ssl.SSLError) as exc:
            raise BrokerAccountsError(f"cannot reach the broker at {self.host}:{self.port}: {exc}") from exc
        client.loop_start()
        try:
            if not done.wait(self._timeout_s):
                what = "no answer from the dynamic-security plugin" if connected.is_set() else "no connection"
                raise BrokerAccountsError(f"{what} at {self.host}:{self.port} within {self._timeout_s:g} s")
        finally:
            client.disconnect()
            client.loop_stop()
        if failure:
            raise BrokerAccountsError(f"broker at {self.host}:{self.port}: {failure[0]}")
        return answer[0]


def dynsec_password(password: str, salt: bytes | None = None, iterations: int = DYNSEC_ITERATIONS) -> dict[str, Any]:
    """A password as Mosquitto's dynamic-security file stores it (PBKDF2-SHA512, base64)."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, dklen=64)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": iterations,
    }


def dynsec_file(admin: tuple[str, str], fleet: tuple[str, str]) -> dict[str, Any]:
    """A first dynamic-security file: an administrator login (for the fleet to manage accounts)
    and the fleet's own login with ``protocol.access.fleet_rules``; terminals are added later.

    Everything not allowed is refused: no login may publish or subscribe by default.
    """
    admin_acls = [
        {"acltype": "publishClientSend", "topic": "$CONTROL/dynamic-security/#", "allow": True},
        {"acltype": "publishClientReceive", "topic": "$CONTROL/dynamic-security/#", "allow": True},
        {"acltype": "subscribePattern", "topic": "$CONTROL/dynamic-security/#", "allow": True},
    ]
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": True,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": [
            {"username": admin[0], "textName": "Hymy fleet: manages terminal logins", "roles": [{"rolename": "admin"}]}
            | dynsec_password(admin[1]),
            {"username": fleet[0], "textName": "Hymy fleet: ingest and publishing", "roles": [{"rolename": FLEET_ROLE}]}
            | dynsec_password(fleet[1]),
        ],
        "roles": [
            {"rolename": "admin", "acls": admin_acls},
            {"rolename": FLEET_ROLE, "acls": fleet_acls()},
        ],
        "groups": [],
    }


def accounts_from_settings(settings: Any) -> BrokerAccounts:
    """The account store the fleet settings name (``broker_accounts``: ``dynsec`` or ``none``)."""
    kind = getattr(settings, "broker_accounts", "none")
    if kind == "none":
        return NoAccounts()
    if kind == "dynsec":
        return DynsecAccounts(
            settings.broker_host,
            settings.broker_port,
            settings.broker_admin_username,
            settings.broker_admin_password,
            ca_file=settings.broker_ca_file or None,
        )
    raise BrokerAccountsError(f"broker_accounts must be dynsec or none, got {kind!r}")
