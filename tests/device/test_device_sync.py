"""The sync agent against a real broker, with the test playing the fleet: acks decide, nothing is lost."""

from __future__ import annotations

import json
import logging
import queue
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

import protocol
from device.clock import FakeClock
from device.errors import StoreError
from device.mqtt import MqttLink
from device.store import VoteStore
from device.sync import SyncAgent
from tests.conftest import embedded_broker_may_drop
from tests.waiting import wait_until

DEVICE = "term-0001"


def press(store: VoteStore, n: int = 1, agent: SyncAgent | None = None) -> list[int]:
    seqs = [store.record("q-visit", "faces4", i % 4, "fi", unit="unit-a").seq for i in range(n)]
    if agent is not None:
        agent.wake()
    return seqs


def test_votes_are_delivered_after_the_fleet_acks(
    synced_store: VoteStore, sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any]
) -> None:
    fleet = fake_fleet()
    agent = sync_agent(batch_size=20)
    seqs = press(synced_store, 250, agent)
    wait_until(lambda: synced_store.depth() == 0, what="backlog drained")
    assert fleet.seqs == set(seqs)
    counters = agent.counters()
    assert counters.votes_acked == 250
    assert counters.batches_sent >= 250 // 20


def test_a_press_after_the_backlog_has_drained_is_still_sent(
    synced_store: VoteStore, sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any]
) -> None:
    # The agent skips asking SQLite while nothing was added since it last found no votes: each new
    # press must still be seen, however many times the backlog has emptied before.
    fleet = fake_fleet()
    agent = sync_agent()
    for n in range(1, 4):
        (seq,) = press(synced_store, 1, agent)
        wait_until(lambda: synced_store.depth() == 0, what=f"press {n} delivered")
        assert seq in fleet.seqs


def test_broker_puback_alone_never_delivers_a_vote(
    network: Any, synced_store: VoteStore, sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any]
) -> None:
    fleet = fake_fleet(acking=False)
    agent = sync_agent(start=False, ack_timeout_s=0.2, network=network)
    seqs = press(synced_store, 5)
    agent.start()
    fleet.wait_for(lambda: fleet.seqs == set(seqs), what="votes reached the fleet")
    wait_until(lambda: agent.counters().resends >= 2, what="unacked batch resent")
    assert synced_store.depth() == 5
    fleet.ack(DEVICE, 1, seqs)
    wait_until(lambda: synced_store.depth() == 0, what="delivered after the ack")


def test_terminal_without_broker_queues_and_drains_when_broker_starts(
    network: Any,
    synced_store: VoteStore,
    sync_agent: Callable[..., SyncAgent],
    fake_fleet: Callable[..., Any],
    broker: Any,
) -> None:
    broker.stop()
    agent = sync_agent(network=network)
    seqs = press(synced_store, 30, agent)
    assert not agent.connected
    assert synced_store.depth() == 30
    broker.start()
    fleet = fake_fleet()
    wait_until(lambda: synced_store.depth() == 0, what="backlog drained after the broker started")
    assert fleet.seqs == set(seqs)


def test_broker_restart_mid_stream_loses_nothing(
    network: Any,
    synced_store: VoteStore,
    sync_agent: Callable[..., SyncAgent],
    fake_fleet: Callable[..., Any],
    broker: Any,
) -> None:
    fleet = fake_fleet()
    agent = sync_agent(batch_size=10, network=network)
    seqs = press(synced_store, 200, agent)
    fleet.wait_for(lambda: len(fleet.batches) >= 2, what="stream under way")
    broker.stop()
    wait_until(lambda: not agent.connected, what="agent saw the broker go")
    seqs += press(synced_store, 50, agent)
    broker.start()
    wait_until(lambda: synced_store.depth() == 0, what="backlog drained after the restart")
    assert fleet.seqs == set(seqs)
    assert agent.counters().connects >= 2


