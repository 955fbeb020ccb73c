"""Polling triggers (``http.Trigger``, ``aws.s3.Trigger``...): evaluated by the scheduler every ``interval``.

A polling trigger is a TRIGGER plugin with one of two shapes (the behaviour stays on its class):

* ``evaluate(ctx) -> dict | None``: one poll; the trigger variables (``trigger.*``) when it fires;
* ``candidates(ctx) -> {key: (version, item)}`` and ``variables(ctx, items) -> dict`` (optionally
  ``after_fire(ctx, items)``): a stateful poll; only items not fired yet (per the trigger's ``on``:
  CREATE, UPDATE or CREATE_OR_UPDATE) fire, all of them in one execution.

The state lives on the trigger's ``TriggerState`` row: ``next_execution_date`` is the next poll,
``date`` the last one, ``results["seen"]`` the items already fired (key → version), ``execution_id``
the lock while the execution runs (unless ``allowConcurrent``; released by ``on_execution_end``, which
also applies ``stopAfter``).

:func:`evaluate_polling` (called by the timer sweep) runs every due poll:

1. claim the poll: compare-and-set ``next_execution_date`` from the value read to ``now + interval``;
   a scheduler replica that loses the race skips it, so one poll runs per interval across replicas;
2. poll, outside any transaction (network calls);
3. in one transaction with the row locked, drop items already seen, create the execution and write
   the seen items: a crash before the commit leaves neither, so an item fires once across restarts;
4. after the commit, ``after_fire`` (S3 ``action`` MOVE/DELETE).

Every poll is isolated: an error is logged in the flow's logs and the next poll happens as planned.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Iterable

from django.db import transaction

from orchestrator.engine import expressions, states
from orchestrator.engine.conditions import ConditionContext, all_valid
from orchestrator.engine.errors import CelestraError
from orchestrator.engine.timeutil import now as utcnow
from orchestrator.engine.timeutil import parse_duration

log = logging.getLogger("celestra.scheduler")

DEFAULT_INTERVAL = timedelta(seconds=60)
#: the seen items kept per trigger (the oldest are forgotten first)
MAX_SEEN = 10_000


def polling_types() -> list[str]:
    """The registered trigger types that poll."""
    from orchestrator.engine.plugins import TRIGGER, registered_types

    return sorted({cls.type for cls in registered_types().values()
                   if cls.kind == TRIGGER and (hasattr(cls, "evaluate") or hasattr(cls, "candidates"))})


def interval_of(trigger: Any) -> timedelta:
    value = trigger.props.get("interval")
    if value is None:
        return getattr(trigger.plugin, "default_interval", DEFAULT_INTERVAL)
    try:
        return max(parse_duration(str(value)), timedelta(seconds=1))
    except ValueError:
        return DEFAULT_INTERVAL


class PollContext:
    """The run context of one poll (the RunContext protocol of orchestrator.engine.plugins)."""

    def __init__(self, flow: Any, trigger: Any):
        from .environment import static_extras
        from .services import Services

        self.namespace = flow.namespace
        self.flow_id = flow.id
        self.task_id = trigger.id
        self.execution_id = ""
        self.trigger = trigger
        self.variables: dict[str, Any] = {
            **static_extras(), "flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision},
            "vars": dict(flow.variables or {}), "__services__": Services(flow.namespace)}
        self.platform = _trigger_platform(flow, trigger)

    def render(self, value: Any) -> Any:
        return expressions.render(value, self.variables)

    def render_string(self, value: Any) -> str:
        return expressions.render_string(value, self.variables)

    def log(self, level: str, message: str) -> None:
        from .flow_triggers import trigger_log

        trigger_log(self.namespace, self.flow_id, self.task_id, "WARN" if level == "WARNING" else level, message)

    def metric(self, kind: str, name: str, value: float, tags: dict[str, str] | None = None) -> None:
        log.debug("%s.%s/%s metric %s %s=%s", self.namespace, self.flow_id, self.task_id, kind, name, value)

    def sleep(self, seconds: float) -> None:
        import time

        time.sleep(max(0.0, seconds))

    def store_file(self, name: str, content: bytes) -> str:
        """Store a file the trigger hands to its execution (``trigger.objects[].uri``); returns its URI."""
        return self.platform.put_file(content, name)


def _trigger_platform(flow: Any, trigger: Any) -> Any:
    """The platform of a poll: files go under ``<namespace>/<flow>/triggers/<trigger>/<id>/``, which the
    flow's tasks may read (a poll has no execution yet)."""
    import uuid

    from orchestrator.engine.memory_platform import slugify

    from .platform import Platform

    class TriggerPlatform(Platform):
        def task_prefix(self) -> str:
            return (f"{self.namespace_path(self.namespace)}/{slugify(self.flow_id)}/triggers/"
                    f"{slugify(self.task_id or 'trigger')}/{self.taskrun_id}")

    return TriggerPlatform(flow.namespace, flow.id, "", trigger.id, uuid.uuid4().hex[:22])


