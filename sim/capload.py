"""A load process for the capacity benchmark: many terminals speaking the protocol, on one thread, no real agents.

Real SyncAgents (one store, agent and paho thread each) do not reach thousands per process, so this
plays each terminal on the wire exactly as one behaves: its own paho connection (client id = device
id, persistent session, retained offline will), a retained birth, subscriptions to its ack, its
configuration and the fleet's state, a heartbeat every ``--hb-s`` and votes as Poisson arrivals,
each sent as a batch of one (QoS 1) and timed from press to the fleet's application ack. What it
does not do is the terminal's local SQLite commit, which is the terminal's cost, not the fleet's.

All clients share one selector loop (paho's external-loop callbacks), so the generator's own cost
stays small; its CPU still competes with the broker and ingest for the same cores, and the report
says how late its schedule ran so a struggling generator is visible.

Protocol with the parent on stdout, one JSON object per line: ``{"event": "ready"}`` once every
terminal is connected, ``{"event": "start"}`` and ``{"event": "end", ...figures}`` around the window.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import selectors
import sys
import time
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt

from protocol import Ack, Heartbeat, TerminalState, Vote, VoteBatch, decode_payload, encode
from protocol.topics import FLEET_STATE, device_topic

#: MQTT keepalive of a terminal (device/mqtt.py's KEEPALIVE_S).
KEEPALIVE_S = 30
_HB, _VOTE = 0, 1


def _pct(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile, None when there is nothing to rank."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(len(ordered) * q / 100) - 1))]


class LoadTerminal:
    """One terminal's connection and counters; its paho client is driven by the shared loop."""

    def __init__(self, device: str, unit: str, host: str, port: int, loop: Loop) -> None:
        self.device = device
        self.unit = unit
        self.seq = 0
        self.batch = 0
        self.connected = False
        self.state_topic = device_topic(device, "state")
        self.votes_topic = device_topic(device, "votes")
        self.hb_topic = device_topic(device, "heartbeat")
        self.boot = "capload-boot"
        self.t0 = time.monotonic()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=device, clean_session=False, protocol=mqtt.MQTTv311
        )
        client.will_set(self.state_topic, self._state(False), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = loop.on_message
        client.on_socket_open = loop.on_socket_open
        client.on_socket_close = loop.on_socket_close
        client.on_socket_register_write = loop.on_register_write
        client.on_socket_unregister_write = loop.on_unregister_write
        self.client = client
        self.loop = loop
        self.host, self.port = host, port

    def _state(self, online: bool) -> bytes:
        return encode(TerminalState(self.device, online, 1, int(time.time() * 1000), "capload"))

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        if reason.is_failure:
            return
        self.connected = True
        client.publish(self.state_topic, self._state(True), qos=1, retain=True)
        client.subscribe([(device_topic(self.device, "ack"), 1), (device_topic(self.device, "config"), 1),
                          (FLEET_STATE, 1)])  # fmt: skip

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, _reason: object, _p: object) -> None:
        if self.connected:
            self.loop.disconnects += 1
        self.connected = False

    def mono_ms(self) -> int:
        """Milliseconds since this simulated boot."""
        return int((time.monotonic() - self.t0) * 1000)

    def heartbeat(self) -> None:
        """Publish health figures as a terminal does (QoS 0), with its unacknowledged votes as the queue."""
        mono = self.mono_ms()
        hb = Heartbeat(self.device, int(time.time() * 1000), mono, self.boot, True, mono // 1000,
                       self.loop.outstanding_of(self.device), None, 0, "capload")  # fmt: skip
        self.client.publish(self.hb_topic, encode(hb), qos=0)

    def vote(self, rng: random.Random) -> tuple[str, int]:
        """Press once and send it as a batch of one; returns its (device, batch) for the ack."""
        self.seq += 1
        self.batch += 1
        v = Vote(self.seq, "thl-nps", "nps11", rng.randrange(11), "fi", int(time.time() * 1000), self.mono_ms(),
                 self.boot, True, self.unit, 1)  # fmt: skip
        self.client.publish(self.votes_topic, encode(VoteBatch(self.device, self.batch, (v,))), qos=1)
        return self.device, self.batch


