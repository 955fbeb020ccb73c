"""Durable dispatch: the database is the record of pending work, a message is only a wake-up.

* **Publishing** happens after commit and never raises (:func:`publish`): a lost publish is found
  again by the reconciler, since the work it announces is a row.
* **Claims** (:func:`claim`): a worker runs a job only after moving its row from PENDING to
  RUNNING for that attempt (compare-and-set); a second delivery of the message does nothing.
* **Leases** (:class:`Heartbeat`): each worker process renews the lease of the jobs it runs and
  reads their kill flag in the same query; a job whose lease expires is resubmitted.
* **The reconciler** (:func:`reconcile`): one pass over overdue work, safe in several processes
  at once (rows taken with ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL).
* **Transient errors** (:func:`with_retry`): database and broker errors are retried with backoff.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from django.utils import timezone

from flows_app import models

log = logging.getLogger("celestra.durable")
T = TypeVar("T")

#: errors worth retrying: the database or the broker went away for a while
try:
    from kombu.exceptions import OperationalError as BrokerError
except ImportError:  # pragma: no cover - kombu comes with Celery
    BrokerError = OSError  # type: ignore[assignment,misc]
TRANSIENT: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, BrokerError, ConnectionError)


def knob(name: str) -> Any:
    return settings.DURABILITY[name]


# --- publishing ------------------------------------------------------------------------------

def publish(send: Callable[[], Any], what: str) -> bool:
    """Send a wake-up message; on a broker error log it and go on (the row stays, the reconciler
    sends it again). Returns whether it was sent."""
    try:
        send()
        return True
    except Exception:  # any broker error: a lost wake-up is recovered from its row
        log.warning("could not publish %s; the reconciler will send it again", what, exc_info=True)
        return False


def with_retry(operation: Callable[[], T], what: str, retry_for: float | None = None) -> T:
    """Run ``operation``; on a transient database or broker error, wait (exponential backoff,
    capped) and run it again, for at most ``retry_for`` seconds; then raise the last error.

    ``operation`` must be idempotent: it runs in a transaction of its own, so a failed try
    leaves nothing behind.
    """
    budget = knob("RETRY_FOR") if retry_for is None else retry_for
    deadline = time.monotonic() + budget
    delay = knob("RETRY_BACKOFF")
    while True:
        try:
            return operation()
        except TRANSIENT as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s failed (%s: %s); retrying in %.1fs", what, type(exc).__name__, exc, delay)
            _drop_broken_connection()
            time.sleep(delay)
            delay = min(delay * 2, knob("RETRY_BACKOFF_MAX"))


def _drop_broken_connection() -> None:
    """A connection that saw an error is unusable inside Django until closed."""
    try:
        if connection.in_atomic_block:
            return
        connection.close()
    except DatabaseError:
        pass


# --- worker identity, claims -----------------------------------------------------------------

_identity: tuple[int, str] | None = None


def worker_id(hostname: str | None = None) -> str:
    """Unique per process (a prefork child gets its own): ``celery-hostname/pid/random``."""
    global _identity
    pid = os.getpid()
    if _identity is None or _identity[0] != pid:
        _identity = (pid, f"{hostname or socket.gethostname()}/{pid}/{uuid.uuid4().hex[:6]}")
    return _identity[1]


def claim(job: dict[str, Any], worker: str) -> models.Job | None:
    """Take the job for this attempt: PENDING → RUNNING with this worker and now as start and
    heartbeat. None when another delivery took it already, or it was killed or superseded."""
    moment = timezone.now()
    changed = models.Job.objects.filter(taskrun_id=job["taskrun_id"], attempt=job["attempt"],
                                        state=models.Job.PENDING).update(
        state=models.Job.RUNNING, worker_id=worker, claimed=moment, heartbeat=moment)
    if not changed:
        return None
    return models.Job(taskrun_id=job["taskrun_id"], attempt=job["attempt"], worker_id=worker, claimed=moment)


def park_result(job: dict[str, Any], result: dict[str, Any]) -> None:
    """Keep a result for the next executor step of its execution (one insert), then a wake-up.

    The job row stays RUNNING until that step deletes it; the reconciler does not resubmit a job
    whose result is parked (see :func:`_has_parked_result`), so parking costs no second write.
    """
    from .tasks import enqueue_advance

    with transaction.atomic():
        models.PendingResult.objects.create(execution_id=job["execution_id"], payload=result)
        enqueue_advance(job["execution_id"], recorded=True)


def _has_parked_result(job: models.Job) -> bool:
    return models.PendingResult.objects.filter(execution_id=job.execution_id, payload__taskrun_id=job.taskrun_id,
                                               payload__attempt=job.attempt).exists()


# --- leases ------------------------------------------------------------------------------------

class Heartbeat:
    """One thread per worker process: while jobs run, renew their lease and read their kill flag.

    Every ``HEARTBEAT_INTERVAL`` one query (an ``UPDATE … RETURNING``) renews every running job of
    the process and returns their states; a job found KILLED has its attempt's kill event set (and
    ``on_kill`` called, which interrupts a task blocked in the main thread). Idle, it does nothing.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: dict[tuple[str, int], tuple[threading.Event, Callable[[], None] | None]] = {}
        self.wakeup = threading.Event()
        self.pid = -1
        self.thread: threading.Thread | None = None

    def add(self, key: tuple[str, int], on_kill: Callable[[], None] | None = None) -> threading.Event:
        event = threading.Event()
        with self.lock:
            self.active[key] = (event, on_kill)
            self._ensure_thread()
        self.wakeup.set()
        return event

    def remove(self, key: tuple[str, int]) -> None:
        with self.lock:
            self.active.pop(key, None)

    def event(self, key: tuple[str, int]) -> threading.Event | None:
        with self.lock:
            entry = self.active.get(key)
        return entry[0] if entry else None

    def _ensure_thread(self) -> None:
        # a forked pool process inherits the object but not the thread
        if self.thread is None or self.pid != os.getpid() or not self.thread.is_alive():
            self.pid = os.getpid()
            self.thread = threading.Thread(target=self._loop, name="celestra-heartbeat", daemon=True)
            self.thread.start()

    def _loop(self) -> None:
        while True:
            with self.lock:
                idle = not self.active
            if idle:
                self.wakeup.wait(5)
                self.wakeup.clear()
                continue
            # the claim wrote the first heartbeat: a job shorter than the interval costs no beat
            time.sleep(knob("HEARTBEAT_INTERVAL"))
            with self.lock:
                keys = list(self.active)
            if not keys:
                continue
            try:
                self.beat(keys)
            except Exception:  # the database may be away: the next beat tries again
                log.warning("heartbeat failed", exc_info=True)
                _drop_broken_connection()
            finally:
                close_old_connections()

    def beat(self, keys: list[tuple[str, int]]) -> None:
        """Renew the leases of ``keys`` and stop those found KILLED (one query)."""
        table = models.Job._meta.db_table
        where = " OR ".join(["(taskrun_id = %s AND attempt = %s)"] * len(keys))
        params: list[Any] = [timezone.now()]
        for taskrun_id, attempt in keys:
            params.extend([taskrun_id, attempt])
        with connection.cursor() as cursor:
            cursor.execute(f'UPDATE "{table}" SET heartbeat = %s WHERE {where} RETURNING taskrun_id, attempt, state',
                           params)
            rows = cursor.fetchall()
        found = {(r[0], int(r[1])): r[2] for r in rows}
        for key in keys:
            # KILLED, or superseded (resubmitted after a lost lease: FINISHED by the reconciler;
            # reset by a restart; gone): stop it.
            if found.get(key) != models.Job.RUNNING:
                self.kill(key)

    def kill(self, key: tuple[str, int]) -> None:
        with self.lock:
            entry = self.active.get(key)
        if entry is None or entry[0].is_set():
            return
        log.info("job %s#%s was killed: stopping it", *key)
        entry[0].set()
        if entry[1] is not None:
            entry[1]()


