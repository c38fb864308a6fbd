"""A whole fleet without hardware: many terminals on the real device code, a real broker and the real fleet ingest.

In-process terminals share one process (each with its own store, sync agent, paho client and
clock, their paho clients driven by one ``SharedLoop`` thread); a few more run as ``sim.presser``
processes so a fault can SIGKILL one mid-write. The in-process terminals that a fault will cut off
(netcut, powercut, clock) reach the broker through ``NetCut``; the rest connect to it directly, so
hundreds of terminals do not all pass through one Python thread.
Patients press on simulated time; faults run from a schedule on their own thread; at the end the
simulator waits for every queue to drain and reconciles its ground truth with the fleet's store.
"""

from __future__ import annotations

import heapq
import json
import logging
import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from device.errors import DeviceError
from device.netloop import SharedLoop
from fleet.db.store import SqlFleetStore
from protocol import Vote
from protocol.scales import SCALES

from .brokers import OPEN, ClientLogin, MosquittoBroker, SecureMosquitto
from .dupes import Duplicator
from .hwinputs import LoopSerial, MockButtons
from .netcut import NetCut
from .patients import answer
from .pollselect import install as install_poll_select
from .procs import Child, ingest_child, wait_for
from .report import Press, Report, Truth, delay_summary, reconcile, unit_scores
from .scenario import TZ, Fault, UnitLoad, default_units, next_arrival_ms, random_faults
from .simclock import DEFAULT_WRONG_BY_MS, SimClock, TimeBase
from .terminals import SimTerminal

log = logging.getLogger(__name__)

#: A weekday morning before the units open, so terminals are placed before the first patient.
DEFAULT_START = datetime(2025, 3, 3, 6, 30, tzinfo=TZ)
#: Presses per real second of each terminal process (they run at real time, beside the simulation).
PROCESS_RATE = 4.0
#: Faults that cut one in-process terminal off the network, so it must connect through the proxy.
CUT_OFF_KINDS = frozenset({"netcut", "powercut", "clock"})


@dataclass
class SimConfig:
    """One run: how many terminals, how long, how fast, which faults, where."""

    devices: int = 50
    seed: int = 1
    hours: float = 12.0
    speed: float = 60.0
    data: Path = Path("sim-data")
    units: list[UnitLoad] = field(default_factory=default_units)
    rate_scale: float = 1.0
    fault_kinds: tuple[str, ...] = ()
    faults_each: int = 1
    schedule: list[Fault] | None = None
    processes: int = 2  # terminal processes (targets of the "kill" fault)
    hardware_every: int = 10  # every Nth in-process terminal presses through mock pins or loop:// serial
    # at most this many: each mock button has a gpiozero hold thread that wakes ten times a second
    hardware_max: int = 20
    broker: tuple[str, int] | None = None  # given: use it; no broker faults
    #: Mosquitto as production runs it: TLS, a login per terminal and the access rules (fleet.brokerconf)
    secure: bool = False
    fleet_db: str | Path | None = None  # given: an ingest already runs on it; no ingest faults
    db: str | Path | None = None  # the database the simulator's own ingest writes (default data/fleet.db)
    heartbeat_s: float = 60.0  # simulated
    drain_timeout_s: float = 120.0  # real
    start: datetime = DEFAULT_START


@dataclass
class Slot:
    """One in-process terminal: what survives its power cuts (database, clock, input hardware, patients)."""

    device: str
    load: UnitLoad
    db: Path
    port: int
    clock: SimClock
    arrivals: random.Random
    answers: random.Random
    hardware: MockButtons | LoopSerial | None = None
    sim: SimTerminal | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    host: str = "127.0.0.1"  # the proxy's, or the broker's for a terminal no fault cuts off
    proxied: bool = True
    #: Out of service for re-imaging: still delivering its backlog, pressed by nobody.
    retiring: SimTerminal | None = None
    #: Databases of earlier cards, moved aside at each re-imaging and kept for the final accounting.
    old_dbs: list[Path] = field(default_factory=list)


def votes_on_disk(db: Path) -> tuple[str, list[tuple[Any, ...]]]:
    """A terminal database's store id and every vote it committed, read-only (its terminal may be dead)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'store'").fetchone()
        rows = conn.execute("SELECT seq, unit, question, scale, answer, flags, wall, boot, mono FROM votes").fetchall()
    finally:
        conn.close()
    return ("" if row is None else str(json.loads(row[0]))), rows


def pending_on_disk(db: Path) -> int:
    """Votes a closed terminal database still waits to have acknowledged."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        (n,) = conn.execute("SELECT count(*) FROM votes WHERE delivered IS NULL AND refused IS NULL").fetchone()
    finally:
        conn.close()
    return int(n)


