"""Flow triggers (spec §7.4): executions of other flows started when an execution changes state.

* :func:`fire_flow_triggers` runs after commit for every execution that ended (``hooks.on_execution_end``)
  and, through :func:`on_state_change`, for its non-terminal transitions (RUNNING, PAUSED...) that a
  trigger's ``states`` may listen to.
* The flows that have Flow triggers are found through a registry cached per flow revision, so a
  transition costs one query over the flow table and no YAML parsing.
* Conditions are evaluated by the pure ``orchestrator.engine.conditions``; ``MultipleCondition`` and
  ``preconditions`` keep their window in :class:`flows_app.models.TriggerState` rows
  (``condition_id`` = the condition id), updated under a row lock so that two upstream executions
  ending together cannot lose each other's results nor both fire.

Nothing here may break the executor: every error is logged (and, when it concerns one trigger, written
to that flow's logs) and the evaluation goes on with the next trigger.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any, Iterable

from django.db import IntegrityError, transaction

from orchestrator.engine import states
from orchestrator.engine.conditions import (
    ConditionContext, ConditionError, MULTIPLE, all_valid, evaluate, named_conditions, satisfied, window_bounds,
    window_is_valid,
)
from orchestrator.engine.errors import CelestraError, InputValidationError
from orchestrator.engine.timeutil import now as utcnow
from orchestrator.plugins.core.trigger import Flow as FlowTrigger

log = logging.getLogger("celestra.triggers")

FLOW_TRIGGER = FlowTrigger.type
#: Kestra's default ``states`` of a Flow trigger: the terminal states and PAUSED
DEFAULT_STATES = frozenset(states.TERMINATED | {states.PAUSED})
CORRELATION_ID = "system.correlationId"

_registry_lock = threading.Lock()
#: (namespace, flow_id) -> ((revision, updated), parsed flow when it has an enabled Flow trigger, else None)
_registry: dict[tuple[str, str], tuple[tuple[int, Any], Any]] = {}


# --------------------------------------------------------------------------------------------------
# Entry points

def fire_flow_triggers(execution_id: str, state: str | None = None) -> list[str]:
    """Evaluate every Flow trigger against the execution; return the ids of the executions created.

    ``state`` is the transition to evaluate; None means the execution just ended (its current state),
    in which case the trigger state of the trigger that created it is updated first (lock release,
    ``stopAfter``).
    """
    try:
        return _fire(execution_id, state)
    except Exception:
        log.exception("flow triggers: evaluation failed for execution %s", execution_id)
        return []


def on_state_change(flow: Any, execution: Any, decision: Any) -> None:
    """Inside the step transaction: schedule the evaluation of the non-terminal transitions of this step.

    Terminal states are evaluated by :func:`fire_flow_triggers` through ``on_execution_end``.
    """
    try:
        if not getattr(decision, "execution_changed", False) or not listeners():
            return
        from flows_app import models

        previous = models.Execution.objects.filter(pk=execution.id).values_list("state_json", flat=True).first()
        known = len((previous or {}).get("histories") or [])
        transitions = [name for name, _ in execution.state.histories[known:]
                       if name not in states.TERMINATED and name != states.CREATED]
        if not transitions:
            return
        execution_id = execution.id

        def fire() -> None:
            for name in transitions:
                fire_flow_triggers(execution_id, state=name)

        transaction.on_commit(fire)
    except Exception:
        log.exception("flow triggers: cannot follow the transitions of execution %s", execution.id)


# --------------------------------------------------------------------------------------------------
# Registry of the flows having Flow triggers

def listeners() -> list[Any]:
    """The parsed latest revision of every enabled flow having an enabled Flow trigger."""
    from flows_app import models
    from orchestrator.runtime.flows import get_flow

    rows = list(models.Flow.objects.filter(deleted=False, disabled=False)
                .values_list("namespace", "flow_id", "revision", "updated"))
    found = []
    seen = set()
    with _registry_lock:
        for namespace, flow_id, revision, updated in rows:
            key = (namespace, flow_id)
            seen.add(key)
            version = (revision, updated)
            cached = _registry.get(key)
            if cached is None or cached[0] != version:
                try:
                    parsed = get_flow(namespace, flow_id, revision)
                except Exception:  # noqa: BLE001 - an unreadable flow has no usable trigger
                    parsed = None
                has = parsed is not None and not parsed.disabled and any(
                    t.type == FLOW_TRIGGER and not t.disabled for t in parsed.triggers)
                cached = (version, parsed if has else None)
                _registry[key] = cached
            if cached[1] is not None:
                found.append(cached[1])
        for key in [k for k in _registry if k not in seen]:
            del _registry[key]
    return found


def clear_registry() -> None:
    with _registry_lock:
        _registry.clear()


# --------------------------------------------------------------------------------------------------
# Evaluation

def _fire(execution_id: str, state: str | None) -> list[str]:
    from flows_app.services import load_execution

    try:
        execution = load_execution(execution_id)
    except CelestraError:
        return []
    if state is None:
        from .schedules import on_execution_end

        on_execution_end(execution)
    current = state or execution.state.current
    if current == states.CREATED:
        return []
    candidates = [flow for flow in listeners()
                  if (flow.namespace, flow.id) != (execution.namespace, execution.flow_id)]
    if not candidates:
        return []
    data = execution.to_json()
    if state is not None:
        data["state"] = {**data["state"], "current": state}
    disabled = _disabled_states(candidates)
    created: list[str] = []
    moment = utcnow()
    upstream_context: dict[str, Any] | None = None
    for flow in candidates:
        for trigger in flow.triggers:
            if trigger.type != FLOW_TRIGGER or trigger.disabled:
                continue
            if (flow.namespace, flow.id, trigger.id) in disabled:
                continue
            wanted = trigger.props.get("states") or DEFAULT_STATES
            if current not in wanted:
                continue
            if upstream_context is None:
                upstream_context = _upstream_context(execution)
            variables = {**upstream_context,
                         "flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision,
                                  "tenantId": "main"},
                         "vars": {**(flow.variables or {}), **(execution.variables or {})}}
            ctx = ConditionContext(execution=data, flow={"namespace": flow.namespace, "id": flow.id},
                                   variables=variables, now=moment)
            try:
                new_id = _evaluate_trigger(flow, trigger, execution, data, ctx)
            except Exception as exc:
                log.exception("flow trigger %s.%s/%s failed", flow.namespace, flow.id, trigger.id)
                trigger_log(flow.namespace, flow.id, trigger.id, "ERROR",
                            f"Flow trigger '{trigger.id}' failed on execution {execution.id}: {exc}")
                continue
            if new_id:
                created.append(new_id)
    _purge_expired_windows(moment)
    return created


def _disabled_states(flows: Iterable[Any]) -> set[tuple[str, str, str]]:
    from flows_app.models import TriggerState

    namespaces = {flow.namespace for flow in flows}
    rows = TriggerState.objects.filter(namespace__in=namespaces, condition_id="", disabled=True)
    return set(rows.values_list("namespace", "flow_id", "trigger_id"))


def _upstream_context(execution: Any) -> dict[str, Any]:
    """The expression context of the upstream execution (its inputs, task outputs, labels, trigger)."""
    from orchestrator.engine.context import RunIndex, base_context

    from .environment import extras
    from .flows import get_flow

    try:
        upstream_flow = get_flow(execution.namespace, execution.flow_id, execution.flow_revision)
        type_of = {task.id: task.type for task in upstream_flow.all_tasks()}
    except Exception:  # noqa: BLE001 - outputs of loops are then keyed flat
        upstream_flow, type_of = None, {}
    context = base_context(upstream_flow, execution, extras(execution.namespace))
    index = RunIndex(execution, type_of)
    context["outputs"] = index.outputs_map()
    context["tasks"] = index.tasks_map()
    return context


def _evaluate_trigger(flow: Any, trigger: Any, execution: Any, data: dict[str, Any],
                      ctx: ConditionContext) -> str | None:
    """Evaluate one Flow trigger; create its execution when every condition holds."""
    label = f"{flow.namespace}.{flow.id}/{trigger.id}"

    def on_error(name: str, exc: Exception) -> None:
        trigger_log(flow.namespace, flow.id, trigger.id, "WARN",
                    f"Condition '{name}' of trigger '{trigger.id}' could not be evaluated: {exc}")

    try:
        if not all_valid(trigger.conditions, ctx, skip_multiple=True):
            return None
    except ConditionError as exc:
        on_error("conditions", exc)
        return None
    multiples: list[tuple[str, Any, dict[str, Any] | None, bool]] = []
    for condition in trigger.conditions:
        if condition.type == MULTIPLE:
            multiples.append((str(condition.props.get("id")), condition, condition.props,
                              condition.props.get("resetOnSuccess", True) is not False))
    preconditions = trigger.props.get("preconditions")
    if isinstance(preconditions, dict) and preconditions.get("id"):
        multiples.append((str(preconditions["id"]), preconditions, preconditions,
                          preconditions.get("resetOnSuccess", True) is not False))
    if not multiples:
        return _create(flow, trigger, execution, data, ctx, execution.outputs)
    with transaction.atomic():
        windows = {}
        outputs: dict[str, Any] = dict(execution.outputs or {})
        rows = []
        for condition_id, multiple, props, reset in multiples:
            checks = named_conditions(multiple)
            results = satisfied(checks, ctx, on_error)
            row = _window(flow, trigger, condition_id, props or {}, ctx.now, results, execution.outputs)
            windows[condition_id] = dict(row.results or {}) if row is not None else {}
            if row is not None and row.outputs:
                outputs = _deep_merge(outputs, row.outputs)
            rows.append((row, checks, reset))
        ctx.windows = windows
        valid = all(evaluate(c, ctx) for c in trigger.conditions if c.type == MULTIPLE)
        if isinstance(preconditions, dict) and preconditions.get("id"):
            names = list(named_conditions(preconditions))
            results = windows.get(str(preconditions["id"])) or {}
            valid = valid and bool(names) and all(results.get(name) for name in names)
        if not valid:
            return None
        log.debug("flow trigger %s: every condition is satisfied", label)
        created = _create(flow, trigger, execution, data, ctx, outputs or None)
        for row, checks, reset in rows:
            if row is not None and reset and all((row.results or {}).get(name) for name in checks):
                row.delete()
        return created


def _window(flow: Any, trigger: Any, condition_id: str, props: dict[str, Any], moment: datetime,
            results: dict[str, bool], outputs: dict[str, Any] | None) -> Any:
    """Fold ``results`` into the current window of a MultipleCondition (created or renewed as needed).

    Returns the locked row, or None when there is no valid window (a daily window outside its hours)
    or nothing to store (Kestra keeps a window only once a sub-condition was satisfied in it).
    """
    from flows_app.models import TriggerState

    start, end = window_bounds(props.get("timeWindow"), moment, window=props.get("window"),
                               window_advance=props.get("windowAdvance"))
    key = {"namespace": flow.namespace, "flow_id": flow.id, "trigger_id": trigger.id, "condition_id": condition_id}
    row = TriggerState.objects.select_for_update().filter(**key).first()
    if row is not None and not (row.window_start and row.window_end
                                and window_is_valid(row.window_start, row.window_end, moment)):
        row.delete()
        row = None
    if row is None:
        if not window_is_valid(start, end, moment) or not results:
            return None
        try:
            with transaction.atomic():
                row = TriggerState.objects.create(**key, type=MULTIPLE, window_start=start, window_end=end,
                                                  results={}, outputs=None)
        except IntegrityError:  # created meanwhile by another executor thread
            row = TriggerState.objects.select_for_update().get(**key)
    if results:
        merged = dict(row.results or {})
        merged.update(results)
        row.results = merged
        if outputs:
            row.outputs = _deep_merge(dict(row.outputs or {}), outputs)
        row.save(update_fields=["results", "outputs", "updated"])
    return row


def _purge_expired_windows(moment: datetime) -> None:
    from flows_app.models import TriggerState

    try:
        TriggerState.objects.exclude(condition_id="").filter(window_end__lt=moment).delete()
    except Exception:
        log.exception("flow triggers: cannot purge expired windows")


def _deep_merge(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------------------------------
# Creating the execution

def nested_labels(labels: Iterable[dict[str, str]]) -> dict[str, Any]:
    """Kestra's ``Label.toNestedMap``: ``a.b: v`` becomes ``{a: {b: v}}`` (first occurrence wins)."""
    out: dict[str, Any] = {}
    for label in labels:
        node = out
        parts = str(label["key"]).split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node.setdefault(parts[-1], label["value"])
    return out


