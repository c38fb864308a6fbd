"""How many terminals one fleet server carries at one heartbeat a minute and a busy hour's presses.

Each step starts a fresh Mosquitto and the real fleet ingest (``python -m fleet ingest``, its own
process), then ``python -m sim.capload`` in a third process playing N terminals on the wire (one
paho connection each, births, heartbeats, votes in batches of one, waiting for application acks).
During a fixed real-time window the parent reads each process's CPU and memory from /proc and the
fleet's stored vote count. A step is carried when every vote of the window is acknowledged, the
backlog of unacknowledged votes does not grow and the press-to-ack p99 stays under the bound.

All three processes share this machine's cores, so the generator's CPU competes with the fleet's;
the figures say how much it used and how late its schedule ran, so a generator limit is visible.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from fleet.store import open_store

from .brokers import MosquittoBroker
from .pgdb import scratch_database
from .procs import Usage, cpu_percent, usage

#: A vote must be acknowledged within this many seconds at p99 for a step to count as carried.
ACK_P99_BOUND_S = 2.0
#: A load process busier than this share of a core, or this late on its schedule, limits the run itself.
GENERATOR_BUSY_PERCENT = 80.0
GENERATOR_LATE_S = 0.5
#: Warm-up before a step's window per terminal connecting (at least the 5 s default), in seconds.
WARMUP_S_PER_TERMINAL = 0.004
#: Default ramp of terminals (as far as one load process on this 2-core machine goes).
DEFAULT_STEPS = (100, 250, 500, 1000, 2000)


def _figures(before: dict[str, Usage | None], after: dict[str, Usage | None], seconds: float) -> dict[str, Any]:
    """CPU % of one core over the window, and RSS at its end, per process."""
    return {
        name: {
            "cpu_percent": cpu_percent(before[name], after[name], seconds),
            "rss_mib": None if (u := after.get(name)) is None else round(u.rss_mib, 1),
            "peak_rss_mib": None if u is None else round(u.peak_rss_mib, 1),
        }
        for name in before
    }


def carried(step: dict[str, Any]) -> bool:
    """Whether the fleet kept up: all acked, no growing backlog, p99 under the bound, nobody dropped.

    The backlog grows when the unacknowledged votes of the window's last third exceed its first
    third's by more than the votes offered in ACK_P99_BOUND_S: more than the latency bound allows.
    """
    load = step["load"]
    p99 = load["ack_p99_s"]
    growing = load["backlog_last_third"] > load["backlog_first_third"] + step["offered_votes_per_s"] * ACK_P99_BOUND_S
    return (
        load["never_acked"] == 0
        and load["disconnects"] == 0
        and not growing
        and p99 is not None
        and p99 <= ACK_P99_BOUND_S
    )


class StepFailed(RuntimeError):
    """A step that could not be run to its end: a result (its cause), not a crash of the benchmark."""

    def __init__(self, terminals: int, cause: str, detail: str) -> None:
        super().__init__(f"capacity step of {terminals} terminals failed: {cause}: {detail}")
        self.terminals = terminals
        self.cause = cause
        self.detail = detail


def failure_cause(text: str) -> str:
    """What stopped a step, read from what its processes printed (the last cause named wins ties)."""
    if "Too many open files" in text or "EMFILE" in text:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        return f"file descriptors (the soft limit, ulimit -n, is {soft})"
    if "Cannot assign requested address" in text or "EADDRNOTAVAIL" in text:
        return "ephemeral ports (net.ipv4.ip_local_port_range)"
    if "sim.capload" in text or "capload.py" in text:
        return "load generator"
    return "fleet (broker or ingest)"


def run_step(
    workdir: Path,
    n: int,
    *,
    window_s: float,
    hb_s: float,
    vote_s: float,
    warmup_s: float,
    log: Path,
    pg_server: str | None = None,
) -> dict[str, Any]:
    """One step: a fresh broker, ingest and database (a SQLite file, or a scratch database on
    ``pg_server``), N load terminals, one measured window; raises StepFailed."""
    try:
        with ExitStack() as stack:
            db: str | Path = (
                stack.enter_context(scratch_database(pg_server, "hymy_capacity"))
                if pg_server
                else workdir / f"capacity-{n}.db"
            )
            return _run_step(db, n, window_s=window_s, hb_s=hb_s, vote_s=vote_s, warmup_s=warmup_s, log=log)
    except OSError as exc:  # starting the broker, the ingest or the load ran out of something
        raise StepFailed(n, failure_cause(f"{exc} {_tail(log)}"), str(exc)) from exc


def _tail(log: Path, size: int = 20_000) -> str:
    """The end of the step's log, where the cause of a failure is."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, log.stat().st_size - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _run_step(
    db: str | Path, n: int, *, window_s: float, hb_s: float, vote_s: float, warmup_s: float, log: Path
) -> dict[str, Any]:
    from .bench import fleet_ingest

    with MosquittoBroker(max_inflight_messages=1000) as broker:
        with fleet_ingest(broker.host, broker.port, db, log) as ingest:
            cmd = [sys.executable, "-m", "sim.capload", "--host", broker.host, "--port", str(broker.port),
                   "--terminals", str(n), "--prefix", f"cap{n}", "--hb-s", str(hb_s), "--vote-s", str(vote_s),
                   "--warmup-s", str(warmup_s), "--window-s", str(window_s), "--hold"]  # fmt: skip
            with open(log, "ab") as err:
                load = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)
            pids = {"ingest": ingest.pid, "broker": broker.pid, "load": load.pid}
            events: dict[str, dict[str, Any]] = {}
            before: dict[str, Usage | None] = {}
            after: dict[str, Usage | None] = {}
            stored_before = stored_after = 0
            t0 = t1 = 0.0
            with load:
                assert load.stdout is not None and load.stdin is not None
                for line in load.stdout:
                    msg = json.loads(line)
                    events[msg["event"]] = msg
                    if msg["event"] == "start":
                        t0 = time.monotonic()
                        before = {name: usage(pid) for name, pid in pids.items() if pid is not None}
                        stored_before = _stored(db)
                    elif msg["event"] == "end":
                        # The load process waits for its stdin to close, so it is still alive to be read.
                        # CPU is read over the window and the short wait for its late acks after it.
                        t1 = time.monotonic()
                        after = {name: usage(pid) for name, pid in pids.items() if pid is not None}
                        stored_after = _stored(db)
                        break
                load.stdin.close()
                load.wait(60)
            if "end" not in events:
                text = _tail(log)
                last = text.strip().splitlines()[-1] if text.strip() else f"the load generator exited {load.returncode}"
                raise StepFailed(n, failure_cause(text), last)
    seconds = t1 - t0
    step: dict[str, Any] = {
        "terminals": n,
        "measured_s": round(seconds, 1),
        "load": events["end"],
        "processes": _figures(before, after, seconds),
        "stored_votes_per_s": round((stored_after - stored_before) / seconds, 2),
        "offered_votes_per_s": round(n / vote_s, 2),
        "offered_messages_per_s": round(n / vote_s + n / hb_s, 2),
    }
    step["carried"] = carried(step)
    return step


