"""The terminal's one MQTT adapter: it owns every paho callback and turns them into events for one loop.

paho runs its own network thread (``loop_start``) and reconnects with backoff, unless a shared
``device.netloop`` driver is passed in (many terminals in one process); nothing in here
decides anything about votes. Callbacks only put events on a queue, except one job that must
happen on paho's thread before it dials again: refreshing the last will with a new connection
counter, so every connection's will carries a number larger than any before it. That happens on
every attempt, every two seconds for as long as the broker is away, so the counter must be cheap:
the store hands it out from a block reserved with one commit (``VoteStore.next_conn``).

``clean_session=False`` with the device id as client id: a broker that keeps sessions queues the
fleet's acks and configuration while the link is down, which saves resends after a flap.
Correctness never depends on it; votes stay in SQLite until the fleet's ack, whatever paho or the
broker remember.
"""

from __future__ import annotations

import logging
import queue
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

import protocol
from protocol import topics

from .clock import Clock
from .errors import DeviceError, MqttError
from .inputs.base import RateLimitedLog
from .netloop import NetworkLoop, ThreadPerClient

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 1
#: paho doubles its retry delay up to this. A broker that returns must see the terminal within
#: about this long (the backlog target is "drained within 5 s of the broker's return"), and a
#: connection attempt to a broker that is down costs it nothing, so the cap stays short.
RECONNECT_MAX_S = 2
KEEPALIVE_S = 30
#: A broker that refuses the terminal (revoked or wrong credentials) refuses every attempt, every
#: two seconds, possibly for weeks: say so at once, then at most once per this many seconds, so
#: the journal on the SD card gets a few lines an hour instead of one per attempt.
REFUSED_LOG_EVERY_S = 600.0


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when its handshake fails: paho drops such a socket without closing it, and a
    terminal that retries a wrong CA every two seconds for weeks would leak one each time."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def tls_context(ca_file: str | Path | None) -> ssl.SSLContext:
    """A client context that requires the broker's certificate, signed by ``ca_file`` (None: the system's
    CA store), and checks its host name; MqttError when the CA file cannot be used."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise MqttError(f"cannot use the broker CA certificate {ca_file or '(system store)'}: {exc}") from exc
    context.sslsocket_class = _ClosingSSLSocket
    return context


@dataclass(frozen=True, slots=True)
class Connected:
    """The broker accepted connection number ``conn``; birth is published and subscriptions requested."""

    conn: int
    session_present: bool


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The link is down; paho is already dialling again with backoff."""

    reason: str


@dataclass(frozen=True, slots=True)
class Received:
    """A message arrived; the loop decodes it (bytes are untrusted until then)."""

    topic: str
    payload: bytes


Event = Connected | Disconnected | Received


