"""An in-process TCP proxy with one port per terminal, so a fault can cut one terminal's network.

Each terminal dials its own local port; one selector thread forwards bytes to the broker. Cutting
a terminal drops its connections without any MQTT goodbye (as a pulled cable or a dead mobile link
looks after the keepalive) and refuses new ones until the cut is restored. One thread serves all
terminals, so 500 terminals cost 500 listening sockets, not 500 threads.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
from dataclasses import dataclass, field

LOOPBACK = "127.0.0.1"
log = logging.getLogger(__name__)
_CHUNK = 65536


@dataclass
class _Route:
    name: str
    listener: socket.socket
    cut: bool = False
    pairs: list[tuple[socket.socket, socket.socket]] = field(default_factory=list)


class NetCut:
    """Forward each named terminal's port to ``upstream``; ``cut(name)`` and ``restore(name)`` its network."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._sel = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._routes: dict[str, _Route] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._stop = False
        self._new: list[_Route] = []
        self._thread = threading.Thread(target=self._run, name="hymy-sim-netcut", daemon=True)
        self._thread.start()
        self.accepted = 0
        self.refused = 0

    def add(self, name: str) -> int:
        """Open a port for terminal ``name`` and return it."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, 0))
        listener.listen(16)
        listener.setblocking(False)
        route = _Route(name, listener)
        with self._lock:
            self._routes[name] = route
            self._new.append(route)
        self._poke()  # the forwarding thread registers it: only that thread touches the selector
        return int(listener.getsockname()[1])

    def cut(self, name: str) -> None:
        """Drop ``name``'s connections now and refuse new ones until ``restore``."""
        with self._lock:
            self._routes[name].cut = True
        self._poke()  # the forwarding thread drops the connections: only it touches the selector

    def restore(self, name: str) -> None:
        """Let ``name`` connect again."""
        with self._lock:
            self._routes[name].cut = False

    def is_cut(self, name: str) -> bool:
        """Whether ``name``'s network is cut now."""
        with self._lock:
            return self._routes[name].cut

    def close(self) -> None:
        """Stop forwarding and close every socket."""
        self._stop = True
        self._poke()
        self._thread.join(5)  # after this no thread touches the selector
        with self._lock:
            routes = list(self._routes.values())
            self._routes.clear()
        for route in routes:
            for a, b in route.pairs:
                self._close_pair(a, b)
            route.listener.close()
        self._wake_r.close()
        self._wake_w.close()
        self._sel.close()

    def _poke(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _close_pair(self, a: socket.socket, b: socket.socket) -> None:
        for s in (a, b):
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._sel.unregister(s)
            with contextlib.suppress(OSError):
                # RST rather than FIN: the far end learns of the loss as it would from a dead link.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()

    def _accept(self, route: _Route) -> None:
        try:
            client, _ = route.listener.accept()
        except (BlockingIOError, OSError):
            return
        with self._lock:
            cut = route.cut
        if cut:
            self.refused += 1
            client.close()
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=2)
        except OSError:  # the broker is down: the terminal sees a refused connection
            client.close()
            return
        for s in (client, upstream):
            s.setblocking(True)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream.settimeout(5)
        client.settimeout(5)
        with self._lock:
            route.pairs.append((client, upstream))
        self.accepted += 1
        self._sel.register(client, selectors.EVENT_READ, ("data", route, client, upstream))
        self._sel.register(upstream, selectors.EVENT_READ, ("data", route, upstream, client))

    def _forward(self, route: _Route, src: socket.socket, dst: socket.socket) -> None:
        try:
            data = src.recv(_CHUNK)
            if data:
                dst.sendall(data)
                return
        except OSError:
            pass
        with self._lock:
            pair = next((p for p in route.pairs if src in p), None)
            if pair is not None:
                route.pairs.remove(pair)
        if pair is not None:
            self._close_pair(*pair)

    def _drop_cut(self) -> None:
        """Register new listeners and close every connection of a cut terminal (on the forwarding thread)."""
        with self._lock:
            new, self._new = self._new, []
        for route in new:
            self._sel.register(route.listener, selectors.EVENT_READ, ("listen", route))
        with self._lock:
            doomed = []
            for route in self._routes.values():
                if route.cut and route.pairs:
                    doomed += route.pairs
                    route.pairs = []
        for a, b in doomed:
            self._close_pair(a, b)

    def _run(self) -> None:
        while not self._stop:
            try:
                self._step()
            except Exception:  # the proxy must outlive any one bad socket
                log.exception("netcut: forwarding step failed")

    def _step(self) -> None:
        for key, _ in self._sel.select(timeout=1.0):
            data = key.data
            if data is None:
                with contextlib.suppress(OSError):
                    self._wake_r.recv(4096)
                self._drop_cut()
            elif data[0] == "listen":
                self._accept(data[1])
            elif data[2].fileno() != -1:  # closed by a cut while this batch of events waited
                self._forward(data[1], data[2], data[3])
