"""The ingest loop: drain MQTT events, decode strictly, store each drain's votes in one commit, then ack.

One thread does everything that touches the store, in this order per drain:

1. take every pending event (up to ``drain_cap``) off the queue the MQTT adapter fills;
2. decode each with the protocol codec; a bad message is counted by reason and dropped,
   never stopping the loop nor touching stored votes;
3. store all vote batches of the drain in one transaction (one commit);
4. only after that commit, publish one application ack per batch (DESIGN guarantee 2);
5. record states, heartbeats, config reports and rejections in one more transaction, and
   push the desired configuration to terminals that were born lagging behind it.

If the store fails, the drain's batches are stored again one by one, so one batch the store cannot
take delays only its own terminal; those not stored are simply not acknowledged and are resent.
A vote the fleet can never take (an invalid vote in an otherwise sound batch, a seq already stored
as a different press) is refused by name in the ack, so the terminal sets it aside and goes on.

The ingest also republishes its online state every ``REPUBLISH_S`` seconds and at once when it sees
an offline state on the fleet topic (a stale will of its own or a sibling's) while it is connected.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import paho.mqtt.client as paho

from protocol import (
    Ack,
    ConfigReport,
    FleetState,
    Heartbeat,
    PartialBatch,
    ProtocolError,
    TerminalState,
    VoteBatch,
    decode,
    encode,
)
from protocol.messages import seq_ranges
from protocol.topics import ACK, CONFIG, FLEET_SEGMENT, device_topic, parse_topic

from .errors import StoreError
from .mqtt import DEFAULT_CLIENT_ID, Connected, Disconnected, Event, FleetMqtt
from .records import IngestStats, StoredVotes
from .store import FleetStore

log = logging.getLogger(__name__)

#: Most messages handled per drain: bounds one transaction and the delay before its acks.
DRAIN_CAP = 200
#: Rejection reason recorded for a vote whose identity is taken by a different press.
CONFLICT = "conflict"
#: Rejection reason recorded for a vote refused because it is invalid in an otherwise sound batch.
INVALID = "invalid"
#: At most one log line per rejection reason (or store fault) in this many seconds.
LOG_INTERVAL_S = 10.0
#: How often the fleet says again that it is online (SPEC 8), so a stale will cannot stall terminals.
REPUBLISH_S = 60.0
#: How often the counters are written to the store, for the fleet web's health page (another process).
STATS_EVERY_S = 10.0
#: How often the store is asked for configurations set since the last look (by the fleet web, another
#: process), so a published change reaches online terminals within seconds, not at their next heartbeat.
CONFIG_POLL_S = 2.0


@dataclass
class IngestCounters:
    """What ingest has done since it started; read a copy with ``Ingest.counters()``."""

    messages: int = 0
    batches: int = 0
    votes_stored: int = 0  # new votes committed
    duplicates: int = 0  # votes that were already stored (replays, overlaps)
    acks_sent: int = 0
    acks_failed: int = 0  # the link could not take the ack; the terminal resends and is acked then
    conflicts: int = 0  # votes whose (device, store, seq) is stored as a different press: refused
    votes_refused: int = 0  # votes refused in acks (conflicts and invalid votes of sound batches)
    state_republished: int = 0  # fleet online states published after the one at connect
    states: int = 0
    stale_states: int = 0
    heartbeats: int = 0
    config_reports: int = 0
    configs_pushed: int = 0
    configs_refused: int = 0  # stored desired configurations that fail today's check: never published
    store_errors: int = 0
    drains: int = 0
    loop_errors: int = 0  # drains that failed unexpectedly (a bug): logged, not acked, the loop goes on
    rejections: dict[str, int] = field(default_factory=dict)


@dataclass
class _Stored:
    """StoredVotes of a drain where a batch's ranges are None when it could not be stored."""

    ranges: list[tuple[tuple[int, int], ...] | None]
    new: int
    duplicates: int
    conflicts: list[tuple[str, str, int]]
    refused: list[tuple[tuple[int, int], ...]]

    @classmethod
    def of(cls, stored: StoredVotes) -> _Stored:
        return cls(list(stored.ranges), stored.new, stored.duplicates, stored.conflicts, stored.refused)