def _stored(db: str | Path) -> int:
    """Votes in the fleet's store now (read beside the running ingest; WAL lets both)."""
    store = open_store(str(db))
    try:
        return store.vote_count()
    finally:
        store.close()


def bench_capacity(
    workdir: Path,
    steps: tuple[int, ...] = DEFAULT_STEPS,
    *,
    window_s: float = 60.0,
    hb_s: float = 60.0,
    vote_s: float = 60.0,
    warmup_s: float = 5.0,
    keep_logs: Path | None = None,
    pg_server: str | None = None,
) -> dict[str, Any]:
    """Ramp the terminals step by step; the largest carried step is what one fleet server carries.

    A step that cannot be run to its end is a result too: it is recorded with its cause, its log is
    copied to ``keep_logs`` (the work directory is deleted afterwards), and the ramp ends there.
    """
    log = workdir / "capacity.log"
    rows: list[dict[str, Any]] = []
    for n in steps:
        # The window measures steady state: the births of N terminals connecting at once are absorbed
        # first (recording one costs about 3 ms on PostgreSQL), so the warm-up grows with N.
        warm = max(warmup_s, n * WARMUP_S_PER_TERMINAL) if warmup_s >= 5.0 else warmup_s
        try:
            row = run_step(
                workdir, n, window_s=window_s, hb_s=hb_s, vote_s=vote_s, warmup_s=warm, log=log, pg_server=pg_server
            )
            row["warmup_s"] = warm
        except StepFailed as exc:
            kept = None
            if keep_logs is not None and log.exists():
                keep_logs.mkdir(parents=True, exist_ok=True)
                kept = str(shutil.copyfile(log, keep_logs / f"capacity-{n}.log"))
            rows.append({"terminals": n, "carried": False, "failed": exc.cause, "detail": exc.detail, "log": kept})
            break
        rows.append(row)
        if not row["carried"]:
            break  # the next step would only be worse, and the run has a time budget
    best = max((r for r in rows if r["carried"]), key=lambda r: r["terminals"], default=None)
    return {
        "engine": "postgresql" if pg_server else "sqlite",
        "heartbeat_s": hb_s,
        "press_every_s": vote_s,
        "window_s": window_s,
        "ack_p99_bound_s": ACK_P99_BOUND_S,
        "steps": rows,
        "carries": best["terminals"] if best else 0,
        "largest_tried": rows[-1]["terminals"] if rows else 0,
        "lower_bound": bool(rows) and rows[-1]["carried"],  # the ramp ended before the fleet gave up
        "limited_by": limited_by(rows[-1]) if rows and not rows[-1]["carried"] else None,
    }


def limited_by(step: dict[str, Any]) -> str:
    """Who failed a step: the load generator when it was itself saturated or late, else the fleet (broker + ingest)."""
    if "failed" in step:
        return str(step["failed"])
    cpu = step["processes"]["load"]["cpu_percent"] or 0.0
    late = step["load"]["schedule_late_p99_s"] or 0.0
    return "load generator" if cpu >= GENERATOR_BUSY_PERCENT or late >= GENERATOR_LATE_S else "fleet"