def evaluate_polling(moment: datetime | None = None) -> list[str]:
    """Run the due polls of every polling trigger; return the ids of the executions created."""
    from django.db.models import Q

    from flows_app.models import TriggerState

    moment = moment or utcnow()
    try:
        due = list(TriggerState.objects.filter(condition_id="", type__in=polling_types(), disabled=False)
                   .filter(Q(next_execution_date__isnull=True) | Q(next_execution_date__lte=moment))
                   .values_list("pk", "next_execution_date")[:500])
    except Exception:
        log.exception("scheduler: cannot list the due polling triggers")
        return []
    created: list[str] = []
    for pk, planned in due:
        try:
            created.extend(poll_one(pk, planned, moment))
        except Exception:
            log.exception("scheduler: polling trigger state %s failed", pk)
    return created


def _claim(pk: int, planned: datetime | None, moment: datetime, interval: timedelta) -> bool:
    """Compare-and-set the next poll date: True when this process won the poll planned at ``planned``."""
    from flows_app.models import TriggerState

    rows = TriggerState.objects.filter(pk=pk, disabled=False)
    rows = rows.filter(next_execution_date__isnull=True) if planned is None else rows.filter(
        next_execution_date=planned)
    return rows.update(next_execution_date=moment + interval, date=moment, updated=moment) == 1


