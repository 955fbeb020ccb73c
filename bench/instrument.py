"""Time every executor step in a running executor process, with Celery's task signals.

Imported by the Celery worker at start-up (``CELERY_IMPORTS`` of :mod:`bench.settings`). When
``CELESTRA_BENCH_STEP_LOG`` names a directory, each pool process appends one line per
``orchestrator.advance_execution`` to ``<dir>/steps.<pid>``:

    <start, epoch seconds> <duration, microseconds> <execution id> <1 if it carried a result>

The duration is the whole task body: lock, load, apply the result, decide, store, commit and
dispatch (``orchestrator.runtime.tasks.step``); not the broker's delivery time.
"""
from __future__ import annotations

import os
import time

from celery.signals import task_postrun, task_prerun

STEP_TASK = "orchestrator.advance_execution"
DIRECTORY = os.environ.get("CELESTRA_BENCH_STEP_LOG")

_started: dict[str, tuple[float, float]] = {}
_files: dict[int, object] = {}


def _out():
    pid = os.getpid()
    handle = _files.get(pid)
    if handle is None:  # one file per pool process, opened after the fork
        handle = open(os.path.join(DIRECTORY, f"steps.{pid}"), "a", buffering=1)
        _files.clear()
        _files[pid] = handle
    return handle


def _prerun(task_id=None, task=None, **_):
    if task is not None and task.name == STEP_TASK:
        _started[task_id] = (time.time(), time.perf_counter())


def _postrun(task_id=None, task=None, args=None, **_):
    begun = _started.pop(task_id, None)
    if begun is None:
        return
    duration = time.perf_counter() - begun[1]
    args = list(args or ())
    execution_id = args[0] if args else "-"
    with_result = 1 if len(args) > 1 and args[1] else 0
    _out().write(f"{begun[0]:.6f} {duration * 1e6:.0f} {execution_id} {with_result}\n")


if DIRECTORY:
    os.makedirs(DIRECTORY, exist_ok=True)
    task_prerun.connect(_prerun, weak=False)
    task_postrun.connect(_postrun, weak=False)


def read_steps(directory: str) -> list[tuple[float, float, str, int]]:
    """Every recorded step: (start epoch s, duration ms, execution id, with result), by start."""
    out = []
    if not os.path.isdir(directory):
        return out
    for name in os.listdir(directory):
        if not name.startswith("steps."):
            continue
        with open(os.path.join(directory, name)) as handle:
            for line in handle:
                parts = line.split()
                if len(parts) == 4:
                    out.append((float(parts[0]), int(parts[1]) / 1000.0, parts[2], int(parts[3])))
    out.sort()
    return out
