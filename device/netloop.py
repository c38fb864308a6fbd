"""Who drives a paho client's network: its own thread (the terminal's default) or one loop shared by many clients.

A terminal has one MQTT client, and paho's ``loop_start`` thread is the simplest correct driver,
so that stays the default. A process that hosts hundreds of terminals (the simulator) cannot
afford a thread per client: hundreds of threads contend for the GIL and some miss their
keepalive, and paho's ``select()`` cannot watch descriptors above 1023. ``SharedLoop`` drives any
number of clients from one thread through paho's external-loop API (socket open, close and
write-interest callbacks; ``loop_read``, ``loop_write``, ``loop_misc``) on an epoll/poll selector,
and reconnects with the same backoff paho uses. The choice is passed in, like a pin factory;
what the clients do on the wire is the same either way.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as paho

log = logging.getLogger(__name__)

#: How often every client's keepalive is checked (paho's own loop does it about once a second).
MISC_EVERY_S = 1.0


class NetworkLoop(Protocol):
    """Drives the network of paho clients that were set up with ``connect_async``."""

    def attach(self, client: paho.Client) -> None:
        """Start connecting ``client`` and keep its network going, reconnecting after a loss."""
        ...

    def detach(self, client: paho.Client, timeout: float = 2.0) -> None:
        """Stop driving ``client`` after its queued packets (a DISCONNECT) are written or ``timeout``."""
        ...


class ThreadPerClient:
    """paho's own ``loop_start`` thread for each client: what a real terminal runs."""

    def attach(self, client: paho.Client) -> None:
        """Start paho's network thread, which connects and reconnects by itself."""
        client.loop_start()

    def detach(self, client: paho.Client, timeout: float = 2.0) -> None:
        """Join paho's thread (it writes what is queued first)."""
        client.loop_stop()


@dataclass
class _Entry:
    client: paho.Client
    sock: Any = None
    write: bool = False
    due: float = 0.0  # monotonic time of the next connection attempt while there is no socket
    delay: float = 0.0  # the last backoff; 0 after a connection was accepted
    leaving: float = 0.0  # detach deadline; 0 while attached
    done: threading.Event | None = None


