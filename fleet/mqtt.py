"""The fleet's one MQTT adapter: owns every paho callback and turns them into events for one loop.

Callbacks run on paho's network thread and only hand over: a received message becomes a plain
``(topic, payload)`` tuple on the queue (cheap: ingest takes hundreds of thousands a second),
connection changes become ``Connected`` / ``Disconnected`` events. MQTT 3.1.1 by default, with a
fixed client id and a persistent session so the broker may queue while ingest restarts; no
guarantee depends on that queue (terminals resend until acknowledged).
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from protocol import FleetState, encode, topics

from .errors import FleetError

log = logging.getLogger(__name__)

DEFAULT_CLIENT_ID = "hymy-fleet-ingest"
KEEPALIVE_S = 30
RECONNECT_MIN_S = 1
#: paho doubles its retry delay up to this. A broker that returns must see the ingest within
#: about this long (the backlog target is "drained within 5 s of the broker's return"), and a
#: connection attempt to a broker that is down costs it nothing, so the cap stays short.
RECONNECT_MAX_S = 2
#: Acks in flight at once; paho's default of 20 would throttle acks to the broker's round trip.
MAX_INFLIGHT = 1000
#: MQTT 5 only: how long the broker keeps our session while we are away.
SESSION_EXPIRY_S = 24 * 3600
#: What the fleet subscribes to for every terminal.
SUBSCRIBED_KINDS = (topics.VOTES, topics.STATE, topics.HEARTBEAT, topics.CONFIG_REPORT)
#: The shared-subscription group of ingest workers that split the terminals' messages between them.
DEFAULT_SHARE_GROUP = "hymy-ingest"


def filters(share_group: str | None = None) -> list[str]:
    """The topic filters the ingest subscribes to; with a group, as an MQTT 5 shared subscription.

    In a shared subscription the broker hands each message to one worker of the group, so several
    ingest processes split the load; a worker that dies stops getting messages, and whatever it had
    not acknowledged is resent by the terminals to the others (storing is idempotent).
    """
    plain = [topics.subscription(kind) for kind in SUBSCRIBED_KINDS]
    if share_group is None:
        return plain
    if not share_group or any(c in share_group for c in "/+#"):
        raise ValueError(f"a share group is a non-empty name without / + #, got {share_group!r}")
    return [f"$share/{share_group}/{f}" for f in plain]


class MqttError(FleetError):
    """The MQTT client refused a call (a caller mistake; network loss is a state, not this)."""


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when its handshake fails: paho 2.2 drops such a socket unclosed, and a fleet
    retrying a broker with the wrong CA every two seconds would leak one each time (the terminal's
    adapter, device/mqtt.py, does the same; the fleet never imports the device)."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def tls_context(ca_file: str) -> ssl.SSLContext:
    """A client context that requires the broker's certificate, signed by ``ca_file``, and checks its host name."""
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise MqttError(f"cannot use the broker CA certificate {ca_file}: {exc}") from exc
    context.sslsocket_class = _ClosingSSLSocket
    return context


