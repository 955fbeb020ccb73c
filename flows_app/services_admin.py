"""Operations on flows and executions that the API and the admin trigger by hand.

Creating executions and deploying one flow live in :mod:`flows_app.services`; this module adds
what an operator does afterwards: validate and deploy many flows at once, kill, restart, replay,
pause, resume an execution or change its state by hand, set its labels, delete it, and serve a
Webhook trigger call.
"""
from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable

from django.db import transaction

from orchestrator.engine import operations, states
from orchestrator.engine.errors import CelestraError, FlowNotFound
from orchestrator.engine.model import Execution
from orchestrator.plugins.core.condition import Expression
from orchestrator.plugins.core.trigger import Webhook

from . import models

log = logging.getLogger("celestra.services")

WEBHOOK = Webhook.type
EXPRESSION_CONDITIONS = frozenset({Expression.type, *Expression.aliases})
SYSTEM_PREFIX = "system."


class ExecutionNotFound(CelestraError):
    pass


#: The execution is not in a state that allows the operation (HTTP 409); the engine's operations raise it too.
IllegalExecutionState = operations.IllegalExecutionState


class ExecutionNotTerminated(CelestraError):
    """Labels of a running execution cannot be changed by hand (HTTP 400)."""


class WebhookNotFound(CelestraError):
    """No flow, or no enabled Webhook trigger with that key (HTTP 404)."""


# --- flows ---------------------------------------------------------------------------------------------

def split_documents(text: str) -> list[str]:
    """A multi-document YAML body, one source text per flow (empty documents dropped)."""
    from orchestrator.engine.yamlload import split_documents as split

    return [piece for piece, _ in split(text) if piece.strip()]


def _raw_identity(source: str) -> tuple[str | None, str | None, int | None]:
    """``id``, ``namespace`` and ``revision`` read from the YAML even when the flow is invalid."""
    from orchestrator.engine.yamlload import load

    try:
        data = load(source)
    except CelestraError:
        return None, None, None
    if not isinstance(data, dict):
        return None, None, None
    revision = data.get("revision")
    return (None if data.get("id") is None else str(data["id"]),
            None if data.get("namespace") is None else str(data["namespace"]),
            revision if isinstance(revision, int) else None)


def _validation_message(exc: Exception) -> str:
    """Every error of an invalid flow on one line (``label: message, …``)."""
    return ", ".join(str(error) for error in getattr(exc, "errors", None) or []) or str(exc)


def validate_flows(text: str) -> list[dict[str, Any]]:
    """``POST /flows/validate``: one report per YAML document, never an error (spec §11.2)."""
    from orchestrator.engine.flow import FlowValidationError
    from orchestrator.runtime.flows import parse

    reports = []
    for index, source in enumerate(split_documents(text)):
        flow_id, namespace, revision = _raw_identity(source)
        report: dict[str, Any] = {"index": index, "flow": flow_id, "namespace": namespace, "constraints": None,
                                  "outdated": False, "deprecationPaths": [], "warnings": [], "infos": []}
        try:
            parsed = parse(source)
        except FlowValidationError as exc:
            report["constraints"] = _validation_message(exc)
            report["warnings"] = [str(w) for w in getattr(exc, "warnings", None) or []]
        except CelestraError as exc:
            report["constraints"] = str(exc)
        else:
            report["flow"], report["namespace"] = parsed.id, parsed.namespace
            report["deprecationPaths"] = list(getattr(parsed, "deprecated_paths", None) or [])
            report["warnings"] = [str(w) for w in getattr(parsed, "warnings", None) or []]
            report["infos"] = [str(i) for i in getattr(parsed, "infos", None) or []]
            if revision is not None:
                current = (models.Flow.objects.filter(namespace=parsed.namespace, flow_id=parsed.id, deleted=False)
                           .values_list("revision", flat=True).first())
                report["outdated"] = current is not None and current > revision
        reports.append(report)
    return reports


