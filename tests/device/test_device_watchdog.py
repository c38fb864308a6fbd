"""systemd notification over a real unix datagram socket: ready, status, stopping, rate-limited watchdog pings."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.watchdog import Notifier


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """systemd's end: a datagram socket bound in tmp_path, and the NOTIFY_SOCKET value naming it."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield str(path), sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    """Every datagram waiting on ``sock``, decoded."""
    got = []
    sock.setblocking(False)
    try:
        while True:
            got.append(sock.recv(4096).decode())
    except BlockingIOError:
        return got
    finally:
        sock.settimeout(5)


def test_ready_status_and_stopping_reach_systemd(
    notify_socket: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, sock = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    notifier = Notifier.from_env()
    assert notifier.enabled
    assert notifier.ready() and notifier.status("3 votes\nwaiting") and notifier.stopping()
    assert [sock.recv(4096) for _ in range(3)] == [b"READY=1", b"STATUS=3 votes waiting", b"STOPPING=1"]
    notifier.close()


def test_an_abstract_socket_is_named_with_at(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"hymy-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        notifier = Notifier.from_env()
        assert notifier.ready()
        assert sock.recv(4096) == b"READY=1"
        notifier.close()
    finally:
        sock.close()


def test_watchdog_pings_at_most_every_half_interval(
    notify_socket: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, sock = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    clock = Clock()
    notifier = Notifier.from_env(clock=clock)
    assert notifier.watchdog_s == 30.0
    sent = []
    for step in [0, 5, 5, 4.9, 0.1, 1, 15]:  # at 100, 105, 110, 114.9, 115, 116, 131
        clock.now += step
        sent.append(notifier.watchdog_ping())
    assert sent == [True, False, False, False, True, False, True]
    assert received(sock) == ["WATCHDOG=1"] * 3
    notifier.close()


@pytest.mark.parametrize(
    "env",
    [
        {},  # not under systemd
        {"NOTIFY_SOCKET": ""},
        {"NOTIFY_SOCKET": "vsock:2:1234"},  # a transport this terminal does not speak
    ],
)
def test_outside_systemd_everything_is_a_no_op(env: dict[str, str]) -> None:
    notifier = Notifier.from_env(env)
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog_ping()
    assert not notifier.status("x")
    assert not notifier.stopping()


@pytest.mark.parametrize("watchdog", [{}, {"WATCHDOG_USEC": "0"}, {"WATCHDOG_USEC": "soon"}, {"WATCHDOG_PID": "1"}])
def test_no_pings_without_a_watchdog_meant_for_us(
    notify_socket: tuple[str, socket.socket], watchdog: dict[str, str]
) -> None:
    address, sock = notify_socket
    env = {"NOTIFY_SOCKET": address, **watchdog}
    if "WATCHDOG_PID" in env:
        env["WATCHDOG_USEC"] = "30000000"
        assert os.getpid() != 1
    notifier = Notifier.from_env(env)
    assert notifier.watchdog_s is None
    assert not notifier.watchdog_ping()
    assert received(sock) == []


def test_watchdog_pid_of_this_process_is_honoured(notify_socket: tuple[str, socket.socket]) -> None:
    address, sock = notify_socket
    env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    notifier = Notifier.from_env(env)
    assert notifier.watchdog_ping()
    assert sock.recv(4096) == b"WATCHDOG=1"
    notifier.close()


def test_a_vanished_socket_is_reported_not_raised(tmp_path: Path) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert notifier.enabled
    assert notifier.ready() is False
    notifier.close()