def poll_one(pk: int, planned: datetime | None, moment: datetime) -> list[str]:
    """One poll of one trigger state (see the module docstring for the steps)."""
    from flows_app.models import Execution, Flow, TriggerState

    from .flow_triggers import trigger_log
    from .flows import get_flow

    row = TriggerState.objects.filter(pk=pk).first()
    if row is None:
        return []
    flow_row = Flow.objects.filter(namespace=row.namespace, flow_id=row.flow_id, deleted=False).first()
    if flow_row is None or flow_row.disabled:
        return []
    flow = get_flow(row.namespace, row.flow_id, flow_row.revision)
    trigger = flow.find_trigger(row.trigger_id)
    if trigger is None or trigger.disabled or flow.disabled or trigger.type != row.type:
        return []
    if not _claim(pk, planned, moment, interval_of(trigger)):
        return []  # another scheduler polls it
    if row.execution_id and not trigger.allow_concurrent:
        current = Execution.objects.filter(pk=row.execution_id).values_list("state", flat=True).first()
        if current is not None and current not in states.TERMINATED:
            return []  # locked: the execution it created is still running
    ctx = PollContext(flow, trigger)
    if trigger.conditions and not all_valid(trigger.conditions, ConditionContext(
            execution=None, flow={"namespace": flow.namespace, "id": flow.id}, variables=ctx.variables, now=moment)):
        return []
    plugin = trigger.plugin(trigger)
    try:
        if hasattr(plugin, "candidates"):
            found: dict[str, tuple[Any, Any]] | None = plugin.candidates(ctx)
            variables = None
        else:
            found, variables = None, plugin.evaluate(ctx)
    except Exception as exc:  # noqa: BLE001 - a failing poll is the trigger's, made visible
        message = f"Trigger '{trigger.id}' poll failed: {exc}"
        trigger_log(flow.namespace, flow.id, trigger.id, "ERROR", message)
        if trigger.fail_on_trigger_error:
            from .flow_triggers import create_failed_execution

            failed = create_failed_execution(flow, trigger, {"id": trigger.id, "type": trigger.type}, message)
            return [failed] if failed else []
        return []
    fired: list[Any] = []
    with transaction.atomic():
        row = TriggerState.objects.select_for_update().filter(pk=pk).first()
        if row is None or row.disabled:
            return []
        results = dict(row.results or {})
        if found is not None:
            seen: dict[str, Any] = dict(results.get("seen") or {})
            on = str(trigger.props.get("on") or "CREATE_OR_UPDATE").upper()
            fresh = [(key, version, item) for key, (version, item) in found.items() if _is_new(on, seen, key, version)]
            limit = plugin.max_items(ctx) if hasattr(plugin, "max_items") else None
            if limit is not None and len(fresh) > limit:
                ctx.log("WARN", f"Too many items to process ({len(fresh)}), limiting to {limit}; "
                                "the others fire on the next polls")
                fresh = fresh[:limit]  # the others stay unseen: they fire on the next polls
            if getattr(plugin, "reports_change_type", False):
                fresh = [(key, version, {**item, "changeType": "UPDATE" if key in seen else "CREATE"})
                         for key, version, item in fresh]
            # forget items no longer listed: one deleted and created again fires again
            seen = {key: seen[key] for key in seen if key in found}
            for key, version, _ in fresh:
                seen[key] = version
            results["seen"] = dict(list(seen.items())[-MAX_SEEN:])
            if not fresh:
                row.results = results
                row.save(update_fields=["results", "updated"])
                return []
            fired = [item for _, _, item in fresh]
            variables = plugin.variables(ctx, fired)
        if variables is None:
            return []
        execution_id = _create(flow, trigger, variables)
        row.results = results
        if execution_id and not trigger.allow_concurrent:
            row.execution_id, row.execution_current_state = execution_id, states.CREATED
        row.save(update_fields=["results", "execution_id", "execution_current_state", "updated"])
    if fired and hasattr(plugin, "after_fire"):
        try:
            plugin.after_fire(ctx, fired)
        except Exception as exc:  # noqa: BLE001 - the execution exists; the action is reported
            trigger_log(flow.namespace, flow.id, trigger.id, "ERROR", f"Trigger '{trigger.id}' action failed: {exc}")
    return [execution_id] if execution_id else []


def _is_new(on: str, seen: dict[str, Any], key: str, version: Any) -> bool:
    if key not in seen:
        return on in ("CREATE", "CREATE_OR_UPDATE")
    return on in ("UPDATE", "CREATE_OR_UPDATE") and seen[key] != version


def _create(flow: Any, trigger: Any, variables: dict[str, Any]) -> str | None:
    from .flow_triggers import create_triggered_execution
    from .schedules import _labels_of

    spec = {"id": trigger.id, "type": trigger.type, "variables": variables}
    context = {"flow": {"id": flow.id, "namespace": flow.namespace}, "trigger": variables,
               "vars": dict(flow.variables or {})}
    try:
        inputs = expressions.render(dict(trigger.props.get("inputs") or trigger.inputs or {}), context)
        labels = {str(k): expressions.render_string(v, context) for k, v in _labels_of(trigger.labels).items()}
    except CelestraError as exc:
        from .flow_triggers import trigger_log

        trigger_log(flow.namespace, flow.id, trigger.id, "ERROR",
                    f"Trigger '{trigger.id}' cannot render its inputs or labels: {exc}")
        return None
    return create_triggered_execution(flow, trigger, inputs, labels, spec,
                                      invalid_inputs="fail" if trigger.fail_on_trigger_error else "log")


def reset(namespace: str, flow_id: str, trigger_ids: Iterable[str] | None = None) -> int:
    """Forget the seen items and the next poll date (the next sweep polls at once)."""
    from flows_app.models import TriggerState

    rows = TriggerState.objects.filter(namespace=namespace, flow_id=flow_id, condition_id="")
    if trigger_ids is not None:
        rows = rows.filter(trigger_id__in=list(trigger_ids))
    return rows.update(results={}, next_execution_date=None)