HEARTBEAT = Heartbeat()


# --- the reconciler ----------------------------------------------------------------------------

def _locked(queryset):
    """Rows nobody else is working on: several reconcilers split the work instead of repeating it."""
    if connection.vendor == "postgresql":
        return queryset.select_for_update(skip_locked=True, of=("self",))
    return queryset.select_for_update()


#: since when this process has reached the database without error (None: not yet, or it failed)
_healthy_since: float | None = None


def reconcile(moment=None, check_leases: bool | None = None) -> dict[str, int]:
    """One reconciler pass (see :func:`_reconcile`). Leases are judged only once this process has
    reached the database for ``LEASE_TIMEOUT`` without error (``check_leases`` forces it either way):
    after a database outage, workers need a heartbeat or two to renew what they could not."""
    global _healthy_since
    if check_leases is None:
        check_leases = _healthy_since is not None and time.monotonic() - _healthy_since >= knob("LEASE_TIMEOUT")
    try:
        counts = _reconcile(moment, check_leases)
    except TRANSIENT:
        _healthy_since = None
        raise
    if _healthy_since is None:
        _healthy_since = time.monotonic()
    return counts


def _reconcile(moment, check_leases: bool) -> dict[str, int]:
    """One reconciler pass; returns how many rows of each kind it acted on.

    1. Jobs still PENDING whose message went out ``REPUBLISH_AFTER`` ago: publish again.
    2. Jobs RUNNING whose lease expired and whose result is not parked: hand the execution a
       *resubmit* result (applied by its next step, which records the attempt as
       RESUBMITTED and dispatches the next one, or fails the run after ``MAX_WORKER_DEATHS``).
    3. KILLED jobs nobody runs any more: deleted.
    4. Parked results older than ``REPUBLISH_AFTER``: wake their execution up.
    5. QUEUED executions: wake the oldest of each flow up; its step decides whether a slot is free.
    Executions whose timer is due (``wake_at``, which also records a start or a step announced
    but not yet done) are the sweep's (:func:`orchestrator.runtime.tasks.sweep`).
    """
    from orchestrator.celery import EXECUTOR_QUEUE

    from .tasks import advance_execution, run_task

    moment = moment or timezone.now()
    overdue = moment - timedelta(seconds=knob("REPUBLISH_AFTER"))
    expired = moment - timedelta(seconds=knob("LEASE_TIMEOUT"))
    batch = knob("RECONCILE_BATCH")
    counts = {"republished": 0, "resubmitted": 0, "killed_removed": 0, "parked": 0, "released": 0}

    # 1. lost job messages
    with transaction.atomic():
        jobs = list(_locked(models.Job.objects.filter(state=models.Job.PENDING, published__lt=overdue))
                    .order_by("published")[:batch])
        if jobs:
            models.Job.objects.filter(pk__in=[j.pk for j in jobs]).update(published=moment)
    for job in jobs:
        publish(lambda job=job: run_task.apply_async(args=[job.payload], queue=job.queue), f"job {job}")
    counts["republished"] = len(jobs)

    # 2. expired leases
    dead: list[models.Job] = []
    with transaction.atomic():
        dead = [] if not check_leases else list(_locked(models.Job.objects.filter(state__in=[models.Job.RUNNING, models.Job.FINISHED],
                                                      heartbeat__lt=expired)).order_by("heartbeat")[:batch])
        for job in dead:
            if _has_parked_result(job):
                continue  # its result waits to be applied: step 4 wakes the execution up
            log.warning("worker %s stopped renewing the lease of %s: resubmitting", job.worker_id, job)
            models.PendingResult.objects.create(execution_id=job.execution_id, payload={
                "resubmit": True, "taskrun_id": job.taskrun_id, "attempt": job.attempt,
                "worker_id": job.worker_id, "deaths": job.deaths + 1, "job": job.payload})
            # the heartbeat is pushed forward so that the next pass does not resubmit it again
            models.Job.objects.filter(pk=job.pk).update(state=models.Job.FINISHED, heartbeat=moment)
            counts["resubmitted"] += 1
    for execution_id in {j.execution_id for j in dead}:
        publish(lambda e=execution_id: advance_execution.apply_async(args=[e], queue=EXECUTOR_QUEUE),
                f"step of {execution_id}")

    # 3. killed jobs that no worker holds any more
    with transaction.atomic():
        stale = _locked(models.Job.objects.filter(state=models.Job.KILLED, published__lt=expired)
                        .exclude(heartbeat__gte=expired))
        counts["killed_removed"] = models.Job.objects.filter(pk__in=[j.pk for j in stale[:batch]]).delete()[0]

    # 4. parked results left behind
    parked = set(models.PendingResult.objects.filter(created__lt=overdue).values_list("execution_id", flat=True)
                 .distinct()[:batch])
    for execution_id in parked:
        publish(lambda e=execution_id: advance_execution.apply_async(args=[e], queue=EXECUTOR_QUEUE),
                f"step of {execution_id}")
    counts["parked"] = len(parked)

    # 5. queued executions (the step serialises the slot decision per flow)
    from orchestrator.engine import states

    queued = (models.Execution.objects.filter(state=states.QUEUED).order_by("namespace", "flow_id", "created")
              .values_list("namespace", "flow_id", "id"))[:batch * 10]
    oldest: dict[tuple[str, str], str] = {}
    for namespace, flow_id, execution_id in queued:
        oldest.setdefault((namespace, flow_id), execution_id)
    for execution_id in oldest.values():
        publish(lambda e=execution_id: advance_execution.apply_async(args=[e], queue=EXECUTOR_QUEUE),
                f"step of {execution_id}")
    counts["released"] = len(oldest)
    return counts