class FlowsInvalid(CelestraError):
    """Several flows of one request are invalid; ``errors`` = [(path, message)]."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__(", ".join(f"{path}: {message}" if path else message for path, message in errors))


def deploy_many(text: str, *, namespace: str | None = None, delete: bool = False,
                allow_children: bool = False) -> list[models.Flow]:
    """Deploy every flow of a multi-document YAML, all or nothing (``POST /flows/{namespace}``, ``/flows/bulk``).

    1. Every document is parsed; all errors are collected and reported together.
    2. With ``namespace``, each flow must be in it (or below it when ``allow_children``).
    3. With ``delete``, the namespace's flows absent from the body are deleted.
    4. The flows are deployed (a new revision only for changed sources).
    """
    from orchestrator.engine.flow import FlowValidationError
    from orchestrator.runtime.flows import parse

    from .services import delete_flow, deploy_flow

    sources = split_documents(text)
    errors: list[tuple[str, str]] = []
    wanted: list[tuple[str, Any]] = []
    for index, source in enumerate(sources):
        try:
            parsed = parse(source)
        except FlowValidationError as exc:
            errors.extend((f"flows[{index}].{getattr(e, 'path', '') or ''}".rstrip("."),
                           getattr(e, "message", None) or str(e)) for e in (exc.errors or [exc]))
            continue
        if namespace and parsed.namespace != namespace and not (
                allow_children and parsed.namespace.startswith(namespace + ".")):
            errors.append((f"flows[{index}].namespace",
                           f"Flow namespace is invalid: '{parsed.namespace}' is not '{namespace}'"))
            continue
        wanted.append((source, parsed))
    ids = [(p.namespace, p.id) for _, p in wanted]
    duplicates = sorted({f"{ns}.{fid}" for ns, fid in ids if ids.count((ns, fid)) > 1})
    if duplicates:
        errors.append(("flows", f"Duplicate flow id with name [{', '.join(duplicates)}]"))
    if errors:
        raise FlowsInvalid(errors)
    with transaction.atomic():
        if delete and namespace:
            keep = set(ids)
            existing = models.Flow.objects.filter(deleted=False)
            existing = (existing.filter(namespace__startswith=namespace) if allow_children
                        else existing.filter(namespace=namespace))
            for flow in existing:
                if allow_children and not (flow.namespace == namespace or flow.namespace.startswith(namespace + ".")):
                    continue
                if (flow.namespace, flow.flow_id) not in keep:
                    delete_flow(flow.namespace, flow.flow_id)
        return [deploy_flow(source).flow for source, _ in wanted]


# --- executions ----------------------------------------------------------------------------------------

def get_execution_row(execution_id: str) -> models.Execution:
    row = models.Execution.objects.filter(pk=execution_id, deleted=False).first()
    if row is None:
        raise ExecutionNotFound(f"Unable to find execution '{execution_id}'")
    return row


def kill_execution(execution_id: str, *, cascade: bool = True) -> Execution:
    """Kill an execution now (spec §8.10).

    1. Lock the execution row; a terminated execution cannot be killed (HTTP 409).
    2. Execution → KILLING; every non-terminated task run (and its last attempt) → KILLED.
    3. Execution → KILLED, with a log line; a worker still running one of its task runs reports to
       an execution that is terminated, and the executor ignores that result.
    4. After commit: child executions are killed too (``cascade``), a waiting parent and the
       oldest queued execution of the flow (concurrency slot freed) are advanced.
    """
    from orchestrator.engine.executor import Decision, LogLine
    from orchestrator.engine.timeutil import now
    from orchestrator.runtime import store

    with transaction.atomic():
        loaded = store.lock_execution(execution_id)
        if loaded is None or loaded[0].deleted:
            raise ExecutionNotFound(f"Unable to find execution '{execution_id}'")
        row, execution = loaded
        if execution.state.is_terminated():
            raise IllegalExecutionState("Execution is already finished, can't kill it")
        moment = now()
        execution.state = execution.state.with_state(states.KILLING, moment)
        decision = Decision(execution_changed=True, ended=True)
        for run in execution.task_runs:
            if run.state.is_terminated():
                continue
            run.state = run.state.with_state(states.KILLED, moment)
            if run.attempts and not run.attempts[-1].state.is_terminated():
                run.attempts[-1].state = run.attempts[-1].state.with_state(states.KILLED, moment)
            decision.changed_runs[run.id] = run
        execution.state = execution.state.with_state(states.KILLED, moment)
        decision.logs.append(LogLine("WARN", "Execution has been killed", timestamp=moment))
        store.save_decision(row, execution, decision)
        # the worker running a task run of this execution sees the flag with its next heartbeat and
        # stops; a job not started yet is never claimed (orchestrator.runtime.durable)
        models.Job.objects.filter(execution_id=execution_id).exclude(state=models.Job.FINISHED).update(
            state=models.Job.KILLED)
        children = (list(models.Execution.objects.filter(parent_id=execution_id)
                         .exclude(state__in=states.TERMINATED).values_list("id", flat=True)) if cascade else [])
        to_advance = [execution.parent_id] if execution.parent_id else []
        to_advance += list(models.Execution.objects.filter(namespace=execution.namespace, flow_id=execution.flow_id,
                                                           state=states.QUEUED)
                           .order_by("created").values_list("id", flat=True)[:1])

    def after_commit() -> None:
        from orchestrator.runtime.tasks import advance_execution

        for child in children:
            try:
                kill_execution(child, cascade=True)
            except CelestraError:  # finished meanwhile
                pass
        from orchestrator.runtime.durable import publish

        for other in to_advance:  # a lost one is found again (queued executions: the reconciler)
            publish(lambda other=other: advance_execution.apply_async(args=[other], queue="executor"),
                    f"step of {other}")

    transaction.on_commit(after_commit)
    return execution


# --- restart, replay, manual state changes, pause/resume, concurrency queue (spec §8.6-§8.11) ----------

def _locked(execution_id: str) -> tuple[models.Execution, Execution]:
    """Inside a transaction: the execution row locked (no executor step runs meanwhile) and loaded."""
    from orchestrator.runtime import store

    loaded = store.lock_execution(execution_id)
    if loaded is None or loaded[0].deleted:
        raise ExecutionNotFound(f"Unable to find execution '{execution_id}'")
    return loaded


def _flow_of(execution: Execution) -> Any:
    from orchestrator.runtime.flows import get_flow

    return get_flow(execution.namespace, execution.flow_id, execution.flow_revision)


def _check_revision(execution: Execution, revision: int | None) -> None:
    """A revision asked for must exist (HTTP 404 otherwise)."""
    if revision is None:
        return
    if not models.FlowRevision.objects.filter(flow__namespace=execution.namespace, flow__flow_id=execution.flow_id,
                                              revision=revision).exists():
        raise FlowNotFound(f"Unable to find revision {revision} on flow {execution.namespace}.{execution.flow_id}")


def _store_changed(row: models.Execution, before: Execution, after: Execution, *, start: bool = True) -> None:
    """Write an execution an operation changed in place: runs dropped, changed and added; then, after
    commit, an executor step (the executor takes it from there)."""
    from orchestrator.engine.executor import Decision
    from orchestrator.runtime import store
    from orchestrator.runtime.tasks import enqueue_advance

    before_ids = {run.id for run in before.task_runs}
    after_ids = {run.id for run in after.task_runs}
    dropped = before_ids - after_ids
    if dropped:
        models.TaskRun.objects.filter(execution_id=row.id, id__in=dropped).delete()
    decision = Decision(new_runs=[run for run in after.task_runs if run.id not in before_ids],
                        changed_runs={run.id: run for run in after.task_runs if run.id in before_ids},
                        execution_changed=True)
    store.save_decision(row, after, decision)
    if start:
        enqueue_advance(after.id)


def _store_new(execution: Execution) -> None:
    """Insert an execution an operation created (with its copied task runs) and start it after commit."""
    from orchestrator.engine.executor import Decision
    from orchestrator.runtime import store
    from orchestrator.runtime.tasks import enqueue_advance

    row = store.insert_execution(execution)
    store.save_decision(row, execution, Decision(new_runs=list(execution.task_runs), execution_changed=True))
    enqueue_advance(execution.id)


def restart_execution(execution_id: str, revision: int | None = None) -> Execution:
    """Restart a terminated or paused execution from its failed task runs (spec §8.8).

    Same execution id without ``revision``; with one, a new execution of that revision
    (``parentId`` = this one). Errors: not terminated → 409; nothing failed → 422.
    """
    with transaction.atomic():
        row, execution = _locked(execution_id)
        _check_revision(execution, revision)
        restarted = operations.restart(_flow_of(execution), execution, revision=revision)
        if restarted.id == execution.id:
            _store_changed(row, execution, restarted)
        else:
            _store_new(restarted)
    return restarted


def replay_execution(execution_id: str, taskrun_id: str | None = None, revision: int | None = None, *,
                     inputs: dict[str, Any] | None = None) -> Execution:
    """A new execution replaying this one, from the start or from ``taskrun_id`` (spec §8.9).

    ``inputs`` (``replay-with-inputs``): submitted values, typed against the replayed flow revision
    (files stored under the new execution), that replace the original inputs. The original gets the
    label ``system.replayed: true``.
    """
    with transaction.atomic():
        row, execution = _locked(execution_id)
        _check_revision(execution, revision)
        flow = _flow_of(execution)
        replayed = operations.replay(flow, execution, taskrun_id, revision=revision)
        if inputs is not None:
            from orchestrator.runtime.flows import get_flow

            target = get_flow(execution.namespace, execution.flow_id, revision) if revision else flow
            replayed.inputs = _typed_replay_inputs(target, replayed, inputs)
        _store_new(replayed)
        marked = operations.mark_replayed(execution)
        row.labels = marked.labels
        row.save(update_fields=["labels", "updated"])
    return replayed


def _typed_replay_inputs(flow: Any, execution: Execution, inputs: dict[str, Any]) -> dict[str, Any]:
    """Inputs of a replay, typed and validated like a new execution's (HTTP 422 on errors)."""
    from orchestrator.engine import expressions
    from orchestrator.engine.context import labels_map
    from orchestrator.engine.inputs import resolve_inputs
    from orchestrator.runtime.environment import static_extras
    from storage_app.storage import ExecutionFiles

    context = {**static_extras(), "flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision},
               "execution": {"id": execution.id}, "labels": labels_map(execution.labels),
               "trigger": (execution.trigger or {}).get("variables") or {}}
    from orchestrator.engine.secrets_codec import encrypt_secret_inputs

    return encrypt_secret_inputs(flow.inputs or [], resolve_inputs(
        flow.inputs or [], inputs, render=expressions.render, context=context, files=ExecutionFiles(),
        namespace=execution.namespace, flow_id=execution.flow_id, execution_id=execution.id))


