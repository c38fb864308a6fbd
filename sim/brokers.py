"""MQTT brokers for tests, the demo and benchmarks: real mosquitto or amqtt embedded in a thread.

Both runners share one small interface (``host``, ``port``, ``start()``, ``stop()``, ``restart()``,
context manager) so a test can be parametrized over them. Both listen on loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self

from amqtt.broker import Broker as _AmqttBroker
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

__all__ = [
    "BrokerError",
    "BrokerRunner",
    "ClientLogin",
    "EmbeddedBroker",
    "MosquittoBroker",
    "PortChoice",
    "SecureMosquitto",
    "choose_port",
    "find_mosquitto",
    "free_port",
    "port_accepts",
]

LOOPBACK = "127.0.0.1"
MOSQUITTO_FALLBACK_PATH = "/usr/sbin/mosquitto"
#: How often a stopping connection's reader is cancelled again while it has not stopped (see _stop_handler).
RECANCEL_INTERVAL_S = 0.05
#: After this long a connection whose reader will not stop is aborted, so its reader sees EOF.
HANDLER_STOP_GRACE_S = 1.0
_log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """A broker could not be found, started or stopped."""


class PortChoice(NamedTuple):
    """The port to listen on and whether it is the preferred one or a fallback."""

    port: int
    fell_back: bool


def free_port(host: str = LOOPBACK) -> int:
    """Return a port the kernel says is free now, so parallel runs never fight over 1883."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_is_free(host: str, port: int) -> bool:
    """Tell whether a listener could bind ``host:port``, with SO_REUSEADDR as brokers use it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
        return True


def choose_port(preferred: int = 1883, host: str = LOOPBACK) -> PortChoice:
    """Use ``preferred`` if nothing listens there, else a free port, and say which it was."""
    if _port_is_free(host, preferred):
        return PortChoice(preferred, fell_back=False)
    return PortChoice(free_port(host), fell_back=True)


def port_accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    """Tell whether a TCP connection to ``host:port`` succeeds right now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait_until_accepting(host: str, port: int, timeout: float, alive: Any = None) -> bool:
    """Poll until the port accepts connections; stop early if ``alive()`` turns false."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_accepts(host, port):
            return True
        if alive is not None and not alive():
            return False
        time.sleep(0.02)
    return False


def find_mosquitto() -> str | None:
    """Return the mosquitto binary's path, looking in /usr/sbin too since it is not on a user's PATH."""
    found = shutil.which("mosquitto")
    if found:
        return found
    if os.access(MOSQUITTO_FALLBACK_PATH, os.X_OK):
        return MOSQUITTO_FALLBACK_PATH
    return None


class BrokerRunner(ABC):
    """What every broker runner offers: an address, start/stop/restart and a context manager."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """The broker's address as ``mqtt://host:port``, for logs and command lines."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    @abstractmethod
    def running(self) -> bool:
        """Whether the broker is serving now."""

    @abstractmethod
    def start(self) -> None:
        """Start serving and return only once the port accepts connections."""

    @abstractmethod
    def stop(self) -> None:
        """Stop serving and release everything the runner holds; safe to call twice."""

    @abstractmethod
    def restart(self) -> None:
        """Stop and start again on the same port, as a broker restart looks to clients."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.host}:{self.port}, running={self.running})"


class MosquittoBroker(BrokerRunner):
    """The real mosquitto binary with a generated config in its own temp dir, for faithful tests and benchmarks."""

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = LOOPBACK,
        persistence: bool = False,
        max_queued_messages: int = 100_000,
        max_inflight_messages: int = 100,
        extra_config: str = "",
        binary: str | None = None,
        start_timeout: float = 10.0,
        stop_timeout: float = 5.0,
    ) -> None:
        binary = binary or find_mosquitto()
        if binary is None:
            raise BrokerError(
                "mosquitto is not installed (not on PATH nor at /usr/sbin/mosquitto); "
                "run the test command `bash tests/run.sh`, which installs it"
            )
        self.binary = binary
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.persistence = persistence
        self.max_queued_messages = max_queued_messages
        self.max_inflight_messages = max_inflight_messages
        self.extra_config = extra_config
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def workdir(self) -> Path:
        """The temp dir holding config, log and persistence; created on first start."""
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="hymy-mosquitto-"))
        return self._workdir

    @property
    def config_path(self) -> Path:
        """Where the generated mosquitto.conf lives."""
        return self.workdir / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        """Where mosquitto writes its log."""
        return self.workdir / "mosquitto.log"

    @property
    def persistence_location(self) -> Path:
        """Where mosquitto keeps its database when persistence is on."""
        return self.workdir / "persistence"

    @property
    def running(self) -> bool:
        """Whether the mosquitto process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id while running, for fault tests that signal it directly."""
        return self._proc.pid if self.running and self._proc is not None else None

    def config_text(self) -> str:
        """Render the mosquitto.conf this runner starts with."""
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            f"max_queued_messages {self.max_queued_messages}",
            f"max_inflight_messages {self.max_inflight_messages}",
            "set_tcp_nodelay true",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            # as root mosquitto would drop to the 'mosquitto' user, which cannot write our temp dir
            lines.append("user root")
        if self.persistence:
            self.persistence_location.mkdir(exist_ok=True)
            lines += ["persistence true", f"persistence_location {self.persistence_location}/", "autosave_interval 1"]
        else:
            lines.append("persistence false")
        if self.extra_config:
            lines.append(self.extra_config.strip())
        return "\n".join(lines) + "\n"

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of the broker's log and stderr, for error messages."""
        parts = []
        for path in (self.log_path, self.workdir / "stderr.log"):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                if text:
                    parts.append(f"--- {path.name} ---\n" + "\n".join(text))
        return "\n".join(parts) or "(no log output)"

    def start(self) -> None:
        """Write the config, launch mosquitto and wait until the port accepts connections."""
        if self.running:
            return
        self.config_path.write_text(self.config_text())
        with open(self.workdir / "stderr.log", "ab") as err:
            self._proc = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,  # keep the terminal's Ctrl-C for the test runner
            )
        if not _wait_until_accepting(self.host, self.port, self.start_timeout, alive=lambda: self.running):
            code = self._proc.poll()
            self._halt(signal.SIGKILL)
            state = f"exited with code {code}" if code is not None else f"not accepting after {self.start_timeout}s"
            raise BrokerError(f"mosquitto on {self.host}:{self.port} {state}\n{self.log_tail()}")

    def _halt(self, sig: signal.Signals) -> None:
        """Signal the process and reap it, escalating to SIGKILL after the stop timeout."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=self.stop_timeout)

    def kill(self) -> None:
        """SIGKILL the broker without letting it save or say goodbye, as a crash or power cut would."""
        self._halt(signal.SIGKILL)

    def terminate(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) but keep the temp dir, so a later start reuses its state."""
        self._halt(signal.SIGTERM)

    def restart(self) -> None:
        """Terminate and start again on the same port, keeping persistence if it is on."""
        self.terminate()
        self.start()

    def stop(self) -> None:
        """Terminate the broker and remove its temp dir."""
        self.terminate()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