def test_duplicate_late_and_bogus_acks_are_harmless(
    synced_store: VoteStore, sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any]
) -> None:
    fleet = fake_fleet(acking=False)
    agent = sync_agent(batch_size=1, max_in_flight=1, ack_timeout_s=30)
    press(synced_store, 3, agent)
    fleet.wait_for(lambda: fleet.seqs == {1}, what="first vote sent")
    # An ack far wider than anything sent marks only what was sent.
    fleet.ack_ranges(DEVICE, ((1, 1_000_000_000),))
    wait_until(lambda: synced_store.depth() == 2, what="only the sent vote delivered")
    fleet.wait_for(lambda: 2 in fleet.seqs, what="second vote sent")
    assert synced_store.depth() == 2
    fleet.ack(DEVICE, 1, [1])  # late duplicate
    fleet.publish_raw(f"hymy/v1/{DEVICE}/ack", b"\xff not json")
    fleet.ack(DEVICE, 2, [2])
    fleet.ack(DEVICE, 2, [2])  # duplicate
    wait_until(lambda: agent.counters().acks == 4, what="all acks handled")
    fleet.wait_for(lambda: 3 in fleet.seqs, what="third vote sent")
    assert [v.seq for v in synced_store.pending()] == [3]
    counters = agent.counters()
    assert counters.duplicate_acks == 2
    assert counters.rejected == {"malformed": 1}


def test_fleet_offline_gets_one_probe_at_a_time_with_backoff_then_the_backlog(
    synced_store: VoteStore, sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any]
) -> None:
    fleet = fake_fleet(acking=False, announce=False)
    agent = sync_agent(batch_size=10, ack_timeout_s=0.2, max_backoff_s=1.0)
    press(synced_store, 100, agent)
    wait_until(lambda: agent.fleet_online is False, what="fleet state seen")
    wait_until(lambda: agent.counters().resends >= 1 and agent.in_flight() == 1, what="probing")
    before = len(fleet.batches)
    time.sleep(2.0)
    probes = fleet.batches[before:]
    assert agent.in_flight() == 1, "one probe at a time while the fleet is offline"
    # Backing off 0.2, 0.4, 0.8, 1.0 s gives at most 4 probes in 2 s; without backoff it would be 10.
    # (A slow machine sends fewer, never more, so this bound does not depend on the machine's speed.)
    assert 1 <= len(probes) <= 5, f"{len(probes)} probes in 2 s: they do not back off"
    # Each probe is the next batch of the backlog, so a batch the fleet never answers cannot block the rest.
    for earlier, later in zip(probes, probes[1:], strict=False):
        assert later.votes[0].seq == earlier.votes[-1].seq + 1, [(p.votes[0].seq, p.votes[-1].seq) for p in probes]
    fleet.acking = True
    fleet.set_online(True)
    wait_until(lambda: synced_store.depth() == 0, what="backlog drained once the fleet is back")
    assert agent.counters().loop_errors == 0  # every probe went: none failed on the way out


def test_sends_after_grace_when_no_fleet_state_exists(
    synced_store: VoteStore, sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any]
) -> None:
    fake_fleet(announce=None)
    agent = sync_agent(fleet_grace_s=0.2)
    press(synced_store, 3, agent)
    wait_until(lambda: synced_store.depth() == 0, what="drained without any fleet state")
    assert agent.fleet_online is True, "an ack is proof enough that the fleet is online"


def test_old_votes_go_out_flagged_historical(
    synced_store: VoteStore, sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any]
) -> None:
    fleet = fake_fleet()
    press(synced_store, 2)
    agent = sync_agent(historical_after_s=0.0)
    agent.wake()
    wait_until(lambda: synced_store.depth() == 0, what="drained")
    assert all("historical" in v.flags for b in fleet.batches for v in b.votes)
    assert all(not v.flags for v in synced_store.pending(10))  # the store keeps what was pressed


