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


@register
class Flow(CorePlugin):
    """Create an execution when another execution changes state (default: terminates)."""

    type = "io.kestra.plugin.core.trigger.Flow"
    aliases = (_PREFIX + "Flow",)
    kind = TRIGGER

    class Props(Props):
        inputs: Optional[dict[str, Any]] = None
        states: Optional[list[StateName]] = None
        preconditions: Optional[_Preconditions] = None

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        if "CREATED" in (node.props.get("states") or []):
            return [("states", "CREATED is not allowed in a Flow trigger's states")]
        return []


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
