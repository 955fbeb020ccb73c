"""``io.kestra.plugin.core.condition``: trigger and listener conditions.

Each condition carries its test (``test(props, ctx)``, Kestra's ``Condition.test``), which
:func:`orchestrator.engine.conditions.evaluate` calls through the registry; the helpers it uses
(date parsing, holidays, execution readers) are in :mod:`orchestrator.engine.conditions`.
MultipleCondition's test reads the window stored by the flow-trigger service.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal, Mapping, Optional

from pydantic import Field

from orchestrator.engine.conditions import (
    DAYS, ConditionContext, ConditionError, condition_date, evaluate, execution_labels, execution_state,
    is_public_holiday, nth_weekday, parse_datetime, parse_offset_time, seconds_utc, state_list, wanted_labels,
)
from orchestrator.engine.plugins import CONDITION, register

from ._common import CorePlugin, Duration, Props, StateName, Text

_OLD = "io.kestra.core.models.conditions.types."
_NEW = "io.kestra.plugin.core.condition."
_TRIGGER_DATE = "{{ trigger.date }}"
def _day_of_week(props: Mapping[str, Any], ctx: ConditionContext) -> int:
    value = str(ctx.rendered(props.get("dayOfWeek")) or "").upper()
    if value not in DAYS:
        raise ConditionError(f"Invalid dayOfWeek '{value}'")
    return DAYS.index(value)


DayOfWeek = Literal["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]


def _names(name: str, old: str | None = None) -> tuple[str, ...]:
    """Kestra's two legacy spellings: ``...types.XCondition`` and ``...condition.XCondition``."""
    old = old or name + "Condition"
    return (_OLD + old, _NEW + old)


@register
class DateTimeBetween(CorePlugin):
    type = _NEW + "DateTimeBetween"
    aliases = _names("DateTimeBetween")
    kind = CONDITION

    class Props(Props):
        date: Text = _TRIGGER_DATE
        after: Optional[Text] = None
        before: Optional[Text] = None

    @classmethod
    def test(cls, props: Mapping[str, Any], ctx: ConditionContext) -> bool:
        current = condition_date(props, ctx)
        after = props.get("after")
        before = props.get("before")
        after_date = parse_datetime(ctx.rendered(after)) if after is not None else None
        before_date = parse_datetime(ctx.rendered(before)) if before is not None else None
        if after_date is None and before_date is None:
            raise ConditionError("Invalid condition with no before nor after")
        if after_date is not None and current < after_date:
            return False
        return not (before_date is not None and current > before_date)


@register
class DayWeek(CorePlugin):
    type = _NEW + "DayWeek"
    aliases = _names("DayWeek")
    kind = CONDITION

    class Props(Props):
        date: Text = _TRIGGER_DATE
        dayOfWeek: DayOfWeek

    @classmethod
    def test(cls, props: Mapping[str, Any], ctx: ConditionContext) -> bool:
        return condition_date(props, ctx).weekday() == _day_of_week(props, ctx)


@register
class DayWeekInMonth(CorePlugin):
    type = _NEW + "DayWeekInMonth"
    aliases = _names("DayWeekInMonth")
    kind = CONDITION

    class Props(Props):
        date: Text = _TRIGGER_DATE
        dayOfWeek: DayOfWeek
        dayInMonth: Literal["FIRST", "SECOND", "THIRD", "FOURTH", "LAST"]

    @classmethod
    def test(cls, props: Mapping[str, Any], ctx: ConditionContext) -> bool:
        current = condition_date(props, ctx).date()
        weekday = _day_of_week(props, ctx)
        which = str(ctx.rendered(props.get("dayInMonth")) or "").upper()
        ordinal = {"FIRST": 1, "SECOND": 2, "THIRD": 3, "FOURTH": 4, "LAST": -1}.get(which)
        if ordinal is None:
            raise ConditionError(f"Invalid dayInMonth '{which}'")
        return nth_weekday(current.year, current.month, weekday, ordinal) == current


@register
class ExecutionFlow(CorePlugin):
    type = _NEW + "ExecutionFlow"
    aliases = _names("ExecutionFlow")
    kind = CONDITION

    class Props(Props):
        namespace: Text
        flowId: Text

    @classmethod
    def test(cls, props: Mapping[str, Any], ctx: ConditionContext) -> bool:
        execution = ctx.require_execution()
        return (execution.get("namespace") == props.get("namespace")
                and execution.get("flowId") == props.get("flowId"))