class _RateLimitedLog:
    """Log a recurring problem once per interval per key, saying how many were left unsaid."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: object) -> None:
        """Log at WARNING unless this key was logged within the interval."""
        self._emit(logging.WARNING, key, msg, args)

    def error(self, key: str, msg: str, *args: object) -> None:
        """Log at ERROR unless this key was logged within the interval."""
        self._emit(logging.ERROR, key, msg, args)

    def _emit(self, level: int, key: str, msg: str, args: tuple[object, ...]) -> None:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        skipped = self._suppressed.pop(key, 0)
        if skipped:
            log.log(level, msg + " (and %d more like it)", *args, skipped)
        else:
            log.log(level, msg, *args)


def _device_of(topic: str) -> str | None:
    """The terminal a topic names, if it names one validly (for rejection counters)."""
    try:
        device, _ = parse_topic(topic)
    except ProtocolError:
        return None
    return None if device == FLEET_SEGMENT else device


class Ingest:
    """The fleet's ingest: one MQTT adapter, one loop thread, one store."""

    def __init__(
        self,
        store: FleetStore,
        host: str,
        port: int,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        instance: str | None = None,
        protocol: paho.MQTTProtocolVersion = paho.MQTTv311,
        username: str | None = None,
        password: str | None = None,
        drain_cap: int = DRAIN_CAP,
        clock: Callable[[], float] = time.time,
        share_group: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        """``share_group`` makes this one of several workers on an MQTT 5 shared subscription;
        ``ca_file`` connects over TLS, verifying the broker against that CA."""
        if drain_cap < 1:
            raise ValueError("drain_cap must be at least 1")
        self.store = store
        self.drain_cap = drain_cap
        self._clock = clock
        self._events: queue.Queue[Event | None] = queue.Queue()
        self.mqtt = FleetMqtt(
            host,
            port,
            self._events.put,
            client_id=client_id,
            instance=instance,
            protocol=protocol,
            username=username,
            password=password,
            wall_ms=lambda: int(clock() * 1000),
            share_group=share_group,
            ca_file=ca_file,
        )
        self._counters = IngestCounters()
        self._counters_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._log = _RateLimitedLog(LOG_INTERVAL_S, time.monotonic)
        self.republish_s = REPUBLISH_S
        self._announced_at = time.monotonic()
        self.client_id = client_id
        self.stats_every_s = STATS_EVERY_S
        self._started_ms = int(clock() * 1000)
        self._reported_at = -STATS_EVERY_S
        self.config_poll_s = CONFIG_POLL_S
        self._polled_at = time.monotonic()
        self._config_mark = int(clock() * 1000)  # configurations set before the start are pushed on contact
        self._config_pushed: dict[str, int] = {}  # device → version the poll pushed

    # -- running -------------------------------------------------------------------------------

    def start(self) -> None:
        """Run the loop on a background thread (for tests and for a process that does more)."""
        if self._thread is not None:
            raise RuntimeError("ingest already started")
        self._thread = threading.Thread(target=self.run_forever, name="hymy-ingest", daemon=True)
        self._thread.start()

    def run_forever(self) -> None:
        """Connect and process events until ``stop()``; then say offline and disconnect."""
        self.mqtt.start()
        try:
            while not self._stop.is_set():
                try:
                    self.step(timeout=1.0)
                except Exception:  # a bug must not stop the fleet: nothing unacked is lost, terminals resend
                    log.exception("ingest drain failed; its batches were not acknowledged")
                    with self._counters_lock:
                        self._counters.loop_errors += 1
        finally:
            self.mqtt.stop()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the current drain, say offline, disconnect; safe from signal handlers and other threads."""
        self._stop.set()
        self._events.put(None)  # wake the loop now rather than at its next timeout
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Block until connected and subscribed (for tests and orderly starts); False on timeout."""
        return self.mqtt.subscribed.wait(timeout)

    def counters(self) -> IngestCounters:
        """A consistent copy of the counters."""
        with self._counters_lock:
            return replace(self._counters, rejections=dict(self._counters.rejections))

    # -- one drain -----------------------------------------------------------------------------

    def step(self, timeout: float = 1.0) -> int:
        """Wait up to ``timeout`` for events, then process every pending one (up to the cap)."""
        events = self._events
        self._keep_announcing()
        self._keep_reporting()
        self._poll_configs()
        try:
            first = events.get(timeout=timeout)
        except queue.Empty:
            return 0
        items = [first]
        cap = self.drain_cap
        try:
            while len(items) < cap:
                items.append(events.get_nowait())
        except queue.Empty:
            pass
        self._process(items)
        return len(items)

    def _process(self, items: list[Event | None]) -> None:
        now = int(self._clock() * 1000)
        batches: list[VoteBatch] = []
        invalid: dict[int, tuple[tuple[int, str], ...]] = {}  # batch index -> (seq, detail) refused as invalid
        states: list[TerminalState] = []
        heartbeats: list[Heartbeat] = []
        reports: list[ConfigReport] = []
        rejections: list[tuple[str, str | None, str]] = []
        messages = 0
        for item in items:
            if type(item) is not tuple:
                self._on_link(item)
                continue
            messages += 1
            topic, payload = item
            try:
                msg = decode(topic, payload)
            except PartialBatch as exc:
                # A sound batch with some invalid votes: store the rest, refuse those by seq.
                invalid[len(batches)] = exc.refused
                batches.append(exc.batch)
                sender = exc.batch.device
                rejections.extend((INVALID, sender, f"vote seq {seq}: {detail}") for seq, detail in exc.refused)
                continue
            except ProtocolError as exc:
                rejections.append((exc.reason, _device_of(topic), exc.detail))
                continue
            kind = type(msg)
            if kind is VoteBatch:
                batches.append(msg)  # type: ignore[arg-type]
            elif kind is TerminalState:
                states.append(msg)  # type: ignore[arg-type]
            elif kind is Heartbeat:
                heartbeats.append(msg)  # type: ignore[arg-type]
            elif kind is ConfigReport:
                reports.append(msg)  # type: ignore[arg-type]
            elif kind is FleetState:
                # Ours or a sibling ingest's, seen because hymy/v1/+/state also matches _fleet. An
                # offline one while we are up is a stale will: say online again, now.
                if not msg.online:  # type: ignore[union-attr]
                    self._announce()
            else:  # decode ties each type to its topic kind, and we subscribe to no others
                rejections.append(("invalid", _device_of(topic), f"{kind.__name__} is not for the fleet"))
        with self._counters_lock:
            c = self._counters
            c.drains += 1
            c.messages += messages
            for reason, _, _ in rejections:
                c.rejections[reason] = c.rejections.get(reason, 0) + 1
        for reason, device, detail in rejections:
            self._log.warning(f"rejected:{reason}", "rejected a message (%s) from %s: %s", reason, device, detail)
        if batches:
            rejections += self._store_votes(batches, invalid, now)
        if states or heartbeats or reports or rejections:
            self._record(states, heartbeats, reports, rejections, now)

    def _store_votes(
        self, batches: list[VoteBatch], invalid: dict[int, tuple[tuple[int, str], ...]], now: int
    ) -> list[tuple[str, str | None, str]]:
        """Store, then ack (with refusals); returns conflicts to count as rejections."""
        stored = self._store_isolating(batches, now)
        # Committed: only now may terminals hear that these votes are safe (or refused for good).
        publish = self.mqtt.publish
        sent = failed = refused_votes = 0
        for i, (batch, ranges, conflicts) in enumerate(zip(batches, stored.ranges, stored.refused, strict=True)):
            if ranges is None:  # not stored: no word at all, the terminal resends
                continue
            refused: list[tuple[str, tuple[tuple[int, int], ...]]] = []
            if conflicts:
                refused.append((CONFLICT, conflicts))
            bad = invalid.get(i)
            if bad:
                refused.append((INVALID, seq_ranges(seq for seq, _ in bad)))
            if not ranges and not refused:
                continue
            refused_votes += sum(hi - lo + 1 for _, rs in refused for lo, hi in rs)
            ack = Ack(batch.device, batch.batch, ranges, store=batch.store, refused=tuple(refused))
            if publish(device_topic(batch.device, ACK), encode(ack), 1):
                sent += 1
            else:
                failed += 1
        with self._counters_lock:
            c = self._counters
            c.batches += len(batches)
            c.votes_stored += stored.new
            c.duplicates += stored.duplicates
            c.acks_sent += sent
            c.acks_failed += failed
            c.conflicts += len(stored.conflicts)
            c.votes_refused += refused_votes
        for device, store, seq in stored.conflicts:
            self._log.error(
                f"conflict:{device}",
                "%s sent seq %d of store %r again as a different press; refused (seqs reused?)",
                device,
                seq,
                store,
            )
        return [
            (CONFLICT, device, f"seq {seq} of store {store!r} is stored as a different press")
            for device, store, seq in stored.conflicts
        ]

    def _store_isolating(self, batches: list[VoteBatch], now: int) -> _Stored:
        """Store all batches in one commit; if that fails, each on its own, so one bad batch delays only itself."""
        try:
            return _Stored.of(self.store.add_vote_batches(batches, now))
        except StoreError as exc:
            with self._counters_lock:
                self._counters.store_errors += 1
            self._log.warning("store:votes", "could not store %d vote batches together: %s", len(batches), exc)
        result = _Stored([], 0, 0, [], [])
        for batch in batches if len(batches) > 1 else ():
            try:
                one = self.store.add_vote_batches([batch], now)
            except StoreError as exc:
                with self._counters_lock:
                    self._counters.store_errors += 1
                self._log.warning(
                    f"store:batch:{batch.device}", "batch %d of %s not stored: %s", batch.batch, batch.device, exc
                )
                result.ranges.append(None)
                result.refused.append(())
                continue
            result.ranges.extend(one.ranges)
            result.refused.extend(one.refused)
            result.new += one.new
            result.duplicates += one.duplicates
            result.conflicts.extend(one.conflicts)
        if len(batches) == 1:
            result.ranges.append(None)
            result.refused.append(())
        return result

    def _record(
        self,
        states: list[TerminalState],
        heartbeats: list[Heartbeat],
        reports: list[ConfigReport],
        rejections: list[tuple[str, str | None, str]],
        now: int,
    ) -> None:
        store = self.store
        births: list[str] = []
        stale = 0
        try:
            touched = {s.device for s in states} | {h.device for h in heartbeats} | {r.device for r in reports}
            with store.transaction(*touched):  # all their locks first: workers never wait on each other in a cycle
                for state in states:
                    if not store.record_state(state, now):
                        stale += 1
                    elif state.online:
                        births.append(state.device)
                for hb in heartbeats:
                    store.record_heartbeat(hb, now)
                for report in reports:
                    store.record_config_report(report, now)
                for reason, device, detail in rejections:
                    store.count_rejection(reason, device, detail, now)
        except StoreError as exc:
            with self._counters_lock:
                self._counters.store_errors += 1
            self._log.warning("store:records", "could not record states/heartbeats/rejections: %s", exc)
            return
        pushed = 0
        for device in births:
            pushed += self._push_config(device)
        with self._counters_lock:
            c = self._counters
            c.states += len(states)
            c.stale_states += stale
            c.heartbeats += len(heartbeats)
            c.config_reports += len(reports)
            c.configs_pushed += pushed

    def _push_config(self, device: str) -> int:
        """Publish the desired configuration (retained) to a terminal that has not applied it."""
        try:
            config = self.store.config_to_push(device)
        except StoreError as exc:
            self._log.warning("store:config", "could not read the desired configuration of %s: %s", device, exc)
            return 0
        if config is None:
            return 0
        try:
            # The same check the terminal runs; a document stored before it was this strict fails here.
            payload = encode(config)
        except ProtocolError as exc:
            with self._counters_lock:
                self._counters.configs_refused += 1
            self._log.error(
                f"config:{device}", "not publishing version %d to %s: %s", config.version, device, exc.detail
            )
            return 0
        if self.mqtt.publish(device_topic(device, CONFIG), payload, 1, True):
            log.info("pushed configuration version %d to %s", config.version, device)
            return 1
        return 0

    def _poll_configs(self) -> None:
        """Push configurations set since the last look (a publish in the fleet web) to their terminals."""
        if time.monotonic() - self._polled_at < self.config_poll_s:
            return
        self._polled_at = time.monotonic()
        try:
            # A second of overlap: a configuration set in the same millisecond as the last look is not missed.
            changed = self.store.desired_since(self._config_mark - 1000)
        except StoreError as exc:
            self._log.warning("store:poll", "could not look for new configurations: %s", exc)
            return
        pushed = 0
        for device, version, set_at in changed:
            self._config_mark = max(self._config_mark, set_at)
            if self._config_pushed.get(device) != version:
                self._config_pushed[device] = version
                pushed += self._push_config(device)
        if pushed:
            with self._counters_lock:
                self._counters.configs_pushed += pushed

    def _keep_reporting(self) -> None:
        """Write the counters to the store once every ``stats_every_s`` (the health page reads them)."""
        if time.monotonic() - self._reported_at < self.stats_every_s:
            return
        self._reported_at = time.monotonic()
        c = self.counters()
        stats = IngestStats(self.client_id, self._started_ms, int(self._clock() * 1000), c.messages,
                            c.votes_stored, c.duplicates, sum(c.rejections.values()), None, None)  # fmt: skip
        try:
            self.store.record_ingest_stats(stats)
        except StoreError as exc:
            self._log.warning("store:stats", "could not write the ingest counters: %s", exc)

    def _keep_announcing(self) -> None:
        """Say online again once every ``republish_s`` (SPEC 8)."""
        if time.monotonic() - self._announced_at >= self.republish_s:
            self._announce()

    def _announce(self) -> None:
        self._announced_at = time.monotonic()
        if self.mqtt.announce():
            with self._counters_lock:
                self._counters.state_republished += 1

    def _on_link(self, event: Event | None) -> None:
        if isinstance(event, Connected):
            self._announced_at = time.monotonic()
            log.info("connected to %s:%d (session present: %s)", self.mqtt.host, self.mqtt.port, event.session_present)
        elif isinstance(event, Disconnected):
            self._log.warning("link", "disconnected from %s:%d: %s", self.mqtt.host, self.mqtt.port, event.reason)
