"""The simulator's verdict: what was pressed (ground truth kept by the simulator) against what the fleet stored.

Lost and duplicated votes must be zero; every unit's score as pressed must equal the score the
fleet computes. The ground truth is kept apart from the device code: a press counts once
``Terminal.press`` has returned (the moment a real terminal thanks the person).
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from fleet.records import CORRECTED, UNCERTAIN, StoredVote
from fleet.results import scores_by_unit
from fleet.store import FleetStore
from protocol.scales import SCALES


class Press(NamedTuple):
    """One committed press as the simulator saw it."""

    seq: int
    unit: str | None
    question: str
    scale: str
    answer: int
    misuse: bool
    real_ms: int  # real wall time of the press, to compare with the fleet's receipt time
    true_ms: int  # true simulated time of the press, to check the fleet's time correction
    store: str = ""  # the database's store id: with seq, the vote's identity on its terminal (SPEC 7.1)
    boot: str = ""  # with mono, question and answer: what identifies the press itself, whatever its key
    mono: int = 0

    @property
    def identity(self) -> PressIdentity:
        """What the press was, independent of the (store, seq) key the fleet files it under."""
        return (self.boot, self.mono, self.question, self.answer)


#: (boot, mono, question, answer): one boot's monotonic millisecond and answer name one press.
PressIdentity = tuple[str, int, str, int]


#: A vote's identity within one terminal: (store id, seq). A re-imaged terminal starts a new store
#: whose seqs begin at 1 again, so seq alone is not enough.
Key = tuple[str, int]


def key_label(key: Key) -> str:
    """How a lost vote is named in the report: the seq, after the store id's first characters if any."""
    store, seq = key
    return f"{store[:6]}:{seq}" if store else str(seq)


class Truth:
    """Every committed press per terminal and store, recorded from any thread.

    A terminal re-imaged under its device id writes to a new store, so its presses are kept by
    (store, seq) across every database it has had: old ones count as much as the current one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._presses: dict[str, dict[Key, Press]] = {}

    def add(self, device: str, press: Press) -> None:
        """Record a press; the same (store, seq) twice means the terminal reused a seq (a device bug)."""
        key = (press.store, press.seq)
        with self._lock:
            per = self._presses.setdefault(device, {})
            if key in per:
                raise RuntimeError(f"{device} committed seq {press.seq} of store {press.store!r} twice")
            per[key] = press

    def devices(self) -> list[str]:
        """Terminals with at least one press."""
        with self._lock:
            return sorted(self._presses)

    def presses(self, device: str) -> dict[Key, Press]:
        """A copy of one terminal's presses by (store, seq), over all its stores."""
        with self._lock:
            return dict(self._presses.get(device, {}))

    def count(self) -> int:
        """Presses so far over all terminals."""
        with self._lock:
            return sum(len(p) for p in self._presses.values())


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


@dataclass
class Reconciled:
    """Pressed against stored, over all terminals."""

    pressed: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0  # stored but never pressed
    mismatched: int = 0  # stored with another answer, unit or question than pressed
    delays_s: list[float] = field(default_factory=list)
    time_status: Counter[str] = field(default_factory=Counter)
    corrected_max_error_s: float = 0.0
    lost_examples: list[str] = field(default_factory=list)


def reconcile_device(device: str, pressed: Mapping[Key, Press], stored: Sequence[StoredVote], out: Reconciled) -> None:
    """Add one terminal's comparison to ``out``: every press it made, in any of its stores, stored once.

    Presses are matched by what identifies the press (boot, monotonic reading, question, answer), not
    by the fleet's own key: a vote stored twice under different keys (resent under a new store id,
    say) is a duplicate here, which counting (store, seq) keys could never show.
    """
    made = Counter(p.identity for p in pressed.values())
    held = Counter((v.boot, v.mono, v.question, v.answer) for v in stored)
    out.pressed += len(pressed)
    out.stored += len(stored)
    extra = held - made
    out.duplicated += sum(n for ident, n in extra.items() if ident in made)
    out.unexpected += sum(n for ident, n in extra.items() if ident not in made)
    unique = {(v.store, v.seq) for v in stored}
    lacking = made - held
    missing = [k for k, p in pressed.items() if k not in unique or p.identity in lacking]
    out.lost += sum(lacking.values())
    out.lost_examples += [f"{device}#{key_label(k)}" for k in missing[: max(0, 10 - len(out.lost_examples))]]
    for v in stored:
        p = pressed.get((v.store, v.seq))
        if p is None:
            continue  # counted above: a duplicate under another key, or never pressed
        if (v.answer, v.unit, v.question, v.scale) != (p.answer, p.unit, p.question, p.scale):
            out.mismatched += 1
        out.delays_s.append(max(0, v.received - p.real_ms) / 1000)
        out.time_status[v.time_status] += 1
        if v.time_status == CORRECTED:
            out.corrected_max_error_s = max(out.corrected_max_error_s, abs(v.best - p.true_ms) / 1000)


