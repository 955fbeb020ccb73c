"""Use cases shared by the API, the admin, the CLI and triggers: deploy flows, create executions."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from django.db import transaction

from orchestrator.engine import states
from orchestrator.engine.errors import CelestraError, FlowNotFound
from orchestrator.engine.flow import Flow as ParsedFlow
from orchestrator.engine.inputs import resolve_inputs
from orchestrator.engine.model import Execution
from orchestrator.engine.secrets_codec import encrypt_secret_inputs
from orchestrator.runtime import store
from orchestrator.runtime.environment import static_extras
from orchestrator.runtime.flows import get_flow, parse

from . import models


class FlowDisabled(CelestraError):
    pass


class IllegalFlowUpdate(CelestraError):
    pass


@dataclass
class Deployed:
    flow: models.Flow
    parsed: ParsedFlow
    created: bool
    changed: bool


def deploy_flow(source: str, *, expect: tuple[str, str] | None = None) -> Deployed:
    """Validate and save a flow; a new revision only when the source changed (spec §10.6).

    ``expect`` = (namespace, id) for updates through a path that names the flow: another id
    or namespace in the source is refused ("Illegal flow id update").
    """
    parsed = parse(source)  # raises FlowValidationError with every error of the flow
    if expect and (parsed.namespace, parsed.id) != expect:
        what = "namespace" if parsed.namespace != expect[0] else "flow id"
        raise IllegalFlowUpdate(f"Illegal {what} update")
    with transaction.atomic():
        namespace = models.Namespace.ensure(parsed.namespace)
        flow = models.Flow.objects.select_for_update().filter(namespace=parsed.namespace, flow_id=parsed.id).first()
        labels = dict(parsed.labels or {})
        if flow is None:
            flow = models.Flow.objects.create(namespace=parsed.namespace, flow_id=parsed.id, namespace_ref=namespace,
                                              revision=1, source=source, description=parsed.description or "",
                                              labels=labels, disabled=parsed.disabled)
            models.FlowRevision.objects.create(flow=flow, revision=1, source=source)
            created, changed = True, True
        elif flow.source == source and not flow.deleted:
            created, changed = False, False
        else:
            flow.revision += 1
            flow.source, flow.deleted = source, False
            flow.description, flow.labels, flow.disabled = parsed.description or "", labels, parsed.disabled
            flow.save()
            models.FlowRevision.objects.create(flow=flow, revision=flow.revision, source=source)
            created, changed = False, True
        if changed:
            models.FlowLabel.objects.filter(flow=flow).delete()
            models.FlowLabel.objects.bulk_create(
                [models.FlowLabel(flow=flow, key=k, value=str(v)) for k, v in labels.items()])
            from .triggers import sync_schedules

            sync_schedules(flow, parsed)
    parsed.revision = flow.revision
    return Deployed(flow, parsed, created, changed)


def delete_flow(namespace: str, flow_id: str) -> None:
    with transaction.atomic():
        flow = models.Flow.objects.select_for_update().filter(namespace=namespace, flow_id=flow_id,
                                                               deleted=False).first()
        if flow is None:
            raise FlowNotFound(f"Flow '{namespace}.{flow_id}' not found")
        flow.revision += 1
        flow.deleted = True
        flow.save()
        models.FlowRevision.objects.create(flow=flow, revision=flow.revision, source=flow.source, deleted=True)
        from .triggers import remove_schedules

        remove_schedules(flow)


def deploy_directory(directory: str | Path, namespace: str | None = None) -> list[Deployed]:
    """Deploy every ``*.yml``/``*.yaml`` of a directory (recursively); all or nothing."""
    paths = sorted(p for p in Path(directory).rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    with transaction.atomic():
        deployed = []
        for path in paths:
            result = deploy_flow(path.read_text())
            if namespace and not (result.parsed.namespace == namespace
                                  or result.parsed.namespace.startswith(namespace + ".")):
                raise CelestraError(f"{path}: flow namespace '{result.parsed.namespace}' is not in '{namespace}'")
            deployed.append(result)
    return deployed


def latest_flow(namespace: str, flow_id: str, revision: int | None = None) -> tuple[models.Flow, ParsedFlow]:
    flow = models.Flow.objects.filter(namespace=namespace, flow_id=flow_id, deleted=False).first()
    if flow is None:
        raise FlowNotFound(f"Unable to find flow '{namespace}'.'{flow_id}'"
                           + (f" with revision '{revision}'" if revision else ""))
    rev = revision or flow.revision
    return flow, get_flow(namespace, flow_id, rev)


def create_execution(namespace: str, flow_id: str, inputs: dict[str, Any] | None = None, *,
                     labels: Iterable[tuple[str, str]] | dict[str, str] | None = None,
                     revision: int | None = None, trigger: dict[str, Any] | None = None,
                     parent_id: str | None = None, raw_inputs: bool = False,
                     execution_id: str | None = None, start: bool = True,
                     internal: dict[str, Any] | None = None, inherited_labels: list[dict[str, str]] | None = None,
                     validate_inputs: bool = True, typed_inputs: dict[str, Any] | None = None,
                     metadata: dict[str, Any] | None = None) -> Execution:
    """Create an execution in CREATED with its inputs typed and validated, and enqueue it (spec §8.5)."""
    from storage_app.storage import ExecutionFiles
    from orchestrator.engine import expressions

    flow_row, parsed = latest_flow(namespace, flow_id, revision)
    if flow_row.disabled or parsed.disabled:
        raise FlowDisabled("Cannot execute a flow which is disabled")
    execution = Execution.create(namespace, flow_id, revision or flow_row.revision, id=execution_id,
                                 trigger=trigger, parent_id=parent_id, metadata=dict(metadata or {}))
    given = list(labels.items()) if isinstance(labels, dict) else list(labels or [])
    merged: dict[str, str] = {k: str(v) for k, v in (parsed.labels or {}).items() if not k.startswith("system.")}
    for label in inherited_labels or []:  # a Subflow's parent labels (system ones included)
        merged[label["key"]] = label["value"]
    for key, value in given:
        if key.startswith("system.") and key != "system.correlationId":
            raise CelestraError(f"System labels can only be set by Kestra itself, offending label: {key}={value}")
        merged[key] = str(value)
    merged.setdefault("system.correlationId", execution.id)
    execution.labels = [{"key": k, "value": v} for k, v in merged.items()]
    context = {**static_extras(), "flow": {"id": flow_id, "namespace": namespace, "revision": execution.flow_revision},
               "execution": {"id": execution.id}, "labels": {}, "trigger": (trigger or {}).get("variables") or {}}
    if typed_inputs is not None:  # already typed (and encrypted) by an earlier attempt
        execution.inputs = dict(typed_inputs)
    elif validate_inputs:
        execution.inputs = resolve_inputs(parsed.inputs or [], inputs or {}, render=expressions.render,
                                          context=context, files=ExecutionFiles(), namespace=namespace,
                                          flow_id=flow_id, execution_id=execution.id, raw=raw_inputs)
    else:  # a test harness starting an execution with no inputs at all, as Kestra's runOne() does
        execution.inputs = {}
    if typed_inputs is None:
        execution.inputs = encrypt_secret_inputs(parsed.inputs or [], execution.inputs)
    from orchestrator.runtime.tasks import enqueue_advance, start_timer

    with transaction.atomic():
        # the row records that the execution must start (its timer): a lost message is sent again
        store.insert_execution(execution, internal, wake_at=start_timer() if start else None)
        if start:
            enqueue_advance(execution.id, recorded=True)
    return execution


def load_execution(execution_id: str) -> Execution:
    """The execution as the API shows it: a task run a worker is running shows RUNNING, with its
    in-flight attempt (worker id, start date), from the job the worker claimed."""
    row = models.Execution.objects.filter(pk=execution_id).first()
    if row is None:
        raise CelestraError(f"Execution '{execution_id}' not found")
    execution = store.execution_from_row(row, row.task_runs.order_by("seq"))
    if not execution.state.is_terminated():
        _show_running_attempts(execution)
    return execution


def _show_running_attempts(execution: Execution) -> None:
    from orchestrator.engine.model import Attempt, State

    claimed = {(j.taskrun_id, j.attempt): j for j in models.Job.objects.filter(
        execution_id=execution.id, state=models.Job.RUNNING)}
    if not claimed:
        return
    for run in execution.task_runs:
        job = claimed.get((run.id, len(run.attempts) + 1))
        if job is None or run.state.is_terminated():
            continue
        if run.state.current != states.RUNNING:
            run.state = run.state.with_state(states.RUNNING, job.claimed)
        run.attempts.append(Attempt(State(states.RUNNING, [(states.RUNNING, job.claimed)]), job.worker_id))


def wait_for(execution_id: str, timeout: float = 60.0, until: Iterable[str] = states.TERMINATED,
             poll: float = 0.02) -> Execution:
    """Poll until the execution reaches one of ``until`` (used by the CLI, tests, conformance)."""
    wanted = set(until)
    deadline = time.monotonic() + timeout
    while True:
        state = models.Execution.objects.filter(pk=execution_id).values_list("state", flat=True).first()
        if state in wanted and not (
                state in states.TERMINATED  # listeners and afterExecution tasks may still be running
                and models.TaskRun.objects.filter(execution_id=execution_id).exclude(
                    state__in=list(states.TERMINATED)).exists()):
            return load_execution(execution_id)
        if time.monotonic() > deadline:
            raise TimeoutError(f"Execution {execution_id} still {state} after {timeout}s")
        time.sleep(poll)


def execution_json(execution_id: str, *, with_children: bool = False, with_logs: bool = False) -> dict[str, Any]:
    execution = load_execution(execution_id)
    data = execution.to_json()
    if with_logs:
        data["logs"] = [entry.to_json() for entry in models.LogEntry.objects.filter(execution_id=execution_id)]
    if with_children:
        data["childExecutions"] = [
            execution_json(child, with_children=True, with_logs=with_logs)
            for child in models.Execution.objects.filter(parent_id=execution_id).order_by("created")
            .values_list("id", flat=True)
        ]
    return data