class MqttLink:
    """A paho client for one terminal: birth, will, subscriptions, reconnects; events go to ``events``."""

    def __init__(
        self,
        device_id: str,
        host: str,
        port: int,
        events: queue.Queue[Any],
        next_conn: Callable[[], int],
        clock: Clock,
        fw: str | None = None,
        username: str | None = None,
        password: str | None = None,
        max_queued: int = 64,
        network: NetworkLoop | None = None,
        *,
        ca_file: str | Path | None = None,
        tls: bool | None = None,
    ) -> None:
        """``network`` drives paho's socket; None is paho's own thread, as on a real terminal.

        ``ca_file``: the CA that signed the broker's certificate; given, the link is TLS and the
        broker's certificate and host name are verified. ``tls`` True without a ``ca_file`` trusts
        the system's CA store; None means TLS exactly when ``ca_file`` is given.
        """
        self.device_id = topics.check_device_id(device_id)
        self.host = host
        self.port = port
        self._events = events
        self._next_conn = next_conn
        self._clock = clock
        self._fw = fw
        self._state_topic = topics.device_topic(device_id, topics.STATE)
        try:
            self.state_payload(False, 0)  # a bad firmware string fails here, not on paho's thread
        except protocol.ProtocolError as exc:
            raise MqttError(f"cannot build this terminal's state message: {exc}") from exc
        self._subscriptions = [
            (topics.device_topic(device_id, topics.ACK), 1),
            (topics.device_topic(device_id, topics.CONFIG), 1),
            (topics.FLEET_STATE, 1),
        ]
        self._lock = threading.Lock()
        self._conn = 0  # the counter in the will paho holds now
        self._started = False
        self._refused_log = RateLimitedLog(log, REFUSED_LOG_EVERY_S, lambda: clock.mono_ms() / 1000)
        self._network = network if network is not None else ThreadPerClient()
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=device_id, clean_session=False, protocol=paho.MQTTv311
        )
        if username is not None:
            client.username_pw_set(username, password)
        self.tls = bool(ca_file) if tls is None else tls
        if self.tls:
            client.tls_set_context(tls_context(ca_file))
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        # Our own loop decides what to resend; paho's queue only smooths a short gap.
        client.max_queued_messages_set(max_queued)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        self._client = client

    @property
    def conn(self) -> int:
        """The connection counter of the current (or next) connection, as in its birth and will."""
        with self._lock:
            return self._conn

    def state_payload(self, online: bool, conn: int) -> bytes:
        """The retained state message: birth when online, will (or clean goodbye) when not."""
        msg = protocol.TerminalState(self.device_id, online, conn, self._clock.wall_ms(), self._fw)
        return protocol.encode(msg)

    def _refresh_will(self) -> None:
        """Give the next connection attempt a fresh counter; runs on paho's thread before it redials."""
        try:
            conn = self._next_conn()
        except DeviceError as exc:
            # An exception would kill paho's thread and with it every reconnect; a counter kept
            # only in memory is the lesser harm (it can repeat after a restart on a broken disk).
            log.error("connection counter not persisted: %s", exc)
            conn = self._conn + 1
        # Never repeat a value used in memory after a failure: the store, once it can commit again,
        # may hand out the very number that stood in for the one it could not persist.
        conn = max(conn, self._conn + 1)
        with self._lock:
            self._conn = conn
        self._client.will_set(self._state_topic, self.state_payload(False, conn), qos=1, retain=True)

    def start(self) -> None:
        """Begin connecting in the background; returns at once, even with no broker reachable."""
        if self._started:
            return
        self._started = True
        self._refresh_will()
        try:
            self._client.connect_async(self.host, self.port, keepalive=KEEPALIVE_S)
        except ValueError as exc:
            raise MqttError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        self._network.attach(self._client)

    def stop(self, timeout: float = 2.0) -> None:
        """Say goodbye (offline state, since a clean disconnect sends no will), disconnect, stop paho's thread."""
        if not self._started:
            return
        self._started = False
        if self._client.is_connected():
            info = self._client.publish(self._state_topic, self.state_payload(False, self.conn), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (ValueError, RuntimeError) as exc:
                log.warning("offline state not published on stop: %s", exc)
        self._client.disconnect()
        self._network.detach(self._client, timeout)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        """Hand a message to paho; False when the link cannot take it now (a state, not an error)."""
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except ValueError as exc:
            raise MqttError(f"publish to {topic!r} refused: {exc}") from exc
        return info.rc == paho.MQTT_ERR_SUCCESS

    def is_connected(self) -> bool:
        """Whether paho believes the link is up."""
        return self._client.is_connected()

    # -- paho callbacks (paho's thread): hand over and return ---------------------------------

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._refused_log.log(logging.WARNING, f"refused:{reason}", "broker refused connection: %s", reason)
            return
        conn = self.conn
        client.publish(self._state_topic, self.state_payload(True, conn), qos=1, retain=True)
        client.subscribe(self._subscriptions)
        self._events.put(Connected(conn, bool(getattr(flags, "session_present", False))))

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if self._started:  # not after our own goodbye: no reconnect follows
            self._refresh_will()
        self._events.put(Disconnected(str(reason)))

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        # Called from inside the except block of the failed attempt (paho's loop and netloop alike),
        # so the exception says why. A certificate the CA does not vouch for fails every attempt,
        # like a refused login: said at once, then rate-limited; paho keeps dialling either way.
        exc = sys.exc_info()[1]
        if isinstance(exc, ssl.SSLError):
            self._refused_log.log(
                logging.WARNING,
                f"tls:{type(exc).__name__}",
                "TLS handshake with broker %s:%d failed (wrong CA or host name?): %s",
                self.host,
                self.port,
                f"certificate verify failed: {exc.verify_message}"
                if isinstance(exc, ssl.SSLCertVerificationError)
                else exc,
            )
        self._refresh_will()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._events.put(Received(message.topic, bytes(message.payload)))
