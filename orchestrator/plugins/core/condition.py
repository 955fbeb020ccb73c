"""``io.kestra.plugin.core.condition``: trigger and listener conditions.

Evaluation belongs to the scheduler and the flow-trigger service; here are the declarations.
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field

from orchestrator.engine.plugins import CONDITION, register

from ._common import CorePlugin, Duration, Props, StateName, Text

_OLD = "io.kestra.core.models.conditions.types."
_NEW = "io.kestra.plugin.core.condition."
_TRIGGER_DATE = "{{ trigger.date }}"
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


@register
class DayWeek(CorePlugin):
    type = _NEW + "DayWeek"
    aliases = _names("DayWeek")
    kind = CONDITION

    class Props(Props):
        date: Text = _TRIGGER_DATE
        dayOfWeek: DayOfWeek


@register
class DayWeekInMonth(CorePlugin):
    type = _NEW + "DayWeekInMonth"
    aliases = _names("DayWeekInMonth")
    kind = CONDITION

    class Props(Props):
        date: Text = _TRIGGER_DATE
        dayOfWeek: DayOfWeek
        dayInMonth: Literal["FIRST", "SECOND", "THIRD", "FOURTH", "LAST"]


@register
class ExecutionFlow(CorePlugin):
    type = _NEW + "ExecutionFlow"
    aliases = _names("ExecutionFlow")
    kind = CONDITION

    class Props(Props):
        namespace: Text
        flowId: Text


@register
class ExecutionLabels(CorePlugin):
    type = _NEW + "ExecutionLabels"
    aliases = _names("ExecutionLabels")
    kind = CONDITION

    class Props(Props):
        labels: Any


@register
class ExecutionNamespace(CorePlugin):
    type = _NEW + "ExecutionNamespace"
    aliases = _names("ExecutionNamespace")
    kind = CONDITION

    class Props(Props):
        namespace: Text
        comparison: Optional[Literal["EQUALS", "PREFIX", "SUFFIX"]] = None
        prefix: bool = False


@register
class ExecutionOutputs(CorePlugin):
    type = _NEW + "ExecutionOutputs"
    aliases = _names("ExecutionOutputs")
    kind = CONDITION

    class Props(Props):
        expression: Text


@register
class ExecutionStatus(CorePlugin):
    type = _NEW + "ExecutionStatus"
    aliases = _names("ExecutionStatus")
    kind = CONDITION

    class Props(Props):
        in_: Optional[list[StateName]] = Field(None, alias="in")
        notIn: Optional[list[StateName]] = None


@register
class Expression(CorePlugin):
    type = _NEW + "Expression"
    aliases = (_OLD + "VariableCondition", _NEW + "ExpressionCondition")
    kind = CONDITION

    class Props(Props):
        expression: Text


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


@register
class HasRetryAttempt(CorePlugin):
    type = _NEW + "HasRetryAttempt"
    aliases = _names("HasRetryAttempt")
    kind = CONDITION

    class Props(Props):
        in_: Optional[list[StateName]] = Field(None, alias="in")
        notIn: Optional[list[StateName]] = None


@register
class MultipleCondition(CorePlugin):
    """All named conditions satisfied, possibly by different executions, within a time window."""

    type = _NEW + "MultipleCondition"
    aliases = (_OLD + "MultipleCondition",)
    kind = CONDITION
    condition_fields = {"conditions": "map"}
    required_condition_fields = frozenset({"conditions"})

    class Props(Props):
        id: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$")
        timeWindow: Optional[dict[str, Any]] = None
        window: Optional[Duration] = None
        windowAdvance: Optional[Duration] = None
        resetOnSuccess: bool = True


@register
class Not(CorePlugin):
    type = _NEW + "Not"
    aliases = _names("Not")
    kind = CONDITION
    condition_fields = {"conditions": "list"}
    required_condition_fields = frozenset({"conditions"})

    class Props(Props):
        pass


@register
class Or(CorePlugin):
    type = _NEW + "Or"
    aliases = _names("Or")
    kind = CONDITION
    condition_fields = {"conditions": "list"}
    required_condition_fields = frozenset({"conditions"})

    class Props(Props):
        pass


@register
class PublicHoliday(CorePlugin):
    type = _NEW + "PublicHoliday"
    aliases = _names("PublicHoliday")
    kind = CONDITION

    class Props(Props):
        date: Text = _TRIGGER_DATE
        country: Optional[Text] = None
        subDivision: Optional[Text] = None


@register
class TimeBetween(CorePlugin):
    type = _NEW + "TimeBetween"
    aliases = _names("TimeBetween")
    kind = CONDITION

    class Props(Props):
        date: Text = _TRIGGER_DATE
        after: Optional[Text] = None
        before: Optional[Text] = None


@register
class Weekend(CorePlugin):
    type = _NEW + "Weekend"
    aliases = _names("Weekend")
    kind = CONDITION

    class Props(Props):
        date: Text = _TRIGGER_DATE
