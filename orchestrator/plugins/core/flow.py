"""``io.kestra.plugin.core.flow``: the flowable tasks (plus Sleep, Subflow, ForEachItem, Template).

Flowables only declare their properties and children here; how they schedule their children is
decided by the executor. Sleep is the one runnable of this group.
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import EXECUTABLE, FLOWABLE, RUNNABLE, RunContext, register
from orchestrator.engine.timeutil import parse_duration

from ._common import CorePlugin, Duration, Labels, Props, Text, child_tasks

_LOCAL_HANDLERS = {"errors": "list", "finally": "list"}
_PREFIX = "io.kestra.core.tasks.flows."


@register
class Sequential(CorePlugin):
    """Run ``tasks`` one after the other."""

    type = "io.kestra.plugin.core.flow.Sequential"
    aliases = (_PREFIX + "Sequential",)
    kind = FLOWABLE
    task_fields = {"tasks": "list", **_LOCAL_HANDLERS}
    required_task_fields = frozenset({"tasks"})

    class Props(Props):
        pass


@register
class Parallel(CorePlugin):
    """Run ``tasks`` at the same time, at most ``concurrent`` at once (0 = no limit)."""

    type = "io.kestra.plugin.core.flow.Parallel"
    aliases = (_PREFIX + "Parallel",)
    kind = FLOWABLE
    task_fields = {"tasks": "list", **_LOCAL_HANDLERS}
    required_task_fields = frozenset({"tasks"})

    class Props(Props):
        concurrent: int = Field(0, ge=0)


@register
class If(CorePlugin):
    """Run ``then`` when the rendered ``condition`` is truthy, ``else`` otherwise."""

    type = "io.kestra.plugin.core.flow.If"
    aliases = (_PREFIX + "If",)
    kind = FLOWABLE
    task_fields = {"then": "list", "else": "list", **_LOCAL_HANDLERS}
    required_task_fields = frozenset({"then"})

    class Props(Props):
        condition: Text


@register
class Switch(CorePlugin):
    """Run the case whose key equals the rendered ``value`` (``defaults`` otherwise)."""

    type = "io.kestra.plugin.core.flow.Switch"
    aliases = (_PREFIX + "Switch",)
    kind = FLOWABLE
    task_fields = {"cases": "map", "defaults": "list", **_LOCAL_HANDLERS}

    class Props(Props):
        value: Text

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        cases = node.props.get("cases") or {}
        if not any(cases.values()) and not node.props.get("defaults"):
            return [("", "No task defined, neither cases or default have any tasks")]
        return []


@register
class ForEach(CorePlugin):
    """Run ``tasks`` once per value (deduplicated), ``concurrencyLimit`` value groups at once."""

    type = "io.kestra.plugin.core.flow.ForEach"
    kind = FLOWABLE
    task_fields = {"tasks": "list", **_LOCAL_HANDLERS}
    required_task_fields = frozenset({"tasks"})

    class Props(Props):
        values: Any
        concurrencyLimit: int = Field(1, ge=0)


@register
class EachSequential(CorePlugin):
    """Deprecated: ForEach with ``concurrencyLimit: 1`` (``value`` holds the values)."""

    type = "io.kestra.plugin.core.flow.EachSequential"
    aliases = (_PREFIX + "EachSequential",)
    kind = FLOWABLE
    deprecated = True
    task_fields = {"tasks": "list", **_LOCAL_HANDLERS}
    required_task_fields = frozenset({"tasks"})

    class Props(Props):
        value: Any


@register
class EachParallel(CorePlugin):
    """Deprecated: ForEach running every value at once, at most ``concurrent`` (0 = no limit)."""

    type = "io.kestra.plugin.core.flow.EachParallel"
    aliases = (_PREFIX + "EachParallel",)
    kind = FLOWABLE
    deprecated = True
    task_fields = {"tasks": "list", **_LOCAL_HANDLERS}
    required_task_fields = frozenset({"tasks"})

    class Props(Props):
        value: Any
        concurrent: int = Field(0, ge=0)


@register
class AllowFailure(CorePlugin):
    """Run ``tasks`` sequentially; a failure ends this task WARNING and the flow continues."""

    type = "io.kestra.plugin.core.flow.AllowFailure"
    aliases = (_PREFIX + "AllowFailure",)
    kind = FLOWABLE
    task_fields = {"tasks": "list", **_LOCAL_HANDLERS}
    required_task_fields = frozenset({"tasks"})

    class Props(Props):
        pass


@register
class Dag(CorePlugin):
    """Run tasks as soon as their ``dependsOn`` tasks are terminated."""

    type = "io.kestra.plugin.core.flow.Dag"
    aliases = (_PREFIX + "Dag",)
    kind = FLOWABLE
    task_fields = {"tasks": "dag", **_LOCAL_HANDLERS}
    required_task_fields = frozenset({"tasks"})

    class Props(Props):
        concurrent: int = Field(0, ge=0)

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        entries = node.props.get("tasks") or []
        graph = {entry["task"].id: list(entry.get("dependsOn") or []) for entry in entries}
        missing: list[str] = []
        for dependencies in graph.values():
            missing.extend(dep for dep in dependencies if dep not in graph and dep not in missing)
        if missing:
            return [("", "Not existing task id in dependency: " + ", ".join(missing))]
        cyclic = [task_id for task_id in graph if _reaches(graph, task_id, task_id)]
        if cyclic:
            return [("", "Cyclic dependency detected: " + ", ".join(cyclic))]
        return []


def _reaches(graph: dict[str, list[str]], start: str, target: str) -> bool:
    """Whether ``target`` is reachable from ``start`` through at least one dependency edge."""
    seen: set[str] = set()
    stack = list(graph.get(start, ()))
    while stack:
        current = stack.pop()
        if current == target:
            return True
        if current not in seen:
            seen.add(current)
            stack.extend(graph.get(current, ()))
    return False


class _CheckFrequency(Props):
    interval: Duration = "PT1M"
    maxIterations: Optional[int] = Field(None, ge=1)
    maxDuration: Optional[Duration] = None


@register
class LoopUntil(CorePlugin):
    """Run ``tasks`` again every ``checkFrequency.interval`` until ``condition`` is truthy."""

    type = "io.kestra.plugin.core.flow.LoopUntil"
    aliases = ("io.kestra.plugin.core.flow.WaitFor",)
    kind = FLOWABLE
    task_fields = {"tasks": "list", **_LOCAL_HANDLERS}
    required_task_fields = frozenset({"tasks"})

    class Props(Props):
        condition: Text
        checkFrequency: Optional[_CheckFrequency] = None
        failOnMaxReached: bool = False


@register
class Pause(CorePlugin):
    """Pause the execution until resumed, or until ``pauseDuration`` (then act per ``behavior``)."""

    type = "io.kestra.plugin.core.flow.Pause"
    aliases = (_PREFIX + "Pause",)
    kind = FLOWABLE
    task_fields = {"tasks": "list", "onPause": "single", **_LOCAL_HANDLERS}
    renamed_props = {"delay": "pauseDuration"}
    input_fields = frozenset({"onResume"})

    class Props(Props):
        pauseDuration: Optional[Duration] = None
        behavior: Literal["RESUME", "WARN", "FAIL", "CANCEL"] = "RESUME"
        onResume: Optional[list[dict[str, Any]]] = None


@register
class Sleep(CorePlugin):
    """Wait for ``duration`` on a worker (runnable, despite its group)."""

    type = "io.kestra.plugin.core.flow.Sleep"
    kind = RUNNABLE

    class Props(Props):
        duration: Duration

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        value = ctx.render(self.task.props.get("duration"))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        else:
            try:
                seconds = parse_duration(str(value)).total_seconds()
            except ValueError as exc:
                raise TaskFailure(f"Invalid duration '{value}': {exc}") from None
        ctx.sleep(max(seconds, 0.0))
        return None


class _SubflowProps(Props):
    namespace: Text
    flowId: Text
    revision: Optional[int] = Field(None, ge=1)
    inputs: Optional[dict[str, Any]] = None
    labels: Optional[Labels] = None
    wait: bool = True
    transmitFailed: bool = True
    inheritLabels: bool = False
    scheduleDate: Optional[Text] = None
    restartBehavior: Literal["RETRY_FAILED", "NEW_EXECUTION"] = "RETRY_FAILED"


@register
class Subflow(CorePlugin):
    """Create an execution of another flow, and by default wait for it."""

    type = "io.kestra.plugin.core.flow.Subflow"
    aliases = (_PREFIX + "Subflow", _PREFIX + "Flow")
    kind = EXECUTABLE
    calls_subflow = True

    class Props(_SubflowProps):
        outputs: Optional[dict[str, Any]] = None  # deprecated since 0.15, still honoured


class _Batch(Props):
    rows: Optional[int] = Field(None, ge=1)
    bytes: Optional[Text] = None
    partitions: Optional[int] = Field(None, ge=1)
    separator: Text = "\n"


@register
class ForEachItem(CorePlugin):
    """Split a file into batches and run one subflow execution per batch.

    Flowable: the executor expands it into the internal children ``<id>_split``, ``<id>_items``
    and ``<id>_merge``.
    """

    type = "io.kestra.plugin.core.flow.ForEachItem"
    aliases = (_PREFIX + "ForEachItem",)
    kind = FLOWABLE
    task_fields = dict(_LOCAL_HANDLERS)
    calls_subflow = True

    class Props(_SubflowProps):
        items: Text
        batch: Optional[_Batch] = None


class _Cache(Props):
    patterns: list[Text]
    ttl: Optional[Duration] = None


class NamespaceFiles(Props):
    enabled: bool = True
    include: Optional[list[Text]] = None
    exclude: Optional[list[Text]] = None
    namespaces: Optional[list[Text]] = None
    ifExists: Literal["OVERWRITE", "FAIL", "WARN", "IGNORE"] = "OVERWRITE"
    folderPerNamespace: bool = False


@register
class WorkingDirectory(CorePlugin):
    """Run runnable ``tasks`` sequentially on one worker, in one temporary directory."""

    type = "io.kestra.plugin.core.flow.WorkingDirectory"
    aliases = (_PREFIX + "WorkingDirectory", _PREFIX + "Worker")
    kind = FLOWABLE
    task_fields = {"tasks": "list", **_LOCAL_HANDLERS}

    class Props(Props):
        cache: Optional[_Cache] = None
        namespaceFiles: Optional[NamespaceFiles] = None
        inputFiles: Optional[dict[str, Any] | str] = None
        outputFiles: Optional[list[Text]] = None

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        children = child_tasks(node, "tasks")
        if not children:
            return [("", "The 'tasks' property cannot be empty")]
        problems: list[tuple[str, str]] = []
        if any(child.kind != RUNNABLE for child in children):
            problems.append(("", "Only runnable tasks are allowed as children of a WorkingDirectory task"))
        if any(child.worker_group for child in children):
            problems.append(("", "Cannot set a Worker Group in any WorkingDirectory sub-tasks, "
                                 "it is only supported at the WorkingDirectory level"))
        return problems


@register
class Template(CorePlugin):
    """Deprecated: inline the tasks of a stored template (``kestra.templates.enabled``)."""

    type = "io.kestra.plugin.core.flow.Template"
    aliases = (_PREFIX + "Template",)
    kind = FLOWABLE
    deprecated = True
    task_fields = dict(_LOCAL_HANDLERS)

    class Props(Props):
        namespace: Text
        templateId: Text
        tenantId: Optional[Text] = None
        args: Optional[dict[str, Text]] = None
