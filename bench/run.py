#!/usr/bin/env python
"""Celestra's benchmark, and its floor: the same workloads as plain Celery canvas.

``make bench`` (or ``.venv/bin/python bench/run.py [--quick] [--only NAME[,NAME]]``):

1. creates and migrates the PostgreSQL database ``celestra_bench``, empties Redis db 14;
2. profiles the executor's hot path in this process (``profile``: time per part of a step, database
   round trips per task run);
3. starts the production processes, ``manage.py server executor`` and ``manage.py server worker``
   (2 prefork processes each), and the floor's own Celery worker (2 prefork processes);
4. runs each workload on both, several times after a warm-up, each bounded in time;
5. writes ``bench/RESULTS.md`` and ``bench/results.json`` (see bench/README.md).

Only 127.0.0.1 is used: PostgreSQL on 5432 (trust auth, user postgres) and Redis on 6379.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import time
import traceback
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
FLOWS = BENCH / "flows"
OUT = BENCH / "out"  # process logs and step timings of the last run (not kept in git)
STEPS_DIR = OUT / "steps"
PY = sys.executable

DATABASE_NAME = "celestra_bench"
DATABASE_URL = os.environ.get("CELESTRA_BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DATABASE_NAME}")
REDIS_URL = os.environ.get("CELESTRA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
NAMESPACE = "bench"

WORKLOADS = ("seq40", "fan100", "burst200", "kestra-b2", "foreach10k")
PARTS = ("profile", *WORKLOADS)

# Set before Django or Celery is imported: this process, and the processes it starts, use the
# benchmark's database and Redis db, whatever the caller's environment says.
os.environ.update({
    "DATABASE_URL": DATABASE_URL,
    "CELERY_BROKER_URL": REDIS_URL,
    "CELESTRA_BENCH_REDIS_URL": REDIS_URL,
    # CELESTRA_BENCH_SETTINGS: another settings module to compare with (it should import bench.settings)
    "DJANGO_SETTINGS_MODULE": os.environ.get("CELESTRA_BENCH_SETTINGS", "bench.settings"),
    "PYTHONUNBUFFERED": "1",
})
os.environ.pop("CELESTRA_BENCH_STEP_LOG", None)
sys.path.insert(0, str(ROOT))


class Settings:
    """Sizes, repetitions and time bounds; ``--quick`` makes every one smaller."""

    def __init__(self, quick: bool):
        self.quick = quick
        self.reps = 2 if quick else 5
        self.burst_reps = 2 if quick else 3
        self.burst_size = 50 if quick else 200
        self.foreach_size = 1000 if quick else 10_000
        self.foreach_cap = 120.0 if quick else 600.0
        self.floor_foreach_cap = 60.0 if quick else 300.0
        self.rate_window = 6.0 if quick else 8.0      # seconds of steady submissions per rate
        self.rate_min_count = 10 if quick else 20     # executions per rate, at least
        self.rate_budget = 75.0 if quick else 150.0   # seconds per rate search
        self.rate_start = 120                        # executions per minute
        self.run_timeout = 60.0
        self.burst_timeout = 180.0
        self.drain_timeout = 60.0


# --- small helpers -------------------------------------------------------------------------------

def summary(values: list[float]) -> dict[str, Any]:
    clean = [v for v in values if v is not None]
    if not clean:
        return {"median": None, "min": None, "max": None, "runs": values}
    return {"median": statistics.median(clean), "min": min(clean), "max": max(clean), "runs": values}


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (q in 0..100)."""
    data = sorted(values)
    if not data:
        return float("nan")
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    if pos == low or data[high] == data[low]:
        return data[low]
    return data[low] + (data[high] - data[low]) * (pos - low)


def clean(value: Any) -> Any:
    """JSON-safe: infinite or NaN floats (executions that never ended) become null."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def say(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# --- services: database, Redis -------------------------------------------------------------------

def ensure_database() -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", autocommit=True,
                         connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


_LOCK_CONNECTION: list[Any] = []


def lock_run(wait: float = 1800.0) -> None:
    """One benchmark run at a time on this PostgreSQL and Redis: both are emptied by each run.

    A session-level advisory lock, held by a connection that stays open until this process exits.
    """
    import psycopg

    conn = psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", autocommit=True,
                           connect_timeout=5)
    deadline = time.monotonic() + wait
    told = False
    while not conn.execute("SELECT pg_try_advisory_lock(hashtext('celestra_bench'))").fetchone()[0]:
        if time.monotonic() > deadline:
            raise SystemExit(f"another benchmark run still holds the lock after {wait:.0f} s")
        if not told:
            say("another benchmark run is in progress (same database and Redis db): waiting for it to end")
            told = True
        time.sleep(2)
    _LOCK_CONNECTION.append(conn)


def setup_django() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def redis_client():
    import redis

    return redis.Redis.from_url(REDIS_URL)


def reset_executions() -> None:
    """Empty the execution tables of the benchmark database, so that every workload starts alike."""
    from django.db import connection

    from flows_app import models

    tables = [m._meta.db_table for m in (models.Execution, models.TaskRun, models.LogEntry, models.MetricEntry)]
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE")


def deploy_flows() -> dict[str, int]:
    from flows_app.services import deploy_flow

    out = {}
    for path in sorted(FLOWS.glob("*.yaml")):
        deployed = deploy_flow(path.read_text())
        out[deployed.parsed.id] = deployed.flow.revision
    return out


# --- processes -----------------------------------------------------------------------------------

class Processes:
    """The Celestra roles as in production, and the floor's worker; each in its own process group."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen] = {}

    def spawn(self, name: str, argv: list[str], **env: str) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        log = open(OUT / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **env}, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def start(self) -> "Processes":
        manage = [PY, str(ROOT / "manage.py"), "server"]
        self.spawn("executor", [*manage, "executor", "--concurrency", "2", "--pool", "prefork"],
                   CELESTRA_BENCH_STEP_LOG=str(STEPS_DIR), CELESTRA_BENCH_ROLE="executor")
        self.spawn("worker", [*manage, "worker", "--concurrency", "2", "--pool", "prefork"],
                   CELESTRA_BENCH_STEP_LOG=str(STEPS_DIR), CELESTRA_BENCH_ROLE="worker")
        self.spawn("floor", [PY, "-m", "celery", "-A", "bench.floor", "worker", "-l", "INFO", "-Q", "floor",
                             "-c", "2", "-P", "prefork", "-n", "floor@%h", "-O", "fair", "--without-gossip",
                             "--without-mingle"])
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 90) -> None:
        from orchestrator.celery import app

        wanted = {"executor", "worker", "floor"}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            names = {name.split("@", 1)[0] for reply in (app.control.ping(timeout=1.0) or []) for name in reply}
            if wanted <= names:
                return
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {OUT / (name + '.log')}")
        raise RuntimeError("the benchmark's Celery workers did not answer a ping in time")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        for proc in self.procs.values():  # pool processes left behind, if any, are in the same group
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.procs.clear()