def test_config_is_applied_persisted_and_reported(
    synced_store: VoteStore,
    sync_agent: Callable[..., SyncAgent],
    fake_fleet: Callable[..., Any],
    config_doc: dict,
    broker: Any,
    mqtt_probe: Callable[..., Any],
) -> None:
    fleet = fake_fleet()
    offered: list[int] = []
    agent = sync_agent(on_config=lambda version, doc: offered.append(version))
    wait_until(lambda: agent.connected, what="connected")
    fleet.publish_config(DEVICE, 2, config_doc)
    fleet.wait_for(lambda: len(fleet.reports) == 1, what="config report")
    assert fleet.reports[0] == protocol.ConfigReport(DEVICE, 2, "applied")
    late = mqtt_probe(broker, "late-fleet")  # retained (SPEC 2.2): a fleet that starts later still learns it
    late.subscribe(f"hymy/v1/{DEVICE}/config/report")
    assert late.expect().retain
    assert synced_store.load_config() == (2, config_doc)
    assert offered == [2]
    assert agent.applied_config_version == 2
    fleet.publish_config(DEVICE, 2, config_doc)  # the retained copy comes back: neither applied nor reported again
    wait_until(lambda: agent.counters().configs_ignored == 1, what="same version ignored")
    assert len(fleet.reports) == 1 and offered == [2]


def test_ack_ranges_deliver_exactly_those_seqs_and_unsorted_ones_are_rejected(
    synced_store: VoteStore, sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any]
) -> None:
    fleet = fake_fleet(acking=False)
    agent = sync_agent(start=False, ack_timeout_s=30)
    press(synced_store, 8)  # before the start, so all eight travel in one batch
    agent.start()
    fleet.wait_for(lambda: fleet.seqs == set(range(1, 9)), what="all sent")
    unsorted = {"v": 1, "type": "ack", "device": DEVICE, "batch": 1, "ranges": [[6, 7], [1, 4]]}
    fleet.publish_raw(f"hymy/v1/{DEVICE}/ack", json.dumps(unsorted).encode())
    fleet.ack_ranges(DEVICE, ((1, 4), (6, 7)))
    wait_until(lambda: synced_store.depth() == 2, what="acked seqs delivered")
    assert agent.counters().rejected == {"invalid": 1}
    assert [v.seq for v in synced_store.pending()] == [5, 8]
    assert agent.in_flight() == 1


def test_older_config_is_ignored_and_invalid_one_rejected_keeping_the_last_good(
    synced_store: VoteStore,
    sync_agent: Callable[..., SyncAgent],
    fake_fleet: Callable[..., Any],
    config_doc: dict,
) -> None:
    synced_store.save_config(5, config_doc)
    fleet = fake_fleet()
    agent = sync_agent()
    wait_until(lambda: agent.connected, what="connected")
    fleet.publish_config(DEVICE, 4, {**config_doc, "unit": "elsewhere"})
    wait_until(lambda: agent.counters().configs_ignored == 1, what="older version ignored")
    bad = {"v": 1, "type": "config", "device": DEVICE, "version": 6, "doc": {**config_doc, "default_language": "en"}}
    fleet.publish_raw(f"hymy/v1/{DEVICE}/config", json.dumps(bad).encode(), retain=True)
    fleet.wait_for(lambda: len(fleet.reports) == 1, what="rejection report")
    report = fleet.reports[0]
    assert (report.version, report.status) == (6, "rejected")
    assert report.reason and "default_language" in report.reason
    assert synced_store.load_config() == (5, config_doc)
    assert synced_store.load_config_rejection() == (6, report.reason)
    assert agent.counters().rejected == {"invalid": 1}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"hours": {"tz": "Mars/Olympus_Mons", "weekly": {}}}, "hours.tz"),
        ({"hours": {"tz": "UTC", "weekly": {}, "closed_dates": ["2024-02-30"]}}, "hours.closed_dates[0]"),
        ({"languages": ["fi", "se"]}, "strings.se"),
    ],
    ids=["zone_on_mars", "february_30", "unshipped_language_without_texts"],
)
def test_a_config_the_fleet_would_refuse_is_rejected_on_receipt_by_the_same_check(
    synced_store: VoteStore,
    sync_agent: Callable[..., SyncAgent],
    fake_fleet: Callable[..., Any],
    config_doc: dict,
    change: dict[str, Any],
    field: str,
) -> None:
    doc = {**config_doc, **change}
    doc["question"] = {**config_doc["question"], "text": {lang: "?" for lang in doc["languages"]}}
    with pytest.raises(protocol.ProtocolError) as refused_by_the_fleet:
        protocol.encode(protocol.Config(DEVICE, 2, doc))
    fleet = fake_fleet()
    sync_agent()  # no device-specific check: the protocol's own is enough
    wire = {"v": 1, "type": "config", "device": DEVICE, "version": 2, "doc": doc}
    fleet.publish_raw(f"hymy/v1/{DEVICE}/config", json.dumps(wire).encode(), retain=True)
    fleet.wait_for(lambda: len(fleet.reports) == 1, what="rejection report")
    report = fleet.reports[0]
    assert (report.version, report.status) == (2, "rejected")
    assert report.reason is not None and field in report.reason
    assert report.reason == str(refused_by_the_fleet.value)
    assert synced_store.load_config() is None


