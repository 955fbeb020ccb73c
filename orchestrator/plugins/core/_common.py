"""Building blocks shared by the core plugins: the Props base model, Kestra value types, hooks.

Props models only *validate* what a flow author wrote (unknown, missing and mistyped properties);
the parsed task keeps the written values, because most properties are dynamic and rendered at run
time. So the types here accept what Jackson accepts (a number where text is expected, a number of
seconds or an ISO-8601 text for a duration), and the flow parser accepts any ``{{ expression }}``
wherever a typed value is expected (Kestra's ``Property<T>``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict

from orchestrator.engine.plugins import Plugin
from orchestrator.engine.timeutil import parse_duration

if TYPE_CHECKING:  # pragma: no cover
    from orchestrator.engine.flow import Task


class Props(BaseModel):
    """Base of every plugin's properties: unknown properties are errors, as in Kestra's strict mode."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, protected_namespaces=(),
                              arbitrary_types_allowed=True)


class OpenProps(BaseModel):
    """Properties of types Celestra only stores (dashboards...): anything is accepted."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())


def _to_text(value: Any) -> Any:
    """Jackson turns scalars into text for String properties (``format: 1`` is ``"1"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _to_duration(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("invalid duration: expected an ISO-8601 duration such as PT30S")
    if isinstance(value, (int, float)):  # Jackson reads a bare number as seconds
        return f"PT{value}S"
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            return value
        try:
            parse_duration(value)
        except ValueError:
            raise ValueError(f"invalid duration '{value}': expected an ISO-8601 duration such as PT30S") from None
        return value
    raise ValueError("invalid duration: expected an ISO-8601 duration such as PT30S")


#: A String property (scalars are accepted as their text).
Text = Annotated[str, BeforeValidator(_to_text)]
#: An ISO-8601 duration (``PT30S``), or a number of seconds.
Duration = Annotated[str, BeforeValidator(_to_duration)]
#: A String property or a list of them (Log ``message``, namespace ``files``...).
TextOrList = Annotated[Union[str, list[Text]], BeforeValidator(_to_text)]

#: spelled out for pydantic; a test checks they equal engine.levels.LEVELS and engine.states.ALL_STATES
Level = Literal["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
StateName = Literal[
    "CREATED", "SUBMITTED", "QUEUED", "RUNNING", "PAUSED", "RESTARTED", "KILLING", "RETRYING", "BREAKPOINT",
    "SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED", "RESUBMITTED",
]
#: Labels: a map, a list of ``{key, value}``, or an expression rendering to either.
Labels = Union[dict[str, Any], list[dict[str, Any]], str]


class CorePlugin(Plugin):
    """Plugin with the declarations the flow parser reads beyond :class:`Plugin`'s.

    The parser reads them with ``getattr`` so that a plugin deriving from :class:`Plugin` alone
    works too (with no required children and no extra checks).
    """

    #: task fields that must hold at least one task ("must not be empty" otherwise)
    required_task_fields: ClassVar[frozenset[str]] = frozenset()
    #: legacy property name -> current name (``delay`` -> ``pauseDuration``); the parser renames
    renamed_props: ClassVar[dict[str, str]] = {}
    #: conditions and triggers: property name -> "list" or "map" of nested conditions
    condition_fields: ClassVar[dict[str, str]] = {}
    #: condition fields that must hold at least one condition (Not, Or, MultipleCondition)
    required_condition_fields: ClassVar[frozenset[str]] = frozenset()
    #: Subflow and ForEachItem: the parser reports a call to the flow itself
    calls_subflow: ClassVar[bool] = False
    #: properties holding input definitions (Pause ``onResume``), checked like flow inputs
    input_fields: ClassVar[frozenset[str]] = frozenset()
    #: deprecated types are listed in ``Flow.deprecated_paths`` (Kestra's validation warnings)
    deprecated: ClassVar[bool] = False
    #: triggers that create executions with ``inputs`` name themselves here ("Schedule", "Webhook")
    #: for the "Missing inputs for <kind> Trigger" check
    supplies_inputs: ClassVar[str | None] = None

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        """Type-specific checks on a parsed task/trigger/condition.

        Returns ``(relative_path, message)`` pairs; ``""`` is the node itself, ``"tasks[1]"`` a
        child. Called only when the node parsed without errors of its own.
        """
        return []


def child_tasks(task: "Task", field: str) -> list["Task"]:
    """The tasks of one task field, whatever its shape (list, map of lists, Dag entries, single)."""
    value = task.props.get(field)
    if value is None:
        return []
    if isinstance(value, dict):
        return [t for branch in value.values() for t in branch]
    if isinstance(value, list):
        return [entry["task"] if isinstance(entry, dict) else entry for entry in value]
    return [value]