def queue_lengths() -> dict[str, int]:
    client = redis_client()
    return {q: client.llen(q) for q in ("executor", "worker.default", "floor")}


def wait_idle(timeout: float) -> bool:
    """True once no message waits in any queue and no execution is still running."""
    from flows_app import models
    from orchestrator.engine import states

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = any(queue_lengths().values()) or models.Execution.objects.exclude(
            state__in=states.TERMINATED).exists()
        if not busy:
            return True
        time.sleep(0.2)
    return False


def kill_running() -> int:
    """Kill every execution still running (after a workload ran out of time)."""
    from flows_app import models
    from flows_app.services_admin import kill_execution
    from orchestrator.engine import states
    from orchestrator.engine.errors import CelestraError

    killed = 0
    for execution_id in models.Execution.objects.exclude(state__in=states.TERMINATED).values_list("id", flat=True):
        try:
            kill_execution(execution_id)
            killed += 1
        except CelestraError:
            pass
    return killed


# --- Celestra side -------------------------------------------------------------------------------

def submit(flow_id: str, inputs: dict[str, Any] | None = None) -> tuple[str, float]:
    """Create an execution as the API does; returns (id, epoch seconds just before the call)."""
    from flows_app.services import create_execution

    started = time.time()
    execution = create_execution(NAMESPACE, flow_id, inputs or {})
    return execution.id, started


def terminal_times(ids: list[str]) -> dict[str, tuple[str, float]]:
    """Terminated executions among ``ids``: id -> (state, epoch seconds of the terminal write)."""
    from flows_app import models
    from orchestrator.engine import states

    out = {}
    for start in range(0, len(ids), 1000):
        rows = (models.Execution.objects.filter(pk__in=ids[start:start + 1000], state__in=states.TERMINATED)
                .values_list("id", "state", "updated"))
        out.update({pk: (state, updated.timestamp()) for pk, state, updated in rows})
    return out


def wait_terminal(ids: list[str], timeout: float, poll: float = 0.01) -> dict[str, tuple[str, float]]:
    deadline = time.monotonic() + timeout
    done: dict[str, tuple[str, float]] = {}
    while time.monotonic() < deadline:
        pending = [i for i in ids if i not in done]
        if not pending:
            break
        done.update(terminal_times(pending))
        if len(done) < len(ids):
            time.sleep(poll)
    return done


def one_execution(flow_id: str, timeout: float, inputs: dict[str, Any] | None = None) -> float | None:
    """Seconds from the create call to the terminal state of one execution (None: not SUCCESS in time)."""
    execution_id, started = submit(flow_id, inputs)
    done = wait_terminal([execution_id], timeout, poll=0.005)
    if execution_id not in done or done[execution_id][0] != "SUCCESS":
        say(f"  {flow_id} {execution_id}: {done.get(execution_id, ('not terminated',))[0]}")
        return None
    return done[execution_id][1] - started


def burst(flow_id: str, size: int, timeout: float, ids: set[str] | None = None) -> dict[str, Any]:
    submitted = [submit(flow_id) for _ in range(size)]
    accepted = time.time()
    if ids is not None:
        ids.update(i for i, _ in submitted)
    done = wait_terminal([i for i, _ in submitted], timeout, poll=0.05)
    first = submitted[0][1]
    return burst_figures(first, accepted, [(started, done.get(i)) for i, started in submitted])


def burst_figures(first: float, accepted: float, pairs: list[tuple[float, tuple[str, float] | None]]) -> dict:
    size = len(pairs)
    finished = [(s, d) for s, d in pairs if d is not None]
    ok = sum(1 for _, d in finished if d[0] == "SUCCESS")
    if len(finished) < size or ok < size:
        return {"finished": len(finished), "success": ok, "size": size, "total_s": None, "per_s": None,
                "p50_ms": None, "p95_ms": None, "submit_per_s": size / max(accepted - first, 1e-9)}
    total = max(d[1] for _, d in finished) - first
    latencies = [(d[1] - s) * 1000 for s, d in finished]
    return {"finished": size, "success": ok, "size": size, "total_s": total, "per_s": size / total,
            "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
            "submit_per_s": size / max(accepted - first, 1e-9)}


# --- the floor's side ----------------------------------------------------------------------------

def floor_one(make: Callable[[], Any], timeout: float) -> float | None:
    from bench import floor

    started = time.time()
    result = make()
    done = floor.wait_done([result.id], timeout)
    return None if done[result.id] is None else done[result.id] - started


def floor_burst(make: Callable[[], Any], size: int, timeout: float) -> dict[str, Any]:
    from bench import floor

    submitted = []
    for _ in range(size):
        started = time.time()
        submitted.append((make().id, started))
    accepted = time.time()
    done = floor.wait_done([i for i, _ in submitted], timeout, poll=0.02)
    pairs = [(s, ("SUCCESS", done[i]) if done[i] is not None else None) for i, s in submitted]
    return burst_figures(submitted[0][1], accepted, pairs)


# --- steady rate search --------------------------------------------------------------------------

