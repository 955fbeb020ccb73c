"""Celery tasks: thin adapters around the engine.

* ``orchestrator.advance_execution`` (queue ``executor``): lock the execution, fold in worker
  results, decide, store, then dispatch jobs after commit.
* ``orchestrator.run_task`` (queue ``worker.<group>``): run one task run; acks late so that a
  worker that dies mid-task has it redelivered; the executor ignores duplicate results.
* ``orchestrator.sweep`` (queue ``executor``, periodic): wakes executions whose timer is due and
  picks up executions left behind by a dead executor.
"""
from __future__ import annotations

import logging
from datetime import datetime
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

from . import hooks, store
from .environment import engine_environment
from .flows import get_flow
from .worker import parse_ts, run_job

log = logging.getLogger("celestra.executor")

#: context keys that the worker adds itself (not shipped in job messages)
WORKER_LOCAL_KEYS = ("envs", "globals", "kestra", "__services__")


@shared_task(name="orchestrator.advance_execution", ignore_result=True)
def advance_execution(execution_id: str, result: dict[str, Any] | None = None) -> None:
    step(execution_id, [result] if result else [], drain=True)


@shared_task(name="orchestrator.run_task", ignore_result=True, acks_late=True, reject_on_worker_lost=True,
             bind=True)
def run_task(self, job: dict[str, Any]) -> None:
    """Run the task, then apply its result.

    With ``INLINE_RESULTS`` (the default) the worker applies its own result: it takes the
    execution's lock and runs the executor step itself, exactly as the executor would, which
    saves a broker round trip and a queue hop per task run. Should that step fail (database
    unavailable...), the result goes to the ``executor`` queue instead, so nothing is lost.
    """
    result = run_job(job, worker_id=self.request.hostname)
    execution_id = job["execution_id"]
    if settings.CELESTRA.get("INLINE_RESULTS", True):
        try:
            if step(execution_id, [result], nowait=True):
                return
            # another step holds the execution: park the result; the executor takes every parked
            # result of the execution in its next step (and this message makes sure there is one)
            with transaction.atomic():
                models.PendingResult.objects.create(execution_id=execution_id, payload=result)
                enqueue_advance(execution_id)
            return
        except Exception:
            log.exception("inline step of %s failed; sending the result to the executor", execution_id)
    advance_execution.apply_async(args=[execution_id, result], queue=EXECUTOR_QUEUE)


@shared_task(name="orchestrator.sweep", ignore_result=True)
def sweep() -> int:
    """Enqueue a step for executions whose timer is due (retries, pauses, SLAs); fire due schedules."""
    moment = timezone.now()
    due = list(models.Execution.objects.filter(wake_at__lte=moment).values_list("id", flat=True)[:1000])
    for execution_id in due:
        advance_execution.apply_async(args=[execution_id], queue=EXECUTOR_QUEUE)
    from .schedules import evaluate_schedules

    evaluate_schedules(moment)
    from .polling import evaluate_polling

    evaluate_polling(moment)
    return len(due)


def enqueue_advance(execution_id: str) -> None:
    transaction.on_commit(lambda: advance_execution.apply_async(args=[execution_id], queue=EXECUTOR_QUEUE))


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
    except OperationalError:
        if nowait:
            return False
        raise
    if jobs or released:  # after commit: a worker must find the task runs it is sent
        _send(jobs, released)
    if ended:
        _notify_parent(row)
        hooks.on_execution_end(execution_id)
    return True


def _step_locked(row, execution, results: list[dict[str, Any]]) -> tuple[bool, list, list]:
    """The body of a step, with the execution locked: (ended, jobs to send, executions to release)."""
    nothing: tuple[bool, list, list] = (False, [], [])
    try:
        flow = get_flow(execution.namespace, execution.flow_id, execution.flow_revision)
    except CelestraError as exc:
        if not execution.state.is_terminated():
            _fail_execution(row, execution, f"Cannot execute an invalid flow: {exc}")
        return nothing
    if execution.state.is_terminated() and not (flow.listeners or flow.after_execution):
        store.put_back(row, execution)
        return nothing
    if execution.state.current in (states.CREATED, states.QUEUED) and not _acquire_slot(flow, execution):
        if execution.state.current != row.state:
            store.save_decision(row, execution, _queued_decision(execution))
        return nothing
    applied = []
    logs: list[LogLine] = []
    metrics: list[dict[str, Any]] = []
    for result in results:
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
        store.put_back(row, execution)  # nothing to write: a duplicate message or a parked result taken already
        return nothing
    store.save_decision(row, execution, decision, applied, metrics)
    jobs = []
    for job in decision.jobs:
        message = job.to_message()
        message["context"] = {k: v for k, v in message["context"].items() if k not in WORKER_LOCAL_KEYS}
        jobs.append(message)
    released = _release_queued(execution) if decision.ended and flow.concurrency else []
    if decision.retry_at is not None:
        _create_retry_attempt(execution, decision.retry_at)
    return decision.ended, jobs, released


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
    advance_execution.apply_async(args=[row.parent_id, result], queue=EXECUTOR_QUEUE)


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
    for job in jobs:
        run_task.apply_async(args=[job], queue=worker_queue(job.get("worker_group")))
    for execution_id in released:
        advance_execution.apply_async(args=[execution_id], queue=EXECUTOR_QUEUE)


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
    # executions created earlier and not started yet count too: two executions stepped at the same
    # time in different processes must not both see a free slot
    same_flow = models.Execution.objects.filter(namespace=execution.namespace, flow_id=execution.flow_id)
    active = (same_flow.filter(Q(state__in=ACTIVE) | Q(state=states.CREATED, created__lt=execution.state.start_date))
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
