"""The floor: the benchmark's workloads as plain Celery canvas, on the same Redis.

A tiny Celery app with no Django and no database: ``ret`` returns its input plus one character
(like a Return task that uses the previous output), ``log`` logs its input (like a Log task),
``collect`` counts what a chord gathered. ``bench/run.py`` runs it with its own worker processes:

    python -m celery -A bench.floor worker -Q floor -c 2 -P prefork

Results go to the Redis result backend (that is how plain Celery learns that a canvas ended);
each figure is read from the result's ``date_done``, written by the worker that ran the last task.
"""
from __future__ import annotations

import json
import logging
import os
import time
from datetime import datetime
from typing import Iterable

from celery import Celery, chain, chord

REDIS_URL = os.environ.get("CELESTRA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
QUEUE = "floor"
HOP_KEY = "floor:hops:"

app = Celery("celestra_floor", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_serializer="json", accept_content=["json"], result_serializer="json",
    task_default_queue=QUEUE, result_expires=3600, worker_prefetch_multiplier=4,
    broker_connection_retry_on_startup=True, timezone="UTC", enable_utc=True,
)
log = logging.getLogger("floor")


@app.task(name="floor.ret")
def ret(value: str = "") -> str:
    return f"{value}x"


@app.task(name="floor.log")
def log_(value: str) -> None:
    log.info("%s", value)


@app.task(name="floor.collect")
def collect(values: list[str]) -> int:
    return len(values)


@app.task(name="floor.hop", ignore_result=True)
def hop(run_id: str, index: int, total: int) -> None:
    """A sequential loop of ``total`` tasks: each sends the next; the last records the time."""
    if index + 1 < total:
        hop.apply_async(args=[run_id, index + 1, total], queue=QUEUE)
    else:
        hop.app.backend.client.set(HOP_KEY + run_id, repr(time.time()), ex=3600)


# --- canvases ------------------------------------------------------------------------------

def seq(n: int):
    """A chain of n ``ret``: the floor of seq40."""
    return chain(ret.s(""), *[ret.s() for _ in range(n - 1)]).apply_async(queue=QUEUE)


def fan(n: int):
    """A chord of n ``ret`` with a callback that reads them all: the floor of fan100."""
    return chord([ret.s(str(i)) for i in range(n)])(collect.s())


def two():
    """A ``ret`` then a ``log``: the floor of the two-task flow."""
    return (ret.s("hello") | log_.s()).apply_async(queue=QUEUE)


def branches(n: int = 5):
    """The work of kestra-b2: its five Return tasks in sequence (its If tasks need no worker)."""
    return chain(*[ret.si(f"branch {i}") for i in range(1, n + 1)]).apply_async(queue=QUEUE)


def start_hops(run_id: str, total: int) -> None:
    """The floor of foreach10k: ``total`` sequential tasks (a chain that long does not fit a message)."""
    hop.apply_async(args=[run_id, 0, total], queue=QUEUE)


def hops_done(run_id: str) -> float | None:
    value = app.backend.client.get(HOP_KEY + run_id)
    return float(value) if value is not None else None


def done_times(task_ids: Iterable[str]) -> dict[str, float | None]:
    """Epoch seconds at which each task's result was stored, None while not (successfully) done."""
    ids = list(task_ids)
    out: dict[str, float | None] = {}
    client = app.backend.client
    for start in range(0, len(ids), 500):
        batch = ids[start:start + 500]
        for task_id, raw in zip(batch, client.mget([app.backend.get_key_for_task(t) for t in batch])):
            out[task_id] = None
            if raw is None:
                continue
            meta = json.loads(raw)
            if meta.get("status") == "SUCCESS" and meta.get("date_done"):
                out[task_id] = _epoch(meta["date_done"])
    return out


def _epoch(value: str) -> float:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        from datetime import timezone

        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def wait_done(task_ids: Iterable[str], timeout: float, poll: float = 0.005) -> dict[str, float | None]:
    """Poll until every task is done or the timeout passes; returns :func:`done_times`."""
    ids = list(task_ids)
    deadline = time.monotonic() + timeout
    pending = set(ids)
    found: dict[str, float | None] = {t: None for t in ids}
    while pending and time.monotonic() < deadline:
        for task_id, when in done_times(pending).items():
            if when is not None:
                found[task_id] = when
                pending.discard(task_id)
        if pending:
            time.sleep(poll)
    return found