def test_config_refused_by_the_terminal_is_reported_rejected(
    synced_store: VoteStore, sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any], config_doc: dict
) -> None:
    fleet = fake_fleet()
    offered: list[int] = []
    agent = sync_agent(
        check_config=lambda version, doc: "this terminal has only four buttons",
        on_config=lambda version, doc: offered.append(version),
    )
    fleet.publish_config(DEVICE, 3, config_doc)
    fleet.wait_for(lambda: len(fleet.reports) == 1, what="rejection report")
    assert fleet.reports[0] == protocol.ConfigReport(DEVICE, 3, "rejected", "this terminal has only four buttons")
    assert synced_store.load_config() is None and offered == []
    fleet.publish_config(DEVICE, 3, config_doc)  # a version already rejected is not reported twice
    wait_until(lambda: agent.counters().configs_ignored == 1, what="rejected version ignored")
    assert len(fleet.reports) == 1


def test_will_carries_the_conn_counter_and_a_newer_birth_a_larger_one(
    sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any], request: pytest.FixtureRequest
) -> None:
    embedded_broker_may_drop(request)
    fleet = fake_fleet()
    agent = sync_agent()
    fleet.wait_for(lambda: any(s.online for s in fleet.states), what="birth")
    birth = next(s for s in fleet.states if s.online)
    agent.link._client.socket().shutdown(socket.SHUT_RDWR)  # vanish without DISCONNECT, as a power cut does
    fleet.wait_for(lambda: any(not s.online for s in fleet.states), what="last will")
    will = next(s for s in fleet.states if not s.online)
    assert will.conn == birth.conn
    # The reconnect may reach the broker before it notices the dead socket, and then the old will
    # arrives after the new birth: the larger counter is what lets the fleet ignore it.
    fleet.wait_for(lambda: any(s.online and s.conn > will.conn for s in fleet.states), what="newer birth")


def test_stop_publishes_offline_state_with_the_same_counter(
    sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any], request: pytest.FixtureRequest
) -> None:
    embedded_broker_may_drop(request)
    fleet = fake_fleet()
    agent = sync_agent()
    fleet.wait_for(lambda: any(s.online for s in fleet.states), what="birth")
    agent.stop()
    fleet.wait_for(lambda: not fleet.states[-1].online, what="goodbye")
    assert fleet.states[-1].conn == fleet.states[0].conn


def test_heartbeat_reports_queue_depth(
    synced_store: VoteStore, sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any]
) -> None:
    fleet = fake_fleet(acking=False, announce=False)
    press(synced_store, 3)
    sync_agent(fw="test-fw")
    fleet.wait_for(lambda: bool(fleet.heartbeats), what="heartbeat")
    hb = fleet.heartbeats[0]
    assert (hb.device, hb.queue, hb.cfg, hb.fw) == (DEVICE, 3, 0, "test-fw")
    assert hb.oldest is not None and hb.oldest >= 0


def test_an_agent_told_its_clock_rate_wakes_for_deadlines_alone(
    synced_store: VoteStore, sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any]
) -> None:
    fleet = fake_fleet(acking=False)
    agent = sync_agent(clock_rate=1.0, ack_timeout_s=0.2, heartbeat_s=0.3)
    seqs = press(synced_store, 5, agent)
    fleet.wait_for(lambda: fleet.seqs == set(seqs), what="votes reached the fleet")
    wait_until(lambda: agent.counters().resends >= 2, what="unacked batch resent at its deadline")
    fleet.wait_for(lambda: len(fleet.heartbeats) >= 3, what="heartbeats at their deadlines")
    fleet.ack(DEVICE, 1, seqs)
    wait_until(lambda: synced_store.depth() == 0, what="delivered after the ack")