@dataclass(frozen=True, slots=True)
class Connected:
    """The broker accepted us; subscriptions and the fleet birth have been sent."""

    session_present: bool


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The link dropped; paho redials with backoff."""

    reason: str


#: What the queue carries: a received message as ``(topic, payload)``, or a connection event.
Event = tuple[str, bytes] | Connected | Disconnected


def default_instance() -> str:
    """A name for this ingest process in the fleet state, so operators can tell instances apart."""
    return f"{socket.gethostname()}-{os.getpid()}"[:64]


class FleetMqtt:
    """paho wrapped for the fleet: subscriptions, birth and will on hymy/v1/_fleet/state, publishing.

    ``emit`` receives every event on paho's thread; it must only hand over (``queue.put``).
    """

    def __init__(
        self,
        host: str,
        port: int,
        emit: Callable[[Event], None],
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        instance: str | None = None,
        protocol: paho.MQTTProtocolVersion = paho.MQTTv311,
        username: str | None = None,
        password: str | None = None,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        share_group: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        """``ca_file``: the CA that signed the broker's certificate; given, the link is TLS and the
        broker's certificate and host name are verified."""
        if share_group is not None and protocol != paho.MQTTv5:
            raise ValueError("shared subscriptions (several ingest workers) need MQTT 5")
        self._filters = filters(share_group)
        self.host = host
        self.port = port
        self.instance = instance or default_instance()
        self._emit = emit
        self._wall_ms = wall_ms
        self._v5 = protocol == paho.MQTTv5
        self._started = False
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            # MQTT 5 has no clean_session; it asks for a persistent session with clean_start and expiry.
            clean_session=None if self._v5 else False,
            protocol=protocol,
        )
        if username is not None:
            client.username_pw_set(username, password)
        if ca_file:
            client.tls_set_context(tls_context(ca_file))
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.will_set(topics.FLEET_STATE, self._state_payload(False), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client
        #: Set once the broker has confirmed our subscriptions (again after each reconnect).
        self.subscribed = threading.Event()

    def _state_payload(self, online: bool) -> bytes:
        return encode(FleetState(online=online, wall=self._wall_ms(), instance=self.instance))

    def start(self) -> None:
        """Begin connecting in the background; returns at once, even with no broker reachable."""
        if self._started:
            return
        self._started = True
        properties = None
        if self._v5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
        try:
            self._client.connect_async(
                self.host,
                self.port,
                keepalive=KEEPALIVE_S,
                clean_start=False if self._v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
                properties=properties,
            )
        except ValueError as exc:
            raise MqttError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        self._client.loop_start()

    def stop(self, timeout: float = 2.0) -> None:
        """Say offline (a clean disconnect sends no will), disconnect and stop paho's thread."""
        if not self._started:
            return
        self._started = False
        if self._client.is_connected():
            info = self._client.publish(topics.FLEET_STATE, self._state_payload(False), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (ValueError, RuntimeError) as exc:
                log.warning("fleet offline state not published on stop: %s", exc)
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        """Hand a message to paho (thread-safe); False when the link cannot take it now."""
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except ValueError as exc:
            raise MqttError(f"publish to {topic!r} refused: {exc}") from exc
        return info.rc == paho.MQTT_ERR_SUCCESS

    def announce(self) -> bool:
        """Publish our online state again (retained), overwriting a stale will; False if not connected."""
        if not self._client.is_connected():
            return False
        return self.publish(topics.FLEET_STATE, self._state_payload(True), 1, True)

    def is_connected(self) -> bool:
        """Whether paho believes the link is up."""
        return self._client.is_connected()

    # -- paho callbacks (paho's thread): hand over and return ---------------------------------

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused the fleet's connection: %s", reason)
            return
        self.subscribed.clear()
        client.subscribe([(f, 1) for f in self._filters])
        client.publish(topics.FLEET_STATE, self._state_payload(True), qos=1, retain=True)
        self._emit(Connected(bool(getattr(flags, "session_present", False))))

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        if any(r.is_failure for r in reasons):
            log.error("broker refused a subscription: %s", [str(r) for r in reasons])
            return
        self.subscribed.set()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._emit(Disconnected(str(reason)))

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:  # brokers should refuse such topics; reject it, never crash paho
            topic = repr(message._topic)  # not under hymy/v1/, so ingest counts it as unknown_topic
        self._emit((topic, bytes(message.payload)))


def speaks_mqtt5(host: str, port: int, timeout: float = 10.0) -> bool | None:
    """Whether the broker accepts an MQTT 5 connection: True, False (it refused the version or hung
    up before answering, as MQTT 3.1.1 brokers do), or None when it cannot be reached or did not answer."""
    answered = threading.Event()
    verdict: list[bool] = []

    def on_connect(_c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        verdict.append(not reason.is_failure)
        answered.set()

    def on_disconnect(_c: paho.Client, _u: Any, _f: Any, _reason: Any, _p: Any) -> None:
        if not answered.is_set():
            verdict.append(False)  # hung up on the CONNECT: it does not parse MQTT 5
            answered.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=paho.MQTTv5)
    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        client.connect(host, port, keepalive=10, clean_start=True)
    except (OSError, ValueError):
        return None
    client.loop_start()
    try:
        if not answered.wait(timeout):
            return None
        return verdict[0]
    finally:
        client.disconnect()
        client.loop_stop()