@dataclass(frozen=True)
class ClientLogin:
    """How a client logs in to a broker: nothing (an open broker), or a login and the CA for TLS."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None

    def apply(self, client: Any) -> None:
        """Give a paho client this login (before it connects)."""
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        if self.ca_file is not None:
            from device.mqtt import tls_context  # closes a socket whose handshake fails (paho does not)

            client.tls_set_context(tls_context(self.ca_file))

    def agent_options(self) -> dict[str, Any]:
        """The same as keyword arguments of the terminal's SyncAgent."""
        given = {"username": self.username, "password": self.password, "ca_file": self.ca_file}
        return {k: v for k, v in given.items() if v is not None}


OPEN = ClientLogin()
#: The simulator's own login on a secured broker: it watches the fleet state and, to inject
#: duplicated and reordered deliveries, reads and re-sends vote batches (no terminal could).
HARNESS_ROLE = "hymy-sim-harness"


class SecureMosquitto(MosquittoBroker):
    """Mosquitto as production runs it: the configuration ``hymy fleet broker-config`` writes (TLS
    only, no anonymous access, persistence, the dynamic-security plugin), with certificates from a
    CA made for the run. Terminals get logins through ``accounts()``; the fleet uses ``fleet_login``.
    """

    def __init__(self, *, certfile: Path, keyfile: Path, ca_file: Path, host: str = LOOPBACK, **kwargs: Any) -> None:
        super().__init__(host=host, persistence=True, **kwargs)
        self.certfile = certfile
        self.keyfile = keyfile
        self.ca_file = ca_file
        self.admin_login = ("hymy-accounts", secrets.token_urlsafe(16))
        self.fleet_login = ("hymy-fleet", secrets.token_urlsafe(16))
        self._accounts_saved: str | None = None

    def stop(self) -> None:
        """Stop and remove the temp dir, but keep the logins for a later start: a broker that loses
        its queued messages (the simulator's broker fault) still has its account file."""
        if self._workdir is not None and self.dynsec_path.exists():
            self._accounts_saved = self.dynsec_path.read_text()
        super().stop()

    @property
    def dynsec_path(self) -> Path:
        """The dynamic-security file: logins and access rules, kept across restarts like persistence."""
        return self.workdir / "dynamic-security.json"

    def config_text(self) -> str:
        """The production renderer's text for this port and temp dir, plus what a test run needs."""
        from fleet.brokerauth import dynsec_file
        from fleet.brokerconf import BrokerConfig, render_config

        if not self.dynsec_path.exists():
            first = self._accounts_saved or json.dumps(dynsec_file(self.admin_login, self.fleet_login))
            self.dynsec_path.write_text(first)
            self.dynsec_path.chmod(0o600)
        self.persistence_location.mkdir(exist_ok=True)
        config = BrokerConfig(
            tls_port=self.port,
            tls_host=self.host,
            certfile=str(self.certfile),
            keyfile=str(self.keyfile),
            local_port=0,
            persistence_dir=str(self.persistence_location),
            dynsec_file=str(self.dynsec_path),
            log_dest=f"file {self.log_path}",
        )
        text = render_config(config).replace("autosave_interval 60", "autosave_interval 1")
        if os.geteuid() == 0:
            text += "user root\n"  # as root mosquitto would drop to 'mosquitto', who cannot read our temp dir
        return text + (self.extra_config.strip() + "\n" if self.extra_config else "")

    def accounts(self) -> Any:
        """The fleet's account store on this broker (``fleet.brokerauth.DynsecAccounts``)."""
        from fleet.brokerauth import DynsecAccounts

        return DynsecAccounts(self.host, self.port, *self.admin_login, ca_file=str(self.ca_file))

    def fleet(self) -> ClientLogin:
        """The fleet's own login (ingest, publishing)."""
        return ClientLogin(*self.fleet_login, ca_file=str(self.ca_file))

    def terminal(self, device: str) -> ClientLogin:
        """A new login for terminal ``device``, as enrolment gives it (confined to its own topics)."""
        password = secrets.token_urlsafe(24)
        self.accounts().add_terminal(device, password)
        return ClientLogin(device, password, str(self.ca_file))

    def harness(self) -> ClientLogin:
        """The simulator's own login (see HARNESS_ROLE)."""
        from protocol.topics import FLEET_STATE, subscription

        votes = subscription("votes")
        acls = [
            {"acltype": "subscribePattern", "topic": votes, "allow": True},
            {"acltype": "publishClientSend", "topic": votes, "allow": True},
            {"acltype": "subscribeLiteral", "topic": FLEET_STATE, "allow": True},
        ]
        password = secrets.token_urlsafe(24)
        self.accounts().run(
            [
                {"command": "deleteClient", "username": HARNESS_ROLE},
                {"command": "deleteRole", "rolename": HARNESS_ROLE},
                {"command": "createRole", "rolename": HARNESS_ROLE, "acls": acls},
                {
                    "command": "createClient",
                    "username": HARNESS_ROLE,
                    "password": password,
                    "roles": [{"rolename": HARNESS_ROLE}],
                },
            ],
            tolerate=("deleteClient", "deleteRole"),
        )
        return ClientLogin(HARNESS_ROLE, password, str(self.ca_file))