def test_batches_carry_the_store_id_and_acks_of_another_store_change_nothing(
    synced_store: VoteStore, sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any]
) -> None:
    fleet = fake_fleet(acking=False)
    agent = sync_agent()
    seqs = press(synced_store, 3, agent)
    fleet.wait_for(lambda: fleet.seqs == set(seqs), what="votes sent")
    assert {b.store for b in fleet.batches} == {synced_store.store_id}
    # An ack for the same seqs of the card this one replaced (or of no store at all) is not ours.
    fleet.ack(DEVICE, 1, seqs, store="0000000000000000")
    fleet.ack(DEVICE, 1, seqs, store=None)
    wait_until(lambda: agent.counters().foreign_acks == 2, what="foreign acks counted")
    assert synced_store.depth() == 3
    fleet.ack(DEVICE, 1, seqs)
    wait_until(lambda: synced_store.depth() == 0, what="delivered by its own store's ack")


def test_refused_votes_are_set_aside_counted_reported_and_never_resent(
    synced_store: VoteStore, sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any]
) -> None:
    fleet = fake_fleet(acking=False)
    agent = sync_agent(ack_timeout_s=0.3, heartbeat_s=0.2)
    seqs = press(synced_store, 4, agent)
    fleet.wait_for(lambda: fleet.seqs == set(seqs), what="votes sent")
    fleet.refuse(DEVICE, 1, seqs[1:3], reason="invalid")
    fleet.ack(DEVICE, 1, [seqs[0], seqs[3]])
    wait_until(lambda: synced_store.depth() == 0, what="nothing left to wait for")
    assert agent.counters().votes_refused == 2
    assert [(v.seq, why) for v, why in synced_store.refused_votes()] == [(seqs[1], "invalid"), (seqs[2], "invalid")]
    fleet.wait_for(lambda: any(hb.refused == 2 and hb.queue == 0 for hb in fleet.heartbeats), what="reported")
    sent = len(fleet.batches)
    time.sleep(1.0)  # well past several ack timeouts: a refused vote is never sent again
    assert len(fleet.batches) == sent


def test_one_ack_that_acknowledges_and_refuses_neighbouring_seqs_settles_the_whole_batch(
    synced_store: VoteStore, sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any]
) -> None:
    # As the real fleet answers a batch with one invalid vote: one ack, the refusal between acked seqs.
    fleet = fake_fleet(acking=False)
    agent = sync_agent()
    a, b, c, d = press(synced_store, 4, agent)
    fleet.wait_for(lambda: fleet.seqs == {a, b, c, d}, what="votes sent")
    ack = protocol.Ack(DEVICE, 1, ((a, a), (d, d)), synced_store.store_id or None, (("invalid", ((b, c),)),))
    fleet.publish_raw(f"hymy/v1/{DEVICE}/ack", protocol.encode(ack))
    wait_until(lambda: agent.in_flight() == 0, what="the batch settled")
    assert synced_store.depth() == 0 and agent.counters().loop_errors == 0


def test_a_batch_a_live_fleet_ignores_is_resent_while_the_rest_flows_past_it(
    synced_store: VoteStore, sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any]
) -> None:
    fleet = fake_fleet(acking=False)
    agent = sync_agent(batch_size=1, max_in_flight=2)  # an ack timeout (2 s) far longer than an ack takes
    first, second = press(synced_store, 2, agent)
    fleet.wait_for(lambda: fleet.seqs == {first, second}, what="both batches sent")
    fleet.ack(DEVICE, 2, [second])  # the fleet is alive; batch 1's ack was lost, say
    wait_until(lambda: agent.counters().stalls == 1 and agent.counters().resends >= 1, what="the stalled batch resent")
    fleet.ack(DEVICE, 1, [first])
    wait_until(lambda: synced_store.depth() == 0, what="the stalled batch delivered")
    assert agent.counters().loop_errors == 0