class SharedLoop:
    """One thread and one selector driving many paho clients; use one per process, close it at the end."""

    def __init__(self, reconnect_min_s: float = 1.0, reconnect_max_s: float = 2.0, name: str = "mqtt-shared") -> None:
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self._sel = selectors.DefaultSelector()  # epoll on Linux: no FD_SETSIZE limit
        self._lock = threading.Lock()
        self._entries: dict[int, _Entry] = {}  # by id(client)
        self._ops: list[Callable[[], None]] = []  # selector changes asked for by other threads
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._stop = False
        self._misc_at = 0.0
        self._scan_at = 0.0  # when a connection attempt or a detach is next due (0: look now)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    # -- public --------------------------------------------------------------------------------

    def attach(self, client: paho.Client) -> None:
        """Take over ``client`` (after ``connect_async``): its first connection attempt is made at once."""
        entry = _Entry(client)
        client.on_socket_open = lambda c, _u, sock: self._call(lambda: self._opened(entry, sock))
        client.on_socket_close = lambda c, _u, sock: self._call(lambda: self._closed(entry, sock))
        client.on_socket_register_write = lambda c, _u, sock: self._call(lambda: self._want_write(entry, True))
        client.on_socket_unregister_write = lambda c, _u, sock: self._call(lambda: self._want_write(entry, False))
        with self._lock:
            self._entries[id(client)] = entry
            self._scan_at = 0.0
        self._poke()

    def detach(self, client: paho.Client, timeout: float = 2.0) -> None:
        """Let ``client`` write what is queued (its DISCONNECT), then drop it; waits at most ``timeout``."""
        done = threading.Event()
        with self._lock:
            entry = self._entries.get(id(client))
            if entry is None:
                return
            entry.leaving = time.monotonic() + timeout
            entry.done = done
            self._scan_at = 0.0
        self._poke()
        if threading.current_thread() is not self._thread:
            done.wait(timeout + 1.0)

    def close(self) -> None:
        """Stop the thread; clients still attached are left as they are (their sockets closed)."""
        self._stop = True
        self._poke()
        self._thread.join(5)
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            if entry.sock is not None:
                with contextlib.suppress(OSError):
                    entry.sock.close()
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- paho's socket callbacks: applied on the loop thread -----------------------------------

    def _call(self, op: Callable[[], None]) -> None:
        """Run a selector change now on the loop thread, or hand it to the loop thread and wake it."""
        if threading.current_thread() is self._thread:
            op()
            return
        with self._lock:
            self._ops.append(op)
        self._poke()

    def _opened(self, entry: _Entry, sock: Any) -> None:
        self._forget(entry)
        entry.sock = sock
        entry.write = False
        self._sel.register(sock, selectors.EVENT_READ, entry)

    def _closed(self, entry: _Entry, sock: Any) -> None:
        if entry.sock is not sock:
            return
        self._forget(entry)
        # paho's loop waits its backoff before redialling a lost connection; so does this one
        entry.due = 0.0 if entry.leaving else time.monotonic() + self._backoff(entry)
        with self._lock:
            self._scan_at = min(self._scan_at, entry.due)

    def _want_write(self, entry: _Entry, write: bool) -> None:
        if entry.sock is None or entry.write == write:
            return
        entry.write = write
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if write else 0)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._sel.modify(entry.sock, events, entry)

    def _forget(self, entry: _Entry) -> None:
        if entry.sock is None:
            return
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._sel.unregister(entry.sock)
        entry.sock = None
        entry.write = False

    # -- the loop ------------------------------------------------------------------------------

    def _poke(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _run(self) -> None:
        while not self._stop:
            try:
                self._step()
            except Exception:  # the loop serves every terminal; one bad client must not end it
                log.exception("shared MQTT loop step failed")
                time.sleep(0.05)

    def _timeout(self, now: float) -> float:
        with self._lock:
            nxt = min(self._misc_at, self._scan_at)
        return max(0.0, min(MISC_EVERY_S, nxt - now))

    def _step(self) -> None:
        with self._lock:
            ops, self._ops = self._ops, []
        for op in ops:
            op()
        for key, mask in self._sel.select(self._timeout(time.monotonic())):
            entry = key.data
            if entry is None:
                with contextlib.suppress(OSError):
                    while self._wake_r.recv(4096):
                        pass
                continue
            if entry.sock is not key.fileobj:
                continue  # closed earlier in this batch
            client = entry.client
            if mask & selectors.EVENT_READ:
                client.loop_read()
            if mask & selectors.EVENT_WRITE and entry.sock is key.fileobj:
                client.loop_write()
        now = time.monotonic()
        if now >= self._misc_at:
            self._misc_at = now + MISC_EVERY_S
            self._misc(now)
        now = time.monotonic()
        with self._lock:
            scan = now >= self._scan_at
        if scan:
            self._connect_and_leave(now)

    def _misc(self, now: float) -> None:
        """Keepalive for every connected client; a connection that was accepted resets its backoff."""
        with self._lock:
            entries = list(self._entries.values())
        for e in entries:
            if e.sock is not None:
                e.client.loop_misc()
                if e.delay and e.client.is_connected():
                    e.delay = 0.0

    def _connect_and_leave(self, now: float) -> None:
        """Dial clients whose backoff is over, drop detached ones, and note when to look again."""
        with self._lock:
            entries = list(self._entries.values())
            self._scan_at = now + MISC_EVERY_S  # a leaving client is checked at least this often
        nxt = now + MISC_EVERY_S
        for e in entries:
            if e.leaving:
                if e.sock is None or now >= e.leaving:
                    self._drop(e)
                continue
            if e.sock is not None:
                continue
            if e.due <= now:
                self._dial(e, now)
            if e.sock is None:
                nxt = min(nxt, e.due)
        with self._lock:
            self._scan_at = min(self._scan_at, nxt)

    def _dial(self, e: _Entry, now: float) -> None:
        """One connection attempt (a refused one calls on_connect_fail, as paho's own loop does)."""
        try:
            e.client.reconnect()
        except (OSError, ValueError) as exc:
            log.debug("connection attempt failed: %s", exc)
            e.due = now + self._backoff(e)
            callback = e.client.on_connect_fail
            if callback is not None:
                callback(e.client, e.client.user_data_get())

    def _backoff(self, e: _Entry) -> float:
        """paho's rule: the minimum delay first, then doubling up to the maximum until a connection is accepted."""
        e.delay = self.reconnect_min_s if not e.delay else min(e.delay * 2, self.reconnect_max_s)
        return e.delay

    def _drop(self, e: _Entry) -> None:
        if e.sock is not None:
            sock = e.sock
            self._forget(e)
            with contextlib.suppress(OSError):
                sock.close()
        with self._lock:
            self._entries.pop(id(e.client), None)
        if e.done is not None:
            e.done.set()