class OpenAuthPlugin(BaseAuthPlugin):
    """Let every client in without marking it anonymous.

    amqtt's AnonymousAuthPlugin flags sessions anonymous, and amqtt then drops their persistent
    sessions and offline QoS 1 queues, unlike mosquitto with ``allow_anonymous true``.
    """

    async def authenticate(self, *, session: Session) -> bool | None:
        """Accept every connection: the embedded broker is loopback-only and for tests and the demo."""
        return True


class _SnapshotDict(dict[str, Any]):
    """A dict whose iteration walks a snapshot of its keys.

    amqtt 0.12 iterates its subscription table across ``await`` points while other clients
    (un)subscribe or expire, which raises "dictionary changed size during iteration".
    """

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().__iter__()))


class _HymyAmqttBroker(_AmqttBroker):
    """amqtt's broker with narrow fixes where amqtt 0.12 differs from mosquitto and MQTT 3.1.1.

    1. The subscription table iterates a snapshot (see ``_SnapshotDict``).
    2. Retained messages go only to a session's own subscriptions: on every CONNECT amqtt 0.12
       otherwise sends the new client retained messages matching *any* client's subscriptions.
    3. Messages queued for an offline persistent session are delivered without the retain flag.
    4. Every connection is closed when amqtt is done with it or shuts down, so no transport is
       left for the garbage collector to warn about (amqtt leaves some open).
    5. Stopping a connection's handler cannot hang (see ``_stop_handler``), so neither can shutdown.
    """

    def __init__(self, config: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(config, loop=loop)
        self._subscriptions = _SnapshotDict()
        self._open_writers: set[asyncio.StreamWriter] = set()
        self._shutting_down = False

    async def shutdown(self) -> None:
        """Shut down; from here on, stopping a connection is forced (see ``_stop_handler``)."""
        self._shutting_down = True
        await super().shutdown()

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        """Track each connection and close it when amqtt is done with it, which amqtt skips on some paths.

        A peer that hangs up before CONNECT, or whose socket resets while amqtt drains it, is
        otherwise left open until the garbage collector warns about it.
        """
        self._open_writers.add(writer)
        try:
            await super().stream_connected(reader, writer, listener_name)
        finally:
            self._open_writers.discard(writer)
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        topic_filter = subscription[0]
        subscribers = self._subscriptions.get(topic_filter, [])
        if any(subscriber.client_id == session.client_id for subscriber, _ in subscribers):
            await super()._publish_retained_messages_for_subscription(subscription, session)

    async def _publish_session_retained_messages(self, session: Session) -> None:
        # amqtt sends messages queued for an offline session with the retain flag set; they are live messages
        handler = self._get_handler(session)
        if handler is None:
            return
        tasks = []
        while not session.retained_messages.empty():
            queued = await session.retained_messages.get()
            tasks.append(
                asyncio.ensure_future(handler.mqtt_publish(queued.topic, queued.data, queued.qos, retain=False))
            )
        if tasks:
            await asyncio.wait(tasks)

    async def _stop_handler(self, handler: BrokerProtocolHandler) -> None:
        """Stop a connection's handler for certain, even when Python 3.11 swallows the cancel of its reader.

        amqtt's ``ProtocolHandler.stop()`` cancels the reader task once, then waits without a timeout
        for it to stop. The reader sits in ``asyncio.wait_for(read)``, and Python 3.11's ``wait_for``
        returns the read's result instead of raising when the read finished in the same loop iteration
        as the cancel (CPython gh-86296, fixed in 3.12). While a client is publishing, the next packet
        is usually already buffered, the read finishes at once, and the cancel is lost: the reader
        keeps serving, ``stop()`` waits for ever, and so does broker shutdown, which stops every
        handler. So first fail the connection's stream, which ends the reader at its next read
        whatever is buffered; then let amqtt stop it, cancelling again while it has not stopped and
        aborting the connection after a grace.
        """
        if self._shutting_down:
            # Only when the broker goes away: failing the stream of a client that disconnected itself
            # could drop a PUBLISH it sent (and we PUBACKed) just before its DISCONNECT. Outside
            # shutdown (a DISCONNECT, a session taken over) the re-cancels below still end a reader
            # whose one cancel was swallowed, so no connection is left open.
            _hang_up(handler)
        stopping = asyncio.ensure_future(super()._stop_handler(handler))
        deadline = asyncio.get_running_loop().time() + HANDLER_STOP_GRACE_S
        try:
            while not (await asyncio.wait({stopping}, timeout=RECANCEL_INTERVAL_S))[0]:
                reader = handler._reader_task
                if reader is not None and not reader.done() and not handler._reader_stopped.is_set():
                    reader.cancel()  # the reader may be awaiting something other than a read
                if asyncio.get_running_loop().time() > deadline:
                    _abort(handler)  # a writer flushing to a peer that does not read gives up
        except asyncio.CancelledError:
            stopping.cancel()
            raise
        stopping.result()

    def close_servers(self) -> None:
        """Stop listening, for a shutdown that did not finish (amqtt closes its listeners last)."""
        for server in self._servers.values():
            if server.instance is not None:
                server.instance.close()

    async def close_connections(self, timeout: float = 1.0) -> None:
        """Close every client connection still open, as a stopped broker's would be; abort those that will not flush."""
        writers = list(self._open_writers)
        for writer in writers:
            writer.close()
        if not writers:
            return
        closing = {asyncio.ensure_future(writer.wait_closed()): writer for writer in writers}
        _, pending = await asyncio.wait(closing, timeout=timeout)
        for future in pending:
            closing[future].transport.abort()  # a peer that does not read would keep close() flushing for ever
        await asyncio.gather(*closing, return_exceptions=True)  # OSErrors of dead peers mean nothing now


def _hang_up(handler: BrokerProtocolHandler) -> None:
    """Fail the handler's next read as a reset connection would, so its reader ends even with data buffered."""
    stream = getattr(handler.reader, "_reader", None)  # amqtt's StreamReaderAdapter keeps asyncio's reader here
    if isinstance(stream, asyncio.StreamReader) and stream.exception() is None:
        stream.set_exception(ConnectionResetError("the broker is closing this connection"))


def _abort(handler: BrokerProtocolHandler) -> None:
    """Drop a handler's connection at once (no flush), so its reader reads EOF."""
    adapter = handler.writer
    writer = getattr(adapter, "_writer", None)  # amqtt's StreamWriterAdapter keeps asyncio's writer here
    if isinstance(writer, asyncio.StreamWriter):
        writer.transport.abort()


async def _cancel(*tasks: asyncio.Future[Any], timeout: float = 2.0) -> None:
    """Cancel tasks and wait until they end, cancelling again any that swallowed it (3.11 wait_for can); bounded."""
    pending = {task for task in tasks if not task.done()}
    deadline = asyncio.get_running_loop().time() + timeout
    while pending and asyncio.get_running_loop().time() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_INTERVAL_S)
    if pending:
        _log.warning("%d embedded broker task(s) would not stop: %s", len(pending), pending)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it as never retrieved