@register
class ExecutionLabels(CorePlugin):
    type = _NEW + "ExecutionLabels"
    aliases = _names("ExecutionLabels")
    kind = CONDITION

    class Props(Props):
        labels: Any

    @classmethod
    def test(cls, props: Mapping[str, Any], ctx: ConditionContext) -> bool:
        present = set(execution_labels(ctx.require_execution()))
        return all(label in present for label in wanted_labels(props.get("labels")))


@register
class ExecutionNamespace(CorePlugin):
    type = _NEW + "ExecutionNamespace"
    aliases = _names("ExecutionNamespace")
    kind = CONDITION

    class Props(Props):
        namespace: Text
        comparison: Optional[Literal["EQUALS", "PREFIX", "SUFFIX"]] = None
        prefix: bool = False

    @classmethod
    def test(cls, props: Mapping[str, Any], ctx: ConditionContext) -> bool:
        execution = ctx.require_execution()
        actual = str(execution.get("namespace") or "")
        expected = str(props.get("namespace") or "")
        comparison = props.get("comparison") or ("PREFIX" if props.get("prefix") else "EQUALS")
        if comparison == "PREFIX":
            return actual.startswith(expected)
        if comparison == "SUFFIX":
            return actual.endswith(expected)
        return actual == expected


@register
class ExecutionOutputs(CorePlugin):
    type = _NEW + "ExecutionOutputs"
    aliases = _names("ExecutionOutputs")
    kind = CONDITION

    class Props(Props):
        expression: Text

    @classmethod
    def test(cls, props: Mapping[str, Any], ctx: ConditionContext) -> bool:
        execution = ctx.require_execution()
        outputs = execution.get("outputs")
        if not outputs:
            return False  # Kestra short-cuts: no outputs, nothing to test
        trigger = dict(ctx.variables.get("trigger") or {})
        trigger["outputs"] = outputs
        variables = {**ctx.variables, "trigger": trigger}
        sub = ConditionContext(execution=execution, flow=ctx.flow, variables=variables, now=ctx.now,
                               render=ctx.render, is_truthy=ctx.is_truthy, windows=ctx.windows)
        return ctx.is_truthy(sub.rendered(props.get("expression")))


@register
class ExecutionStatus(CorePlugin):
    type = _NEW + "ExecutionStatus"
    aliases = _names("ExecutionStatus")
    kind = CONDITION

    class Props(Props):
        in_: Optional[list[StateName]] = Field(None, alias="in")
        notIn: Optional[list[StateName]] = None

    @classmethod
    def test(cls, props: Mapping[str, Any], ctx: ConditionContext) -> bool:
        state = execution_state(ctx.require_execution())
        wanted = state_list(props.get("in", props.get("in_")))
        refused = state_list(props.get("notIn"))
        if wanted is not None and state not in wanted:
            return False
        return not (refused is not None and state in refused)


@register
class Expression(CorePlugin):
    type = _NEW + "Expression"
    aliases = (_OLD + "VariableCondition", _NEW + "ExpressionCondition")
    kind = CONDITION

    class Props(Props):
        expression: Text

    @classmethod
    def test(cls, props: Mapping[str, Any], ctx: ConditionContext) -> bool:
        return ctx.is_truthy(ctx.rendered(props.get("expression")))


@register
class FlowCondition(CorePlugin):
    """Deprecated form of ExecutionFlow."""

    type = _NEW + "FlowCondition"
    aliases = (_OLD + "FlowCondition",)
    kind = CONDITION
    deprecated = True

    class Props(Props):
        namespace: Text
        flowId: Text

    @classmethod
    def test(cls, props: Mapping[str, Any], ctx: ConditionContext) -> bool:
        return ExecutionFlow.test(props, ctx)


@register
class FlowNamespaceCondition(CorePlugin):
    """Deprecated form of ExecutionNamespace."""

    type = _NEW + "FlowNamespaceCondition"
    aliases = (_OLD + "FlowNamespaceCondition",)
    kind = CONDITION
    deprecated = True

    class Props(Props):
        namespace: Text
        prefix: bool = False

    @classmethod
    def test(cls, props: Mapping[str, Any], ctx: ConditionContext) -> bool:
        execution = ctx.require_execution()
        actual = str(execution.get("namespace") or "")
        expected = str(props.get("namespace") or "")
        return actual.startswith(expected) if props.get("prefix") else actual == expected


