"""`hymy bench`: Hymy's speed figures, each printed beside its ceiling measured in the same run.

Machines are shared and noisy, so nothing here asserts a time; every figure stands next to
what the bare libraries achieve on the same machine at the same moment, and the ratio is
what to read. Results are printed and written as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from device.clock import SystemClock
from device.store import VoteStore
from device.sync import SyncAgent
from device.terminal import Terminal
from fleet.content import default_config_doc
from fleet.store import open_store
from protocol import FleetState, decode_payload
from protocol.topics import FLEET_STATE

from .aggbench import AREA, ONE_UNIT, UNITS, bench_aggregate
from .brokers import OPEN, ClientLogin, MosquittoBroker
from .capacity import ACK_P99_BOUND_S, DEFAULT_STEPS, bench_capacity
from .ceiling import bare_commit, bare_commit_latencies, open_bare_db, run_bare_ingest
from .load import make_batches, publish_load
from .pgdb import DEFAULT_PG_SERVER, answers, scratch_database
from .workersbench import bench_workers

#: Targets from the core issue, as ratios to the ceiling (or seconds).
INGEST_TARGET = 0.5
INGEST_AIM = 0.8
PRESS_P99_TARGET = 2.0
DRAIN_TARGET_S = 5.0
KIOSK_RSS_TARGET_MIB = 80.0
#: What `hymy bench` runs without --only; capacity ramps for minutes of real time, so it is asked for by name.
DEFAULT_PARTS = ("ingest", "press", "drain", "kiosk", "aggregate")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[k]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.01) -> None:
    """Poll ``predicate`` until it holds, or raise with ``what``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


def wait_fleet_online(host: str, port: int, timeout: float = 30.0, login: ClientLogin = OPEN) -> None:
    """Block until the fleet's retained state on the broker says online."""
    online = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            state = decode_payload(bytes(msg.payload))
        except ValueError:
            return
        if isinstance(state, FleetState) and state.online:
            online.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="", clean_session=True)
    login.apply(client)
    client.on_message = on_message
    client.on_connect = lambda c, *_a: c.subscribe(FLEET_STATE, qos=1)
    client.connect(host, port)
    client.loop_start()
    try:
        if not online.wait(timeout):
            raise RuntimeError("the fleet ingest did not come online")
    finally:
        client.disconnect()
        client.loop_stop()


def start_fleet_ingest(host: str, port: int, db: str | Path, log: Path) -> subprocess.Popen[bytes]:
    """Start the real fleet ingest (`python -m fleet`) in its own process, as in production; returns at once."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fleet", "--db", str(db), "--broker", f"{host}:{port}", "ingest"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@contextmanager
def fleet_ingest(host: str, port: int, db: str | Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run the real fleet ingest (`python -m fleet`) in its own process, as in production."""
    proc = start_fleet_ingest(host, port, db, log)
    try:
        wait_fleet_online(host, port)
        yield proc
    finally:
        terminate(proc, 20)


def terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, and SIGKILL if it has not exited within ``timeout`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def bare_ingest(host: str, port: int, db: Path) -> Iterator[None]:
    """Run the bare paho-to-SQLite subscriber in its own process."""
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=run_bare_ingest, args=(host, port, str(db), "FULL", ready, stop), daemon=True)
    proc.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the bare subscriber did not start")
        yield
    finally:
        stop.set()
        proc.join(20)
        if proc.is_alive():
            proc.kill()


def bench_ingest(workdir: Path, rounds: int, terminals: int, votes_each: int, per_batch: int) -> dict[str, Any]:
    """Ingest votes/s end to end through Mosquitto: ours beside the bare subscriber, alternating."""
    total = terminals * votes_each
    batches = make_batches(terminals, votes_each, per_batch, int(time.time() * 1000) - 86_400_000)
    ours: list[float] = []
    bare: list[float] = []
    with MosquittoBroker() as broker:
        for r in range(rounds):
            db = workdir / f"bare-{per_batch}-{r}.db"
            with bare_ingest(broker.host, broker.port, db):
                bare.append(publish_load(broker.host, broker.port, batches, total, timeout=120).votes_per_s)
            conn = open_bare_db(db)
            stored = conn.execute("SELECT COUNT(*) FROM votes").fetchone()[0]
            conn.close()
            if stored != total:
                raise RuntimeError(f"bare subscriber stored {stored} of {total}")
            db = workdir / f"fleet-{per_batch}-{r}.db"
            with fleet_ingest(broker.host, broker.port, db, workdir / "fleet.log"):
                ours.append(publish_load(broker.host, broker.port, batches, total, timeout=120).votes_per_s)
            store = open_store(str(db))
            stored = store.vote_count()
            store.close()
            if stored != total:
                raise RuntimeError(f"fleet ingest stored {stored} of {total}")
    best_ours, best_bare = max(ours), max(bare)
    return {
        "votes_per_message": per_batch,
        "votes": total,
        "terminals": terminals,
        "rounds": rounds,
        "ours_votes_per_s": [round(v) for v in ours],
        "bare_votes_per_s": [round(v) for v in bare],
        "ratio_best": round(best_ours / best_bare, 3),
        "ratio_median": round(statistics.median(ours) / statistics.median(bare), 3),
    }


def _press_latencies(store: VoteStore, n: int) -> list[int]:
    out = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        store.record("thl-nps", "nps11", i % 11, "fi", unit="unit-a", cfg=1)
        out.append(time.perf_counter_ns() - t0)
    return out


def _latency_row(ns: list[int]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(ns, 50) / 1e6, 3),
        "p99_ms": round(percentile(ns, 99) / 1e6, 3),
        "n": len(ns),
    }


def bench_press(workdir: Path, n: int, chunks: int = 4) -> dict[str, Any]:
    """Press-to-stored latency of the terminal's store beside a bare single-row commit, interleaved."""
    clock = SystemClock()
    store = VoteStore(workdir / "press.db", "bench-press", clock)
    ours: list[int] = []
    bare: list[int] = []
    try:
        for c in range(chunks):
            bare += bare_commit_latencies(workdir / f"bare-press-{c}.db", n // chunks)
            ours += _press_latencies(store, n // chunks)
    finally:
        store.close()
    mine, base = _latency_row(ours), _latency_row(bare)
    return {
        "ours": mine,
        "bare": base,
        "p99_ratio": round(mine["p99_ms"] / base["p99_ms"], 3),
        "p50_ratio": round(mine["p50_ms"] / base["p50_ms"], 3),
    }


def _terminal(workdir: Path, name: str, host: str, port: int) -> tuple[VoteStore, SyncAgent, Terminal]:
    clock = SystemClock()
    store = VoteStore(workdir / f"{name}.db", name, clock)
    agent = SyncAgent(store, name, host, port, clock, fleet_grace_s=0.5, heartbeat_s=60)
    doc = {**default_config_doc("unit-a"), "misuse_interval_s": 0}
    return store, agent, Terminal(store, agent, clock, config=(1, doc))


def bench_press_while_syncing(workdir: Path, n: int, rate: float) -> dict[str, Any]:
    """Press-to-stored latency while the sync agent sends and marks the same store delivered.

    Each press is followed by a bare single-row commit to another file in the same loop, so
    both see the same load from the agent, the broker and the ingest running beside them.
    """
    bare_conn = open_bare_db(workdir / "bare-live.db", "FULL")
    with (
        MosquittoBroker() as broker,
        fleet_ingest(broker.host, broker.port, workdir / "sync-fleet.db", workdir / "fleet.log"),
    ):
        store, agent, terminal = _terminal(workdir, "bench-live", broker.host, broker.port)
        agent.start()
        wait_until(lambda: agent.connected, 10, "the terminal to connect")
        lat: list[int] = []
        bare: list[int] = []
        period = 1 / rate
        next_at = time.perf_counter()
        try:
            for i in range(n):
                t0 = time.perf_counter_ns()
                terminal.press(i % 11)
                lat.append(time.perf_counter_ns() - t0)
                bare.append(bare_commit(bare_conn, i + 1))
                next_at += period
                time.sleep(max(0.0, next_at - time.perf_counter()))
            wait_until(lambda: store.depth() == 0, 30, "the live votes to be acknowledged")
        finally:
            agent.stop()
            store.close()
            bare_conn.close()
    mine, base = _latency_row(lat), _latency_row(bare)
    return {"ours": mine, "bare": base, "rate_per_s": rate, "p99_ratio": round(mine["p99_ms"] / base["p99_ms"], 3)}


def bench_drain(workdir: Path, votes: int) -> dict[str, Any]:
    """Time from the broker's return to an empty queue, for ``votes`` pressed during the outage."""
    with (
        MosquittoBroker() as broker,
        fleet_ingest(broker.host, broker.port, workdir / "drain-fleet.db", workdir / "fleet.log"),
    ):
        store, agent, terminal = _terminal(workdir, "bench-drain", broker.host, broker.port)
        agent.start()
        try:
            wait_until(lambda: agent.connected, 10, "the terminal to connect")
            broker.stop()
            wait_until(lambda: not agent.connected, 10, "the terminal to notice the outage")
            t_outage = time.monotonic()
            for i in range(votes):
                terminal.press(i % 11)
            outage_s = time.monotonic() - t_outage
            queued = store.depth()
            t0 = time.perf_counter()
            broker.start()
            wait_until(lambda: agent.connected, 30, "the terminal to reconnect")
            reconnect_s = time.perf_counter() - t0
            wait_until(lambda: store.depth() == 0, 120, "the backlog to drain")
            drain_s = time.perf_counter() - t0
        finally:
            agent.stop()
            store.close()
    stored, historical = _drained(workdir / "drain-fleet.db", "bench-drain", votes)
    return {
        "votes": votes,
        "queued": queued,
        "outage_s": round(outage_s, 2),
        "reconnect_s": round(reconnect_s, 3),
        "drain_s": round(drain_s, 3),
        "votes_per_s_after_reconnect": round(votes / max(drain_s - reconnect_s, 1e-9)),
        "stored_on_fleet": stored,
        "flagged_historical": historical,
    }


def _drained(db: Path, device: str, votes: int) -> tuple[int, int]:
    """(votes stored, of them flagged historical) for ``device``; raises unless all ``votes`` arrived."""
    fleet = open_store(str(db))
    try:
        stored = fleet.vote_count(device)
        historical = sum("historical" in v.flags for v in fleet.stored_votes(device))
    finally:
        fleet.close()
    if stored != votes:
        raise RuntimeError(f"fleet holds {stored} of {votes} drained votes")
    return stored, historical


def bench_drain_fleet(workdir: Path, votes: int) -> dict[str, Any]:
    """Time from the fleet ingest's return to an empty queue, for ``votes`` pressed while it was down.

    The broker stays up: the ingest is SIGKILLed, so the broker publishes its will (the fleet is
    offline) and the terminal holds its backlog, sending one probing batch at a time that nobody
    acknowledges. Then a new ingest process starts on the same database.
    """
    db = workdir / "drain-fleet-outage.db"
    with MosquittoBroker() as broker:
        ingest = start_fleet_ingest(broker.host, broker.port, db, workdir / "fleet.log")
        store, agent, terminal = _terminal(workdir, "bench-drain-fleet", broker.host, broker.port)
        try:
            wait_fleet_online(broker.host, broker.port)
            agent.start()
            wait_until(lambda: agent.connected and agent.fleet_online is True, 30, "the terminal to see the fleet")
            ingest.kill()
            ingest.wait()
            wait_until(lambda: agent.fleet_online is False, 10, "the terminal to read the fleet's will (offline)")
            t_outage = time.monotonic()
            for i in range(votes):
                terminal.press(i % 11)
            outage_s = time.monotonic() - t_outage
            queued = store.depth()
            t0 = time.perf_counter()
            ingest = start_fleet_ingest(broker.host, broker.port, db, workdir / "fleet.log")
            wait_until(lambda: agent.fleet_online is True, 60, "the terminal to see the fleet online again")
            online_s = time.perf_counter() - t0
            wait_until(lambda: store.depth() == 0, 120, "the backlog to drain")
            drain_s = time.perf_counter() - t0
        finally:
            agent.stop()
            store.close()
            if ingest.poll() is None:
                ingest.terminate()
                ingest.wait(20)
    stored, historical = _drained(db, "bench-drain-fleet", votes)
    return {
        "votes": votes,
        "queued": queued,
        "outage_s": round(outage_s, 2),
        "online_s": round(online_s, 3),
        "drain_s": round(drain_s, 3),
        "votes_per_s_after_online": round(votes / max(drain_s - online_s, 1e-9)),
        "stored_on_fleet": stored,
        "flagged_historical": historical,
    }


def bench_drain_ceiling(workdir: Path, votes: int, rounds: int) -> dict[str, Any]:
    """The same backlog as the terminal sends it (one terminal, 100-vote batches, 4 in flight) into the bare
    paho-to-SQLite subscriber: the fastest any ingest on this machine could take it, best of ``rounds``."""
    batch, window = 100, 4  # SyncAgent's defaults: batch_size, max_in_flight
    batches = make_batches(1, votes, batch, int(time.time() * 1000) - 86_400_000)
    times: list[float] = []
    with MosquittoBroker() as broker:
        for r in range(rounds):
            with bare_ingest(broker.host, broker.port, workdir / f"bare-drain-{r}.db"):
                times.append(publish_load(broker.host, broker.port, batches, votes, window=window, timeout=120).seconds)
    best = min(times)
    return {
        "votes": votes,
        "votes_per_batch": batch,
        "in_flight": window,
        "bare_s": [round(t, 3) for t in times],
        "bare_votes_per_s": round(votes / max(best, 1e-9)),
    }


def bench_drains(workdir: Path, votes: int, rounds: int) -> dict[str, Any]:
    """The backlog drained after a broker outage and after a fleet outage, beside the bare subscriber's ceiling."""
    result = bench_drain(workdir, votes)
    result["fleet_outage"] = bench_drain_fleet(workdir, votes)
    result["ceiling"] = bench_drain_ceiling(workdir, votes, rounds)
    return result


def _kiosk_figures(n: int, directory: str) -> dict[str, Any]:
    """In a fresh process (so its peak RSS is the kiosk's alone): device.bench's figures as p50/p99 rows."""
    from device.bench import INPUTS, measure

    measured = measure(n, Path(directory))
    out: dict[str, Any] = {"n": n, "rss_mib": round(measured["rss_mib"], 1), "rss_target_mib": KIOSK_RSS_TARGET_MIB}
    for name in INPUTS:
        rows = {what: _latency_row(ns) for what, ns in measured["inputs"][name].items()}
        out[name] = {**rows, "p99_ratio": round(rows["stored"]["p99_ms"] / rows["bare"]["p99_ms"], 3)}
    return out


def bench_kiosk(workdir: Path, n: int) -> dict[str, Any]:
    """Press-to-stored per input (touch, mock-pin button, serial line) through the real kiosk loop, beside a bare
    commit made before every press, press-to-thank-you frame, and peak RSS with pygame loaded."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_kiosk_figures, n, str(workdir)).result(timeout=600)


def bench_capacity_with_ceiling(
    workdir: Path,
    quick: bool,
    rounds: int,
    steps: Sequence[int] | None = None,
    window_s: float = 60.0,
    keep_logs: Path | None = None,
    pg_server: str | None = None,
) -> dict[str, Any]:
    """The capacity ramp (on SQLite, or PostgreSQL on ``pg_server``), then in the same run the ingest's
    saturated throughput for one-vote batches on SQLite (its ceiling)."""
    if quick:
        result = bench_capacity(
            workdir,
            tuple(steps or (10, 40)),
            window_s=3,
            hb_s=1,
            vote_s=2,
            warmup_s=1,
            keep_logs=keep_logs,
            pg_server=pg_server,
        )
    else:
        result = bench_capacity(
            workdir, tuple(steps or DEFAULT_STEPS), window_s=window_s, keep_logs=keep_logs, pg_server=pg_server
        )
    result["ceiling"] = bench_ingest(workdir, rounds, 5, 200 if quick else 1000, 1)
    return result


def _capacity_lines(r: dict[str, Any]) -> list[str]:
    """One line per step and the verdict beside the ingest's saturated throughput."""
    lines = []
    for s in r["steps"]:
        if "failed" in s:
            lines.append(
                f"capacity {s['terminals']} terminals: NOT carried, the step could not run to its end:"
                f" {s['failed']} ({s['detail']}); log kept at {s['log']}"
            )
            continue
        load, procs = s["load"], s["processes"]
        per = ", ".join(f"{name} {p['cpu_percent']}% CPU {p['rss_mib']} MiB" for name, p in procs.items())
        lines.append(
            f"capacity {s['terminals']} terminals: offered {s['offered_votes_per_s']} votes/s +"
            f" {round(s['offered_messages_per_s'] - s['offered_votes_per_s'], 2)} heartbeats/s, stored"
            f" {s['stored_votes_per_s']} votes/s; press->ack p50 {load['ack_p50_s']} s, p99 {load['ack_p99_s']} s;"
            f" backlog {load['backlog_first_third']} -> {load['backlog_last_third']},"
            f" never acked {load['never_acked']},"
            f" disconnects {load['disconnects']}, generator late p99 {load['schedule_late_p99_s']} s; {per}"
            f" -> {'carried' if s['carried'] else 'NOT carried'}"
        )
    c = r["ceiling"]
    carried = [s for s in r["steps"] if s["terminals"] == r["carries"]]
    at = carried[0] if carried else None
    used = (
        f" (its {at['stored_votes_per_s']} votes/s, heartbeats besides, are"
        f" {at['stored_votes_per_s'] / max(c['ours_votes_per_s']):.1%} of the ingest's saturated throughput;"
        f" ingest at {at['processes']['ingest']['cpu_percent']}% of a core)"
        if at
        else ""
    )
    last = r["steps"][-1]
    bound = ""
    if "failed" not in last:
        generator = last["processes"]["load"]["cpu_percent"]
        bound = (
            f" (at least: the ramp's largest step, with the load generator at {generator}%"
            f" of a core and its schedule late by {last['load']['schedule_late_p99_s']} s at p99)"
        )
    if r.get("limited_by"):
        bound = f" (the next step failed; limited by the {r['limited_by']})"
    elif not r["lower_bound"]:
        bound = ""
    lines.append(
        f"capacity on {r.get('engine', 'sqlite')}: one fleet server carries {r['carries']} terminals{bound}"
        f" at a heartbeat every {r['heartbeat_s']:g} s and a press every {r['press_every_s']:g} s each, ack p99 under"
        f" {ACK_P99_BOUND_S:g} s{used}; ceiling in this run: the same ingest saturated with one-vote batches stores"
        f" {max(c['ours_votes_per_s'])} votes/s vs the bare subscriber's {max(c['bare_votes_per_s'])} votes/s"
    )
    return lines


def _verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def report(results: dict[str, Any]) -> str:
    """Human-readable lines for the figures in ``results``."""
    lines = []
    for key in ("ingest_100", "ingest_1"):
        r = results.get(key)
        if r:
            lines.append(
                f"ingest, {r['votes_per_message']} vote(s)/message, {r['votes']} votes from {r['terminals']} terminals:"
                f" ours {r['ours_votes_per_s']} votes/s vs bare {r['bare_votes_per_s']} votes/s"
                f" -> {r['ratio_best']:.0%} of ceiling (best), {r['ratio_median']:.0%} (median);"
                f" target 50%, aim 80%: {_verdict(r['ratio_best'] >= INGEST_TARGET)}"
            )
    for key, label in (("press", "press-to-stored, store alone"), ("press_live", "press-to-stored, while syncing")):
        r = results.get(key)
        if r:
            lines.append(
                f"{label}: ours p50 {r['ours']['p50_ms']} ms, p99 {r['ours']['p99_ms']} ms vs bare commit"
                f" p50 {r['bare']['p50_ms']} ms, p99 {r['bare']['p99_ms']} ms -> p99 {r['p99_ratio']}x;"
                f" target at most 2x: {_verdict(r['p99_ratio'] <= PRESS_P99_TARGET)}"
            )
    r = results.get("drain")
    if r:
        lines.append(
            f"backlog drain: {r['votes']} votes pressed during a {r['outage_s']} s outage reached the fleet"
            f" {r['drain_s']} s after the broker returned (reconnect {r['reconnect_s']} s);"
            f" target under 5 s: {_verdict(r['drain_s'] < DRAIN_TARGET_S)}"
        )
        f, c = r.get("fleet_outage"), r.get("ceiling")
        if f:
            lines.append(
                f"backlog drain after a fleet outage (broker up, ingest SIGKILLed): {f['votes']} votes pressed during"
                f" a {f['outage_s']} s outage reached the fleet {f['drain_s']} s after the ingest was started again"
                f" (fleet online {f['online_s']} s) vs {r['drain_s']} s after a broker outage;"
                f" target under 5 s: {_verdict(f['drain_s'] < DRAIN_TARGET_S)}"
            )
        if c:
            lines.append(
                f"backlog drain ceiling in this run: the bare subscriber takes the same {c['votes']} votes"
                f" ({c['votes_per_batch']} a batch, {c['in_flight']} in flight) in {min(c['bare_s'])} s"
                f" ({c['bare_votes_per_s']} votes/s) vs after the broker's return"
                f" {r['votes_per_s_after_reconnect']} votes/s"
                + (f", after the fleet's return {f['votes_per_s_after_online']} votes/s" if f else "")
            )
    r = results.get("kiosk")
    if r:
        for name in ("touch", "button", "serial"):
            k = r[name]
            lines.append(
                f"kiosk {name} -> stored: p50 {k['stored']['p50_ms']} ms, p99 {k['stored']['p99_ms']} ms vs bare commit"
                f" p50 {k['bare']['p50_ms']} ms, p99 {k['bare']['p99_ms']} ms -> p99 {k['p99_ratio']}x"
                f" (target at most 2x: {_verdict(k['p99_ratio'] <= PRESS_P99_TARGET)});"
                f" -> thank-you frame p50 {k['thanks']['p50_ms']} ms, p99 {k['thanks']['p99_ms']} ms"
            )
        lines.append(
            f"kiosk peak RSS with pygame loaded: {r['rss_mib']} MiB;"
            f" target under {KIOSK_RSS_TARGET_MIB:.0f} MiB: {_verdict(r['rss_mib'] < KIOSK_RSS_TARGET_MIB)}"
        )
    r = results.get("capacity")
    if r:
        lines += _capacity_lines(r)
    r = results.get("workers")
    if r:
        lines += _workers_lines(r)
    for engine in ("sqlite", "postgresql"):
        r = results.get(f"aggregate_{engine}")
        if r:
            lines += _aggregate_lines(engine, r)
    return "\n".join(lines)


def _aggregate_lines(engine: str, r: dict[str, Any]) -> list[str]:
    if "error" in r:
        return [f"aggregation on {engine}: not run: {r['error']}"]
    lines = [
        f"aggregation on {engine} at {r['votes']:,} votes ({r['rollup_rows']:,} rollup rows, generated in"
        f" {r['generate_s']} s), seconds per query from the rollup vs a scan of the votes (target under"
        f" {AGG_TARGET_S * 1000:.0f} ms from the rollup):"
    ]
    for name, label in AGG_QUERIES.items():
        q = r[name]
        ok = max(q["rollup_s"]) < AGG_TARGET_S
        same = "" if q["same_n"] else "  (COUNTS DIFFER from the scan)"
        lines.append(f"  {label:<44} rollup {q['rollup_s']} vs scan {q['scan_s']}  n={q['n']:,}: {_verdict(ok)}{same}")
    views = r.get("views", {})
    if views:
        lines.append(
            f"  web views (server time of the whole request, median of {len(next(iter(views.values()))['view_s'])};"
            f" beside it the rollup reads it makes, called alone; target under {AGG_TARGET_S * 1000:.0f} ms):"
        )
    for name, v in views.items():
        view, reads = statistics.median(v["view_s"]), statistics.median(v["rollup_s"])
        label = VIEW_LABELS.get(name, name)
        lines.append(
            f"  {label:<44} view {view * 1000:7.1f} ms  rollup reads {reads * 1000:7.1f} ms: "
            f"{_verdict(view < AGG_TARGET_S)}"
        )
    return lines


#: The web views the aggregation benchmark times, as the report names them.
VIEW_LABELS = {
    "region_dashboard_30_days": "a region's results page, last 30 days",
    "unit_year_by_month": "a unit's year, by month",
    "comparison_area_year_csv": "comparison of an area's units, a year (CSV)",
    "public_region_page": "the region's public page",
    "api_unit_scores_by_month": "API: a unit's scores by month, a year",
}


#: Aggregation queries, as the report names them.
AGG_QUERIES = {
    "all_time": f"all-time scores of all {UNITS} units",
    "last_31_days": "the last 31 days, every unit",
    "unit_year_trend": f"one unit's daily trend for a year ({ONE_UNIT})",
    "area_side_by_side": f"a service area's {len(AREA)} units side by side",
}
AGG_TARGET_S = 0.2


def _on_postgresql(server: str, votes: int) -> dict[str, Any]:
    """The aggregation benchmark in a scratch database on ``server`` (dropped after)."""
    if not answers(server):
        return {"error": f"no PostgreSQL answers at {server} (give --pg SERVER, or --pg none)"}
    with scratch_database(server, "hymy_bench") as url:
        return bench_aggregate(url, votes)


def _workers_on_postgresql(server: str, workdir: Path, quick: bool) -> dict[str, Any]:
    if server == "none" or not answers(server):
        return {"error": f"no PostgreSQL answers at {server} (give --pg SERVER)"}
    terminals, votes_each = (20, 100) if quick else (200, 500)
    return bench_workers(server, workdir, terminals, votes_each, per_batch=10)


def _workers_lines(r: dict[str, Any]) -> list[str]:
    if "error" in r:
        return [f"ingest workers on PostgreSQL: not run: {r['error']}"]
    lines = [
        f"ingest into PostgreSQL, {r['votes']:,} votes from {r['terminals']} terminals, {r['votes_per_message']}"
        f" per message, on {r['cpus']} cores (CPU as % of one core: ingest, postgres, broker, load generator):"
    ]
    labels = {"bare_no_store": "bare subscriber, storing nothing", "bare_postgresql": "bare subscriber into PostgreSQL"}
    for key, run in r.items():
        if not isinstance(run, dict):
            continue
        label = labels.get(key, f"hymy fleet ingest --workers {key.removeprefix('workers_')}")
        c = run["cpu_pct"]
        lines.append(
            f"  {label:<34} {run['votes_per_s']:>7,} votes/s   cpu ingest {c['ingest']}%, postgres {c['postgres']}%,"
            f" broker {c['broker']}%, load {c['load']}%"
        )
    return lines


def build_parser() -> argparse.ArgumentParser:
    """Options of `hymy bench`."""
    p = argparse.ArgumentParser(prog="hymy bench", description=__doc__.splitlines()[0])
    p.add_argument(
        "--only",
        nargs="+",
        choices=("ingest", "press", "drain", "kiosk", "capacity", "aggregate", "workers"),
        help="run only these parts (default: all but capacity, about 8 minutes, and workers, on PostgreSQL)",
    )
    p.add_argument(
        "--agg-votes",
        type=int,
        default=1_000_000,
        help="votes for the store's aggregation query (1 million; 10 million takes about 5 minutes to generate)",
    )
    p.add_argument(
        "--cap-steps",
        type=int,
        nargs="+",
        help=f"terminals at each capacity step (default {' '.join(map(str, DEFAULT_STEPS))})",
    )
    p.add_argument(
        "--cap-db",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the fleet database of the capacity steps (postgresql: a scratch database on --pg)",
    )
    p.add_argument("--cap-window", type=float, default=60.0, help="real seconds measured at each capacity step (60)")
    p.add_argument(
        "--pg",
        default=DEFAULT_PG_SERVER,
        metavar="SERVER",
        help=f"PostgreSQL server for the PostgreSQL runs (a scratch database is made and dropped; default"
        f" {DEFAULT_PG_SERVER}; 'none' skips them)",
    )
    p.add_argument("--quick", action="store_true", help="smaller loads (a smoke run, not for figures)")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds of ours and bare per ingest load")
    p.add_argument("--json", type=Path, default=Path("bench-results/bench.json"), help="where to write the figures")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print the figures and write them as JSON."""
    args = build_parser().parse_args(argv)
    parts = set(args.only or DEFAULT_PARTS)
    quick = args.quick
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "quick": quick},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with tempfile.TemporaryDirectory(prefix="hymy-bench-") as tmp:
        workdir = Path(tmp)
        steps: list[tuple[str, str, Callable[[], dict[str, Any]]]] = []
        if "ingest" in parts:
            steps.append(("ingest", "ingest_100", lambda: bench_ingest(
                workdir, args.rounds, 20 if quick else 50, 500 if quick else 2000, 100)))  # fmt: skip
            steps.append(("ingest", "ingest_1", lambda: bench_ingest(
                workdir, args.rounds, 5, 200 if quick else 1000, 1)))  # fmt: skip
        if "press" in parts:
            steps.append(("press", "press", lambda: bench_press(workdir, 400 if quick else 4000)))
            steps.append(
                ("press", "press_live", lambda: bench_press_while_syncing(workdir, 200 if quick else 2000, 100))
            )
        if "drain" in parts:
            steps.append(("drain", "drain", lambda: bench_drains(workdir, 1000 if quick else 10_000, args.rounds)))
        if "capacity" in parts:
            steps.append(
                (
                    "capacity",
                    "capacity",
                    lambda: bench_capacity_with_ceiling(
                        workdir,
                        quick,
                        args.rounds,
                        args.cap_steps,
                        args.cap_window,
                        args.json.parent,
                        pg_server=args.pg if args.cap_db == "postgresql" else None,
                    ),
                )
            )
        if "aggregate" in parts:
            agg_votes = 50_000 if quick else args.agg_votes
            steps.append(
                ("aggregate", "aggregate_sqlite", lambda: bench_aggregate(workdir / "agg-fleet.db", agg_votes))
            )
            if args.pg != "none":
                steps.append(("aggregate", "aggregate_postgresql", lambda: _on_postgresql(args.pg, agg_votes)))
        if "workers" in parts:
            steps.append(("workers", "workers", lambda: _workers_on_postgresql(args.pg, workdir, quick)))
        if "kiosk" in parts:
            steps.append(("kiosk", "kiosk", lambda: bench_kiosk(workdir, 50 if quick else 500)))
        for _, key, step in steps:
            print(f"running {key} ...", file=sys.stderr, flush=True)
            results[key] = step()
            print(report({key: results[key]}), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