def _create(flow: Any, trigger: Any, execution: Any, data: dict[str, Any], ctx: ConditionContext,
            outputs: dict[str, Any] | None) -> str | None:
    from orchestrator.engine import expressions

    variables: dict[str, Any] = {
        "executionId": execution.id,
        "namespace": execution.namespace,
        "flowId": execution.flow_id,
        "flowRevision": execution.flow_revision,
        "state": data["state"]["current"],
        "executionLabels": nested_labels(l for l in execution.labels if l["key"] != CORRELATION_ID),
    }
    if outputs:
        variables["outputs"] = outputs
    render_context = {**ctx.variables, "trigger": variables}
    try:
        inputs = expressions.render(trigger.inputs or {}, render_context)
        labels = {str(k): expressions.render_string(v, render_context) for k, v in (trigger.labels or {}).items()}
    except Exception as exc:  # noqa: BLE001 - Kestra logs and creates nothing
        trigger_log(flow.namespace, flow.id, trigger.id, "WARN",
                    f"Failed to trigger flow {flow.namespace}.{flow.id} for trigger {trigger.id}, "
                    f"invalid inputs: {exc}")
        return None
    correlation = execution.labels_map().get(CORRELATION_ID, execution.id)
    labels[CORRELATION_ID] = correlation
    spec = {"id": trigger.id, "type": trigger.type, "variables": variables}
    return create_triggered_execution(flow, trigger, inputs, labels, spec)