@register
class HasRetryAttempt(CorePlugin):
    type = _NEW + "HasRetryAttempt"
    aliases = _names("HasRetryAttempt")
    kind = CONDITION

    class Props(Props):
        in_: Optional[list[StateName]] = Field(None, alias="in")
        notIn: Optional[list[StateName]] = None

    @classmethod
    def test(cls, props: Mapping[str, Any], ctx: ConditionContext) -> bool:
        execution = ctx.require_execution()
        wanted = state_list(ctx.rendered(props.get("in", props.get("in_"))))
        refused = state_list(ctx.rendered(props.get("notIn")))
        for run in execution.get("taskRunList") or []:
            attempts = run.get("attempts") or []
            if len(attempts) <= 1:
                continue
            for attempt in attempts:
                state = execution_state(attempt)
                if (wanted is None or state in wanted) and not (refused and state in refused):
                    return True
        return False


@register
class MultipleCondition(CorePlugin):
    """All named conditions satisfied, possibly by different executions, within a time window."""

    type = _NEW + "MultipleCondition"
    aliases = (_OLD + "MultipleCondition",)
    kind = CONDITION
    #: evaluated over a window of executions, stored by the flow-trigger service
    windowed = True
    condition_fields = {"conditions": "map"}
    required_condition_fields = frozenset({"conditions"})

    class Props(Props):
        id: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$")
        timeWindow: Optional[dict[str, Any]] = None
        window: Optional[Duration] = None
        windowAdvance: Optional[Duration] = None
        resetOnSuccess: bool = True

    @classmethod
    def test(cls, props: Mapping[str, Any], ctx: ConditionContext) -> bool:
        """True when the stored window has every named condition satisfied (see the module docstring)."""
        results = ctx.windows.get(str(props.get("id"))) or {}
        names = list((props.get("conditions") or {}).keys())
        return bool(names) and all(results.get(name) for name in names)


@register
class Not(CorePlugin):
    type = _NEW + "Not"
    aliases = _names("Not")
    kind = CONDITION
    condition_fields = {"conditions": "list"}
    required_condition_fields = frozenset({"conditions"})

    class Props(Props):
        pass

    @classmethod
    def test(cls, props: Mapping[str, Any], ctx: ConditionContext) -> bool:
        return not any(evaluate(nested, ctx) for nested in props.get("conditions") or [])


@register
class Or(CorePlugin):
    type = _NEW + "Or"
    aliases = _names("Or")
    kind = CONDITION
    condition_fields = {"conditions": "list"}
    required_condition_fields = frozenset({"conditions"})

    class Props(Props):
        pass

    @classmethod
    def test(cls, props: Mapping[str, Any], ctx: ConditionContext) -> bool:
        return any(evaluate(nested, ctx) for nested in props.get("conditions") or [])


@register
class PublicHoliday(CorePlugin):
    type = _NEW + "PublicHoliday"
    aliases = _names("PublicHoliday")
    kind = CONDITION

    class Props(Props):
        date: Text = _TRIGGER_DATE
        country: Optional[Text] = None
        subDivision: Optional[Text] = None

    @classmethod
    def test(cls, props: Mapping[str, Any], ctx: ConditionContext) -> bool:
        current = condition_date(props, ctx).date()
        country = ctx.rendered(props.get("country")) if props.get("country") is not None else None
        sub = ctx.rendered(props.get("subDivision")) if props.get("subDivision") is not None else None
        return is_public_holiday(current, country, sub)


@register
class TimeBetween(CorePlugin):
    type = _NEW + "TimeBetween"
    aliases = _names("TimeBetween")
    kind = CONDITION

    class Props(Props):
        date: Text = _TRIGGER_DATE
        after: Optional[Text] = None
        before: Optional[Text] = None

    @classmethod
    def test(cls, props: Mapping[str, Any], ctx: ConditionContext) -> bool:
        current = condition_date(props, ctx)
        offset = current.utcoffset() or timedelta(0)
        current_seconds = seconds_utc(current.timetz().replace(tzinfo=None), offset)
        after = props.get("after")
        before = props.get("before")
        after_seconds = seconds_utc(*parse_offset_time(ctx.rendered(after))) if after is not None else None
        before_seconds = seconds_utc(*parse_offset_time(ctx.rendered(before))) if before is not None else None
        if after_seconds is None and before_seconds is None:
            raise ConditionError("Invalid condition with no before nor after")
        if after_seconds is not None and not current_seconds > after_seconds:
            return False
        return not (before_seconds is not None and not current_seconds < before_seconds)


@register
class Weekend(CorePlugin):
    type = _NEW + "Weekend"
    aliases = _names("Weekend")
    kind = CONDITION

    class Props(Props):
        date: Text = _TRIGGER_DATE

    @classmethod
    def test(cls, props: Mapping[str, Any], ctx: ConditionContext) -> bool:
        return condition_date(props, ctx).weekday() >= 5
