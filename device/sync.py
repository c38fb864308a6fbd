"""The sync agent: one loop thread that drains the vote backlog to the fleet and keeps configuration converged.

A vote leaves the backlog only when the fleet's application-level ack names its seq (DESIGN
guarantee 2); a broker PUBACK means nothing here. Sending rules:

* Votes go out only while connected, and only once the fleet is known to be online, or when no
  fleet state has arrived ``fleet_grace_s`` after connecting (the fleet's retained state comes
  right after SUBACK, so silence means no fleet ever published one; sending is still safe because
  nothing is dropped before an ack). While the fleet says it is offline one probe batch at a time
  still goes out with backoff, so a wrong or stale fleet state cannot stall the backlog forever.
* Batches are contiguous runs of pending votes, oldest first, up to ``max_in_flight`` in flight.
* A batch not acked within its deadline is resent; each resend doubles the deadline up to
  ``max_backoff_s``. If acks for other batches arrived since it went out, the fleet is alive
  and ignoring just this batch: it is *stalled*, resent on its own backoff, and no longer holds
  a place in the window, so everything pressed after it still flows. If no ack arrived at all
  the fleet looks dead: the agent probes with one batch at a time, each probe a different batch
  (rotating through the backlog), so a dead fleet gets a trickle, not a flood, and a fleet that
  is alive but never answers one batch answers the next probe. Any ack (or refusal) ends
  probing, and proves the fleet online whatever a stale retained state says.
* A refusal in an ack (SPEC 6.2: ``conflict``, ``invalid``) sets those votes aside for good:
  counted, reported in the heartbeat, never resent.
* On reconnect everything unacked is sent again from the oldest pending vote; duplicates are
  harmless because the fleet stores votes idempotently.
"""

from __future__ import annotations

import bisect
import json
import logging
import queue
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import protocol
from protocol import Ack, Config, FleetState, Vote, topics
from protocol.limits import MAX_REPORT_REASON

from .clock import Clock, read_clock
from .errors import DeviceError
from .inputs.base import RateLimitedLog
from .mqtt import Connected, Disconnected, MqttLink, Received
from .netloop import NetworkLoop
from .store import VoteStore

log = logging.getLogger(__name__)

THERMAL_PATH = Path("/sys/class/thermal/thermal_zone0/temp")

#: Called with (version, doc) of a new configuration before it is persisted; returns a rejection reason or None.
ConfigCheck = Callable[[int, dict[str, Any]], "str | None"]
#: Called with (version, doc) once the configuration is persisted, to apply it between interactions.
ConfigHandler = Callable[[int, dict[str, Any]], None]

#: Longest sleep of the loop when the clock's rate is known; every event wakes it earlier anyway.
MAX_IDLE_S = 5.0
#: A message the codec refuses is counted every time (``SyncCounters.rejected``) but logged at most
#: once per this many seconds per topic and reason: a retained bad message comes again on every
#: reconnect, and a flapping link reconnects every second or two, each a line in the SD card's journal.
REJECTED_LOG_EVERY_S = 60.0

_WAKE = object()
_STOP = object()
_HISTORICAL = frozenset({"historical"})


@dataclass
class SyncCounters:
    """What the agent has done, for heartbeats, logs and tests."""

    batches_sent: int = 0
    votes_sent: int = 0
    resends: int = 0
    acks: int = 0
    votes_acked: int = 0
    duplicate_acks: int = 0
    foreign_acks: int = 0  # acks for another store's series (a re-imaged terminal's predecessor): ignored
    votes_refused: int = 0  # votes the fleet refused for good and this agent set aside
    stalls: int = 0  # batches found ignored by a live fleet (others were acked meanwhile)
    heartbeats: int = 0
    configs_applied: int = 0
    configs_rejected: int = 0
    configs_ignored: int = 0
    connects: int = 0
    disconnects: int = 0
    loop_errors: int = 0
    wakeups: int = 0  # times the loop woke (events, deadlines, polls): an idle agent should rarely wake
    rejected: dict[str, int] = field(default_factory=dict)


@dataclass
class _InFlight:
    batch: int
    votes: list[Vote]
    attempts: int
    deadline_ms: int
    acks_at_send: int = 0  # how many acks had arrived when it last went out
    stalled: bool = False  # the fleet answered others since, not this one: holds no window place


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort and merge ranges without expanding them (an ack may be unsorted or overlapping)."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _acked(ranges: list[tuple[int, int]], starts: list[int], seq: int) -> bool:
    i = bisect.bisect_right(starts, seq) - 1
    return i >= 0 and ranges[i][0] <= seq <= ranges[i][1]