def mark_as(execution_id: str, taskrun_id: str, state: str) -> Execution:
    """``POST /executions/{id}/state``: set one task run's state and let the executor go on (spec §8.11)."""
    with transaction.atomic():
        row, execution = _locked(execution_id)
        changed = operations.mark_as(_flow_of(execution), execution, taskrun_id, state)
        changed.labels = operations.with_label(changed.labels, operations.RESTARTED_LABEL)
        _store_changed(row, execution, changed)
    return changed


def change_status(execution_id: str, state: str) -> Execution:
    """``POST /executions/{id}/change-status``: a terminated execution gets another terminal state."""
    with transaction.atomic():
        row, execution = _locked(execution_id)
        changed = operations.change_status(execution, state)
        _store_changed(row, execution, changed, start=False)
    return changed


def _resume_context(flow: Any, execution: Execution) -> dict[str, Any]:
    from orchestrator.engine.context import base_context
    from orchestrator.runtime.environment import static_extras

    return base_context(flow, execution, static_extras())


def resume_execution(execution_id: str, inputs: dict[str, Any] | None = None,
                     files: dict[str, Any] | None = None) -> Execution:
    """Resume a paused execution with the ``onResume`` inputs of its Pause task (spec §8.7).

    ``inputs``: submitted values (form fields); ``files``: uploaded files by input id (an
    :class:`~orchestrator.engine.inputs.InputFile` each). They are typed and validated like flow
    inputs (HTTP 422 on errors); files are stored under the execution. Not paused → 409.
    """
    from orchestrator.engine import expressions
    from orchestrator.engine.inputs import resolve_inputs
    from storage_app.storage import ExecutionFiles

    submitted = {**(inputs or {}), **(files or {})}
    with transaction.atomic():
        row, execution = _locked(execution_id)
        if execution.state.current != states.PAUSED:
            raise IllegalExecutionState("Execution is not paused, can't resume it")
        flow = _flow_of(execution)
        typed = None
        found = operations.paused_run(flow, execution)
        if found is not None and found[1] is not None and found[1].plugin.pauses:
            typed = resolve_inputs(operations.resume_definitions(flow, execution), submitted,
                                   render=expressions.render, context=_resume_context(flow, execution),
                                   files=ExecutionFiles(), namespace=execution.namespace,
                                   flow_id=execution.flow_id, execution_id=execution.id)
        resumed = operations.resume(flow, execution, typed)
        _store_changed(row, execution, resumed)
    return resumed