@dataclass(frozen=True)
class UnitScore:
    """One unit's answers and figure as pressed and as the fleet counted and computed them."""

    unit: str | None
    question: str
    scale: str
    pressed_n: int
    pressed: float | None
    fleet_n: int
    fleet: float | None
    pressed_counts: tuple[int, ...] = ()  # answers 0..size-1 as pressed (misuse left out)
    fleet_counts: tuple[int, ...] = ()  # the same from the fleet's stored votes

    @property
    def equal(self) -> bool:
        """The same count of every answer and the same figure (to rounding)."""
        same = self.pressed == self.fleet or (
            self.pressed is not None and self.fleet is not None and abs(self.pressed - self.fleet) < 1e-9
        )
        return self.pressed_n == self.fleet_n and self.pressed_counts == self.fleet_counts and same


def pressed_figure(scale: str, counts: Sequence[int]) -> float | None:
    """The pressed side's figure, computed here from the definitions, not with the fleet's scoring code.

    NPS: percent of 9–10 answers minus percent of 0–6 answers. Other scales: percent of answers in the
    scale's positive set. Sharing ``fleet.scores`` would let one bug hide on both sides.
    """
    n = sum(counts)
    if n == 0:
        return None
    if scale == "nps11":
        return 100 * (sum(counts[9:]) - sum(counts[:7])) / n
    return 100 * sum(counts[a] for a in SCALES[scale].positive) / n


def pressed_counts(presses: Iterable[Press]) -> dict[tuple[str | None, str, str], list[int]]:
    """Answer counts per (unit, question, scale) as pressed, leaving misuse out as the fleet's scores do."""
    counts: dict[tuple[str | None, str, str], list[int]] = {}
    for p in presses:
        if p.misuse:
            continue
        key = (p.unit, p.question, p.scale)
        counts.setdefault(key, [0] * SCALES[p.scale].size)[p.answer] += 1
    return counts


def unit_scores(truth: Truth, store: FleetStore) -> list[UnitScore]:
    """Every unit's answer counts and figure, pressed versus fleet, for the units the simulator pressed."""
    mine = pressed_counts(p for d in truth.devices() for p in truth.presses(d).values())
    daily = store.daily_counts()
    fleet = scores_by_unit(daily)
    theirs_counts: dict[tuple[str | None, str, str], list[int]] = {}
    for day in daily:
        key = (day.unit, day.question, day.scale)
        total = theirs_counts.setdefault(key, [0] * len(day.counts))
        for i, c in enumerate(day.counts):
            total[i] += c
    rows = []
    for key in sorted(mine, key=lambda k: (k[0] or "", k[1], k[2])):
        ours, theirs = mine[key], fleet.get(key)
        rows.append(
            UnitScore(
                key[0],
                key[1],
                key[2],
                sum(ours),
                pressed_figure(key[2], ours),
                0 if theirs is None else theirs.n,
                None if theirs is None else theirs.value,
                tuple(ours),
                tuple(theirs_counts.get(key, ())),
            )  # fmt: skip
        )
    return rows


