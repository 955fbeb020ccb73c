"""``io.kestra.plugin.core.trigger``: Schedule, ScheduleOnDates, Flow, Webhook triggers and the Toggle task."""
from __future__ import annotations

import re
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.engine.plugins import RUNNABLE, TRIGGER, register

from ._common import CorePlugin, Duration, Props, StateName, Text

_PREFIX = "io.kestra.core.models.triggers.types."
_NICKNAMES = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})


def cron_problem(expression: Any, with_seconds: bool = False) -> str | None:
    """Why ``expression`` is not a cron Kestra accepts (cron-utils' UNIX definition), or None.

    croniter does the field checking; Kestra's forms it spells differently are translated first:
    ``5L`` (last Friday) is croniter's ``L5``, ``LW`` is checked as ``L``, and with
    ``withSeconds`` the seconds field comes first in Kestra but last in croniter.
    """
    from croniter import croniter

    if not isinstance(expression, str) or not expression.strip():
        return "must not be empty"
    text = expression.strip()
    if text.startswith("@"):
        return None if text.lower() in _NICKNAMES else f"unsupported nickname {text}"
    fields = text.split()
    expected = 6 if with_seconds else 5
    if len(fields) != expected:
        return f"Cron expression contains {len(fields)} parts but we expect one of [{expected}]"
    if with_seconds:
        fields = fields[1:] + fields[:1]
    fields[2] = re.sub(r"\bLW\b", "L", fields[2])
    fields[4] = re.sub(r"\b(\w+)L\b", r"L\1", fields[4])
    try:
        if croniter.is_valid(" ".join(fields)):
            return None
        croniter(" ".join(fields))
    except Exception as exc:  # noqa: BLE001 - croniter raises several unrelated types
        return str(exc) or exc.__class__.__name__
    return "invalid expression"  # pragma: no cover - is_valid and the constructor disagree


@register
class Schedule(CorePlugin):
    """Create an execution at each date of a cron expression."""

    type = "io.kestra.plugin.core.trigger.Schedule"
    aliases = (_PREFIX + "Schedule",)
    kind = TRIGGER
    supplies_inputs = "Schedule"
    #: deprecated spelling of the common `conditions`, parsed as conditions too
    condition_fields = {"scheduleConditions": "list"}

    class Props(Props):
        cron: Text
        withSeconds: bool = False
        timezone: Optional[Text] = None
        inputs: Optional[dict[str, Any]] = None
        lateMaximumDelay: Optional[Duration] = None
        recoverMissedSchedules: Optional[Literal["ALL", "LAST", "NONE"]] = None
        backfill: Optional[dict[str, Any]] = None
        interval: Optional[Duration] = None

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        cron = node.props.get("cron")
        problem = cron_problem(cron, bool(node.props.get("withSeconds")))
        if problem:
            return [("cron", f"invalid cron expression '{cron}': {problem}")]
        timezone = node.props.get("timezone")
        if isinstance(timezone, str) and "{{" not in timezone:
            from zoneinfo import ZoneInfo
            try:
                ZoneInfo(timezone)
            except Exception:  # noqa: BLE001 - ZoneInfo raises several types for a bad name
                return [("timezone", f"invalid timezone '{timezone}'")]
        return []


@register
class ScheduleOnDates(CorePlugin):
    """Create one execution per listed date."""

    type = "io.kestra.plugin.core.trigger.ScheduleOnDates"
    kind = TRIGGER

    class Props(Props):
        dates: Any
        timezone: Optional[Text] = None
        inputs: Optional[dict[str, Any]] = None
        recoverMissedSchedules: Optional[Literal["ALL", "LAST", "NONE"]] = None
        interval: Optional[Duration] = None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _UpstreamFlow(_Strict):
    namespace: Text
    flowId: Optional[Text] = None
    states: Optional[list[StateName]] = None
    labels: Optional[Any] = None


class _Filter(_Strict):
    field: Literal["FLOW_ID", "NAMESPACE", "STATE", "EXPRESSION"]
    type: Literal["EQUAL_TO", "NOT_EQUAL_TO", "IN", "NOT_IN", "IS_TRUE", "IS_FALSE", "IS_NULL", "IS_NOT_NULL",
                  "STARTS_WITH", "ENDS_WITH", "REGEX", "CONTAINS"]
    value: Optional[Any] = None
    values: Optional[list[Any]] = None