def rate_search(name: str, submit_one: Callable[[], str], collect: Callable[[list[str], float], dict[str, float]],
                cfg: Settings, start: int | None = None) -> dict[str, Any]:
    """Highest rate (executions per minute) whose p95 latency stays under one second.

    Each rate is held for ``rate_window`` seconds (at least ``rate_min_count`` submissions, each at
    its due time); a submission's latency runs from its due time to its end, so a submitter that
    falls behind counts against the system. Rates double until one fails, then the rate halfway
    between the last good one and the failed one is tried. Bounded by ``rate_budget`` seconds.
    """
    began = time.monotonic()
    levels: list[dict[str, Any]] = []
    best = None
    rate = start or cfg.rate_start
    failed_at = None
    while time.monotonic() - began < cfg.rate_budget:
        level = hold_rate(rate, submit_one, collect, cfg)
        levels.append(level)
        say(f"  {name} {rate}/min: p95 {level['p95_ms']:.0f} ms, {level['finished']}/{level['count']} ended"
            f"{'' if level['ok'] else ' (over)'}")
        if level["ok"]:
            best = level
        if failed_at is None:
            if level["ok"]:
                rate *= 2
                continue
            failed_at = rate
            if best is None:
                break
            rate = int(best["rate"] * 1.5)
            continue
        break  # the halfway rate was tried
    return {"max_rate_per_min": best["rate"] if best else None, "p95_ms_at_max": best["p95_ms"] if best else None,
            "levels": levels, "seconds": time.monotonic() - began}


def hold_rate(rate: int, submit_one, collect, cfg: Settings) -> dict[str, Any]:
    wait_idle(cfg.drain_timeout)  # the backlog of a rate that was too high, if any
    interval = 60.0 / rate
    count = max(int(cfg.rate_window * rate / 60.0), cfg.rate_min_count)
    start = time.time() + 0.05
    dues: list[tuple[str, float]] = []
    for i in range(count):
        due = start + i * interval
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        dues.append((submit_one(), due))
    lag = time.time() - (start + (count - 1) * interval)
    ends = collect([i for i, _ in dues], cfg.drain_timeout)
    latencies = [(ends[i] - due) * 1000 if ends.get(i) is not None else float("inf") for i, due in dues]
    finished = sum(1 for i, _ in dues if ends.get(i) is not None)
    p95 = percentile(latencies, 95)
    return {"rate": rate, "count": count, "finished": finished, "p50_ms": percentile(latencies, 50),
            "p95_ms": p95, "submit_lag_s": lag, "ok": finished == count and p95 < 1000.0}


def celestra_collect(ids: list[str], timeout: float) -> dict[str, float]:
    done = wait_terminal(ids, timeout, poll=0.05)
    return {i: t for i, (state, t) in done.items() if state == "SUCCESS"}


def floor_collect(ids: list[str], timeout: float) -> dict[str, float]:
    from bench import floor

    return {i: t for i, t in floor.wait_done(ids, timeout, poll=0.02).items() if t is not None}


# --- executor step timings (bench.instrument, in the Celestra processes) ------------------------------

def executor_steps(ids: set[str]) -> list[tuple[float, float, str, int, dict]]:
    from bench.instrument import read_steps

    return [s for s in read_steps(str(STEPS_DIR)) if s[2] in ids]


STEP_PARTS = ("connect", "lock_load", "flow", "apply", "metrics", "environment", "decide", "hooks", "save", "commit",
              "dispatch", "other", "sql_ms", "sql_n")


def step_summary(steps: list[tuple[float, float, str, int, dict]]) -> dict[str, Any]:
    durations = [s[1] for s in steps]
    if not durations:
        return {"count": 0}
    parts = {name: statistics.fmean([s[4].get(name, 0.0) for s in steps]) for name in STEP_PARTS}
    roles: dict[str, int] = {}
    for s in steps:
        role = s[4].get("role") or "?"
        roles[role] = roles.get(role, 0) + 1
    return {"count": len(durations), "by_role": roles, "median_ms": statistics.median(durations), "mean_ms": statistics.fmean(durations),
            "p95_ms": percentile(durations, 95), "max_ms": max(durations), "mean_parts_ms": parts}


# --- workloads -----------------------------------------------------------------------------------

def figure(name: str, unit: str, better: str, celestra: list, floor: list | None) -> dict[str, Any]:
    return {"name": name, "unit": unit, "better": better, "celestra": summary(celestra),
            "floor": summary(floor) if floor is not None else None}


def run_seq40(cfg: Settings) -> dict[str, Any]:
    from bench import floor

    one_execution("seq40", cfg.run_timeout)  # warm-up
    floor_one(lambda: floor.seq(40), cfg.run_timeout)
    reset_steps_marker = time.time()
    celestra, floors, ids = [], [], set()
    for _ in range(cfg.reps):
        execution_id, started = submit("seq40")
        ids.add(execution_id)
        done = wait_terminal([execution_id], cfg.run_timeout, poll=0.005)
        celestra.append(done[execution_id][1] - started if done.get(execution_id, ("",))[0] == "SUCCESS" else None)
        floors.append(floor_one(lambda: floor.seq(40), cfg.run_timeout))
    per_task = [v / 40 * 1000 if v is not None else None for v in celestra]
    floor_per_task = [v / 40 * 1000 if v is not None else None for v in floors]
    steps = [s for s in executor_steps(ids) if s[0] >= reset_steps_marker]
    return {
        "description": "one execution of 40 sequential Return tasks, each using the previous output; "
                       "floor: a Celery chain of 40 tasks",
        "figures": [
            figure("wall time", "ms", "lower", [v * 1000 if v is not None else None for v in celestra],
                   [v * 1000 if v is not None else None for v in floors]),
            figure("per task", "ms", "lower", per_task, floor_per_task),
        ],
        "executor_steps": step_summary(steps),
    }