def create_triggered_execution(flow: Any, trigger: Any, inputs: dict[str, Any], labels: dict[str, str],
                               spec: dict[str, Any], invalid_inputs: str = "raw") -> str | None:
    """Create the execution of ``flow`` for a trigger; return its id, or None (logged) when refused.

    Inputs are typed and validated as for any execution. When they do not validate, ``invalid_inputs``
    decides: ``raw`` creates the execution with the rendered inputs as given, as Kestra's Flow trigger
    does (it never validates them); ``fail`` creates a FAILED execution carrying the error
    (``failOnTriggerError``); ``log`` only writes the error to the flow's logs.
    """
    from flows_app.services import FlowDisabled, create_execution

    try:
        with transaction.atomic():
            return create_execution(flow.namespace, flow.id, inputs, labels=labels, trigger=spec).id
    except InputValidationError as exc:
        if invalid_inputs == "fail":
            return create_failed_execution(flow, trigger, spec, f"Trigger '{trigger.id}': invalid inputs: {exc}")
        if invalid_inputs == "log":
            trigger_log(flow.namespace, flow.id, trigger.id, "ERROR",
                        f"Trigger '{trigger.id}' cannot create an execution, invalid inputs: {exc}")
            return None
        trigger_log(flow.namespace, flow.id, trigger.id, "WARN",
                    f"Trigger '{trigger.id}': inputs do not validate ({exc}); they are passed as rendered")
        try:
            with transaction.atomic():
                return _create_unvalidated(flow, inputs, labels, spec)
        except CelestraError as inner:
            trigger_log(flow.namespace, flow.id, trigger.id, "ERROR",
                        f"Trigger '{trigger.id}' cannot create an execution: {inner}")
            return None
    except FlowDisabled:
        return None
    except CelestraError as exc:
        trigger_log(flow.namespace, flow.id, trigger.id, "ERROR",
                    f"Trigger '{trigger.id}' cannot create an execution: {exc}")
        return None


