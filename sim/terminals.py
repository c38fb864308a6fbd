"""Many simulated terminals in one process, each running the real device code, pressed by simulated patients.

Every terminal has its own SQLite vote store, sync agent and ``Terminal`` core, wired as
``device/__main__.py`` wires them: it starts unplaced, takes its configuration from the fleet
over MQTT, and applies it between presses. One presser thread walks a schedule of patient
arrivals for all of them, so a thousand terminals need no thousand presser threads.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import protocol
from device.clock import Clock, SystemClock
from device.errors import DeviceError
from device.store import VoteStore
from device.strings import check_config_for
from device.sync import SyncAgent
from device.terminal import Terminal

from .patients import Arrivals, UnitProfile, answer

#: How often an unplaced terminal looks again for a configuration to apply.
UNPLACED_POLL_S = 0.2


class SimTerminal:
    """One simulated terminal: the real store, agent and terminal core, and its own seeded patients."""

    def __init__(
        self,
        device_id: str,
        db_path: Path,
        host: str,
        port: int,
        *,
        rng: random.Random,
        clock: Clock | None = None,
        heartbeat_s: float = 5.0,
        agent_options: Mapping[str, Any] | None = None,
        buttons: int | None = None,
    ) -> None:
        """``agent_options`` go to the SyncAgent as they are (timeouts scaled for fast simulated time);
        ``buttons``: a terminal with that many physical buttons, which refuses a scale of another size
        (``device.strings.check_config_for``); None: a touch screen, any scale."""
        self.device_id = device_id
        self.rng = rng
        self.clock = clock or SystemClock()
        self.store = VoteStore(db_path, device_id, self.clock)
        self.pressed = 0
        self.refused = 0
        holder: dict[str, Terminal] = {}

        fits = check_config_for(buttons)

        def check_config(version: int, doc: dict[str, Any]) -> str | None:
            return holder["terminal"].check_config(version, doc) or fits(version, doc)

        def on_config(version: int, doc: dict[str, Any]) -> None:
            holder["terminal"].offer_config(version, doc)

        self.agent = SyncAgent(
            self.store,
            device_id,
            host,
            port,
            self.clock,
            heartbeat_s=heartbeat_s,
            check_config=check_config,
            on_config=on_config,
            **dict(agent_options or {}),
        )
        self.terminal = holder["terminal"] = Terminal(self.store, self.agent, self.clock)

    def start(self) -> None:
        """Begin connecting to the broker; returns at once."""
        self.agent.start()

    def doc(self) -> dict[str, Any] | None:
        """The configuration document on screen now, after applying any pending one (between presses)."""
        self.terminal.apply_pending()
        config = self.terminal.config
        return None if config is None else config[1]

    def press(self, profiles: Mapping[str | None, UnitProfile]) -> bool:
        """Let one patient answer the question on screen; False when the terminal is not placed or refused."""
        doc = self.doc()
        if doc is None:
            return False
        try:
            self.terminal.press(answer(profiles.get(doc["unit"]), doc["question"]["scale"], self.rng))
        except (DeviceError, ValueError):
            self.refused += 1
            return False
        self.pressed += 1
        return True

    def stop(self) -> None:
        """Say offline, disconnect and close the store."""
        self.agent.stop()
        self.store.close()


@dataclass(frozen=True)
class SimTotals:
    """What the simulated terminals have done: presses committed and votes still waiting for an ack."""

    terminals: int
    placed: int
    pressed: int
    queued: int
    refused: int


class SimTerminals:
    """A set of simulated terminals and the one thread that presses them as patients arrive."""

    def __init__(
        self,
        device_ids: Iterable[str],
        data_dir: Path,
        host: str,
        port: int,
        *,
        profiles: Iterable[UnitProfile],
        rate_per_min: float,
        seed: int = 0,
        heartbeat_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.profiles: dict[str | None, UnitProfile] = {p.unit: p for p in profiles}
        self.rate_per_min = rate_per_min
        self._clock = clock
        master = random.Random(seed)
        self.terminals = [
            SimTerminal(
                device,
                data_dir / f"{device}.db",
                host,
                port,
                rng=random.Random(master.getrandbits(64)),
                heartbeat_s=heartbeat_s,
            )
            for device in device_ids
        ]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start every terminal's agent and the presser thread."""
        for sim in self.terminals:
            sim.start()
        self._thread = threading.Thread(target=self._press_loop, name="hymy-sim-presser", daemon=True)
        self._thread.start()

    def _arrivals(self, sim: SimTerminal) -> Arrivals:
        """The arrival stream of a terminal's unit: patients take at least the misuse interval each."""
        doc = sim.doc()
        gap = float(protocol.setting(doc, "misuse_interval_s")) if doc is not None else 0.0
        return Arrivals(self.rate_per_min, min_gap_s=gap * 1.05)

    def _press_loop(self) -> None:
        """Press each terminal when its next patient arrives; look again soon at unplaced ones."""
        now = self._clock()
        due = [(now + sim.rng.uniform(0, 60.0 / self.rate_per_min), i) for i, sim in enumerate(self.terminals)]
        heapq.heapify(due)
        while due and not self._stop.is_set():
            at, i = heapq.heappop(due)
            if self._stop.wait(max(0.0, at - self._clock())):
                return
            sim = self.terminals[i]
            if sim.press(self.profiles):
                next_at = self._clock() + self._arrivals(sim).gap_s(sim.rng)
            else:
                next_at = self._clock() + UNPLACED_POLL_S
            heapq.heappush(due, (next_at, i))

    def stop_pressing(self) -> None:
        """Stop the patients; the agents keep delivering what is queued."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def totals(self) -> SimTotals:
        """Presses so far and votes still queued on the terminals."""
        return SimTotals(
            terminals=len(self.terminals),
            placed=sum(1 for sim in self.terminals if sim.terminal.placed),
            pressed=sum(sim.pressed for sim in self.terminals),
            queued=sum(sim.store.depth() for sim in self.terminals),
            refused=sum(sim.refused for sim in self.terminals),
        )

    def wait_drained(self, timeout: float) -> bool:
        """Wait until every terminal's queue is empty (all votes acknowledged by the fleet); False on timeout."""
        deadline = self._clock() + timeout
        while self.totals().queued:
            if self._clock() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self) -> None:
        """Stop pressing, then stop every terminal at once (each says offline and disconnects)."""
        self.stop_pressing()
        with ThreadPoolExecutor(max_workers=min(32, max(1, len(self.terminals)))) as pool:
            list(pool.map(SimTerminal.stop, self.terminals))