class _Where(_Strict):
    id: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$")
    operand: Literal["AND", "OR"] = "AND"
    filters: list[_Filter]


class _TimeWindow(_Strict):
    type: Literal["DURATION_WINDOW", "SLIDING_WINDOW", "DAILY_TIME_DEADLINE", "DAILY_TIME_WINDOW"] = "DURATION_WINDOW"
    window: Optional[Duration] = None
    windowAdvance: Optional[Duration] = None
    deadline: Optional[Text] = None
    startTime: Optional[Text] = None
    endTime: Optional[Text] = None


class _Preconditions(_Strict):
    id: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$")
    flows: Optional[list[_UpstreamFlow]] = None
    where: Optional[list[_Where]] = None
    timeWindow: Optional[_TimeWindow] = None
    resetOnSuccess: bool = True


class _UpstreamNamespace(_Strict):
    namespace: Text
    #: also the namespaces under it (``company`` matches ``company.team``)
    prefix: bool = False
    states: Optional[list[StateName]] = None


class _DependsOn(_Strict):
    flows: Optional[list[_UpstreamFlow]] = None
    namespaces: Optional[list[_UpstreamNamespace]] = None


@register
class Flow(CorePlugin):
    """Create an execution when another execution changes state (default: terminates).

    Kestra 2.0 spells its filters ``dependsOn`` (upstream flows and namespaces, each with its
    states), ``window`` and ``mode`` (``ALL``: every dependency within the window, ``ANY``: any one),
    plus ``when``; :meth:`normalize_props` maps them onto 1.x's ``preconditions`` and conditions,
    which the runtime evaluates.
    """

    type = "io.kestra.plugin.core.trigger.Flow"
    aliases = (_PREFIX + "Flow",)
    kind = TRIGGER

    class Props(Props):
        inputs: Optional[dict[str, Any]] = None
        states: Optional[list[StateName]] = None
        preconditions: Optional[_Preconditions] = None
        dependsOn: Optional[_DependsOn] = None
        window: Optional[Duration | _TimeWindow] = None
        mode: Literal["ALL", "ANY"] = "ALL"
        when: Optional[Text] = None

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        if "CREATED" in (node.props.get("states") or []):
            return [("states", "CREATED is not allowed in a Flow trigger's states")]
        return []

    @classmethod
    def normalize_props(cls, props: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """2.0's form → 1.x's: rewrites ``props`` in place; returns the conditions to add (raw,
        parsed by the caller) and the problems, each with the property it is about."""
        conditions: list[dict[str, Any]] = []
        depends = props.pop("dependsOn", None)
        window = props.pop("window", None)
        mode = props.pop("mode", "ALL") or "ALL"
        when = props.pop("when", None)
        if when is not None:
            conditions.append({"type": _CONDITION + "Expression", "expression": when})
        if depends is None:
            problems = [(name, "needs dependsOn") for name, value in (("window", window),) if value is not None]
            if mode != "ALL":
                problems.append(("mode", "needs dependsOn"))
            return conditions, problems
        if props.get("preconditions") is not None:
            return conditions, [("dependsOn", "cannot be set together with preconditions "
                                              "(2.0's dependsOn replaces preconditions): keep one of them")]
        flows = list(depends.get("flows") or [])
        namespaces = list(depends.get("namespaces") or [])
        if not flows and not namespaces:
            return conditions, [("dependsOn", "must list at least one flow or namespace")]
        wanted = sorted({state for entry in flows + namespaces for state in (entry.get("states") or [])})
        if wanted and not props.get("states"):
            # the trigger's own state gate must let every dependency's states through
            props["states"] = wanted
        if mode == "ANY":
            if window is not None:
                return conditions, [("window", "only applies to mode ALL (mode ANY fires on each upstream execution)")]
            alternatives = [_all_of(_flow_tests(f)) for f in flows] + [_all_of(_namespace_tests(n)) for n in namespaces]
            conditions.append({"type": _CONDITION + "Or", "conditions": alternatives})
            return conditions, []
        preconditions: dict[str, Any] = {"id": "dependsOn", "flows": flows} if flows else {"id": "dependsOn"}
        if namespaces:
            preconditions["where"] = [_namespace_where(index, n) for index, n in enumerate(namespaces)]
        if isinstance(window, str):
            preconditions["timeWindow"] = {"type": "DURATION_WINDOW", "window": window}
        elif isinstance(window, dict):
            preconditions["timeWindow"] = window
        props["preconditions"] = preconditions
        return conditions, []


_CONDITION = "io.kestra.plugin.core.condition."


def _all_of(tests: list[dict[str, Any]]) -> dict[str, Any]:
    """Every one of ``tests`` holds: not (any of them fails), with the conditions Kestra has."""
    if len(tests) == 1:
        return tests[0]
    return {"type": _CONDITION + "Not", "conditions": [{"type": _CONDITION + "Not", "conditions": [t]} for t in tests]}


def _states_tests(states: Any) -> list[dict[str, Any]]:
    return [{"type": _CONDITION + "ExecutionStatus", "in": list(states)}] if states else []


def _flow_tests(flow: dict[str, Any]) -> list[dict[str, Any]]:
    if flow.get("flowId"):
        tests = [{"type": _CONDITION + "ExecutionFlow", "namespace": flow["namespace"], "flowId": flow["flowId"]}]
    else:
        tests = [{"type": _CONDITION + "ExecutionNamespace", "namespace": flow["namespace"]}]
    return tests + _states_tests(flow.get("states"))


def _namespace_tests(entry: dict[str, Any]) -> list[dict[str, Any]]:
    test = {"type": _CONDITION + "ExecutionNamespace", "namespace": entry["namespace"],
            "comparison": "PREFIX" if entry.get("prefix") else "EQUALS"}
    return [test] + _states_tests(entry.get("states"))


def _namespace_where(index: int, entry: dict[str, Any]) -> dict[str, Any]:
    namespace = str(entry["namespace"])
    filters: list[dict[str, Any]] = [
        {"field": "NAMESPACE", "type": "STARTS_WITH", "value": namespace} if entry.get("prefix")
        else {"field": "NAMESPACE", "type": "EQUAL_TO", "value": namespace}]
    if entry.get("states"):
        filters.append({"field": "STATE", "type": "IN", "values": list(entry["states"])})
    return {"id": f"namespace_{index}", "operand": "AND", "filters": filters}


@register
class Webhook(CorePlugin):
    """Create an execution when ``/executions/webhook/{namespace}/{flowId}/{key}`` is called."""

    type = "io.kestra.plugin.core.trigger.Webhook"
    aliases = (_PREFIX + "Webhook",)
    kind = TRIGGER
    supplies_inputs = "Webhook"

    class Props(Props):
        key: Text = Field(max_length=256)
        inputs: Optional[dict[str, Any]] = None
        wait: bool = False
        returnOutputs: bool = False
        responseContentType: Text = "application/json"

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        problems = []
        for index, condition in enumerate(getattr(node, "conditions", None) or []):
            if condition.type == "io.kestra.plugin.core.condition.MultipleCondition":
                problems.append((f"conditions[{index}]", "A Webhook trigger cannot use a MultipleCondition"))
        return problems


@register
class Toggle(CorePlugin):
    """Task: enable or disable a trigger of a flow (the current flow by default)."""

    type = "io.kestra.plugin.core.trigger.Toggle"
    aliases = ("io.kestra.core.tasks.trigger.Toggle",)
    kind = RUNNABLE

    class Props(Props):
        namespace: Optional[Text] = None
        flowId: Optional[Text] = None
        trigger: Text
        enabled: bool = False

    def run(self, ctx: Any) -> dict[str, Any] | None:
        """Set the stored state of the trigger (its ``disabled`` flag); the flow and trigger must exist."""
        from orchestrator.engine.memory_platform import platform_of

        props = self.task.props
        flow = ctx.variables.get("flow") or {}
        namespace = ctx.render_string(props["namespace"]) if props.get("namespace") is not None else (
            flow.get("namespace") or ctx.namespace)
        flow_id = ctx.render_string(props["flowId"]) if props.get("flowId") is not None else (
            flow.get("id") or ctx.flow_id)
        trigger_id = ctx.render_string(props.get("trigger"))
        enabled = ctx.render(props.get("enabled", False))
        enabled = enabled if isinstance(enabled, bool) else str(enabled).strip().lower() == "true"
        platform_of(ctx).set_trigger_disabled(namespace, flow_id, trigger_id, not enabled)
        return None