class Loop:
    """One selector for every client's socket, the schedule of heartbeats and presses, and the figures."""

    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self.sent: dict[tuple[str, int], tuple[float, bool]] = {}  # (device, batch) -> (press time, in window)
        self.latencies: list[float] = []
        self.measuring = False
        self.window_sent = 0
        self.window_acked = 0
        self.heartbeats = 0
        self.disconnects = 0
        self.lateness: list[float] = []
        self._per_device: dict[str, int] = {}

    def on_socket_open(self, client: mqtt.Client, _u: object, sock: Any) -> None:
        """Watch a new connection's socket for reading."""
        self.sel.register(sock, selectors.EVENT_READ, client)

    def on_socket_close(self, _c: mqtt.Client, _u: object, sock: Any) -> None:
        """Forget a closed socket."""
        try:
            self.sel.unregister(sock)
        except (KeyError, ValueError):
            pass

    def on_register_write(self, client: mqtt.Client, _u: object, sock: Any) -> None:
        """paho has bytes to send: watch for writability too."""
        self.sel.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    def on_unregister_write(self, client: mqtt.Client, _u: object, sock: Any) -> None:
        """Everything is sent: back to reading only."""
        try:
            self.sel.modify(sock, selectors.EVENT_READ, client)
        except (KeyError, ValueError):
            pass

    def on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        """An application ack ends a vote's press-to-ack time; configurations and the fleet state are ignored."""
        if not msg.topic.endswith("/ack"):
            return
        ack = decode_payload(bytes(msg.payload))
        if not isinstance(ack, Ack):
            return
        sent = self.sent.pop((ack.device, ack.batch), None)
        if sent is None:
            return
        self._per_device[ack.device] -= 1
        at, in_window = sent
        if in_window:
            self.latencies.append(time.monotonic() - at)
            self.window_acked += 1

    def track(self, key: tuple[str, int]) -> None:
        """Remember a sent vote until its ack."""
        self.sent[key] = (time.monotonic(), self.measuring)
        self._per_device[key[0]] = self._per_device.get(key[0], 0) + 1
        if self.measuring:
            self.window_sent += 1

    def outstanding_of(self, device: str) -> int:
        """Votes of ``device`` sent and not yet acknowledged."""
        return self._per_device.get(device, 0)

    def pump(self, timeout: float) -> None:
        """Serve every ready socket once."""
        for key, mask in self.sel.select(timeout):
            client: mqtt.Client = key.data
            if mask & selectors.EVENT_READ:
                client.loop_read()
            if mask & selectors.EVENT_WRITE:
                client.loop_write()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Connect every terminal, run the warm-up and the measured window, then wait briefly for the last acks."""
    rng = random.Random(args.seed)
    loop = Loop()
    terms = [LoadTerminal(f"{args.prefix}-{i:05d}", f"unit-{i % 50:02d}", args.host, args.port, loop)
             for i in range(args.terminals)]  # fmt: skip
    last_misc = time.monotonic()
    for i, t in enumerate(terms):
        t.client.connect(args.host, args.port, keepalive=KEEPALIVE_S)
        if i % 50 == 49:
            loop.pump(0)
    deadline = time.monotonic() + args.connect_timeout
    while not all(t.connected for t in terms):
        if time.monotonic() > deadline:
            raise SystemExit(f"only {sum(t.connected for t in terms)} of {len(terms)} connected")
        loop.pump(0.05)
        if time.monotonic() - last_misc > 1:
            for t in terms:
                t.client.loop_misc()
            last_misc = time.monotonic()
    connect_s = time.monotonic() - (deadline - args.connect_timeout)
    print(json.dumps({"event": "ready", "connect_s": round(connect_s, 2)}), flush=True)
    now = time.monotonic()
    due: list[tuple[float, int, int]] = []
    for i in range(len(terms)):
        due.append((now + rng.uniform(0, args.hb_s), _HB, i))
        due.append((now + rng.expovariate(1 / args.vote_s), _VOTE, i))
    heapq.heapify(due)
    start_at = now + args.warmup_s
    end_at = start_at + args.window_s
    backlog: list[int] = []
    next_sample = start_at
    while True:
        now = time.monotonic()
        if not loop.measuring and now >= start_at:
            loop.measuring = True
            print(json.dumps({"event": "start"}), flush=True)
        if now >= end_at:
            break
        if loop.measuring and now >= next_sample:
            backlog.append(len(loop.sent))
            next_sample += 1.0
        while due and due[0][0] <= now:
            at, kind, i = heapq.heappop(due)
            t = terms[i]
            if loop.measuring:
                loop.lateness.append(now - at)
            if kind == _HB:
                if t.connected:
                    t.heartbeat()
                    loop.heartbeats += loop.measuring
                heapq.heappush(due, (at + args.hb_s, _HB, i))
            else:
                if t.connected:
                    loop.track(t.vote(rng))
                heapq.heappush(due, (at + rng.expovariate(1 / args.vote_s), _VOTE, i))
        if now - last_misc > 1:
            for t in terms:
                t.client.loop_misc()
            last_misc = now
        loop.pump(max(0.0, min(0.05, (due[0][0] if due else now + 0.05) - time.monotonic())))
    loop.measuring = False
    window_keys = {k for k, (_at, in_window) in loop.sent.items() if in_window}
    unacked_at_end = len(window_keys)
    acked_in_window = loop.window_acked
    drain_deadline = time.monotonic() + args.drain_s
    while window_keys and time.monotonic() < drain_deadline:
        loop.pump(0.05)
        window_keys = {k for k in window_keys if k in loop.sent}
    thirds = max(1, len(backlog) // 3)
    return {
        "event": "end",
        "terminals": len(terms),
        "connect_s": round(connect_s, 2),
        "window_s": args.window_s,
        "votes_sent": loop.window_sent,
        "votes_acked_in_window": acked_in_window,
        "acked_after_window": loop.window_acked - acked_in_window,
        "never_acked": len(window_keys),
        "unacked_at_window_end": unacked_at_end,
        "heartbeats": loop.heartbeats,
        "disconnects": loop.disconnects,
        "ack_p50_s": _round(_pct(loop.latencies, 50)),
        "ack_p99_s": _round(_pct(loop.latencies, 99)),
        "ack_max_s": _round(max(loop.latencies, default=None)),
        "backlog_first_third": round(sum(backlog[:thirds]) / thirds, 1) if backlog else 0,
        "backlog_last_third": round(sum(backlog[-thirds:]) / thirds, 1) if backlog else 0,
        "schedule_late_p99_s": _round(_pct(loop.lateness, 99)),
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def build_parser() -> argparse.ArgumentParser:
    """Options of ``python -m sim.capload``."""
    p = argparse.ArgumentParser(prog="python -m sim.capload", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--terminals", type=int, required=True)
    p.add_argument("--prefix", default="cap", help="device ids are PREFIX-00000 …")
    p.add_argument("--hb-s", type=float, default=60.0, help="seconds between a terminal's heartbeats")
    p.add_argument("--vote-s", type=float, default=60.0, help="mean seconds between a terminal's presses")
    p.add_argument("--warmup-s", type=float, default=5.0)
    p.add_argument("--window-s", type=float, default=60.0)
    p.add_argument("--drain-s", type=float, default=10.0, help="after the window, wait this long for late acks")
    p.add_argument("--connect-timeout", type=float, default=120.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--hold", action="store_true", help="after the figures, wait for stdin to close before exiting")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one load step and print its figures as the last JSON line."""
    args = build_parser().parse_args(argv)
    result = run(args)
    print(json.dumps(result), flush=True)
    if args.hold:
        sys.stdin.read()  # stay alive (connections open) until the parent has read our CPU and memory
    return 0


if __name__ == "__main__":
    sys.exit(main())
