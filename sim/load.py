"""A load publisher that plays many terminals at once, for ingest benchmarks.

It publishes pre-encoded vote batches with a window of unacknowledged batches, as terminals
do, and times from the first publish to the last application ack. The same load drives our
ingest and the bare ceiling, so the two figures compare like with like.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from protocol import Vote, VoteBatch, encode
from protocol.topics import device_topic


@dataclass
class LoadResult:
    """What a load run achieved."""

    votes: int
    batches: int
    seconds: float
    acked: int

    @property
    def votes_per_s(self) -> float:
        """Acknowledged votes per second."""
        return self.votes / self.seconds if self.seconds else 0.0


def make_batches(terminals: int, votes_each: int, per_batch: int, seed_wall: int) -> list[tuple[str, str, int, bytes]]:
    """Contiguous batches of each terminal's consecutive votes, interleaved round-robin across terminals.

    Returns (device, topic, batch id, payload) in publish order.
    """
    per_device: list[list[tuple[str, str, int, bytes]]] = []
    for t in range(terminals):
        device = f"bench-{t:04d}"
        topic = device_topic(device, "votes")
        batches = []
        for b, start in enumerate(range(1, votes_each + 1, per_batch), start=1):
            votes = tuple(
                Vote(
                    seq=s,
                    question="thl-nps",
                    scale="nps11",
                    answer=(s * 7 + t) % 11,
                    lang=("fi", "sv", "en")[s % 3],
                    wall=seed_wall + s * 1000,
                    mono=s * 1000,
                    boot="boot-1",
                    synced=True,
                    unit=f"unit-{t % 5}",
                    cfg=1,
                )
                for s in range(start, min(start + per_batch, votes_each + 1))
            )
            batches.append((device, topic, b, encode(VoteBatch(device, b, votes))))
        per_device.append(batches)
    out = []
    for i in range(max(len(b) for b in per_device)):
        for batches in per_device:
            if i < len(batches):
                out.append(batches[i])
    return out


def publish_load(
    host: str,
    port: int,
    batches: list[tuple[str, str, int, bytes]],
    votes: int,
    window: int = 64,
    timeout: float = 300.0,
) -> LoadResult:
    """Publish ``batches`` keeping at most ``window`` unacknowledged, and wait for every ack."""
    pending = {(d, b) for d, _, b, _ in batches}
    lock = threading.Lock()
    done = threading.Event()
    it = iter(batches)
    acked = 0

    def send_next(client: mqtt.Client) -> None:
        nxt = next(it, None)
        if nxt is not None:
            client.publish(nxt[1], nxt[3], qos=1)

    def on_message(client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal acked
        data = json.loads(msg.payload)
        key = (data["device"], data["batch"])
        with lock:
            if key not in pending:
                return
            pending.discard(key)
            acked += 1
            if not pending:
                done.set()
                return
        send_next(client)

    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="hymy-bench-load", clean_session=True)
    client.max_inflight_messages_set(window * 2)
    client.max_queued_messages_set(0)
    client.on_message = on_message
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect(host, port)
    client.subscribe("hymy/v1/+/ack", qos=1)
    client.loop_start()
    if not subscribed.wait(10):
        raise RuntimeError("load publisher could not subscribe to acks")
    t0 = time.perf_counter()
    for _ in range(window):
        send_next(client)
    finished = done.wait(timeout)
    seconds = time.perf_counter() - t0
    client.disconnect()
    client.loop_stop()
    if not finished:
        raise RuntimeError(f"only {acked} of {len(batches)} batches acknowledged within {timeout} s")
    return LoadResult(votes=votes, batches=len(batches), seconds=seconds, acked=acked)
