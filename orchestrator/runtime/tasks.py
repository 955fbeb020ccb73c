"""Celery tasks: thin adapters around the engine.

* ``orchestrator.advance_execution`` (queue ``executor``): lock the execution, fold in worker
  results, decide, store (with the jobs it dispatches, as rows), then publish after commit. Acks
  late and retries on transient database and broker errors; the step is idempotent.
* ``orchestrator.run_task`` (queue ``worker.<group>``): claim the job for its attempt (a second
  delivery does nothing), run it under a lease, then apply or park its result.
* ``orchestrator.sweep`` (queue ``executor``, periodic): wakes executions whose timer is due; the
  timer also records a start or a step announced but not done yet.
* ``orchestrator.reconcile`` (queue ``executor``, periodic): see orchestrator.runtime.durable.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from flows_app import models
from orchestrator.celery import EXECUTOR_QUEUE, worker_queue
from orchestrator.engine import states
from orchestrator.engine.errors import CelestraError, FlowNotFound
from orchestrator.engine.executor import LogLine, apply_result, apply_subflow_result, decide
from orchestrator.engine.plugins import load_builtin_plugins

from . import durable, hooks, store
from .environment import engine_environment
from .flows import get_flow
from .worker import parse_ts, run_job

log = logging.getLogger("celestra.executor")

# Every role imports this module at start, before its pool runs tasks: load the plugin registry now.
# Loaded lazily by the first task instead, two threads of a pool could race on a half-filled
# registry ("Invalid type: io.kestra.plugin.core.debug.Return") right after a restart.
load_builtin_plugins()

#: context keys that the worker adds itself (not shipped in job messages)
WORKER_LOCAL_KEYS = ("envs", "globals", "kestra", "__services__")


@shared_task(name="orchestrator.advance_execution", ignore_result=True, acks_late=True)
def advance_execution(execution_id: str, result: dict[str, Any] | None = None) -> None:
    """One step; a transient error is retried with backoff. Giving up loses nothing: what asked for
    the step is a row (a due ``wake_at``, a parked result, a job) that the reconciler finds again."""
    durable.with_retry(lambda: step(execution_id, [result] if result else [], drain=True),
                       f"step of {execution_id}")


@shared_task(name="orchestrator.run_task", ignore_result=True, acks_late=True, reject_on_worker_lost=True,
             bind=True)
def run_task(self, job: dict[str, Any]) -> None:
    """Claim the job, run it under a lease, then apply its result.

    1. Claim (compare-and-set on the job row for this attempt): a duplicate message, a killed or
       superseded job does nothing.
    2. Run, with the process' heartbeat renewing the lease and reading the kill flag.
    3. With ``INLINE_RESULTS`` (the default) the worker applies its own result: it takes the
       execution's lock and runs the executor step itself, which saves a broker round trip and a
       queue hop per task run. When another step holds the execution, or the inline step fails,
       the result is parked as a row for the next step. Database errors
       are retried with backoff; while they are, the lease is still renewed.
    """
    worker = durable.worker_id(self.request.hostname)
    key = (job["taskrun_id"], job["attempt"])
    if durable.with_retry(lambda: durable.claim(job, worker), f"claim of {key}") is None:
        log.info("job %s#%s already claimed, killed or superseded: not run", *key)
        return
    durable.HEARTBEAT.add(key, interrupter())
    try:
        result = run_job(job, worker_id=worker)
        durable.with_retry(lambda: _apply_own_result(job, result), f"result of {key}")
    finally:
        durable.HEARTBEAT.remove(key)


def _apply_own_result(job: dict[str, Any], result: dict[str, Any]) -> None:
    execution_id = job["execution_id"]
    if settings.CELESTRA.get("INLINE_RESULTS", True):
        try:
            if step(execution_id, [result], nowait=True):
                return
        except durable.TRANSIENT:
            raise
        except Exception:  # park the result for the executor rather than lose it
            log.exception("inline step of %s failed; parking the result for the executor", execution_id)
    # another step holds the execution: park the result; the executor takes every parked
    # result of the execution in its next step (and the wake-up makes sure there is one)
    durable.park_result(job, result)


def interrupter():
    """How the heartbeat stops a killed attempt: in a pool process whose main thread runs the task,
    a signal raises in that thread (see orchestrator.runtime.worker); elsewhere the attempt's kill
    event is all (tasks poll ``cancelled()``)."""
    from .worker import interrupt_main_thread, main_thread_interruptible

    return interrupt_main_thread if main_thread_interruptible() else None


@shared_task(name="orchestrator.reconcile", ignore_result=True)
def reconcile() -> dict[str, int]:
    return durable.reconcile()


@shared_task(name="orchestrator.sweep", ignore_result=True)
def sweep() -> int:
    """Enqueue a step for executions whose timer is due (retries, pauses, SLAs); fire due schedules."""
    moment = timezone.now()
    due = list(models.Execution.objects.filter(wake_at__lte=moment).values_list("id", flat=True)[:1000])
    for execution_id in due:
        durable.publish(lambda e=execution_id: advance_execution.apply_async(args=[e], queue=EXECUTOR_QUEUE),
                        f"step of {execution_id}")
    from .schedules import evaluate_schedules

    evaluate_schedules(moment)
    from .polling import evaluate_polling

    evaluate_polling(moment)
    return len(due)


def enqueue_advance(execution_id: str, recorded: bool = False) -> None:
    """Inside the transaction that makes a step necessary: publish a step after commit.

    Unless the caller ``recorded`` the need already (a parked result, a start timer written with the
    row), the execution's timer is brought forward to ``REPUBLISH_AFTER`` from now, so that a lost
    message is found again by the sweep; the step clears it.
    """
    if not recorded:
        due = timezone.now() + timedelta(seconds=durable.knob("REPUBLISH_AFTER"))
        models.Execution.objects.filter(Q(pk=execution_id) & (Q(wake_at__isnull=True) | Q(wake_at__gt=due))).update(
            wake_at=due)
    transaction.on_commit(lambda: durable.publish(
        lambda: advance_execution.apply_async(args=[execution_id], queue=EXECUTOR_QUEUE), f"step of {execution_id}"))


def start_timer():
    """``wake_at`` for a new execution: the sweep starts it then if its wake-up message was lost."""
    return timezone.now() + timedelta(seconds=durable.knob("REPUBLISH_AFTER"))


def step(execution_id: str, results: list[dict[str, Any]], *, drain: bool = False, nowait: bool = False) -> bool:
    """One executor step for one execution (see orchestrator.engine.executor).

    ``drain``: also apply the results parked for the execution. ``nowait`` (PostgreSQL): when
    another step holds the execution, return False at once instead of waiting for it.
    """
    jobs: list[dict[str, Any]] = []
    released: list[str] = []
    ended = False
    nowait = nowait and connection.vendor == "postgresql"
    try:
        with transaction.atomic():
            loaded = store.lock_execution(execution_id, nowait=nowait)
            if loaded is None:
                log.warning("advance: unknown execution %s", execution_id)
                return True
            row, execution = loaded
            if drain:
                results = [*results, *store.take_pending(execution_id)]
            ended, jobs, released = _step_locked(row, execution, results)
            if ended:
                _notify_parent(row)
    except OperationalError:
        if nowait:
            return False
        raise
    if jobs or released:  # after commit: a worker must find the task runs it is sent
        _send(jobs, released)
    if ended:
        hooks.on_execution_end(execution_id)
    return True


def _step_locked(row, execution, results: list[dict[str, Any]]) -> tuple[bool, list, list]:
    """The body of a step, with the execution locked: (ended, jobs to send, executions to release)."""
    nothing: tuple[bool, list, list] = (False, [], [])
    # the jobs whose result this step takes (applied or stale) are done
    done_jobs = [(r["taskrun_id"], r["attempt"]) for r in results if "taskrun_id" in r and "attempt" in r]
    try:
        flow = get_flow(execution.namespace, execution.flow_id, execution.flow_revision)
    except CelestraError as exc:
        if not execution.state.is_terminated():
            _fail_execution(row, execution, f"Cannot execute an invalid flow: {exc}")
        store.delete_jobs(done_jobs)
        return nothing
    if execution.state.is_terminated() and not (flow.listeners or flow.after_execution):
        _nothing_to_write(row, execution, done_jobs)
        return nothing
    if execution.state.current in (states.CREATED, states.QUEUED) and not _acquire_slot(flow, execution):
        if execution.state.current != row.state or row.wake_at is not None:
            store.save_decision(row, execution, _queued_decision(execution), done_jobs=done_jobs)
        else:
            _nothing_to_write(row, execution, done_jobs)
        return nothing
    applied = []
    resubmitted: list[dict[str, Any]] = []
    logs: list[LogLine] = []
    metrics: list[dict[str, Any]] = []
    for result in results:
        if result.get("resubmit"):  # a worker lost its lease (orchestrator.runtime.durable)
            run, next_job = durable.resubmit(flow, execution, result)
            if run is not None:
                applied.append(run)
                if next_job is None:  # given up: the attempt failed, say why
                    logs.append(LogLine("ERROR", durable.gave_up_message(result), run.task_id, run.id,
                                        len(run.attempts)))
            if next_job is not None:
                resubmitted.append(next_job)
            continue
        if "subflow_taskrun_id" in result:
            run = apply_subflow_result(flow, execution, result)
            if run is not None:
                applied.append(run)
            continue
        run = apply_result(flow, execution, result)
        if run is None:
            continue
        applied.append(run)
        attempt = len(run.attempts)
        logs.extend(LogLine(l["level"], l["message"], run.task_id, run.id, attempt, parse_ts(l["timestamp"]))
                    for l in result.get("logs") or ())
        metrics.extend(_metric_rows(execution, run, result.get("metrics") or ()))
        for child in result.get("children") or ():  # a WorkingDirectory's tasks
            logs.extend(LogLine(l["level"], l["message"], child["task_id"], child["id"], 1,
                                parse_ts(l["timestamp"])) for l in child.get("logs") or ())
    environment = engine_environment(execution.namespace)
    decision = decide(flow, execution, environment)
    while decision.subflows:  # children created in this transaction; their outcome may let work go on
        applied.extend(_create_subflows(row, execution, decision))
        decision.merge(decide(flow, execution, environment))
    decision.logs[:0] = logs
    decision.new_runs[:0] = execution.recorded_runs  # a WorkingDirectory's children
    execution.recorded_runs = []
    hooks.after_decision(flow, execution, decision)
    for run in applied:
        retry_at = run.internal.get("retryAt")
        if retry_at:
            decision.wake(datetime.fromisoformat(retry_at))
    if not (applied or decision.new_runs or decision.changed_runs or decision.jobs or decision.logs
            or decision.execution_changed or decision.ended or decision.wake_at != row.wake_at):
        # nothing to write: a duplicate message or a parked result taken already
        _nothing_to_write(row, execution, done_jobs)
        return nothing
    jobs = []
    for job in decision.jobs:
        message = job.to_message()
        message["context"] = {k: v for k, v in message["context"].items() if k not in WORKER_LOCAL_KEYS}
        message["queue"] = worker_queue(message.get("worker_group"))
        jobs.append(message)
    jobs.extend(resubmitted)
    store.save_decision(row, execution, decision, applied, metrics, jobs=jobs, done_jobs=done_jobs)
    released = _release_queued(execution) if decision.ended and flow.concurrency else []
    if decision.retry_at is not None:
        _create_retry_attempt(execution, decision.retry_at)
    return decision.ended, jobs, released


def _nothing_to_write(row, execution, done_jobs: list[tuple[str, int]]) -> None:
    """A step that changes nothing: forget the jobs whose (stale) result it took, clear a timer
    that only announced this step, keep the in-memory execution."""
    store.delete_jobs(done_jobs)
    if row.wake_at is not None and row.wake_at <= timezone.now() and execution.state.is_terminated():
        models.Execution.objects.filter(pk=row.pk, version=row.version).update(wake_at=None)
        row.wake_at = None
    store.put_back(row, execution)


def _create_retry_attempt(execution, at: datetime) -> None:
    """The next attempt of an execution RETRIED by ``CREATE_NEW_EXECUTION``: same flow revision,
    inputs and labels, ``attemptNumber`` + 1, starting at ``at``."""
    from flows_app.services import create_execution

    from .schedules import defer_start

    labels = {l["key"]: l["value"] for l in execution.labels if not l["key"].startswith("system.")}
    correlation = execution.labels_map().get("system.correlationId", execution.id)
    retry = create_execution(
        execution.namespace, execution.flow_id, revision=execution.flow_revision, labels=labels or None,
        typed_inputs=execution.inputs, trigger=execution.trigger, start=False,
        inherited_labels=[{"key": "system.correlationId", "value": correlation}],
        metadata={"attemptNumber": int(execution.metadata.get("attemptNumber", 1)) + 1,
                  "originalCreatedDate": execution.metadata.get("originalCreatedDate")})
    defer_start(retry, at)


def _create_subflows(row, execution, decision) -> list:
    """Create the child executions a step asked for; return the task runs that changed."""
    from flows_app.services import create_execution

    changed = []
    parent_system = [l for l in execution.labels if l["key"].startswith("system.") and l["key"] != "system.correlationId"]
    correlation = execution.labels_map().get("system.correlationId", execution.id)
    flow_for_apply = get_flow(execution.namespace, execution.flow_id, execution.flow_revision)
    for request in decision.subflows:
        inherited = [{"key": "system.correlationId", "value": correlation}, *parent_system]
        if request.inherit_labels:
            inherited = [l for l in execution.labels if not l["key"].startswith("system.")] + inherited
        labels = request.labels
        if isinstance(labels, list):
            labels = {l["key"]: l["value"] for l in labels}
        trigger = {"id": request.task_id, "type": request.task_type,
                   "variables": {"executionId": execution.id, "namespace": execution.namespace,
                                 "flowId": execution.flow_id, "flowRevision": execution.flow_revision}}
        try:
            revision = int(request.revision) if request.revision not in (None, "") else None
            with transaction.atomic():  # a savepoint: a failed creation leaves nothing behind
                child = create_execution(
                    request.namespace, request.flow_id, request.inputs or {}, labels=labels or None,
                    revision=revision, trigger=trigger, parent_id=execution.id, inherited_labels=inherited,
                    internal={"parentTaskRunId": request.taskrun_id, "parentTaskId": request.task_id,
                              # ForEachItem follows its children's ends even without waiting
                              "wait": request.wait or request.follow_children})
        except CelestraError as exc:
            message = str(exc)
            if isinstance(exc, FlowNotFound) or "Unable to find flow" in message:
                message = f"Unable to find flow '{request.namespace}'.'{request.flow_id}'" + (
                    f" with revision '{request.revision}'" if request.revision else "")
            run = apply_subflow_result(flow_for_apply, execution, {"subflow_taskrun_id": request.taskrun_id,
                                                                   "error": message})
            decision.logs.append(LogLine("ERROR", message, request.task_id, request.taskrun_id, 0))
        else:
            run = apply_subflow_result(flow_for_apply, execution, {
                "subflow_taskrun_id": request.taskrun_id, "execution_id": child.id, "wait": request.wait})
        if run is not None:
            changed.append(run)
    decision.subflows = []
    return changed


def _notify_parent(row) -> None:
    """A child execution created by a Subflow task ended: tell the parent execution."""
    internal = row.internal or {}
    if not row.parent_id or not internal.get("parentTaskRunId") or not internal.get("wait", True):
        return
    outputs = row.outputs
    try:
        legacy = _legacy_subflow_outputs(row, internal)
    except CelestraError as exc:
        log.warning("subflow %s: cannot render the task's outputs: %s", row.id, exc)
        legacy = None
    if legacy:
        outputs = {**legacy, **(outputs or {})}
    result = {"subflow_taskrun_id": internal["parentTaskRunId"], "execution_id": row.id, "state": row.state,
              "outputs": outputs}
    # in the child's ending transaction: the parent's next step takes it (a row, not only a message)
    models.PendingResult.objects.create(execution_id=row.parent_id, payload=result)
    enqueue_advance(row.parent_id, recorded=True)


def _legacy_subflow_outputs(row, internal) -> dict[str, Any] | None:
    """The Subflow task's deprecated ``outputs`` map, rendered in the child execution's context."""
    parent = models.Execution.objects.filter(pk=row.parent_id).only("namespace", "flow_id", "flow_revision").first()
    if parent is None or not internal.get("parentTaskId"):
        return None
    task = get_flow(parent.namespace, parent.flow_id, parent.flow_revision).find_task(internal["parentTaskId"])
    if not task.props.get("outputs"):
        return None
    from orchestrator.engine.context import RunIndex, base_context

    child = store.execution_from_row(row, row.task_runs.order_by("seq"))
    child_flow = get_flow(child.namespace, child.flow_id, child.flow_revision)
    index = RunIndex(child, {t.id: t.type for t in child_flow.all_tasks()})
    context = base_context(child_flow, child, engine_environment(child.namespace).extras)
    context["outputs"] = index.outputs_map()
    context["tasks"] = index.tasks_map()
    return engine_environment(child.namespace).render(task.props["outputs"], context)


def _send(jobs: list[dict[str, Any]], released: list[str]) -> None:
    """Publish the wake-ups of a committed step; a lost one is sent again by the reconciler."""
    for job in jobs:
        durable.publish(lambda job=job: run_task.apply_async(args=[job], queue=job["queue"]),
                        f"job {job['taskrun_id']}#{job['attempt']}")
    for execution_id in released:
        durable.publish(lambda e=execution_id: advance_execution.apply_async(args=[e], queue=EXECUTOR_QUEUE),
                        f"step of {execution_id}")


def _metric_rows(execution, run, metrics) -> list[dict[str, Any]]:
    return [{"execution_id": execution.id, "namespace": execution.namespace, "flow_id": execution.flow_id,
             "task_id": run.task_id, "taskrun_id": run.id, "type": m["type"], "name": m["name"],
             "value": m["value"], "tags": m.get("tags") or {}, "timestamp": parse_ts(m["timestamp"])}
            for m in metrics]


def _fail_execution(row, execution, message: str) -> None:
    from orchestrator.engine.executor import Decision

    execution.state = execution.state.with_state(states.FAILED)
    decision = Decision(logs=[LogLine("ERROR", message)], execution_changed=True, ended=True)
    store.save_decision(row, execution, decision)


# --- flow concurrency (spec §8.6) -------------------------------------------------------------

ACTIVE = [states.RUNNING, states.PAUSED, states.KILLING, states.RETRYING, states.RESTARTED]


def _acquire_slot(flow, execution) -> bool:
    """True if the execution may start now; else it is queued, cancelled or failed per the flow."""
    concurrency = flow.concurrency
    if not concurrency:
        return True
    limit = int(concurrency.get("limit", 1))
    _serialise_slot_decision(execution.namespace, execution.flow_id)
    # executions created earlier and not started yet (CREATED or QUEUED) hold their place too: a
    # new execution does not jump the queue, and QUEUED ones start first-in first-out
    same_flow = models.Execution.objects.filter(namespace=execution.namespace, flow_id=execution.flow_id)
    active = (same_flow.filter(Q(state__in=ACTIVE)
                               | Q(state__in=[states.CREATED, states.QUEUED], created__lt=execution.state.start_date))
              .exclude(pk=execution.id).count())
    if active < limit:
        return True
    behavior = concurrency.get("behavior", "QUEUE")
    if execution.state.current == states.QUEUED:
        return False
    if behavior == "CANCEL":
        execution.state = execution.state.with_state(states.CANCELLED)
    elif behavior == "FAIL":
        execution.state = execution.state.with_state(states.FAILED)
        execution.metadata["_concurrency_failed"] = True
    else:
        execution.state = execution.state.with_state(states.QUEUED)
    return False


def _serialise_slot_decision(namespace: str, flow_id: str) -> None:
    """One slot decision per flow at a time, until the deciding step commits (PostgreSQL: a
    transaction-level advisory lock; SQLite serialises every writing transaction already)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"celestra.concurrency:{namespace}:{flow_id}"])


def _queued_decision(execution):
    from orchestrator.engine.executor import Decision

    decision = Decision(execution_changed=True, ended=execution.state.is_terminated())
    if execution.metadata.pop("_concurrency_failed", None):
        decision.logs.append(LogLine("ERROR", "Flow is FAILED due to concurrency limit exceeded"))
    return decision


def _release_queued(execution) -> list[str]:
    """The oldest QUEUED execution of the flow is advanced (it takes the freed slot)."""
    queued = (models.Execution.objects.filter(namespace=execution.namespace, flow_id=execution.flow_id,
                                              state=states.QUEUED).order_by("created").values_list("id", flat=True)[:1])
    return list(queued)