def test_the_heartbeat_ages_the_backlog_by_the_monotonic_clock_across_an_ntp_step(
    store_path: Any, broker: Any, fake_fleet: Callable[..., Any]
) -> None:
    clock = FakeClock(wall_ms=946_684_800_000, synced=False)  # a Pi without an RTC boots in 2000
    store = VoteStore(store_path, DEVICE, clock)
    press(store)
    clock.advance(5_000)
    clock.set_wall(1_740_830_400_000)  # NTP steps the wall clock 25 years on; the vote is still 5 s old
    clock.set_synced(True)
    fleet = fake_fleet(acking=False)
    agent = SyncAgent(store, DEVICE, broker.host, broker.port, clock, fleet_grace_s=0.3)
    agent.start()
    try:
        fleet.wait_for(lambda: len(fleet.heartbeats) > 0, what="a heartbeat")
        assert (fleet.heartbeats[0].queue, fleet.heartbeats[0].oldest) == (1, 5)
    finally:
        agent.stop()
        store.close()


def dial_attempts(link: MqttLink, n: int) -> list[int]:
    """The counters of ``n`` failed dial attempts, as paho reports each failure to the link before redialling."""
    used = [link.conn]
    for _ in range(n - 1):
        link._on_connect_fail(link._client, None)
        used.append(link.conn)
    return used


