"""The flow model: Flow, Task, Trigger and Condition objects, and the validation error types.

Everyone reads flows through these objects; :mod:`orchestrator.engine.parser` builds them from YAML.
``parse_flow`` and ``parse_flow_documents`` are importable from here too (resolved on first use, so
that the model does not import the parser at load time).
"""
from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import Any, Iterator

from .errors import CelestraError
from .plugins import EXECUTABLE, EXECUTION_UPDATABLE, FLOWABLE, RUNNABLE, Plugin

__all__ = ["Condition", "Flow", "FlowError", "FlowValidationError", "Task", "Trigger", "UnknownTask"]

#: names the parser owns, importable from here as before
_PARSER_NAMES = frozenset({"parse_flow", "parse_flow_documents", "deep_merge"})


def __getattr__(name: str) -> Any:
    if name in _PARSER_NAMES:
        from . import parser

        return getattr(parser, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------------
# Errors

@dataclass(frozen=True)
class FlowError:
    """One problem of a flow.

    ``path`` locates it structurally (``tasks[0].tasks[2].message``; ``""`` is the flow itself),
    ``line`` is the 1-based line of the YAML source (None when unknown). ``subject`` is the label
    used in the joined message: Kestra names the task/trigger/input by id (``dag``,
    ``hello.message``) and prints flow-wide rules without a label (``""``); None means "use path".
    """

    path: str
    line: int | None
    message: str
    subject: str | None = None

    @property
    def label(self) -> str:
        return self.path if self.subject is None else self.subject

    def __str__(self) -> str:
        return f"{self.label}: {self.message}" if self.label else self.message


class FlowValidationError(CelestraError):
    """The flow cannot be used; ``errors`` lists every problem found.

    ``kind`` is ``"parse"`` when the document could not be read as a flow (YAML syntax, duplicate
    keys, unknown types or properties: Kestra's deserialisation errors) and ``"validate"`` when it
    was read but breaks a rule. ``warnings`` are problems that do not make the flow invalid.
    """

    def __init__(self, errors: list[FlowError], kind: str = "validate", warnings: list[FlowError] | None = None):
        self.errors = list(errors)
        self.kind = kind
        self.warnings = list(warnings or [])
        super().__init__("Invalid Flow: " + ", ".join(str(error) for error in self.errors))


    @property
    def violation_count(self) -> int:
        """How many violations Kestra would count: it folds every flow-wide rule into one."""
        flow_wide = sum(1 for error in self.errors if error.subject == "")
        return len(self.errors) - flow_wide + (1 if flow_wide else 0)

    @property
    def kestra_message(self) -> str:
        """The text of Kestra's ConstraintViolationException for the same problems: flow-wide rules
        folded behind an empty property path (``: Invalid Flow: a, b``), then ``label: message``."""
        flow_wide = [error.message for error in self.errors if error.subject == ""]
        parts = [": Invalid Flow: " + ", ".join(flow_wide)] if flow_wide else []
        parts.extend(f"{error.label}: {error.message}" for error in self.errors if error.subject != "")
        return ", ".join(parts)

    def __reduce__(self) -> Any:
        return (self.__class__, (self.errors, self.kind, self.warnings))


class UnknownTask(CelestraError, KeyError):
    """No task with this id in the flow (a KeyError too, for ``except KeyError`` callers)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# --------------------------------------------------------------------------------------------------
# Model

@dataclass(eq=False, slots=True, repr=False)
class Condition:
    """A parsed condition (of a trigger, a listener, or nested in Not/Or/MultipleCondition)."""

    type: str
    raw_type: str
    plugin: builtins.type[Plugin]  # `type` is also a field name here
    props: dict[str, Any]
    path: str
    line: int | None = None

    @property
    def id(self) -> str | None:
        value = self.props.get("id")
        return value if isinstance(value, str) else None

    def __repr__(self) -> str:
        return f"Condition(type={self.type!r}, path={self.path!r})"


@dataclass(eq=False, slots=True)
class Task:
    """A parsed task.

    ``props`` holds the task's own properties after plugin defaults, with the defaults declared by
    the plugin's Props filled in, without ``id``/``type`` and the common properties (which are
    attributes here). Task fields are parsed: a "list" field is ``list[Task]``, a "map" field
    (Switch ``cases``) ``dict[str, list[Task]]``, a "dag" field ``list[{"task": Task,
    "dependsOn": list[str]}]`` and a "single" field one ``Task``. Local ``errors``/``finally`` of
    flowables are also in :attr:`errors` / :attr:`finally_`.
    """

    id: str
    type: str
    raw_type: str
    plugin: builtins.type[Plugin]  # `type` is also a field name here
    props: dict[str, Any]
    path: str
    line: int | None = None
    description: str | None = None
    disabled: bool = False
    allow_failure: bool = False
    allow_warning: bool = False
    run_if: str | None = None
    retry: dict[str, Any] | None = None
    timeout: str | None = None
    worker_group: str | None = None
    worker_group_fallback: str | None = None
    log_level: str | None = None
    log_to_file: bool = False
    task_cache: dict[str, Any] | None = None
    version: str | None = None
    errors: list["Task"] = field(default_factory=list)
    finally_: list["Task"] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.plugin.kind

    @property
    def is_flowable(self) -> bool:
        return self.plugin.kind == FLOWABLE

    @property
    def is_runnable(self) -> bool:
        return self.plugin.kind == RUNNABLE

    @property
    def is_executable(self) -> bool:
        return self.plugin.kind == EXECUTABLE

    @property
    def is_execution_updatable(self) -> bool:
        return self.plugin.kind == EXECUTION_UPDATABLE

    def child_lists(self) -> Iterator[list["Task"]]:
        """Every nested list of tasks, local errors/finally included (for walking the tree)."""
        for name, shape in self.plugin.task_fields.items():
            value = self.props.get(name)
            if not value:
                continue
            if shape == "list":
                yield value
            elif shape == "map":
                yield from (branch for branch in value.values() if branch)
            elif shape == "dag":
                yield [entry["task"] for entry in value]
            elif shape == "single":
                yield [value]

    def children(self) -> Iterator["Task"]:
        for tasks in self.child_lists():
            yield from tasks

    def instance(self) -> Plugin:
        """The plugin object serving this task (``task.instance().run(ctx)`` for runnables)."""
        return self.plugin(self)

    def __repr__(self) -> str:
        return f"Task(id={self.id!r}, type={self.type!r}, path={self.path!r})"


@dataclass(eq=False, slots=True)
class Trigger:
    id: str
    type: str
    raw_type: str
    plugin: builtins.type[Plugin]  # `type` is also a field name here
    props: dict[str, Any]
    path: str
    line: int | None = None
    description: str | None = None
    disabled: bool = False
    conditions: list[Condition] = field(default_factory=list)
    inputs: dict[str, Any] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    stop_after: list[str] = field(default_factory=list)
    log_level: str | None = None
    min_log_level: str | None = None
    log_to_file: bool = False
    worker_group: str | None = None
    worker_group_fallback: str | None = None
    fail_on_trigger_error: bool = False
    allow_concurrent: bool = False

    @property
    def kind(self) -> str:
        return self.plugin.kind

    def __repr__(self) -> str:
        return f"Trigger(id={self.id!r}, type={self.type!r})"


@dataclass(eq=False)
class Flow:
    id: str
    namespace: str
    revision: int | None = None
    description: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)
    errors: list[Task] = field(default_factory=list)
    finally_: list[Task] = field(default_factory=list)
    after_execution: list[Task] = field(default_factory=list)
    #: deprecated listeners: ``{"conditions": list[Condition], "tasks": list[Task], "description"}``
    listeners: list[dict[str, Any]] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)
    plugin_defaults: list[dict[str, Any]] = field(default_factory=list)
    concurrency: dict[str, Any] | None = None
    retry: dict[str, Any] | None = None
    disabled: bool = False
    deleted: bool = False
    worker_group: dict[str, Any] | None = None
    sla: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""
    #: problems that do not make the flow invalid
    warnings: list[FlowError] = field(default_factory=list)
    #: paths of deprecated types and properties used (``tasks[0]``, ``tasks[1].delay``, ``taskDefaults``)
    deprecated_paths: list[str] = field(default_factory=list)
    #: notes such as "io.kestra.core.tasks.log.Log is replaced by io.kestra.plugin.core.log.Log"
    infos: list[str] = field(default_factory=list)
    _index: dict[str, Task] = field(default_factory=dict, init=False, repr=False)
    _parents: dict[str, Task | None] = field(default_factory=dict, init=False, repr=False)
    _types: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        """Build the task-id index (first occurrence wins; valid flows have unique ids)."""
        self._index, self._parents = {}, {}
        for task, parent in self._walk():
            if task.id not in self._index:
                self._index[task.id] = task
                self._parents[task.id] = parent

    def _roots(self) -> Iterator[list[Task]]:
        yield self.tasks
        yield self.errors
        yield self.finally_
        yield self.after_execution
        for listener in self.listeners:
            yield listener.get("tasks") or []

    def _walk(self) -> Iterator[tuple[Task, Task | None]]:
        stack: list[tuple[Task, Task | None]] = []
        for tasks in reversed(list(self._roots())):
            stack.extend((task, None) for task in reversed(tasks))
        while stack:
            task, parent = stack.pop()
            yield task, parent
            for tasks in reversed(list(task.child_lists())):
                stack.extend((child, task) for child in reversed(tasks))

    def all_tasks(self) -> list[Task]:
        """Every task, nested ones included, in document pre-order (tasks, errors, finally...)."""
        return [task for task, _ in self._walk()]

    def find_task(self, task_id: str) -> Task:
        try:
            return self._index[task_id]
        except KeyError:
            raise UnknownTask(f"Can't find task with id '{task_id}' on flow '{self.namespace}.{self.id}'") from None

    def task_types(self) -> dict[str, str]:
        """Task id → canonical type for every indexed task; built once (tasks added to the index
        later, like ForEachItem's internal ones, rebuild it)."""
        if len(self._types) != len(self._index):
            self._types = {task_id: task.type for task_id, task in self._index.items()}
        return self._types

    def parent_of(self, task_id: str) -> Task | None:
        self.find_task(task_id)
        return self._parents.get(task_id)

    def find_trigger(self, trigger_id: str) -> Trigger | None:
        return next((trigger for trigger in self.triggers if trigger.id == trigger_id), None)

    @property
    def uid(self) -> str:
        return f"{self.namespace}.{self.id}"
