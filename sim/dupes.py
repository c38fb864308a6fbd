"""Duplicated and reordered deliveries: a client that captures vote batches and delivers them again, shuffled.

While a capture window is open it keeps a copy of every batch on ``hymy/v1/+/votes``; when the
window closes it publishes each copy again (QoS 1) in a seeded random order, some twice. The
fleet must store each vote once however often and in whatever order its batches arrive.
"""

from __future__ import annotations

import random
import threading

import paho.mqtt.client as mqtt

from protocol.topics import ROOT

from .brokers import OPEN, ClientLogin

VOTES_FILTER = f"{ROOT}/+/votes"


class Duplicator:
    """Capture vote batches in a window, then replay them out of order; counts what it replayed."""

    def __init__(self, host: str, port: int, seed: int, cap: int = 500, login: ClientLogin = OPEN) -> None:
        self._rng = random.Random(f"dupes-{seed}")
        self._cap = cap
        self._lock = threading.Lock()
        self._capturing = False
        self._captured: list[tuple[str, bytes]] = []
        self.replayed = 0
        self.windows = 0
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hymy-sim-dupes-{seed}")
        login.apply(self._client)
        #: Set once the broker has granted the subscription: only then is every batch captured.
        self.subscribed = threading.Event()
        self._client.on_connect = lambda c, *_a: c.subscribe(VOTES_FILTER, qos=1)
        self._client.on_subscribe = lambda *_a: self.subscribed.set()
        self._client.on_message = self._on_message
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(1, 2)
        self._client.connect_async(host, port)
        self._client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            if self._capturing and len(self._captured) < self._cap:
                self._captured.append((msg.topic, bytes(msg.payload)))

    def open_window(self) -> None:
        """Start keeping copies of the batches that pass."""
        with self._lock:
            self._capturing = True
            self._captured = []
        self.windows += 1

    def close_window(self) -> int:
        """Stop capturing and deliver every copy again in shuffled order, a third of them twice; return how many."""
        with self._lock:
            self._capturing = False
            batch, self._captured = self._captured, []
        again = batch + self._rng.sample(batch, len(batch) // 3)
        self._rng.shuffle(again)
        for topic, payload in again:
            self._client.publish(topic, payload, qos=1)
        self.replayed += len(again)
        return len(again)

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()