def test_an_hour_of_failed_dials_through_the_link_commits_the_counter_at_most_twice(
    vote_store: VoteStore, fake_clock: FakeClock
) -> None:
    link = MqttLink(DEVICE, "127.0.0.1", 1, queue.Queue(), vote_store.next_conn, fake_clock)
    commits: list[str] = []
    vote_store._conn.set_trace_callback(lambda sql: commits.append(sql) if sql.startswith("COMMIT") else None)
    link._refresh_will()  # what start() does before the first dial
    used = dial_attempts(link, 3600 // 2)
    assert len(commits) <= 2
    assert all(a < b for a, b in zip(used, used[1:], strict=False))


def test_conn_never_repeats_when_the_store_fails_to_reserve_once(fake_clock: FakeClock) -> None:
    answers: list[int | None] = [5, None, 6, 7]  # None: the disk refused; 6 is what the store gives next

    def next_conn() -> int:
        value = answers.pop(0)
        if value is None:
            raise StoreError("disk I/O error")
        return value

    link = MqttLink(DEVICE, "127.0.0.1", 1, queue.Queue(), next_conn, fake_clock)
    link._refresh_will()
    used = dial_attempts(link, 4)
    assert all(a < b for a, b in zip(used, used[1:], strict=False)), used


def test_a_broker_refusing_every_attempt_for_an_hour_is_logged_a_few_times_not_per_attempt(
    vote_store: VoteStore, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    link = MqttLink(DEVICE, "127.0.0.1", 1, queue.Queue(), vote_store.next_conn, fake_clock)
    refused = ReasonCode(PacketTypes.CONNACK, "Not authorized")
    with caplog.at_level(logging.WARNING, logger="device.mqtt"):
        for _ in range(3600 // 2):
            link._on_connect(link._client, None, None, refused, None)
            fake_clock.advance(2_000)
    lines = [r for r in caplog.records if "refused" in r.getMessage()]
    assert 1 <= len(lines) <= 7  # the first at once, then one per ten minutes with the count held back
    assert "Not authorized" in lines[0].getMessage()


def test_heartbeats_and_idle_ticks_write_nothing_to_the_card(
    synced_store: VoteStore, sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any]
) -> None:
    fleet = fake_fleet(acking=False)
    press(synced_store, 3)  # a backlog the heartbeat reads (depth, oldest) and the fleet never acks
    commits: list[str] = []
    synced_store._conn.set_trace_callback(lambda sql: commits.append(sql) if sql.startswith("COMMIT") else None)
    sync_agent(heartbeat_s=0.05, ack_timeout_s=0.1, max_backoff_s=0.2)
    fleet.wait_for(lambda: len(fleet.heartbeats) >= 20, what="twenty heartbeats")
    fleet.wait_for(lambda: len(fleet.batches) >= 5, what="resends to a silent fleet")
    assert len(commits) <= 1  # the connection counter's one block; nothing per heartbeat, tick or resend


def test_a_stream_of_bad_messages_is_counted_each_time_but_logged_once_a_minute(
    sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    fleet = fake_fleet()
    with caplog.at_level(logging.WARNING, logger="device.sync"):
        agent = sync_agent()
        wait_until(lambda: agent.fleet_online is True, what="subscribed (the retained fleet state came)")
        for _ in range(50):
            fleet.publish_raw(f"hymy/v1/{DEVICE}/ack", b"\xff not json")
        wait_until(lambda: agent.counters().rejected.get("malformed") == 50, what="every bad message counted")
    assert len([r for r in caplog.records if "rejected message" in r.getMessage()]) == 1


def test_a_heartbeat_sent_as_ntp_steps_the_clock_never_offers_the_old_time_as_a_synchronised_point(
    synced_store: VoteStore, broker: Any, fake_fleet: Callable[..., Any]
) -> None:
    stale, real = 1_600_000_000_000, 1_750_000_000_000
    fleet = fake_fleet(acking=False)
    clock = FakeClock(wall_ms=stale, synced=False)
    agent = SyncAgent(synced_store, DEVICE, broker.host, broker.port, clock, heartbeat_s=30.0, fleet_grace_s=0.3)
    agent.start()
    try:
        fleet.wait_for(lambda: len(fleet.heartbeats) == 1, what="the first, unsynchronised heartbeat")
        assert (fleet.heartbeats[0].wall, fleet.heartbeats[0].synced) == (stale, False)
        clock.step_after_next_wall_read(real)  # NTP steps right after the agent reads the wall clock
        clock.advance(30_000)  # the next heartbeat is due
        fleet.wait_for(lambda: len(fleet.heartbeats) == 2, what="the heartbeat read across the step")
        hb = fleet.heartbeats[1]
        # The fleet anchors time correction on synchronised points: this one must be the real time.
        assert (hb.wall, hb.mono, hb.synced) == (real, 40_000, True)
    finally:
        agent.stop()


def test_an_idle_agent_told_its_clock_rate_does_not_poll(
    synced_store: VoteStore, broker: Any, fake_fleet: Callable[..., Any]
) -> None:
    fake_fleet()
    clock = FakeClock(wall_ms=1_750_000_000_000, synced=True)  # stands still: no deadline ever comes
    agent = SyncAgent(synced_store, DEVICE, broker.host, broker.port, clock, clock_rate=1.0, fleet_grace_s=0.3)
    agent.start()
    try:
        wait_until(lambda: agent.connected and agent.fleet_online is True, what="connected, fleet seen")
        time.sleep(0.3)  # let the connection's own events settle
        before = agent.counters().wakeups
        time.sleep(2.0)
        woke = agent.counters().wakeups - before
    finally:
        agent.stop()
    assert woke <= 1, f"woke {woke} times in 2 s with nothing to do: it polls (every 0.5 s would be 4)"


def test_an_ack_while_the_fleet_looks_offline_restores_the_full_window(
    synced_store: VoteStore, sync_agent: Callable[..., SyncAgent], fake_fleet: Callable[..., Any]
) -> None:
    # A stale will (or a sibling's) says the fleet is offline although it is up: the probe's ack
    # proves otherwise, and the backlog must then drain at full width, not a batch per round trip.
    fleet = fake_fleet(acking=False, announce=False)
    agent = sync_agent(batch_size=10, max_in_flight=4, ack_timeout_s=5.0)
    press(synced_store, 200, agent)
    wait_until(lambda: agent.fleet_online is False and len(fleet.batches) >= 1, what="probing")
    assert agent.in_flight() == 1
    probe = fleet.batches[0]
    fleet.ack(DEVICE, probe.batch, [v.seq for v in probe.votes])
    wait_until(lambda: agent.in_flight() == 4, what="the full window in flight after the ack")
    assert agent.fleet_online is True