def run_fan100(cfg: Settings) -> dict[str, Any]:
    from bench import floor

    one_execution("fan100", cfg.run_timeout)
    floor_one(lambda: floor.fan(100), cfg.run_timeout)
    celestra, floors, ids = [], [], set()
    for _ in range(cfg.reps):
        execution_id, started = submit("fan100")
        ids.add(execution_id)
        done = wait_terminal([execution_id], cfg.run_timeout, poll=0.005)
        celestra.append((done[execution_id][1] - started) * 1000
                        if done.get(execution_id, ("",))[0] == "SUCCESS" else None)
        value = floor_one(lambda: floor.fan(100), cfg.run_timeout)
        floors.append(value * 1000 if value is not None else None)
    return {
        "description": "one execution: a ForEach over 100 values (concurrencyLimit 0), a Return each, then a "
                       "Return reading all 100 outputs (102 task runs); floor: a Celery chord of 100 tasks",
        "figures": [figure("wall time", "ms", "lower", celestra, floors),
                    figure("per value", "ms", "lower", [v / 100 if v else None for v in celestra],
                           [v / 100 if v else None for v in floors])],
        "executor_steps": step_summary(executor_steps(ids)),
    }


def run_burst(cfg: Settings) -> dict[str, Any]:
    from bench import floor

    size = cfg.burst_size
    burst("two", max(size // 4, 10), cfg.burst_timeout)  # warm-up
    floor_burst(floor.two, max(size // 4, 10), cfg.burst_timeout)
    wait_idle(cfg.drain_timeout)
    c_runs, f_runs, ids = [], [], set()
    for rep in range(cfg.burst_reps):
        reset_executions()
        c_runs.append(burst("two", size, cfg.burst_timeout, ids))
        wait_idle(cfg.drain_timeout)
        f_runs.append(floor_burst(floor.two, size, cfg.burst_timeout))
        say(f"  burst rep {rep + 1}: Celestra {fmt(c_runs[-1]['total_s'], 's')}, "
            f"floor {fmt(f_runs[-1]['total_s'], 's')}")

    def col(runs, key):
        return [r[key] for r in runs]

    return {
        "description": f"{size} executions of the two-task flow (Return, Log) created as fast as they are "
                       f"accepted; floor: {size} Celery chains of two tasks",
        "size": size,
        "figures": [
            figure("all terminal", "s", "lower", col(c_runs, "total_s"), col(f_runs, "total_s")),
            figure("throughput", "exec/s", "higher", col(c_runs, "per_s"), col(f_runs, "per_s")),
            figure("latency p50", "ms", "lower", col(c_runs, "p50_ms"), col(f_runs, "p50_ms")),
            figure("latency p95", "ms", "lower", col(c_runs, "p95_ms"), col(f_runs, "p95_ms")),
            figure("accepted", "exec/s", "higher", col(c_runs, "submit_per_s"), col(f_runs, "submit_per_s")),
        ],
        "runs": {"celestra": c_runs, "floor": f_runs},
        "executor_steps": step_summary(executor_steps(ids)),
    }


def run_rates(cfg: Settings) -> dict[str, Any]:
    from bench import floor

    out: dict[str, Any] = {"description": "executions submitted at a steady rate, doubled until the p95 latency "
                                          "(due time to end) reaches one second, then the rate halfway; floor: the "
                                          "same with Celery chains, from the rate Celestra sustained (kestra-b2: its "
                                          "5 Return tasks in a chain, its If tasks need no worker)",
                           "figures": [], "searches": {}}
    for variant, flow_id, floor_make in (("kestra-b2", "kestra-b2", floor.branches), ("two-task", "two", floor.two)):
        reset_executions()
        one_execution(flow_id, cfg.run_timeout)
        c = rate_search(f"Celestra {variant}", lambda f=flow_id: submit(f)[0], celestra_collect, cfg)
        if not wait_idle(cfg.drain_timeout):
            say("  executions left running; killing them")
            kill_running()
            wait_idle(cfg.drain_timeout)
        floor_one(floor_make, cfg.run_timeout)
        # the floor's search starts at the rate Celestra sustained: its p95 there is the comparison
        f = rate_search(f"floor {variant}", lambda m=floor_make: m().id, floor_collect, cfg,
                        start=c["max_rate_per_min"])
        wait_idle(cfg.drain_timeout)
        out["searches"][variant] = {"celestra": c, "floor": f}
        same = next((lv for lv in f["levels"] if lv["rate"] == c["max_rate_per_min"]), None)
        out["figures"].append(figure(f"{variant}: max rate, p95 < 1 s", "exec/min", "higher",
                                     [c["max_rate_per_min"]], [f["max_rate_per_min"]]))
        out["figures"].append(figure(f"{variant}: p95 at Celestra's max rate", "ms", "lower",
                                     [c["p95_ms_at_max"]], [same["p95_ms"] if same else None]))
    return out


def run_foreach(cfg: Settings) -> dict[str, Any]:
    from bench import floor
    from flows_app import models

    size = cfg.foreach_size
    one_execution("foreach10k", cfg.run_timeout, {"count": 20})  # warm-up
    execution_id, started = submit("foreach10k", {"count": size})
    deadline = time.monotonic() + cfg.foreach_cap
    done: dict = {}
    while time.monotonic() < deadline:
        done = terminal_times([execution_id])
        if done:
            break
        time.sleep(0.5)
    finished = execution_id in done
    total = done[execution_id][1] - started if finished else None
    iterations = models.TaskRun.objects.filter(execution_id=execution_id, task_id="r", state="SUCCESS").count()
    state = done[execution_id][0] if finished else "RUNNING"
    if not finished:
        say(f"  foreach: did not finish in {cfg.foreach_cap:.0f} s ({iterations}/{size} values done); killing it")
        kill_running()
        wait_idle(120)
    steps = executor_steps({execution_id})
    steps = [s for s in steps if s[0] <= started + cfg.foreach_cap]
    window = min(1000, len(steps) // 2)
    first, last = steps[:window], steps[-window:] if window else []
    first_ms = statistics.median([s[1] for s in first]) if first else None
    last_ms = statistics.median([s[1] for s in last]) if last else None

    run_id = uuid.uuid4().hex
    f_started = time.time()
    floor.start_hops(run_id, size)
    f_total = None
    f_deadline = time.monotonic() + cfg.floor_foreach_cap
    while time.monotonic() < f_deadline:
        ended = floor.hops_done(run_id)
        if ended is not None:
            f_total = ended - f_started
            break
        time.sleep(0.2)
    return {
        "description": f"one execution: a ForEach over {size} values, one at a time (the ForEach default), a "
                       f"Return each; capped at {cfg.foreach_cap:.0f} s. Floor: {size} sequential Celery tasks, "
                       "each sending the next (a chain that long does not fit in one message)",
        "size": size, "cap_s": cfg.foreach_cap, "finished": finished, "state": state, "values_done": iterations,
        "figures": [
            figure("total time", "s", "lower", [total], [f_total]),
            figure("values done per second", "values/s", "higher",
                   [iterations / (total if finished else cfg.foreach_cap)],
                   [size / f_total] if f_total else [None]),
        ],
        "steps": {"count": len(steps), "window": window, "first_median_ms": first_ms, "last_median_ms": last_ms,
                  "first": step_summary(first), "last": step_summary(last),
                  "first_mean_ms": statistics.fmean([s[1] for s in first]) if first else None,
                  "last_mean_ms": statistics.fmean([s[1] for s in last]) if last else None,
                  "growth": (last_ms / first_ms) if first_ms and last_ms else None,
                  "floor_per_hop_ms": (f_total / size * 1000) if f_total else None},
    }


# --- profile of the hot path, in this process ----------------------------------------------------

class Timers:
    def __init__(self) -> None:
        self.total: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def add(self, name: str, seconds: float) -> None:
        self.total[name] = self.total.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1

    def wrap(self, name: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            begun = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - begun)
        return timed


@contextmanager
def patched(target: Any, attribute: str, value: Any):
    original = getattr(target, attribute)
    setattr(target, attribute, value)
    try:
        yield original
    finally:
        setattr(target, attribute, original)


class QueryCounter:
    """Every SQL statement sent through Django, with its time, by first keyword."""

    def __init__(self, timers: Timers):
        self.timers = timers
        self.count = 0
        self.by_kind: dict[str, int] = {}

    def __call__(self, execute, sql, params, many, context):
        kind = sql.lstrip().split(None, 1)[0].upper() if sql else "?"
        self.count += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        begun = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.timers.add("sql:" + kind, time.perf_counter() - begun)


SINK_QUEUE = "bench.sink"


def drive(flow_id: str, timers: Timers | None, inputs: dict | None = None) -> dict[str, Any]:
    """Run one execution in this process: each step as the executor runs it, each job as a worker.

    Jobs are really published to Redis (to a queue no one reads) so that dispatch costs what it
    costs in production; the worker side runs in this process.
    """
    from django.db import connection

    from flows_app.services import create_execution
    from orchestrator.runtime import hooks, store, tasks
    from orchestrator.runtime.worker import run_job

    sent: list[dict[str, Any]] = []
    timers = timers or Timers()
    counter = QueryCounter(timers)
    step_queries: list[int] = []
    sizes: list[int] = []

    def send(jobs, released):
        for job in jobs:
            sent.append(job)
            sizes.append(len(json.dumps(job, default=str)))
            tasks.run_task.apply_async(args=[job], queue=SINK_QUEUE)

    connection.ensure_connection()
    wrappers = [
        (store, "lock_execution"), (store, "save_decision"), (tasks, "apply_result"), (tasks, "decide"),
        (tasks, "get_flow"), (tasks, "engine_environment"), (tasks, "_insert_metrics"), (store, "insert_logs"),
        (hooks, "after_decision"), (hooks, "on_execution_end"), (tasks, "_notify_parent"),
    ]
    with connection.execute_wrapper(counter):
        before = counter.count
        begun = time.perf_counter()
        execution = create_execution(NAMESPACE, flow_id, inputs or {}, start=False)
        timers.add("create_execution", time.perf_counter() - begun)
        create_queries = counter.count - before
        stack = []
        try:
            for target, attribute in wrappers:
                if not hasattr(target, attribute):  # the engine changes: a part that is gone is not timed
                    continue
                cm = patched(target, attribute, timers.wrap(attribute, getattr(target, attribute)))
                cm.__enter__()
                stack.append(cm)
            cm = patched(tasks, "_send", timers.wrap("dispatch", send))
            cm.__enter__()
            stack.append(cm)
            cm = patched(connection, "commit", timers.wrap("commit", connection.commit))
            cm.__enter__()
            stack.append(cm)

            def one_step(results):
                before = counter.count
                begun = time.perf_counter()
                tasks.step(execution.id, results)
                timers.add("step", time.perf_counter() - begun)
                step_queries.append(counter.count - before)

            one_step([])
            worker_queries = 0
            while sent:
                job = sent.pop(0)
                before = counter.count
                begun = time.perf_counter()
                result = run_job(job, worker_id="bench")
                timers.add("worker run_job", time.perf_counter() - begun)
                worker_queries += counter.count - before
                one_step([result])
        finally:
            for cm in reversed(stack):
                cm.__exit__(None, None, None)
    from flows_app import models

    row = models.Execution.objects.get(pk=execution.id)
    task_runs = models.TaskRun.objects.filter(execution_id=execution.id).count()
    return {"state": row.state, "steps": len(step_queries), "task_runs": task_runs,
            "jobs": len(sizes), "step_queries": sum(step_queries), "create_queries": create_queries,
            "worker_queries": worker_queries, "by_kind": counter.by_kind, "message_bytes": sizes}


def profile_flow(flow_id: str, inputs: dict | None = None, min_steps: int = 120) -> dict[str, Any]:
    """Time the parts of the executor's steps over executions of one flow (at least ``min_steps``)."""
    from django.db.models import Model, QuerySet

    drive(flow_id, None, inputs)  # warm-up: caches, connections, compiled templates
    timers = Timers()
    info: dict[str, Any] = {}

    def per_model(name: str, fn: Callable) -> Callable:
        def timed(self, *args, **kwargs):
            model = self.model.__name__ if isinstance(self, QuerySet) else type(self).__name__
            begun = time.perf_counter()
            try:
                return fn(self, *args, **kwargs)
            finally:
                timers.add(f"{name}:{model}", time.perf_counter() - begun)
        return timed

    with patched(QuerySet, "bulk_create", per_model("bulk_create", QuerySet.bulk_create)), \
            patched(QuerySet, "bulk_update", per_model("bulk_update", QuerySet.bulk_update)), \
            patched(Model, "save", per_model("save", Model.save)):
        while info.get("steps", 0) < min_steps:
            one = drive(flow_id, timers, inputs)
            for key, value in one.items():
                if key == "by_kind":
                    merged = info.setdefault(key, {})
                    for kind, count in value.items():
                        merged[kind] = merged.get(kind, 0) + count
                elif isinstance(value, (int, list)):
                    info[key] = info.get(key, 0 if isinstance(value, int) else []) + value
                else:
                    info[key] = value
            info["executions"] = info.get("executions", 0) + 1
    steps = info["steps"]
    per_step = {name: timers.total[name] * 1000 / steps for name in timers.total}
    parts = {
        "lock + load (SELECT … FOR UPDATE, task runs)": per_step.get("lock_execution", 0),
        "apply worker result": per_step.get("apply_result", 0),
        "insert metrics of the result": per_step.get("_insert_metrics", 0),
        "decide (engine)": per_step.get("decide", 0),
        "save decision": per_step.get("save_decision", 0),
        "– insert new task runs": per_step.get("bulk_create:TaskRun", 0),
        "– update changed task runs": per_step.get("bulk_update:TaskRun", 0),
        "– update the execution row": per_step.get("save:Execution", 0),
        "– insert log lines": per_step.get("insert_logs", 0),
        "commit": per_step.get("commit", 0),
        "dispatch (publish jobs to Redis)": per_step.get("dispatch", 0),
        "environment + flow cache": per_step.get("engine_environment", 0) + per_step.get("get_flow", 0),
        "hooks (SLA, end of execution)": sum(per_step.get(k, 0) for k in ("after_decision", "on_execution_end",
                                                                          "_notify_parent")),
    }
    step_ms = per_step.get("step", 0)
    parts["other (job messages, transaction)"] = max(
        step_ms - sum(v for k, v in parts.items() if not k.startswith("–")), 0.0)
    sql_ms = {k[4:]: v for k, v in per_step.items() if k.startswith("sql:")}
    by_kind = {k: v for k, v in sorted(info["by_kind"].items(), key=lambda kv: -kv[1])}
    # cProfile of the steps of one more execution, the worker side excluded
    from orchestrator.runtime import tasks

    profiler = cProfile.Profile()
    original_step = tasks.step

    def profiled_step(*args, **kwargs):
        profiler.enable()
        try:
            return original_step(*args, **kwargs)
        finally:
            profiler.disable()

    profiled_steps = 0
    with patched(tasks, "step", profiled_step):
        while profiled_steps < min_steps:
            profiled_steps += drive(flow_id, None, inputs)["steps"]
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    total_tt = sum(v[2] for v in stats.stats.values()) or 1.0
    top = []
    for (filename, line, func), (_cc, nc, tt, _ct, _) in sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:12]:
        top.append({"function": f"{short_path(filename)}:{line}({func})", "calls_per_step": nc / profiled_steps,
                    "own_ms_per_step": tt * 1000 / profiled_steps, "share": tt / total_tt})
    stats.sort_stats("cumulative").print_stats(40)
    (OUT / f"profile-{flow_id}.txt").write_text(stream.getvalue())
    sizes = info["message_bytes"]
    return {
        "state": info["state"], "steps": steps, "task_runs": info["task_runs"], "jobs": info["jobs"],
        "step_ms": step_ms, "parts_ms": parts, "sql_ms_per_step": sql_ms,
        "sql_ms_total_per_step": sum(sql_ms.values()),
        "queries_per_step": info["step_queries"] / steps,
        "queries_per_task_run": info["step_queries"] / info["task_runs"],
        "round_trips_per_task_run": (info["step_queries"] + 2 * steps) / info["task_runs"],
        "executions": info["executions"],
        "create_execution_ms": timers.total.get("create_execution", 0) * 1000 / info["executions"],
        "create_execution_queries": info["create_queries"] / info["executions"],
        "worker_ms_per_job": timers.total.get("worker run_job", 0) * 1000 / max(info["jobs"], 1),
        "worker_queries": info["worker_queries"],
        "queries_by_kind": by_kind,
        "job_message_bytes": {"mean": statistics.fmean(sizes) if sizes else 0, "max": max(sizes) if sizes else 0},
        "top_functions": top,
    }


def short_path(filename: str) -> str:
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    if "/lib/python3" in filename:  # the standard library
        return filename.split("/lib/python3", 1)[1].split("/", 1)[-1]
    return filename


def run_profile(cfg: Settings) -> dict[str, Any]:
    out = {}
    for flow_id, inputs in (("seq40", None), ("fan100", None), ("two", None), ("foreach10k", {"count": 300})):
        out[flow_id if flow_id != "foreach10k" else "foreach300"] = profile_flow(flow_id, inputs)
        say(f"  profiled {flow_id}: {out[list(out)[-1]]['step_ms']:.2f} ms/step")
    redis_client().delete(SINK_QUEUE)
    return out


# --- report ----------------------------------------------------------------------------------------

def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        text = f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip() if unit else text


def cell(stats: dict | None, unit: str) -> str:
    if not stats or stats["median"] is None:
        return "–"
    text = fmt(stats["median"], unit)
    runs = [r for r in stats["runs"] if r is not None]
    if len(runs) > 1:
        text += f" ({fmt(stats['min'])}–{fmt(stats['max'])})"
    if len(runs) < len(stats["runs"]):
        text += f", {len(stats['runs']) - len(runs)} failed"
    return text


def ratio(fig: dict) -> float | None:
    c, f = fig["celestra"]["median"], (fig["floor"] or {}).get("median")
    if not c or not f:
        return None
    return c / f if fig["better"] == "lower" else f / c


def render_markdown(data: dict[str, Any]) -> str:
    meta = data["meta"]
    lines = [
        "# Celestra benchmark results",
        "",
        f"Generated by `make bench` ({'`--quick`' if meta.get('quick') else 'full run'}) on {meta['date']}: "
        f"{meta['cpus']} CPUs ({meta['cpu']}), PostgreSQL {meta['postgres']}, Redis {meta['redis']}, "
        f"Python {meta['python']}, Celery {meta['celery']}, Django {meta['django']}, commit {meta['commit']}. "
        f"Load average (1 min) before the run: {fmt(meta.get('load_at_start'))}"
        + (" (the machine was busy with other work: figures are noisier than usual)."
           if (meta.get("load_at_start") or 0) > 1.0 else "."),
        "Executor and worker: `manage.py server executor|worker`, 2 prefork processes each; the floor: plain "
        "Celery canvas on the same Redis, its own worker with 2 prefork processes. See bench/README.md for what "
        "each figure means. Cells: median (min–max) over the repetitions; **× floor** is how many times "
        "Celestra's cost is the floor's (time ÷ floor time, or floor rate ÷ rate: 1.0 is the floor).",
        "",
        "| workload | figure | Celestra | floor (plain Celery) | × floor |",
        "|---|---|---|---|---|",
    ]
    for name in WORKLOADS:
        work = data["workloads"].get(name)
        if not work:
            continue
        for fig in work.get("figures", []):
            label = name
            c = cell(fig["celestra"], fig["unit"])
            if name == "foreach10k" and fig["name"] == "total time" and not work.get("finished"):
                c = f"did not finish in {work['cap_s']:.0f} s ({work['values_done']}/{work['size']} values)"
            r = ratio(fig)
            if r is None and name == "foreach10k" and fig["name"] == "total time" and not work.get("finished") \
                    and fig["floor"]["median"]:
                rtext = f"> {work['cap_s'] / fig['floor']['median']:.0f}"
            else:
                rtext = f"{r:.1f}" if r is not None else "–"
            lines.append(f"| {label} | {fig['name']} | {c} | {cell(fig['floor'], fig['unit'])} | {rtext} |")
    lines.append("")
    for name in WORKLOADS:
        work = data["workloads"].get(name)
        if work:
            lines.append(f"- **{name}**: {work['description']} (measured {work.get('measured_at', '?')}).")
    rates = data["workloads"].get("kestra-b2")
    if rates:
        lines += ["", "## Rate searches", "",
                  "Each rate held for a window of steady submissions; p95 from due time to end (ms).", ""]
        for variant, pair in rates["searches"].items():
            for side in ("celestra", "floor"):
                levels = ", ".join(f"{lv['rate']}/min: {fmt(lv['p95_ms'])}{'' if lv['ok'] else ' ✗'}"
                                   for lv in pair[side]["levels"])
                lines.append(f"- {variant}, {side}: {levels}")
    each = data["workloads"].get("foreach10k")
    if each:
        st = each["steps"]
        lines += ["", "## foreach10k: executor time per step", "",
                  f"{st['count']} steps recorded in the Celestra processes "
                  f"({'finished' if each['finished'] else 'cut at the cap'}). Median step: first {st['window']} "
                  f"steps {fmt(st['first_median_ms'], 'ms')}, last {st['window']} steps "
                  f"{fmt(st['last_median_ms'], 'ms')} (× {fmt(st['growth'])}); means "
                  f"{fmt(st['first_mean_ms'], 'ms')} → {fmt(st['last_mean_ms'], 'ms')}. The floor's sequential hop: "
                  f"{fmt(st['floor_per_hop_ms'], 'ms')}."]
    columns: dict[str, dict] = {}
    for name in ("seq40", "fan100", "burst200"):
        es = (data["workloads"].get(name) or {}).get("executor_steps") or {}
        if es.get("count"):
            columns[name] = es
    if each and each["steps"].get("first", {}).get("count"):
        columns[f"foreach10k first {each['steps']['window']}"] = each["steps"]["first"]
        columns[f"foreach10k last {each['steps']['window']}"] = each["steps"]["last"]
    profile = data.get("profile")
    lines += ["", "## Where the time goes", ""]
    if profile:
        lines += [
            "Measured in the benchmark process on the same PostgreSQL and Redis: each step runs "
            "`orchestrator.runtime.tasks.step` as the executor does (jobs really published to Redis, to a "
            "queue no one reads), each job runs `orchestrator.runtime.worker.run_job`. Milliseconds per "
            "executor step (one step per worker result, plus the first); wall-clock timers around each part.",
            "",
            "| part of a step (ms) | " + " | ".join(profile) + " |",
            "|---|" + "---|" * len(profile),
        ]
        first = next(iter(profile.values()))
        for part in first["parts_ms"]:
            lines.append(f"| {part} | " + " | ".join(fmt(p["parts_ms"][part]) for p in profile.values()) + " |")
        rows = [
            ("**whole step**", lambda p: f"**{fmt(p['step_ms'])}**"),
            ("of which SQL execution", lambda p: fmt(p["sql_ms_total_per_step"])),
            ("executions / steps / task runs / worker jobs",
             lambda p: f"{p['executions']} / {p['steps']} / {p['task_runs']} / {p['jobs']}"),
            ("SQL statements per step", lambda p: fmt(p["queries_per_step"])),
            ("SQL statements per task run", lambda p: fmt(p["queries_per_task_run"])),
            ("DB round trips per task run (+ BEGIN, COMMIT)", lambda p: fmt(p["round_trips_per_task_run"])),
            ("create_execution: ms / statements",
             lambda p: f"{fmt(p['create_execution_ms'])} / {fmt(p['create_execution_queries'])}"),
            ("worker run_job, ms per job (DB statements)",
             lambda p: f"{fmt(p['worker_ms_per_job'])} ({p['worker_queries']})"),
            ("job message, mean / max bytes",
             lambda p: f"{fmt(p['job_message_bytes']['mean'])} / {p['job_message_bytes']['max']}"),
        ]
        for label, get in rows:
            lines.append(f"| {label} | " + " | ".join(get(p) for p in profile.values()) + " |")
        lines += ["", "SQL statements by kind (whole execution, steps and creation): " + "; ".join(
            f"{name}: " + ", ".join(f"{k} {v}" for k, v in p["queries_by_kind"].items())
            for name, p in profile.items())]
        lines += ["", "Top functions by own time inside steps (cProfile, seq40 and foreach300):", ""]
        for name in ("seq40", "foreach300"):
            if name in profile:
                lines.append(f"- {name}: " + "; ".join(
                    f"`{t['function']}` {fmt(t['own_ms_per_step'])} ms ({t['share'] * 100:.0f}%)"
                    for t in profile[name]["top_functions"][:6]))
    if columns:
        labels = {"connect": "connect to PostgreSQL", "lock_load": "lock + load", "flow": "flow cache",
                  "apply": "apply worker result",
                  "metrics": "insert metrics", "environment": "environment", "decide": "decide (engine)",
                  "hooks": "hooks (SLA, end of execution)", "save": "save decision", "commit": "commit",
                  "dispatch": "dispatch", "other": "other (job messages, transaction)",
                  "sql_ms": "of which SQL execution (ms)", "sql_n": "SQL statements"}
        lines += ["", "The same parts in the running processes, while the workloads ran (`bench/instrument.py`: "
                  "timers wrapped around `step` and the functions it calls, in those processes only; steps run by "
                  "the executor, or by a worker that applies its own result; mean ms per step unless said "
                  "otherwise):", "",
                  "| executor step | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        lines.append("| steps | " + " | ".join(str(c["count"]) for c in columns.values()) + " |")
        lines.append("| of which run by | " + " | ".join(
            ", ".join(f"{role} {n}" for role, n in sorted(c.get("by_role", {}).items())) for c in columns.values())
            + " |")
        lines.append("| **median / mean step** | " + " | ".join(
            f"**{fmt(c['median_ms'])} / {fmt(c['mean_ms'])}**" for c in columns.values()) + " |")
        lines.append("| p95 / max step | " + " | ".join(
            f"{fmt(c['p95_ms'])} / {fmt(c['max_ms'])}" for c in columns.values()) + " |")
        for key, label in labels.items():
            values = [fmt(c.get("mean_parts_ms", {}).get(key)) for c in columns.values()]
            lines.append(f"| {label} | " + " | ".join(values) + " |")
    lines.append("")
    return "\n".join(lines)


def machine_meta(cfg: Settings) -> dict[str, Any]:
    import celery
    import django
    from django.db import connection

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0].split()[0]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                timeout=10).stdout.strip() or "?"
        changed = [line[3:] for line in subprocess.run(
            ["git", "status", "--porcelain", "--", "orchestrator", "flows_app"], cwd=ROOT, capture_output=True,
            text=True, timeout=10).stdout.splitlines() if line.strip()]
        if changed:
            commit += f" + uncommitted changes to {len(changed)} file(s) of orchestrator/ and flows_app/"
    except Exception:  # noqa: BLE001
        commit = "?"
    return {"date": utc_now(), "quick": cfg.quick, "load_at_start": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count(), "cpu": cpu, "postgres": postgres,
            "redis": redis_client().info().get("redis_version", "?"), "python": platform.python_version(),
            "celery": celery.__version__, "django": django.get_version(), "commit": commit}


# --- main --------------------------------------------------------------------------------------------

RUNNERS: dict[str, Callable[[Settings], dict[str, Any]]] = {
    "seq40": run_seq40, "fan100": run_fan100, "burst200": run_burst, "kestra-b2": run_rates,
    "foreach10k": run_foreach,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and smaller sizes")
    parser.add_argument("--only", default="", help=f"comma list among: {', '.join(PARTS)}")
    parser.add_argument("--out", default=str(BENCH), help="directory for RESULTS.md and results.json")
    args = parser.parse_args(argv)
    only = [n.strip() for n in args.only.split(",") if n.strip()] or list(PARTS)
    unknown = [n for n in only if n not in PARTS]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; choose among {', '.join(PARTS)}")
    cfg = Settings(args.quick)
    lock_run()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / "results.json"
    data: dict[str, Any] = {"workloads": {}}
    if results_path.exists() and set(only) != set(PARTS):  # --only: keep the other workloads' last figures
        try:
            data = json.loads(results_path.read_text())
        except ValueError:
            pass
    data.setdefault("workloads", {})

    OUT.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(STEPS_DIR, ignore_errors=True)
    STEPS_DIR.mkdir(parents=True)
    say(f"database {DATABASE_URL}, redis {REDIS_URL}")
    ensure_database()
    setup_django()
    redis_client().flushdb()
    reset_executions()
    deploy_flows()
    data["meta"] = machine_meta(cfg)

    def save() -> None:
        results_path.write_text(json.dumps(clean(data), indent=2, default=str) + "\n")
        (out_dir / "RESULTS.md").write_text(render_markdown(data))

    if "profile" in only:
        say("profile of the hot path (in this process)")
        data["profile"] = run_profile(cfg)
        data["profile_measured_at"] = utc_now()
        reset_executions()
        save()
    workloads = [n for n in WORKLOADS if n in only]
    if workloads:
        say("starting executor, worker and floor processes")
        procs = Processes().start()
        try:
            for name in workloads:
                say(f"{name}")
                reset_executions()
                began = time.monotonic()
                try:
                    result = RUNNERS[name](cfg)
                except Exception:  # noqa: BLE001 - one broken workload must not lose the others
                    traceback.print_exc()
                    result = {"description": "failed: " + traceback.format_exc().strip().splitlines()[-1],
                              "figures": []}
                result["measured_at"] = utc_now()
                result["seconds"] = time.monotonic() - began
                data["workloads"][name] = result
                if not wait_idle(cfg.drain_timeout):
                    say("  still busy after the workload; killing what runs")
                    kill_running()
                    wait_idle(cfg.drain_timeout)
                save()
                for fig in result.get("figures", []):
                    r = ratio(fig)
                    say(f"  {fig['name']}: Celestra {cell(fig['celestra'], fig['unit'])}, floor "
                        f"{cell(fig['floor'], fig['unit'])}, × floor {fmt(r)}")
        finally:
            procs.stop()
    save()
    say(f"wrote {out_dir / 'RESULTS.md'} and {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