class FleetSim:
    """Compose broker, fleet, proxy and terminals; press, inject faults, drain, reconcile."""

    def __init__(self, config: SimConfig, on_progress: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.cfg = config
        self.on_progress = on_progress
        self.truth = Truth()
        self.base = TimeBase(int(config.start.timestamp() * 1000), config.speed)
        self.run_s = config.hours * 3600
        self.faults_done: Counter[str] = Counter()
        self.faults_skipped: Counter[str] = Counter()
        self.inputs: Counter[str] = Counter()
        self.skipped_presses = 0
        self.backlog_peak = 0
        self.slots: list[Slot] = []
        self.children: dict[str, Child] = {}
        self._stop = threading.Event()
        self.broker: MosquittoBroker | None = None
        #: Each terminal's broker login on a secured broker (none: an open broker).
        self.logins: dict[str, ClientLogin] = {}
        self.harness: ClientLogin = OPEN
        self.ingest: Child | None = None
        self.proxy: NetCut | None = None
        self.dupes: Duplicator | None = None
        self.network: SharedLoop | None = None
        self.fleet_db: str | Path = config.fleet_db or config.db or config.data / "fleet.db"
        self.faults: list[Fault] = []
        self._sim0 = 0.0  # simulated seconds at which the patients' day begins (after placement)

    # -- setup ---------------------------------------------------------------------------------

    def _agent_options(self) -> dict[str, Any]:
        """Device timeouts are in simulated seconds; keep their real length sane at high speed."""
        speed = self.cfg.speed
        return {
            "ack_timeout_s": max(10.0, 3.0 * speed),
            "max_backoff_s": max(300.0, 10.0 * speed),
            "fleet_grace_s": max(2.0, 1.0 * speed),
            "historical_after_s": 60.0,
            "network": self.network,  # one thread drives every in-process terminal's paho client
            "clock_rate": speed,  # agents sleep until their next deadline instead of looking twice a second
        }

    def _fleet_settings(self, login: ClientLogin) -> Path:
        """The ingest child's settings file: its broker login (owner-only, like production's)."""
        path = self.cfg.data / "fleet-broker.toml"
        path.touch(mode=0o600)
        lines = [f'broker_username = "{login.username}"', f'broker_password = "{login.password}"']
        path.write_text("\n".join([*lines, f'broker_ca_file = "{login.ca_file}"']) + "\n")
        return path

    def _presser_login(self, device: str) -> list[str]:
        """A terminal process's login arguments (the password in an owner-only file, never on a command line)."""
        login = self.logins.get(device)
        if login is None or login.username is None:
            return []
        secret = self.cfg.data / "terminals" / f"{device}.password"
        secret.touch(mode=0o600)
        secret.write_text(login.password or "")
        return ["--username", login.username, "--password-file", str(secret), "--ca-file", str(login.ca_file)]

    def _new_terminal(self, slot: Slot) -> SimTerminal:
        return SimTerminal(
            slot.device,
            slot.db,
            slot.host,
            slot.port,
            rng=slot.answers,
            clock=slot.clock,
            heartbeat_s=self.cfg.heartbeat_s,
            agent_options=self._agent_options() | self.logins.get(slot.device, OPEN).agent_options(),
        )

    def _place(self, devices: list[str]) -> None:
        from .demo import place_terminals  # the demo's placement: each unit's configuration as desired

        store = SqlFleetStore(self.fleet_db)
        try:
            units = [u.profile for u in self.cfg.units]
            for i, device in enumerate(devices):
                place_terminals(store, [device], [units[i % len(units)]])
        finally:
            store.close()

    def _build(self, stack: ExitStack) -> None:
        cfg = self.cfg
        cfg.data.mkdir(parents=True, exist_ok=True)
        (cfg.data / "terminals").mkdir(exist_ok=True)
        if cfg.broker is None and cfg.secure:
            from .testca import TestCA

            server = TestCA(cfg.data / "ca").server()
            self.broker = SecureMosquitto(certfile=server.cert, keyfile=server.key, ca_file=server.ca)
            self.broker.start()
            stack.callback(self.broker.stop)
            host, port = self.broker.host, self.broker.port
        elif cfg.broker is None:
            self.broker = MosquittoBroker()
            self.broker.start()
            stack.callback(self.broker.stop)
            host, port = self.broker.host, self.broker.port
        else:
            host, port = cfg.broker
        self.host, self.port = host, port
        devices = [f"sim-{i:04d}" for i in range(1, cfg.devices + 1)]
        self._place(devices)
        settings = None
        if isinstance(self.broker, SecureMosquitto):
            for device in devices + [f"simproc-{k + 1:02d}" for k in range(cfg.processes)]:
                self.logins[device] = self.broker.terminal(device)
            self.harness = self.broker.harness()
            settings = self._fleet_settings(self.broker.fleet())
        if cfg.fleet_db is None:
            self.ingest = ingest_child(self.fleet_db, host, port, cfg.data / "ingest.log", settings)
            self.ingest.start()
            stack.callback(self.ingest.stop)
        from .bench import wait_fleet_online

        wait_fleet_online(host, port, 60, self.harness)
        self.proxy = NetCut(host, port)
        stack.callback(self.proxy.close)
        self.network = SharedLoop()
        stack.callback(self.network.close)  # after the terminals stop (an ExitStack unwinds backwards)
        self.faults = self._schedule(devices, [f"simproc-{k + 1:02d}" for k in range(cfg.processes)])
        cut_off = {str(f.target) for f in self.faults if f.kind in CUT_OFF_KINDS}
        master = random.Random(cfg.seed)
        for i, device in enumerate(devices):
            load = cfg.units[i % len(cfg.units)]
            proxied = device in cut_off
            slot = Slot(
                device,
                load,
                cfg.data / "terminals" / f"{device}.db",
                self.proxy.add(device) if proxied else port,
                SimClock(self.base, device),
                random.Random(master.getrandbits(64)),
                random.Random(master.getrandbits(64)),
                host="127.0.0.1" if proxied else host,
                proxied=proxied,
            )
            hardware = sum(1 for s in self.slots if s.hardware is not None)
            if cfg.hardware_every and i % cfg.hardware_every == cfg.hardware_every - 1 and hardware < cfg.hardware_max:
                scale = (load.profile.question or {}).get("scale", "nps11")
                hw = MockButtons if (i // cfg.hardware_every) % 2 == 0 else LoopSerial
                slot.hardware = hw(SCALES[scale].size)
                slot.hardware.start(self._on_answer(slot))
            slot.sim = self._new_terminal(slot)
            self.slots.append(slot)
        stack.callback(self._stop_terminals)
        for n, slot in enumerate(self.slots):  # a gentle connect storm: 50 at a time
            assert slot.sim is not None
            slot.sim.start()
            if n % 50 == 49:
                time.sleep(0.2)
        for k in range(cfg.processes):
            device = f"simproc-{k + 1:02d}"
            votes = max(50, int(PROCESS_RATE * self.base.real_s(self.run_s) * 0.85))
            child = Child(
                device,
                ["sim.presser", "--db", str(cfg.data / "terminals" / f"{device}.db"), "--device", device,
                 "--broker", f"{host}:{port}", "--votes", str(votes), "--rate", str(PROCESS_RATE),
                 "--seed", str(cfg.seed * 100 + k), "--unit", "sim-process-terminals",
                 "--drain-timeout", str(cfg.drain_timeout_s + self.base.real_s(self.run_s)),
                 *self._presser_login(device)],
                cfg.data / f"{device}.log",
            )  # fmt: skip
            child.start()
            stack.callback(child.kill)
            self.children[device] = child
        self.dupes = Duplicator(host, port, cfg.seed, login=self.harness)
        stack.callback(self.dupes.close)
        placed = wait_for(lambda: all(s.sim and s.sim.agent.applied_config_version for s in self.slots), 120)
        if not placed:
            log.warning("not every terminal was placed within 120 s; the rest are placed as they connect")

    def _stop_terminals(self) -> None:
        def stop(slot: Slot) -> None:
            with slot.lock:
                for sim in (slot.sim, slot.retiring):
                    if sim is not None:
                        sim.stop()
                slot.sim = slot.retiring = None
                if slot.hardware is not None:
                    slot.hardware.stop()

        with ThreadPoolExecutor(max_workers=32) as pool:
            list(pool.map(stop, self.slots))

    # -- patients ------------------------------------------------------------------------------

    def _record(self, slot: Slot, sim: SimTerminal, vote: Vote) -> None:
        self.truth.add(
            slot.device,
            Press(
                vote.seq, vote.unit, vote.question, vote.scale, vote.answer, "misuse" in vote.flags,
                int(time.time() * 1000), self.base.now_ms(), sim.store.store_id, vote.boot, vote.mono,
            ),
        )  # fmt: skip

    def _on_answer(self, slot: Slot) -> Callable[[int], None]:
        """What the input hardware calls: the real terminal records the answer (if it has power)."""

        def on_answer(value: int) -> None:
            with slot.lock:
                sim = slot.sim
                if sim is None:
                    return  # no power: the press did nothing, and nobody was thanked
                try:
                    vote = sim.terminal.press(value)
                except (DeviceError, ValueError):
                    return
                self._record(slot, sim, vote)
                self.inputs[slot.hardware.kind if slot.hardware else "touch"] += 1

        return on_answer

    def _press(self, slot: Slot) -> None:
        with slot.lock:
            sim = slot.sim
            if sim is None:
                self.skipped_presses += 1
                return
            doc = sim.doc()
            if doc is None:
                self.skipped_presses += 1
                return
            value = answer(slot.load.profile, doc["question"]["scale"], slot.answers)
            if slot.hardware is not None:
                slot.hardware.press(value)  # the answer comes back through on_answer
                return
            try:
                vote = sim.terminal.press(value)
            except (DeviceError, ValueError):
                self.skipped_presses += 1
                return
            self._record(slot, sim, vote)
            self.inputs["touch"] += 1

    def _patients(self) -> None:
        start = self.base.now_ms()
        end = start + int(self.run_s * 1000)
        due: list[tuple[int, int]] = []
        for i, slot in enumerate(self.slots):
            at = next_arrival_ms(slot.load, start, slot.arrivals, self.cfg.rate_scale)
            if at is not None:
                due.append((at, i))
        heapq.heapify(due)
        while due and not self._stop.is_set():
            at, i = heapq.heappop(due)
            if at >= end:
                break
            wait = (at - self.base.now_ms()) / 1000 / self.cfg.speed
            if wait > 0 and self._stop.wait(wait):
                return
            slot = self.slots[i]
            self._press(slot)
            nxt = next_arrival_ms(slot.load, at, slot.arrivals, self.cfg.rate_scale)
            if nxt is not None:
                heapq.heappush(due, (nxt, i))

    # -- faults --------------------------------------------------------------------------------

    def _slot(self, device: str | None) -> Slot:
        return next(s for s in self.slots if s.device == device)

    def _power_off(self, slot: Slot) -> bool:
        """Cut the power: the broker sees the socket die (no DISCONNECT, so the will), nothing is flushed."""
        assert self.proxy is not None
        with slot.lock:
            sim = slot.sim
            if sim is None:
                return False
            self.proxy.cut(slot.device)
            wait_for(lambda: not sim.agent.link.is_connected(), 5)
            sim.agent.stop(timeout=2)  # not connected: no offline message can leave, only threads end
            sim.store.close()
            slot.sim = None
            return True

    def _power_on(self, slot: Slot, synced: bool = True, wrong_by_ms: int = 0) -> None:
        assert self.proxy is not None
        with slot.lock:
            slot.clock.reboot(synced=synced, wrong_by_ms=wrong_by_ms)
            slot.sim = self._new_terminal(slot)
            slot.sim.start()
            self.proxy.restore(slot.device)

    def _retire(self, slot: Slot) -> bool:
        """Take a terminal out of service for re-imaging: nobody presses it while its agent delivers its backlog."""
        with slot.lock:
            if slot.sim is None:
                return False  # powered off or being re-imaged already
            slot.retiring, slot.sim = slot.sim, None
            return True

    def _reimage(self, slot: Slot, final: bool = False) -> bool:
        """Swap the card once the old database is delivered: a fresh database under the same device id.

        False (try again later) while the old store still has votes queued, so a re-imaging loses
        nothing that a careful technician would not lose either. ``final`` (the run is ending) waits
        up to the drain timeout and swaps anyway; votes left behind then show as lost and queued.
        """
        with slot.lock:
            old = slot.retiring
            if old is None:
                return True
            if not final and old.store.depth():
                return False
        if final:
            wait_for(lambda: old.store.depth() == 0, self.cfg.drain_timeout_s, step=0.2)
        with slot.lock:
            old.stop()  # a graceful shutdown: offline said, store closed
            slot.retiring = None
            aside = slot.db.with_name(f"{slot.db.stem}.old-{len(slot.old_dbs) + 1}{slot.db.suffix}")
            for suffix in ("", "-wal", "-shm"):  # closed cleanly, so normally the main file alone
                src = Path(f"{slot.db}{suffix}")
                if src.exists():
                    src.rename(f"{aside}{suffix}")
            slot.old_dbs.append(aside)
            slot.clock.reboot(synced=True)
            slot.sim = self._new_terminal(slot)  # VoteStore makes a new database: a new store id, seqs from 1
            slot.sim.start()
        log.info("%s re-imaged: old database kept as %s", slot.device, aside.name)
        return True

    def _fault_start(self, f: Fault) -> bool:
        """Begin a fault; False when it cannot apply (its target is down already or not ours)."""
        kind = f.kind
        if kind == "netcut":
            assert self.proxy is not None
            if self.proxy.is_cut(str(f.target)):
                return False
            self.proxy.cut(str(f.target))
        elif kind == "broker":
            if self.broker is None:
                return False
            self.broker.stop()
        elif kind == "ingest":
            if self.ingest is None:
                return False
            self.ingest.kill()
        elif kind == "powercut":
            return self._power_off(self._slot(f.target))
        elif kind == "kill":
            child = self.children.get(str(f.target))
            if child is None or child.exited():
                return False
            child.kill()
        elif kind == "clock":
            slot = self._slot(f.target)
            if not self._power_off(slot):
                return False
            self._power_on(slot, synced=False, wrong_by_ms=DEFAULT_WRONG_BY_MS)
        elif kind == "dupes":
            assert self.dupes is not None
            self.dupes.open_window()
        elif kind == "reimage":
            return self._retire(self._slot(f.target))
        return True

    def _fault_end(self, f: Fault, final: bool = False) -> bool:
        """End a fault; False when it cannot end yet (a re-imaging waits for its backlog), so try again later."""
        kind = f.kind
        if kind == "netcut":
            assert self.proxy is not None
            slot = self._slot(f.target)
            with slot.lock:
                if slot.sim is not None or slot.retiring is not None:  # one powered off gets it at power-on
                    self.proxy.restore(str(f.target))
        elif kind == "broker" and self.broker is not None:
            self.broker.start()
        elif kind == "ingest" and self.ingest is not None:
            self.ingest.start()
        elif kind == "powercut":
            self._power_on(self._slot(f.target))
        elif kind == "kill":
            self.children[str(f.target)].start()
        elif kind == "clock":
            self._slot(f.target).clock.sync()
        elif kind == "dupes" and self.dupes is not None:
            self.dupes.close_window()
        elif kind == "reimage":
            return self._reimage(self._slot(f.target), final)
        return True

    def _schedule(self, devices: list[str], processes: list[str]) -> list[Fault]:
        cfg = self.cfg
        if cfg.schedule is not None:
            return cfg.schedule
        kinds = [
            k for k in cfg.fault_kinds if not (k == "broker" and cfg.broker) and not (k == "ingest" and cfg.fleet_db)
        ]
        self.faults_skipped.update({k: cfg.faults_each for k in cfg.fault_kinds if k not in kinds})
        return random_faults(kinds, cfg.faults_each, self.run_s, cfg.seed, devices, processes)

    def _fault_loop(self) -> None:
        events: list[tuple[float, int, str, Fault]] = []
        for n, f in enumerate(self.faults):
            events.append((f.at_s, n, "start", f))
        heapq.heapify(events)
        active: dict[int, Fault] = {}
        while events and not self._stop.is_set():
            at, n, what, f = heapq.heappop(events)
            if self._stop.wait(max(0.0, self.base.real_s(at - self.elapsed_s()))):
                heapq.heappush(events, (at, n, what, f))
                break
            try:
                if what == "start":
                    if self._fault_start(f):
                        self.faults_done[f.kind] += 1
                        active[n] = f
                        # at least a second of real time, so even a short simulated outage is noticed
                        end = at + max(f.duration_s, self.cfg.speed * 1.0)
                        heapq.heappush(events, (end, n, "end", f))
                    else:
                        self.faults_skipped[f.kind] += 1
                elif self._fault_end(f):
                    active.pop(n, None)
                else:  # not yet: look again in a second of real time
                    heapq.heappush(events, (max(at, self.elapsed_s()) + self.cfg.speed, n, what, f))
            except Exception:
                log.exception("fault %s failed", f)
        # The run ends: every fault ends with it, re-imagings last, once the broker and ingest are back.
        for f in sorted(active.values(), key=lambda f: f.kind == "reimage"):
            try:
                self._fault_end(f, final=True)
            except Exception:
                log.exception("ending fault %s failed", f)

    # -- progress and the end ------------------------------------------------------------------

    def elapsed_s(self) -> float:
        """Simulated seconds since the patients' day began."""
        return self.base.elapsed_s() - self._sim0

    def queued(self) -> int:
        """Votes still waiting for the fleet's ack on the in-process terminals."""
        total = 0
        for slot in self.slots:
            with slot.lock:
                for sim in (slot.sim, slot.retiring):
                    if sim is not None:
                        total += sim.store.depth()
        return total

    def queued_aside(self) -> int:
        """Votes still queued in the databases moved aside by re-imaging (read from disk; zero unless cut short)."""
        return sum(pending_on_disk(db) for slot in self.slots for db in slot.old_dbs)

    def _progress(self) -> None:
        while not self._stop.wait(1.0):
            queued = self.queued()
            self.backlog_peak = max(self.backlog_peak, queued)
            if self.on_progress is not None:
                self.on_progress(
                    {
                        "done": min(1.0, self.elapsed_s() / self.run_s) if self.run_s else 1.0,
                        "sim_time": datetime.fromtimestamp(self.base.now_ms() / 1000, TZ).strftime("%H:%M"),
                        "pressed": self.truth.count(),
                        "queued": queued,
                        "faults": sum(self.faults_done.values()),
                        "faults_planned": len(self.faults),
                    }
                )

    def _process_truth(self) -> None:
        """A terminal process's presses are what its database committed (it was killed, so we ask the disk)."""
        for device in self.children:
            db = self.cfg.data / "terminals" / f"{device}.db"
            if not db.exists():
                continue
            store, rows = votes_on_disk(db)
            for seq, unit, question, scale, ans, flags, wall, boot, mono in rows:
                misuse = "misuse" in (flags or "").split(",")
                press = Press(seq, unit, question, scale, ans, misuse, wall, wall, store, boot, mono)
                self.truth.add(device, press)

    def run(self) -> Report:
        """Run the whole simulation and return its report."""
        install_poll_select()  # hundreds of terminals in one process have descriptors above select()'s 1023
        t0 = time.monotonic()
        with ExitStack() as stack:
            self._build(stack)
            self._sim0 = self.base.elapsed_s()  # fault times count from the first patient's day
            threads = [
                threading.Thread(target=self._fault_loop, name="hymy-sim-faults", daemon=True),
                threading.Thread(target=self._progress, name="hymy-sim-progress", daemon=True),
            ]
            for t in threads:
                t.start()
            self._patients()
            patients_done = time.monotonic()
            self._stop.set()
            for t in threads:
                t.join()
            drained = wait_for(
                lambda: self.queued() == 0 and all(c.exited() for c in self.children.values()),
                self.cfg.drain_timeout_s,
                step=0.2,
            )
            drain_s = time.monotonic() - patients_done
            queued_at_end = self.queued() + self.queued_aside()
            drained = drained and queued_at_end == 0
            self._process_truth()
            stack.close()
            store = SqlFleetStore(self.fleet_db)
            try:
                rec = reconcile(self.truth, store)
                units = unit_scores(self.truth, store)
            finally:
                store.close()
        notes = []
        bad_exits = {d: c.proc.returncode for d, c in self.children.items() if c.proc and c.proc.returncode}
        if bad_exits:
            notes.append(f"terminal processes exited non-zero: {bad_exits}")
        return Report(
            devices=len(self.slots) + len(self.children),
            stores=len(self.slots) + len(self.children) + sum(len(s.old_dbs) for s in self.slots),
            seed=self.cfg.seed,
            speed=self.cfg.speed,
            sim_hours=self.cfg.hours,
            real_s=round(time.monotonic() - t0, 1),
            pressed=rec.pressed,
            stored=rec.stored,
            lost=rec.lost,
            duplicated=rec.duplicated,
            unexpected=rec.unexpected,
            mismatched=rec.mismatched,
            drained=drained,
            queued_at_end=queued_at_end,
            drain_s=round(drain_s, 1),
            backlog_peak=self.backlog_peak,
            delay_s=delay_summary(rec.delays_s),
            time_status=dict(rec.time_status),
            corrected_max_error_s=round(rec.corrected_max_error_s, 1),
            faults=dict(self.faults_done),
            faults_skipped=dict(self.faults_skipped),
            units=units,
            skipped_presses=self.skipped_presses,
            inputs=dict(self.inputs),
            lost_examples=rec.lost_examples,
            notes=notes,
        )