def _amqtt_config(host: str, port: int) -> dict[str, Any]:
    """Build amqtt 0.12's config: one TCP listener and only the plugins we need.

    The defaults would also load BrokerSysPlugin, which emits a DeprecationWarning about psutil.
    """
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {f"{__name__}.OpenAuthPlugin": {}},
    }


class EmbeddedBroker(BrokerRunner):
    """amqtt's broker in a background thread with its own event loop, so the demo needs no install."""

    def __init__(
        self, port: int | None = None, *, host: str = LOOPBACK, start_timeout: float = 10.0, stop_timeout: float = 10.0
    ) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        #: amqtt's own shutdown gets this long before connections are dropped and its tasks cancelled.
        self.shutdown_timeout = max(0.5, stop_timeout / 2)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.leftover_tasks: list[str] = []

    @property
    def running(self) -> bool:
        """Whether the broker thread is serving."""
        return self._thread is not None and self._thread.is_alive() and self._ready.is_set()

    def start(self) -> None:
        """Start the broker thread and wait until the port accepts connections."""
        if self.running:
            return
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name=f"amqtt-{self.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.start_timeout) or self._error is not None:
            error = self._error
            self.stop()
            raise BrokerError(f"embedded broker on {self.host}:{self.port} did not start: {error!r}") from error

    def _run(self) -> None:
        """Own one event loop for the broker's whole life, in this thread only."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        except BaseException as exc:  # reported to start() or logged; a thread has no caller to raise to
            self._error = exc
            if self._ready.is_set():
                _log.exception("embedded broker on port %s failed", self.port)
        finally:
            self._ready.set()
            self._loop = None
            loop.close()

    async def _serve(self) -> None:
        """Start amqtt, serve until stop() asks, then shut it down and reap what it left behind."""
        self._stop_event = asyncio.Event()
        broker = _HymyAmqttBroker(_amqtt_config(self.host, self.port), loop=asyncio.get_running_loop())
        await broker.start()
        self._ready.set()
        await self._stop_event.wait()
        shutdown = asyncio.ensure_future(broker.shutdown())
        if not (await asyncio.wait({shutdown}, timeout=self.shutdown_timeout))[0]:
            _log.warning(
                "embedded broker on port %s: amqtt did not shut down in %ss; dropping it",
                self.port,
                self.shutdown_timeout,
            )
            await _cancel(shutdown)
            broker.close_servers()
        elif shutdown.exception() is not None:
            _log.warning("embedded broker on port %s: amqtt shutdown failed: %r", self.port, shutdown.exception())
        await broker.close_connections()
        await self._reap_tasks()

    async def _reap_tasks(self) -> None:
        """Cancel tasks amqtt left running after shutdown so none is destroyed pending; remember them."""
        current = asyncio.current_task()
        leftover = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
        self.leftover_tasks = [repr(task.get_coro()) for task in leftover]
        await _cancel(*leftover)

    def stop(self) -> None:
        """Shut amqtt down cleanly, stop its loop and join the thread."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed between our check and the call
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(self.stop_timeout)
        if thread.is_alive():
            raise BrokerError(f"embedded broker on {self.host}:{self.port} did not stop in {self.stop_timeout}s")
        self._thread = None
        self._stop_event = None
        self._ready.clear()

    def restart(self) -> None:
        """Stop and start a fresh amqtt on the same port (retained messages and sessions are lost, as in memory)."""
        self.stop()
        self.start()