def validate_resume(execution_id: str, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """``POST /executions/{id}/resume/validate``: the ``onResume`` inputs as they would be; nothing changes."""
    from orchestrator.engine import expressions
    from orchestrator.engine.inputs import evaluate_inputs
    from orchestrator.runtime import store

    row = get_execution_row(execution_id)
    execution = store.execution_from_row(row, row.task_runs.order_by("seq"))
    if execution.state.current != states.PAUSED:
        raise IllegalExecutionState("Execution is not paused, can't resume it")
    flow = _flow_of(execution)
    results = evaluate_inputs(operations.resume_definitions(flow, execution), inputs or {},
                              render=expressions.render, context=_resume_context(flow, execution),
                              files=_DryRunFiles(), namespace=execution.namespace, flow_id=execution.flow_id,
                              execution_id=execution.id)
    return {
        "id": execution.flow_id,
        "namespace": execution.namespace,
        "inputs": [{"input": r.definition, "value": r.value, "enabled": r.enabled, "isDefault": r.is_default,
                    "errors": [{"message": m} for m in r.errors]} for r in results],
    }


def pause_execution(execution_id: str) -> Execution:
    """A RUNNING execution → PAUSED (running task runs finish, no new one starts); else HTTP 422."""
    with transaction.atomic():
        row, execution = _locked(execution_id)
        paused = operations.pause(execution)
        _store_changed(row, execution, paused, start=False)
    return paused


def unqueue(execution_id: str, state: str | None = None) -> Execution:
    """Take a QUEUED execution out of its flow's queue (spec §8.6): RUNNING starts it now, whatever the
    concurrency limit; CANCELLED or FAILED end it."""
    with transaction.atomic():
        row, execution = _locked(execution_id)
        unqueued = operations.unqueue(execution, state)
        _store_changed(row, execution, unqueued, start=not unqueued.state.is_terminated())
    return unqueued


def force_run(execution_id: str) -> Execution:
    """Run a CREATED, QUEUED or PAUSED execution now (schedule date and concurrency limit ignored)."""
    with transaction.atomic():
        row, execution = _locked(execution_id)
        forced = operations.force_run(_flow_of(execution), execution)
        _store_changed(row, execution, forced)
    return forced


def _labels_map(labels: Iterable[dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for label in labels:
        out[str(label.get("key", ""))] = "" if label.get("value") is None else str(label.get("value"))
    return out


def set_execution_labels(execution_id: str, labels: list[dict[str, Any]]) -> Execution:
    """Replace the labels of a terminated execution; its system labels are kept and cannot be changed."""
    from orchestrator.runtime import store

    with transaction.atomic():
        loaded = store.lock_execution(execution_id)
        if loaded is None or loaded[0].deleted:
            raise ExecutionNotFound(f"Unable to find execution '{execution_id}'")
        row, execution = loaded
        if not execution.state.is_terminated():
            raise ExecutionNotTerminated("The execution is not terminated")
        existing_system = [l for l in execution.labels if str(l.get("key", "")).startswith(SYSTEM_PREFIX)]
        for label in labels:
            key, value = str(label.get("key", "")), label.get("value")
            if key.startswith(SYSTEM_PREFIX) and {"key": key, "value": value} not in existing_system:
                raise CelestraError(f"System labels can only be set by Kestra itself, offending label: {key}={value}")
        merged = _labels_map(labels)
        for label in existing_system:
            merged.setdefault(label["key"], label["value"])
        execution.labels = [{"key": k, "value": v} for k, v in merged.items() if k or v]
        row.labels = execution.labels
        row.save(update_fields=["labels", "updated"])
    return execution


def delete_execution(execution_id: str, *, delete_logs: bool = True, delete_metrics: bool = True,
                     delete_storage: bool = True) -> None:
    """Soft-delete an execution (hidden from the API), with its logs, metrics and files if asked."""
    with transaction.atomic():
        row = models.Execution.objects.select_for_update().filter(pk=execution_id, deleted=False).first()
        if row is None:
            raise ExecutionNotFound(f"Unable to find execution '{execution_id}'")
        row.deleted = True
        row.save(update_fields=["deleted", "updated"])
        if delete_logs:
            models.LogEntry.objects.filter(execution_id=execution_id).delete()
        if delete_metrics:
            models.MetricEntry.objects.filter(execution_id=execution_id).delete()
    if delete_storage:
        _delete_tree(f"{row.namespace.replace('.', '/')}/{row.flow_id}/executions/{row.id}")


def _delete_tree(prefix: str) -> None:
    from django.core.files.storage import default_storage

    try:
        directories, files = default_storage.listdir(prefix)
    except (FileNotFoundError, NotImplementedError, OSError):
        return
    for name in files:
        default_storage.delete(f"{prefix}/{name}")
    for name in directories:
        _delete_tree(f"{prefix}/{name}")


# --- input validation without creating anything --------------------------------------------------------

class _DryRunFiles:
    """A FileStore that stores nothing: ``…/validate`` reports the URI a file would get."""

    def put_input_file(self, namespace: str, flow_id: str, execution_id: str, input_id: str,
                       filename: str, content: bytes) -> str:
        from orchestrator.engine.inputs import input_file_uri

        return input_file_uri(namespace, flow_id, execution_id, input_id, filename)

    def exists(self, uri: str) -> bool:
        from storage_app.storage import ExecutionFiles

        return ExecutionFiles().exists(uri)


def validate_execution_inputs(namespace: str, flow_id: str, inputs: dict[str, Any], *,
                              revision: int | None = None) -> dict[str, Any]:
    """``POST /executions/{ns}/{id}/validate``: each input's value, enabled flag, default use and errors."""
    from orchestrator.engine import expressions
    from orchestrator.engine.ids import new_id
    from orchestrator.engine.inputs import evaluate_inputs
    from orchestrator.runtime.environment import extras

    from .services import FlowDisabled, latest_flow

    flow_row, parsed = latest_flow(namespace, flow_id, revision)
    if flow_row.disabled or parsed.disabled:
        raise FlowDisabled("Cannot execute a disabled flow")
    execution_id = new_id()
    context = {**extras(namespace),
               "flow": {"id": flow_id, "namespace": namespace, "revision": revision or flow_row.revision},
               "execution": {"id": execution_id}, "labels": {}, "trigger": {}}
    results = evaluate_inputs(parsed.inputs or [], inputs, render=expressions.render, context=context,
                              files=_DryRunFiles(), namespace=namespace, flow_id=flow_id, execution_id=execution_id)
    return {
        "id": flow_id,
        "namespace": namespace,
        "inputs": [{"input": r.definition, "value": r.value, "enabled": r.enabled, "isDefault": r.is_default,
                    "errors": [{"message": m} for m in r.errors]} for r in results],
    }


# --- webhooks ------------------------------------------------------------------------------------------

@dataclass
class WebhookCall:
    body: str | None
    headers: dict[str, list[str]] = field(default_factory=dict)
    parameters: dict[str, list[str]] = field(default_factory=dict)

    def variables(self) -> dict[str, Any]:
        return {"body": parse_body(self.body), "headers": self.headers, "parameters": self.parameters}


def parse_body(body: str | None) -> Any:
    """A JSON object or array becomes a map or list; any other text is kept as it is; no body → null."""
    if body is None or body == "":
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return body
    return value if isinstance(value, (dict, list)) else body


def _canonical(type_name: str) -> str:
    from orchestrator.engine.plugins import lookup

    try:
        return lookup(type_name).type
    except CelestraError:
        return type_name


def trigger_props(node: Any) -> dict[str, Any]:
    if isinstance(node, dict):
        return node
    props = getattr(node, "props", None)
    return props if isinstance(props, dict) else {}


def _attribute(node: Any, name: str) -> Any:
    """A parsed trigger's own attribute (``inputs``, ``labels``...), else the raw property."""
    value = getattr(node, name, None)
    return value if value is not None else trigger_props(node).get(name)


def _type(node: Any) -> str:
    return str(node.get("type", "") if isinstance(node, dict) else getattr(node, "type", ""))


def _render(value: Any, context: dict[str, Any]) -> Any:
    from orchestrator.engine import expressions

    return expressions.render(value, context)


def _truthy(value: Any) -> bool:
    from orchestrator.engine import expressions

    is_truthy = getattr(expressions, "is_truthy", None)
    if is_truthy is not None:
        return bool(is_truthy(value))
    return value is True or str(value).strip().lower() == "true"


def find_webhook(namespace: str, flow_id: str, key: str) -> tuple[models.Flow, Any, Any]:
    """The flow and its enabled Webhook trigger whose rendered ``key`` is ``key`` (spec §7.5)."""
    from orchestrator.runtime.environment import extras

    from .services import FlowDisabled, latest_flow

    # An unknown flow, an invalid one and a wrong key answer the same, so that flows cannot be enumerated.
    try:
        flow_row, parsed = latest_flow(namespace, flow_id)
    except CelestraError:
        raise WebhookNotFound("Webhook not found") from None
    context = {**extras(namespace), "flow": {"id": flow_id, "namespace": namespace, "revision": flow_row.revision}}
    found = None
    for trigger in getattr(parsed, "triggers", None) or []:
        if getattr(trigger, "disabled", False) or _canonical(_type(trigger)) != WEBHOOK:
            continue
        try:
            rendered = str(_render(trigger_props(trigger).get("key"), context)).strip()
        except Exception:  # noqa: BLE001 - a key that cannot be rendered (missing secret...) is skipped
            log.warning("webhook %s.%s/%s: unable to render the key, ignored", namespace, flow_id, trigger.id)
            continue
        # Constant time: the answer's timing must not tell how much of a guessed key is right.
        if hmac.compare_digest(rendered.encode(), key.encode()) and found is None:
            found = trigger
    if found is None:
        raise WebhookNotFound("Webhook not found")
    if flow_row.disabled or parsed.disabled:
        raise FlowDisabled("Cannot execute a disabled flow")
    return flow_row, parsed, found


def _conditions_hold(trigger: Any, context: dict[str, Any]) -> bool:
    """All conditions must hold; Expression conditions are rendered, others cannot apply to a webhook call."""
    conditions = getattr(trigger, "conditions", None)
    if conditions is None:
        conditions = trigger_props(trigger).get("conditions")
    for condition in conditions or []:
        if _canonical(_type(condition)) in EXPRESSION_CONDITIONS:
            if not _truthy(_render(trigger_props(condition).get("expression"), context)):
                return False
    return True


def trigger_webhook(namespace: str, flow_id: str, key: str, call: WebhookCall) -> tuple[Execution | None, Any]:
    """Create the execution of a Webhook call; ``(None, trigger)`` when a condition is false."""
    from orchestrator.engine.ids import new_id
    from orchestrator.runtime.environment import extras

    from .services import create_execution

    flow_row, parsed, trigger = find_webhook(namespace, flow_id, key)
    variables = call.variables()
    execution_id = new_id()
    labels = {k: v for k, v in _labels_map([{"key": k, "value": v} for k, v in (parsed.labels or {}).items()]).items()
              if not k.startswith(SYSTEM_PREFIX)}
    context = {**extras(namespace),
               "flow": {"id": flow_id, "namespace": namespace, "revision": flow_row.revision},
               "execution": {"id": execution_id}, "trigger": variables, "labels": labels}
    if not _conditions_hold(trigger, context):
        return None, trigger
    inputs = _render(_attribute(trigger, "inputs") or {}, context)
    trigger_labels = _attribute(trigger, "labels")
    if isinstance(trigger_labels, dict):
        trigger_labels = {str(k): str(_render(v, context)) for k, v in trigger_labels.items()}
    elif isinstance(trigger_labels, list):
        trigger_labels = [(str(l["key"]), str(_render(l.get("value"), context))) for l in trigger_labels
                          if isinstance(l, dict) and "key" in l]
    execution = create_execution(
        namespace, flow_id, inputs if isinstance(inputs, dict) else {}, labels=trigger_labels or None,
        trigger={"id": trigger.id, "type": _canonical(_type(trigger)), "variables": variables},
        execution_id=execution_id)
    return execution, trigger
