"""Let paho's network loop watch file descriptors above 1023, for many terminals in one process.

paho's loop uses ``select.select``, which cannot take a descriptor numbered 1024 or more
(FD_SETSIZE). A real terminal has a few dozen descriptors; 500 simulated terminals in one process
have thousands (sockets, wake-up pairs, SQLite files with their WAL). ``install()`` gives paho's
module a ``select`` with the same contract built on ``poll``, which has no such limit. Only the
simulator calls it; the device code and paho's own logic are unchanged.
"""

from __future__ import annotations

import select as _select
import types
from collections.abc import Sequence
from typing import Any

_READ = _select.POLLIN | _select.POLLPRI | _select.POLLHUP | _select.POLLERR
_WRITE = _select.POLLOUT | _select.POLLHUP | _select.POLLERR


def _fd(obj: Any) -> int:
    fd = obj if isinstance(obj, int) else obj.fileno()
    if fd < 0:
        raise ValueError("file descriptor cannot be a negative integer")
    return int(fd)


def poll_select(
    rlist: Sequence[Any], wlist: Sequence[Any], xlist: Sequence[Any], timeout: float | None = None
) -> tuple[list[Any], list[Any], list[Any]]:
    """``select.select`` for readability and writability, on ``poll`` (no FD_SETSIZE limit)."""
    poller = _select.poll()
    masks: dict[int, int] = {}
    for obj in rlist:
        masks[_fd(obj)] = masks.get(_fd(obj), 0) | _select.POLLIN | _select.POLLPRI
    for obj in wlist:
        masks[_fd(obj)] = masks.get(_fd(obj), 0) | _select.POLLOUT
    for fd, mask in masks.items():
        poller.register(fd, mask)
    events = dict(poller.poll(None if timeout is None else max(0.0, timeout) * 1000))
    readable = [o for o in rlist if events.get(_fd(o), 0) & _READ]
    writable = [o for o in wlist if events.get(_fd(o), 0) & _WRITE]
    return readable, writable, []


def install() -> None:
    """Make paho's client module use ``poll_select``; idempotent."""
    import paho.mqtt.client as client

    client.select = types.SimpleNamespace(select=poll_select, error=OSError)  # type: ignore[assignment]
