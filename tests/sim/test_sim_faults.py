"""Each fault injector on its own: network cut and restore, replayed batches, a SIGKILLed child."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from sim.brokers import MosquittoBroker
from sim.dupes import Duplicator
from sim.netcut import NetCut
from sim.pollselect import poll_select
from sim.procs import Child, usage
from tests.waiting import wait_until


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    """A TCP echo server on loopback."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return

            def echo(c: socket.socket = conn) -> None:
                with c:
                    try:
                        while data := c.recv(100):
                            c.sendall(data)
                    except OSError:  # the proxy cut it
                        pass

            threading.Thread(target=echo, daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()
    stop.set()
    srv.close()


def roundtrip(port: int) -> bytes:
    """Send ping and read the echo; b"" when the connection is dropped or reset."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        try:
            s.sendall(b"ping")
            return s.recv(10)
        except OSError:
            return b""


def dead(sock: socket.socket) -> bool:
    try:
        return sock.recv(10) == b""
    except OSError:
        return True


def test_a_cut_drops_the_connection_refuses_new_ones_and_restore_lets_them_in(echo_server: tuple[str, int]) -> None:
    proxy = NetCut(*echo_server)
    try:
        port, other = proxy.add("t-1"), proxy.add("t-2")
        with socket.create_connection(("127.0.0.1", port), timeout=2) as live:
            live.sendall(b"a")
            assert live.recv(10) == b"a"
            proxy.cut("t-1")
            wait_until(lambda: dead(live), 5, "the cut connection to die")
        assert roundtrip(other) == b"ping"  # the other terminal keeps its network
        assert roundtrip(port) == b""
        proxy.restore("t-1")
        assert roundtrip(port) == b"ping"
    finally:
        proxy.close()


def test_captured_batches_are_delivered_again_out_of_order(mosquitto: MosquittoBroker) -> None:
    got: list[bytes] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = lambda _c, _u, m: got.append(bytes(m.payload))
    sub.connect(mosquitto.host, mosquitto.port)
    sub.subscribe("hymy/v1/+/votes", qos=1)
    sub.loop_start()
    dup = Duplicator(mosquitto.host, mosquitto.port, seed=1)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    pub.connect(mosquitto.host, mosquitto.port)
    pub.loop_start()
    try:
        wait_until(dup.subscribed.is_set, 5, "the duplicator's subscription")
        dup.open_window()
        for i in range(9):
            pub.publish("hymy/v1/t-1/votes", str(i).encode(), qos=1).wait_for_publish(5)
        wait_until(lambda: len(got) == 9, 5, "the originals")
        wait_until(lambda: len(dup._captured) == 9, 5, "the copies")
        assert dup.close_window() == 12
        wait_until(lambda: len(got) == 21, 5, "the replays")
        replayed = got[9:]
        assert sorted(set(replayed)) == sorted(got[:9]) and replayed != sorted(replayed)
    finally:
        for c in (sub, pub):
            c.disconnect()
            c.loop_stop()
        dup.close()


def test_a_child_is_killed_and_started_again(tmp_path: Path) -> None:
    child = Child("sleeper", ["http.server", "--bind", "127.0.0.1", "0"], tmp_path / "c.log")
    child.start()
    pid = child.pid
    assert pid is not None and usage(pid) is not None
    child.kill()
    assert child.exited() and child.kills == 1 and usage(pid) is None
    child.start()
    assert child.pid is not None and child.pid != pid and child.starts == 2
    child.stop()


def test_poll_select_sees_readable_and_writable_sockets() -> None:
    a, b = socket.socketpair()
    with a, b:
        assert poll_select([a], [b], [], 0) == ([], [b], [])
        b.send(b"x")
        assert poll_select([a], [], [], 1) == ([a], [], [])