# --- resubmission (applied inside an executor step, with the execution locked) ---------------

def gave_up_message(result: dict[str, Any]) -> str:
    return (f"The worker running this task was lost {result['deaths']} times (last: {result['worker_id']}); "
            "the task run failed")


def resubmit(flow: Any, execution: Any, result: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
    """Apply a *resubmit* result: ``(changed run or None, next job message or None)``.

    The attempt whose worker died is recorded as RESUBMITTED (Kestra's state for a task run sent
    again after its worker was lost), with the dead worker's id, and the same job goes out again as
    the next attempt. After ``MAX_WORKER_DEATHS`` the attempt ends FAILED instead, with a log line.
    """
    from orchestrator.engine import states
    from orchestrator.engine.executor import apply_result, find_run
    from orchestrator.engine.model import Attempt, State
    from orchestrator.engine.timeutil import now

    run = find_run(execution, result["taskrun_id"])
    if run is None or run.state.is_terminated() or result["attempt"] != len(run.attempts) + 1:
        return None, None
    moment = now()
    if result["deaths"] >= knob("MAX_WORKER_DEATHS"):
        failed = {"taskrun_id": run.id, "attempt": result["attempt"], "state": states.FAILED,
                  "worker_id": result["worker_id"], "ended": moment.isoformat()}
        return apply_result(flow, execution, failed), None
    run.attempts.append(Attempt(State(states.RESUBMITTED, [(states.RUNNING, moment), (states.RESUBMITTED, moment)]),
                                result.get("worker_id")))
    job = {**result["job"], "attempt": len(run.attempts) + 1, "deaths": result["deaths"]}
    context = dict(job.get("context") or {})
    if isinstance(context.get("taskrun"), dict):  # {{ taskrun.attemptsCount }} of the new attempt
        context["taskrun"] = {**context["taskrun"], "attemptsCount": len(run.attempts)}
    job["context"] = context
    return run, job
