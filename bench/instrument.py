"""Time every executor step in the running Celestra processes.

Imported by the Celery worker at start-up (``CELERY_IMPORTS`` of :mod:`bench.settings`). When
``CELESTRA_BENCH_STEP_LOG`` names a directory, each pool process wraps, as it starts
(``worker_process_init``), ``orchestrator.runtime.tasks.step`` (wherever it is called from: the executor's
``advance_execution``, or a worker applying its own result) and the functions that ``step`` calls
with timers, and appends one line per step to ``<dir>/steps.<pid>``:

    <start, epoch seconds> <duration, microseconds> <execution id> <1 if it carried a result> <parts>

``parts`` is a JSON object: milliseconds spent in each part of the step, the number and time of
the SQL statements it sent, and ``role`` (``CELESTRA_BENCH_ROLE``: executor or worker). Nothing of
the engine is changed on disk: the wrapping exists only in these processes.
"""
from __future__ import annotations

import json
import os
import time

from celery.signals import worker_process_init

DIRECTORY = os.environ.get("CELESTRA_BENCH_STEP_LOG")
ROLE = os.environ.get("CELESTRA_BENCH_ROLE", "")

_files: dict[int, object] = {}
_parts: dict[str, float] = {}
_patched: list[bool] = []


def _out():
    pid = os.getpid()
    handle = _files.get(pid)
    if handle is None:  # one file per pool process, opened after the fork
        handle = open(os.path.join(DIRECTORY, f"steps.{pid}"), "a", buffering=1)
        _files.clear()
        _files[pid] = handle
    return handle


def _timed(name: str, fn):
    def timed(*args, **kwargs):
        begun = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _parts[name] = _parts.get(name, 0.0) + (time.perf_counter() - begun) * 1000
    return timed


def _sql(execute, sql, params, many, context):
    begun = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        _parts["sql_ms"] = _parts.get("sql_ms", 0.0) + (time.perf_counter() - begun) * 1000
        _parts["sql_n"] = _parts.get("sql_n", 0) + 1


def WRAPPED(store, tasks, hooks):
    """(module, function, label) of the parts of ``orchestrator.runtime.tasks.step``."""
    return (
        (store, "lock_execution", "lock_load"), (tasks, "get_flow", "flow"), (tasks, "apply_result", "apply"),
        (tasks, "_insert_metrics", "metrics"), (tasks, "engine_environment", "environment"),
        (tasks, "decide", "decide"), (hooks, "after_decision", "hooks"), (store, "save_decision", "save"),
        (tasks, "_send", "dispatch"), (tasks, "_notify_parent", "hooks"), (hooks, "on_execution_end", "hooks"),
    )


def _recorded_step(step):
    def recorded(execution_id, results, *args, **kwargs):
        from django.db import connection

        _parts.clear()
        wrappers = connection.execute_wrappers
        wrappers.append(_sql)
        started = time.time()
        begun = time.perf_counter()
        try:
            return step(execution_id, results, *args, **kwargs)
        finally:
            duration = (time.perf_counter() - begun) * 1000
            if _sql in wrappers:
                wrappers.remove(_sql)
            timed = sum(v for k, v in _parts.items() if k not in ("sql_ms", "sql_n"))
            _parts["other"] = max(duration - timed, 0.0)
            parts = {k: round(v, 3) for k, v in _parts.items()}
            parts["role"] = ROLE
            _out().write(f"{started:.6f} {duration * 1000:.0f} {execution_id} {1 if results else 0} "
                         f"{json.dumps(parts, separators=(',', ':'))}\n")
    return recorded


def _patch() -> None:
    """Wrap the step and its parts with timers, once per process (after Django is set up)."""
    if _patched:
        return
    _patched.append(True)
    from django.db.backends.base.base import BaseDatabaseWrapper

    from orchestrator.runtime import hooks, store, tasks

    for module, name, label in WRAPPED(store, tasks, hooks):
        if hasattr(module, name):  # the engine changes: a part that is gone is not timed
            setattr(module, name, _timed(label, getattr(module, name)))
    tasks.step = _recorded_step(tasks.step)
    BaseDatabaseWrapper.commit = _timed("commit", BaseDatabaseWrapper.commit)
    BaseDatabaseWrapper.connect = _timed("connect", BaseDatabaseWrapper.connect)


def _process_init(**_):
    _patch()


if DIRECTORY:
    os.makedirs(DIRECTORY, exist_ok=True)
    worker_process_init.connect(_process_init, weak=False)


def read_steps(directory: str) -> list[tuple[float, float, str, int, dict]]:
    """Every recorded step: (start epoch s, duration ms, execution id, with result, parts), by start."""
    out = []
    if not os.path.isdir(directory):
        return out
    for name in os.listdir(directory):
        if not name.startswith("steps."):
            continue
        with open(os.path.join(directory, name)) as handle:
            for line in handle:
                fields = line.split(" ", 4)
                if len(fields) < 4:
                    continue
                try:
                    parts = json.loads(fields[4]) if len(fields) == 5 else {}
                    out.append((float(fields[0]), int(fields[1]) / 1000.0, fields[2], int(fields[3]), parts))
                except ValueError:
                    continue  # a line cut by a killed process
    out.sort(key=lambda s: s[0])
    return out