def _config_version_of(payload: bytes, device: str) -> int | None:
    """Best-effort version of a configuration the codec refused, so the rejection can name it."""
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if type(obj) is not dict or obj.get("device") != device:
        return None
    version = obj.get("version")
    return version if type(version) is int and 1 <= version <= 2**53 - 1 else None


def read_cpu_temp(path: Path = THERMAL_PATH) -> float | None:
    """CPU temperature in °C where the platform exposes it, else None."""
    try:
        value = round(int(path.read_text().strip()) / 1000, 1)
    except (OSError, ValueError):
        return None
    return value if -100.0 <= value <= 200.0 else None


def free_disk_mib(path: Path) -> int | None:
    """Free space in MiB on the filesystem holding ``path``, else None."""
    try:
        return shutil.disk_usage(path).free // (1024 * 1024)
    except OSError:
        return None


class SyncAgent:
    """Drains the store to the fleet over MQTT, applies configuration, reports health; one loop thread."""

    def __init__(
        self,
        store: VoteStore,
        device_id: str,
        host: str,
        port: int,
        clock: Clock,
        *,
        batch_size: int = 100,
        max_in_flight: int = 4,
        ack_timeout_s: float = 10.0,
        max_backoff_s: float = 300.0,
        heartbeat_s: float = 60.0,
        historical_after_s: float = 60.0,
        fleet_grace_s: float = 2.0,
        check_config: ConfigCheck | None = None,
        on_config: ConfigHandler | None = None,
        fw: str = "hymy-0.1.0",
        username: str | None = None,
        password: str | None = None,
        network: NetworkLoop | None = None,
        clock_rate: float | None = None,
        ca_file: str | Path | None = None,
        tls: bool | None = None,
    ) -> None:
        """``network`` drives the MQTT client's socket (None: paho's own thread, as on a terminal).

        ``clock_rate`` is how many clock seconds pass per real second when that is known (the
        simulator's speed), so the loop can sleep until its next deadline; None (a clock moved by
        hand, or the default) keeps a look at least every half second. ``ca_file`` and ``tls``: TLS to
        the broker, as in ``MqttLink``.
        """
        if clock_rate is not None and clock_rate <= 0:
            raise ValueError("clock_rate must be positive")
        if not 1 <= batch_size <= protocol.MAX_BATCH_VOTES:
            raise ValueError(f"batch_size must be in 1..{protocol.MAX_BATCH_VOTES}")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.store = store
        self.device_id = topics.check_device_id(device_id)
        self.clock = clock
        self.check_config = check_config
        self.on_config = on_config
        self.fw = fw
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        self._ack_timeout_ms = int(ack_timeout_s * 1000)
        self._max_backoff_ms = int(max_backoff_s * 1000)
        self._heartbeat_ms = int(heartbeat_s * 1000)
        self._historical_ms = int(historical_after_s * 1000)
        self._grace_ms = int(fleet_grace_s * 1000)
        self._events: queue.Queue[Any] = queue.Queue()
        self.link = MqttLink(
            device_id,
            host,
            port,
            self._events,
            store.next_conn,
            clock,
            fw=fw,
            username=username,
            password=password,
            network=network,
            ca_file=ca_file,
            tls=tls,
        )
        self._votes_topic = topics.device_topic(device_id, topics.VOTES)
        self._ack_topic = topics.device_topic(device_id, topics.ACK)
        self._config_topic = topics.device_topic(device_id, topics.CONFIG)
        self._report_topic = topics.device_topic(device_id, topics.CONFIG_REPORT)
        self._heartbeat_topic = topics.device_topic(device_id, topics.HEARTBEAT)
        applied = store.load_config()
        self._cfg_version = 0 if applied is None else applied[0]
        rejected = store.load_config_rejection()
        self._rejected_version = 0 if rejected is None else rejected[0]
        self._lock = threading.Lock()
        self._counters = SyncCounters()
        self._rejected_log = RateLimitedLog(log, REJECTED_LOG_EVERY_S, lambda: clock.mono_ms() / 1000)
        self._inflight: dict[int, _InFlight] = {}
        self._next_batch = 1
        self._max_sent = 0
        self._probing = False
        self._probe_attempts = 0
        self._acks_seen = 0
        self._store_id = store.store_id or None
        self._refused_total = store.refused_count()
        self._connected = False
        self._fleet_online: bool | None = None
        self._grace_until = 0
        self._heartbeat_due = 0
        self._wake_pending = threading.Event()
        self._thread: threading.Thread | None = None
        self._clock_rate = clock_rate
        # (store revision, after) at which pending() last came back empty: nothing to ask SQLite again
        self._none_pending_at: tuple[int, int] | None = None

    # -- public surface ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the broker link is up, as the loop last saw it."""
        return self._connected

    @property
    def fleet_online(self) -> bool | None:
        """The fleet's last announced state on this connection; None when none has arrived."""
        return self._fleet_online

    @property
    def applied_config_version(self) -> int:
        """The configuration version persisted and reported as applied (0: none)."""
        return self._cfg_version

    def counters(self) -> SyncCounters:
        """A snapshot of the counters, safe to read from any thread."""
        with self._lock:
            c = self._counters
            return SyncCounters(**{**c.__dict__, "rejected": dict(c.rejected)})

    def in_flight(self) -> int:
        """How many batches await an ack right now."""
        return len(self._inflight)

    def start(self) -> None:
        """Start the loop thread and begin connecting; returns at once, broker or not."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"hymy-sync-{self.device_id}", daemon=True)
        self._thread.start()
        self.link.start()

    def wake(self) -> None:
        """A vote was just stored: send it now rather than at the next tick."""
        if not self._wake_pending.is_set():
            self._wake_pending.set()
            self._events.put(_WAKE)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop, publish the offline state, disconnect cleanly and join the threads."""
        if self._thread is not None:
            self._events.put(_STOP)
            self._thread.join(timeout)
            self._thread = None
        self.link.stop()
        self._connected = False

    def __enter__(self) -> SyncAgent:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the loop ------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                event = self._events.get(timeout=self._wait_s())
            except queue.Empty:
                event = None
            self._count("wakeups")
            try:
                while event is not None:
                    if event is _STOP:
                        return
                    self._handle(event)
                    event = self._events.get_nowait()
            except queue.Empty:
                pass
            except Exception:  # the loop must outlive any one bad event
                log.exception("sync loop failed handling an event")
                self._count("loop_errors")
            try:
                self._tick()
            except Exception:
                log.exception("sync loop failed on its tick")
                self._count("loop_errors")

    def _wait_s(self) -> float:
        """Sleep until the next deadline, but at least every half second so a fake clock still moves us.

        With a known clock rate the deadline is converted to real seconds and no polling is needed:
        votes, acks and the link's changes arrive as events, which end the wait at once.
        """
        cap, rate = (0.5, 1.0) if self._clock_rate is None else (MAX_IDLE_S, self._clock_rate)
        if not self._connected:
            return cap
        now = self.clock.mono_ms()
        due = [self._heartbeat_due]
        due.extend(f.deadline_ms for f in self._inflight.values())
        if self._fleet_online is None:
            due.append(self._grace_until)
        return min(cap, max(0.0, (min(due) - now) / 1000 / rate))

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self._counters, name, getattr(self._counters, name) + n)

    def _reject(self, reason: str) -> None:
        with self._lock:
            self._counters.rejected[reason] = self._counters.rejected.get(reason, 0) + 1

    def _handle(self, event: object) -> None:
        if event is _WAKE:
            self._wake_pending.clear()
        elif isinstance(event, Received):
            self._on_message(event.topic, event.payload)
        elif isinstance(event, Connected):
            now = self.clock.mono_ms()
            self._connected = True
            self._fleet_online = None
            self._grace_until = now + self._grace_ms
            self._heartbeat_due = now
            self._inflight.clear()  # whatever was in flight goes again from the oldest pending vote
            self._probing = False
            self._count("connects")
        elif isinstance(event, Disconnected):
            self._connected = False
            self._inflight.clear()
            self._count("disconnects")

    def _tick(self) -> None:
        if not self._connected:
            return
        now = self.clock.mono_ms()
        if now >= self._heartbeat_due:
            self._heartbeat_due = now + self._heartbeat_ms
            self._send_heartbeat(now)
        window = self._window(now)
        if window == 0:
            return
        self._resend_due(now)
        while sum(1 for f in self._inflight.values() if not f.stalled) < window:
            after = max((f.votes[-1].seq for f in self._inflight.values()), default=0)
            if not self._send_next(after, now, now + self._ack_timeout_ms):
                break

    def _send_next(self, after: int, now: int, deadline_ms: int) -> bool:
        """Send the next contiguous run of pending votes after seq ``after``; False when none or no link."""
        seen = (self.store.revision, after)  # read before the query, so a vote committed meanwhile counts
        if seen == self._none_pending_at:
            return False
        votes = self.store.pending(self.batch_size, after=after)
        if not votes:
            self._none_pending_at = seen
            return False
        flight = _InFlight(self._next_batch, votes, 1, deadline_ms)
        self._next_batch += 1
        if not self._publish_batch(flight, now):
            return False
        self._inflight[flight.batch] = flight
        self._count("batches_sent")
        return True

    def _window(self, now: int) -> int:
        """How many batches may be in flight: none before the fleet is known, one while probing."""
        if self._fleet_online is None and now < self._grace_until:
            return 0
        if self._probing or self._fleet_online is False:
            return 1
        return self.max_in_flight

    def _backoff(self, attempts: int) -> int:
        return min(self._ack_timeout_ms << max(0, attempts - 1), self._max_backoff_ms)

    def _resend_due(self, now: int) -> None:
        for flight in [f for f in self._inflight.values() if f.deadline_ms <= now]:
            if flight.batch not in self._inflight:
                continue  # dropped on entering probing, below
            if self._acks_seen > flight.acks_at_send:
                # The fleet answered other batches since this one went out: it is alive and ignoring
                # this one. Resend it on its own backoff, but let the rest of the backlog flow past it.
                if not flight.stalled:
                    flight.stalled = True
                    self._count("stalls")
                    log.warning("batch %d (seqs %d..) unanswered by a live fleet", flight.batch, flight.votes[0].seq)
                self._resend(flight, now)
            elif not self._probing:
                # Silence: the fleet looks dead. Keep only this batch in flight and probe with it.
                self._probing = True
                self._probe_attempts = 1
                for batch in list(self._inflight):
                    if batch != flight.batch:
                        del self._inflight[batch]
                self._resend(flight, now)
            else:
                # The probe went unanswered too. Probe with the next batch of the backlog (wrapping
                # round), so one batch a live fleet never answers cannot hold up all the others.
                self._probe_attempts += 1
                del self._inflight[flight.batch]
                deadline = now + self._backoff(self._probe_attempts)
                if not self._send_next(flight.votes[-1].seq, now, deadline):
                    self._none_pending_at = None
                    if not self._send_next(0, now, deadline):
                        self._inflight[flight.batch] = flight  # no link: keep it, try again later
                        flight.deadline_ms = deadline
                        continue
                self._count("resends")

    def _resend(self, flight: _InFlight, now: int) -> None:
        flight.attempts += 1
        flight.deadline_ms = now + self._backoff(flight.attempts)
        if self._publish_batch(flight, now):
            self._count("resends")

    def _publish_batch(self, flight: _InFlight, now: int) -> bool:
        boot = self.clock.boot_id()
        votes = tuple(self._outgoing(v, now, boot) for v in flight.votes)
        payload = protocol.encode(protocol.VoteBatch(self.device_id, flight.batch, votes, self._store_id))
        if not self.link.publish(self._votes_topic, payload, qos=1):
            return False
        flight.acks_at_send = self._acks_seen
        self._max_sent = max(self._max_sent, votes[-1].seq)
        self._count("votes_sent", len(votes))
        return True

    def _outgoing(self, vote: Vote, now: int, boot: str) -> Vote:
        """Flag a vote historical when it leaves well after its press (or in a later boot)."""
        if "historical" in vote.flags:
            return vote
        if vote.boot == boot and now - vote.mono <= self._historical_ms:
            return vote
        return vote._replace(flags=vote.flags | _HISTORICAL)

    # -- incoming ------------------------------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes) -> None:
        if not payload:
            return  # an empty retained message only clears the topic
        try:
            msg = protocol.decode(topic, payload)
        except protocol.ProtocolError as exc:
            self._reject(exc.reason)
            self._rejected_log.log(logging.WARNING, f"{topic} {exc.reason}", "rejected message on %s: %s", topic, exc)
            if topic == self._config_topic:
                version = _config_version_of(payload, self.device_id)
                if version is not None and version > self._cfg_version and version != self._rejected_version:
                    self._report_rejected(version, str(exc))
            return
        if isinstance(msg, Ack) and topic == self._ack_topic:
            self._on_ack(msg)
        elif isinstance(msg, Config) and topic == self._config_topic:
            self._on_config(msg)
        elif isinstance(msg, FleetState):
            self._on_fleet_state(msg)
        else:
            self._reject("unknown_topic")

    def _on_ack(self, ack: Ack) -> None:
        if ack.store != self._store_id:
            # Meant for another series of this device id (the card this one replaced): its seqs are not ours.
            self._count("foreign_acks")
            return
        # Only seqs this process has sent can be acked; a bogus wide range must not empty the backlog.
        ranges = self._clip(ack.ranges)
        changed = self.store.mark_delivered_ranges(ranges) if ranges else 0
        self._count("acks")
        self._count("votes_acked", changed)
        if changed == 0:
            self._count("duplicate_acks")
        done = list(ranges)
        for reason, refused_ranges in ack.refused:
            clipped = self._clip(refused_ranges)
            refused = self.store.mark_refused(reason, clipped) if clipped else 0
            if refused:
                self._refused_total += refused
                self._count("votes_refused", refused)
                log.warning("the fleet refused %d votes for good (%s): set aside, not resent", refused, reason)
            done.extend(clipped)
        done = _merge(done)
        starts = [lo for lo, _ in done]
        for batch, flight in list(self._inflight.items()):
            flight.votes = [v for v in flight.votes if not _acked(done, starts, v.seq)]
            if not flight.votes:
                del self._inflight[batch]
        # Any answer proves the fleet is up, whatever a stale retained state or a sibling's will says.
        self._acks_seen += 1
        self._probing = False
        self._fleet_online = True

    def _clip(self, ranges: tuple[tuple[int, int], ...]) -> list[tuple[int, int]]:
        return _merge([(lo, min(hi, self._max_sent)) for lo, hi in ranges if lo <= self._max_sent])

    def _on_fleet_state(self, state: FleetState) -> None:
        was = self._fleet_online
        self._fleet_online = state.online
        if state.online and was is not True:
            # The fleet is back: whatever is in flight may never have reached it; try again now.
            self._probing = False
            now = self.clock.mono_ms()
            for flight in self._inflight.values():
                flight.deadline_ms = now

    def _on_config(self, config: Config) -> None:
        """SPEC 10.2: skip a version already run or rejected; else check, persist, hand over, report."""
        if config.version <= self._cfg_version or config.version == self._rejected_version:
            self._count("configs_ignored")
            return
        reason: str | None = None
        if self.check_config is not None:
            try:
                reason = self.check_config(config.version, config.doc)
            except Exception as exc:  # the check is the terminal's code; its failure is a rejection
                log.exception("configuration check failed")
                reason = f"terminal could not check it: {exc}"
        if reason:
            self._report_rejected(config.version, reason)
            return
        try:
            self.store.save_config(config.version, config.doc)
        except DeviceError as exc:
            self._report_rejected(config.version, f"not persisted: {exc}")
            return
        self._cfg_version = config.version
        if self.on_config is not None:
            try:
                self.on_config(config.version, config.doc)
            except Exception:  # persisted, so it applies at the latest after a restart
                log.exception("configuration handler failed")
                self._count("loop_errors")
        self._count("configs_applied")
        self._publish_report(protocol.ConfigReport(self.device_id, config.version, "applied"))

    def _report_rejected(self, version: int, reason: str) -> None:
        reason = reason[:MAX_REPORT_REASON] or "rejected"
        self._rejected_version = version
        self._count("configs_rejected")
        try:
            self.store.save_config_rejection(version, reason)
        except DeviceError as exc:
            log.error("configuration rejection not persisted: %s", exc)
        self._publish_report(protocol.ConfigReport(self.device_id, version, "rejected", reason))

    def _publish_report(self, report: protocol.ConfigReport) -> None:
        self.link.publish(self._report_topic, protocol.encode(report), qos=1, retain=True)

    # -- health --------------------------------------------------------------------------------

    def _send_heartbeat(self, now: int) -> None:
        point = read_clock(self.clock)  # the clock point: never a pre-sync wall time labelled synchronised
        wall, boot = point.wall, point.boot
        oldest_vote = self.store.oldest_pending()
        oldest: int | None = None
        if oldest_vote is not None:
            age_ms = now - oldest_vote.mono if oldest_vote.boot == boot else wall - oldest_vote.wall
            oldest = max(0, age_ms) // 1000
        hb = protocol.Heartbeat(
            device=self.device_id,
            wall=wall,
            mono=point.mono,
            boot=boot,
            synced=point.synced,
            uptime=now // 1000,
            queue=self.store.depth(),
            oldest=oldest,
            cfg=self._cfg_version,
            fw=self.fw,
            temp=read_cpu_temp(),
            disk=free_disk_mib(self.store.path.parent),
            refused=self._refused_total,
        )
        if self.link.publish(self._heartbeat_topic, protocol.encode(hb), qos=0):
            self._count("heartbeats")