def _create_unvalidated(flow: Any, inputs: dict[str, Any], labels: dict[str, str], spec: dict[str, Any],
                        state: str | None = None, message: str | None = None) -> str:
    """Insert an execution with its inputs as given (or directly in ``state``, with an error log)."""
    from flows_app.services import latest_flow
    from orchestrator.engine.executor import LogLine
    from orchestrator.engine.model import Execution

    from . import store

    flow_row, parsed = latest_flow(flow.namespace, flow.id)
    execution = Execution.create(flow.namespace, flow.id, flow_row.revision, trigger=spec)
    merged = {k: str(v) for k, v in (parsed.labels or {}).items() if not k.startswith("system.")}
    merged.update({k: str(v) for k, v in labels.items()
                   if not k.startswith("system.") or k == CORRELATION_ID})
    merged.setdefault(CORRELATION_ID, execution.id)
    execution.labels = [{"key": k, "value": v} for k, v in merged.items()]
    execution.inputs = dict(inputs or {})
    if state:
        execution.state = execution.state.with_state(state)
    store.insert_execution(execution)
    if message:
        store.insert_logs(execution, [LogLine("ERROR", message)])
    if not state:
        from .tasks import enqueue_advance

        enqueue_advance(execution.id)
    return execution.id


def create_failed_execution(flow: Any, trigger: Any, spec: dict[str, Any], message: str) -> str | None:
    """A FAILED execution carrying ``message``: how Kestra makes a trigger evaluation error visible."""
    try:
        with transaction.atomic():
            return _create_unvalidated(flow, {}, dict(trigger.labels or {}), spec, state=states.FAILED,
                                       message=message)
    except Exception:
        log.exception("trigger %s.%s/%s: cannot create the failed execution", flow.namespace, flow.id, trigger.id)
        return None


def trigger_log(namespace: str, flow_id: str, trigger_id: str, level: str, message: str) -> None:
    """A log line of a trigger (no execution), visible in the flow's logs."""
    from flows_app.models import LogEntry

    getattr(log, {"WARN": "warning", "ERROR": "error"}.get(level, "info"))(
        "%s.%s/%s: %s", namespace, flow_id, trigger_id, message)
    try:
        LogEntry.objects.create(namespace=namespace, flow_id=flow_id, trigger_id=trigger_id, level=level,
                                message=message, timestamp=utcnow())
    except Exception:
        log.exception("cannot store a trigger log line")
