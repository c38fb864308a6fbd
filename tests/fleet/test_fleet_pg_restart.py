"""PostgreSQL going away under a running ingest is a state, not a crash (a cluster of the test's own)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from fleet.ingest import Ingest
from fleet.store import open_store
from protocol import Ack, decode, encode
from protocol.topics import device_topic
from tests.fleetdb import ThrowawayServer
from tests.waiting import wait_until

from .conftest import make_batch


@pytest.fixture
def server() -> Iterator[ThrowawayServer]:
    """A PostgreSQL cluster this test may stop and start (never the shared one at 5432)."""
    pg = ThrowawayServer()
    try:
        pg.start()
        admin = sa.create_engine(f"{pg.url}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE fleet")
        admin.dispose()
        yield pg
    finally:
        pg.remove()


def test_the_ingest_outlives_a_postgresql_restart_acking_nothing_meanwhile(
    server: ThrowawayServer, mosquitto: Any, mqtt_probe: Callable[..., Any]
) -> None:
    store = open_store(f"{server.url}/fleet")
    ingest = Ingest(store, mosquitto.host, mosquitto.port, instance="test-fleet")
    ingest.start()
    terminal = mqtt_probe(mosquitto, "term-a")
    terminal.subscribe(device_topic("term-a", "ack"))

    def send(seqs: list[int], batch: int) -> None:
        terminal.publish(device_topic("term-a", "votes"), encode(make_batch("term-a", seqs, batch=batch)))

    def ack() -> Ack:
        message = terminal.expect(10)
        got = decode(message.topic, message.payload)
        assert isinstance(got, Ack)
        return got

    try:
        assert ingest.wait_ready(10)
        send([1, 2], 1)
        assert ack().ranges == ((1, 2),)
        server.stop("fast")  # a restart for an upgrade: every connection is cut
        send([3, 4], 2)
        wait_until(lambda: ingest.counters().store_errors >= 1, 10, "the store failing while PostgreSQL is down")
        terminal.assert_silent(0.5)  # nothing committed, nothing acknowledged
        server.start()
        send([3, 4], 2)  # the terminal's resend after its ack timeout
        assert ack().ranges == ((3, 4),)
        assert ingest._thread is not None and ingest._thread.is_alive()
        assert store.vote_count("term-a") == 4
    finally:
        ingest.stop()
        store.close()