@dataclass
class Report:
    """Everything a run shows at the end, and whether it passed."""

    devices: int
    seed: int
    speed: float
    sim_hours: float
    real_s: float
    pressed: int
    stored: int
    lost: int
    duplicated: int
    unexpected: int
    mismatched: int
    drained: bool
    queued_at_end: int
    drain_s: float
    backlog_peak: int
    delay_s: dict[str, float | None]
    time_status: dict[str, int]
    corrected_max_error_s: float
    faults: dict[str, int]
    faults_skipped: dict[str, int]
    units: list[UnitScore]
    skipped_presses: int = 0
    inputs: dict[str, int] = field(default_factory=dict)
    lost_examples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Terminal databases whose presses were counted: one per terminal, plus one per re-imaging.
    stores: int = 0

    @property
    def ok(self) -> bool:
        """Nothing lost, duplicated, invented or changed; every score equal; every queue empty."""
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.unexpected == 0
            and self.mismatched == 0
            and self.drained
            and all(u.equal for u in self.units)
        )

    def exit_status(self) -> int:
        """0 when ok, 1 otherwise."""
        return 0 if self.ok else 1

    def to_json(self) -> str:
        """The report for machines."""
        data: dict[str, Any] = asdict(self)
        data["units"] = [{**asdict(u), "equal": u.equal} for u in self.units]
        data["ok"] = self.ok
        return json.dumps(data, indent=2)

    def format(self) -> str:
        """The report for people."""
        d = self.delay_s
        fmt = lambda x: "–" if x is None else f"{x:.2f}"  # noqa: E731
        lines = [
            f"hymy sim: {self.devices} terminals, seed {self.seed}, {self.sim_hours:g} simulated hours"
            f" at ×{self.speed:g} in {self.real_s:.0f} s",
            f"votes:   pressed {self.pressed}, stored {self.stored}, lost {self.lost}, duplicated {self.duplicated}"
            + (f", unexpected {self.unexpected}" if self.unexpected else "")
            + (f", mismatched {self.mismatched}" if self.mismatched else "")
            + (f" (across {self.stores} terminal databases)" if self.stores > self.devices else ""),
            f"delay:   press to stored on the fleet, real seconds: p50 {fmt(d.get('p50'))}, p90 {fmt(d.get('p90'))},"
            f" p99 {fmt(d.get('p99'))}, max {fmt(d.get('max'))}",
            f"backlog: peak {self.backlog_peak} votes queued on terminals; "
            + (
                f"drained (queues empty {self.drain_s:.1f} s after the patients stopped)"
                if self.drained
                else f"NOT drained: {self.queued_at_end} still queued after {self.drain_s:.0f} s"
            ),
            "time:    "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.time_status.items()))
            + (
                f"; corrected times within {self.corrected_max_error_s:.1f} s of the truth"
                if self.time_status.get(CORRECTED)
                else ""
            ),  # fmt: skip
            "faults:  "
            + (", ".join(f"{k} {v}" for k, v in self.faults.items()) or "none")
            + (
                f" (not applicable: {', '.join(f'{k} {v}' for k, v in self.faults_skipped.items())})"
                if self.faults_skipped
                else ""
            ),  # fmt: skip
        ]
        if self.inputs:
            lines.append("inputs:  " + ", ".join(f"{k} {v}" for k, v in sorted(self.inputs.items())))
        lines.append("units:   unit / question (scale): pressed vs fleet")
        for u in self.units:
            label = "NPS" if SCALES[u.scale].size == 11 else "positive %"
            lines.append(
                f"  {u.unit} / {u.question} ({u.scale}): {label} {fmt(u.pressed)} (n {u.pressed_n})"
                f" vs {fmt(u.fleet)} (n {u.fleet_n}) {'equal' if u.equal else 'DIFFERENT'}"
            )
        lines += [f"note:    {n}" for n in self.notes]
        if self.lost_examples:
            lines.append("lost:    " + ", ".join(self.lost_examples))
        lines.append("result:  " + ("OK: nothing lost, nothing duplicated" if self.ok else "FAILED"))
        return "\n".join(lines)


def delay_summary(delays: Sequence[float]) -> dict[str, float | None]:
    """p50, p90, p99 and max of the sync delays."""
    return {
        "p50": percentile(delays, 50),
        "p90": percentile(delays, 90),
        "p99": percentile(delays, 99),
        "max": max(delays) if delays else None,
    }


def reconcile(truth: Truth, store: FleetStore) -> Reconciled:
    """Compare every terminal's presses with what the fleet stored."""
    out = Reconciled()
    for device in truth.devices():
        reconcile_device(device, truth.presses(device), store.stored_votes(device), out)
    out.time_status.setdefault(UNCERTAIN, 0)
    return out
