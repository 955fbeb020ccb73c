"""``io.kestra.plugin.core.execution``: tasks about the current (or other) executions."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict

from orchestrator.engine import states
from orchestrator.engine.errors import CelestraError, TaskFailure, TaskKilled
from orchestrator.engine.plugins import EXECUTION_UPDATABLE, RUNNABLE, RunContext, register
from orchestrator.engine.text import scalar_text
from orchestrator.engine.memory_platform import platform_of

from ._common import CorePlugin, Props, StateName, Text
from ._common import Labels as LabelsValue
from ._render import render_bool, render_text, render_text_list, render_with

try:  # the expression engine owns truthiness; fall back to the same rule when it is absent
    from orchestrator.engine.expressions import is_truthy
except ImportError:  # pragma: no cover - depends on which engine modules are installed
    from orchestrator.engine.truthy import is_truthy

if TYPE_CHECKING:  # pragma: no cover
    from orchestrator.engine.executor import Step
    from orchestrator.engine.model import TaskRun

_PREFIX = "io.kestra.core.tasks.executions."


@register
class Fail(CorePlugin):
    """Fail the task (with ``errorMessage``) when ``condition`` is absent or truthy."""

    type = "io.kestra.plugin.core.execution.Fail"
    aliases = (_PREFIX + "Fail",)
    kind = RUNNABLE

    class Props(Props):
        condition: Optional[Text] = None
        errorMessage: Text = "Task failure"

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        condition = props.get("condition")
        if condition is not None and not is_truthy(ctx.render_string(condition)):
            return None
        raise TaskFailure(ctx.render_string(props.get("errorMessage") or "Task failure"))


@register
class Assert(CorePlugin):
    """Fail when any rendered condition is falsy (or cannot be rendered)."""

    type = "io.kestra.plugin.core.execution.Assert"
    kind = RUNNABLE

    class Props(Props):
        conditions: list[Text]
        errorMessage: Optional[Text] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        failed = succeeded = 0
        for condition in props.get("conditions") or []:
            try:
                rendered = ctx.render_string(condition)
            except TaskKilled:
                raise
            except CelestraError as exc:
                ctx.log("ERROR", f"Assertion `{condition}` failed, failed to render `{exc}`")
                failed += 1
                continue
            if is_truthy(rendered):
                succeeded += 1
            else:
                ctx.log("ERROR", f"Assertion `{condition}` failed!")
                failed += 1
        ctx.metric("counter", "success", float(succeeded))
        ctx.metric("counter", "failed", float(failed))
        if failed:
            message = f"{failed} assertion{'s' if failed > 1 else ''} failed!"
            if props.get("errorMessage") is not None:
                message += "\n" + ctx.render_string(props["errorMessage"])
            raise TaskFailure(message)
        return None


@register
class Labels(CorePlugin):
    """Add or replace labels of the current execution (applied by the executor)."""

    type = "io.kestra.plugin.core.execution.Labels"
    aliases = (_PREFIX + "Labels",)
    kind = EXECUTION_UPDATABLE

    class Props(Props):
        labels: LabelsValue

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        labels = node.props.get("labels")
        pairs: list[tuple[Any, Any]] = []
        if isinstance(labels, dict):
            pairs = list(labels.items())
        elif isinstance(labels, list):
            pairs = [(item.get("key"), item.get("value")) for item in labels if isinstance(item, dict)]
        return [("labels", f"System labels can only be set by Kestra itself, offending label: {key}={value}")
                for key, value in pairs if isinstance(key, str) and key.startswith("system.")]

    @classmethod
    def update_execution(cls, step: Step, task: Any, run: TaskRun) -> None:
        labels = step.render(task.props.get("labels"), run)
        if isinstance(labels, str):
            labels = json.loads(labels)
        pairs = labels.items() if isinstance(labels, dict) else [(item["key"], item["value"]) for item in labels]
        current = [dict(label) for label in step.execution.labels]
        for key, value in pairs:
            key = str(key)
            if key.startswith("system."):
                raise CelestraError(f"System labels can only be set by Kestra itself, offending label: {key}={value}")
            current = [label for label in current if label["key"] != key] + [{"key": key, "value": scalar_text(value)}]
        step.execution.labels = current


@register
class Exit(CorePlugin):
    """End the execution now, in ``state`` (applied by the executor)."""

    type = "io.kestra.plugin.core.execution.Exit"
    kind = EXECUTION_UPDATABLE

    class Props(Props):
        state: Literal["SUCCESS", "WARNING", "KILLED", "FAILED", "CANCELED"] = "SUCCESS"

    @classmethod
    def start(cls, step: Step, task: Any, run: TaskRun) -> None:
        """End the execution: queued work is killed, the run's ancestors take the exit state."""
        step.transition(run, states.RUNNING)
        state = str(step.render(task.props.get("state") or "SUCCESS", run)).upper()
        state = {"CANCELED": states.CANCELLED}.get(state, state)
        step.transition(run, states.SUCCESS if state != states.KILLED else states.KILLED)
        for other in step.execution.task_runs:
            if other is not run and not other.state.is_terminated() and other.state.current != states.RUNNING:
                step.transition(other, states.KILLED)
        for ancestor in step.index.ancestors(run):
            step.transition(ancestor, state if state != states.CANCELLED else states.SUCCESS)
        step.exit_state = state
        step.frozen = True  # nothing else starts


@register
class SetVariables(CorePlugin):
    """Merge ``variables`` into the execution variables seen as ``vars.*`` by later tasks."""

    type = "io.kestra.plugin.core.execution.SetVariables"
    kind = EXECUTION_UPDATABLE

    class Props(Props):
        variables: dict[str, Any]
        overwrite: bool = True

    @classmethod
    def update_execution(cls, step: Step, task: Any, run: TaskRun) -> None:
        values = step.render(task.props.get("variables") or {}, run)
        variables = dict(step.execution.variables or {})
        overwrite = task.props.get("overwrite", True)
        for key, value in values.items():
            if not overwrite and key in variables:
                raise CelestraError(f"Variable {key} already exists")
            if isinstance(value, dict) and isinstance(variables.get(key), dict):
                value = {**variables[key], **value}
            variables[key] = value
        step.execution.variables = variables


@register
class UnsetVariables(CorePlugin):
    """Remove execution variables (dotted paths allowed)."""

    type = "io.kestra.plugin.core.execution.UnsetVariables"
    kind = EXECUTION_UPDATABLE

    class Props(Props):
        variables: list[Text]

    @classmethod
    def update_execution(cls, step: Step, task: Any, run: TaskRun) -> None:
        variables = dict(step.execution.variables or {})
        for path in step.render(task.props.get("variables") or [], run):
            node: Any = variables
            parts = str(path).split(".")
            for part in parts[:-1]:
                node = node.get(part, {}) if isinstance(node, dict) else {}
            if isinstance(node, dict):
                node.pop(parts[-1], None)
        step.execution.variables = variables


@register
class Resume(CorePlugin):
    """Resume a paused execution (the current one by default)."""

    type = "io.kestra.plugin.core.execution.Resume"
    kind = RUNNABLE

    class Props(Props):
        executionId: Optional[Text] = None
        namespace: Optional[Text] = None
        flowId: Optional[Text] = None
        inputs: Optional[dict[str, Any]] = None


class _FlowRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    namespace: Text
    flowId: Text


@register
class Count(CorePlugin):
    """Count executions per flow between two dates, keeping flows whose ``expression`` is true."""

    type = "io.kestra.plugin.core.execution.Count"
    aliases = (_PREFIX + "Counts",)
    kind = RUNNABLE

    class Props(Props):
        flows: Optional[list[_FlowRef]] = None
        namespaces: Optional[list[Text]] = None
        states: Optional[list[StateName]] = None
        startDate: Text
        endDate: Optional[Text] = None
        expression: Text

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        if not node.props.get("flows") and not node.props.get("namespaces"):
            return [("", "Invalid Count task: either 'flows' or 'namespaces' must be set")]
        return []

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        from orchestrator.engine.memory_platform import parse_instant

        props = self.task.props
        flows = [(ctx.render_string(f.get("namespace")), ctx.render_string(f.get("flowId")))
                 for f in ctx.render(props.get("flows") or []) if isinstance(f, dict)]
        namespaces = render_text_list(ctx, props.get("namespaces"))
        states = [s.strip().upper() for s in render_text_list(ctx, props.get("states"))]
        counts = platform_of(ctx).count_executions(
            flows=flows or None, namespaces=namespaces or None, states=states or None,
            start=parse_instant(render_text(ctx, props.get("startDate"))),
            end=parse_instant(render_text(ctx, props.get("endDate"))))
        expression = str(props.get("expression"))
        results = [{"namespace": row["namespace"], "flowId": row["flowId"], "count": row["count"]}
                   for row in counts if render_with(ctx, expression, {"count": int(row["count"])}).strip() == "true"]
        return {"results": results, "total": sum(row["count"] for row in results)}


@register
class PurgeExecutions(CorePlugin):
    """Delete terminated executions (and their logs, metrics, files) matching a filter."""

    type = "io.kestra.plugin.core.execution.PurgeExecutions"
    aliases = ("io.kestra.core.tasks.storages.Purge", "io.kestra.plugin.core.storage.Purge")
    kind = RUNNABLE

    class Props(Props):
        namespace: Optional[Text] = None
        flowId: Optional[Text] = None
        startDate: Optional[Text] = None
        endDate: Text
        states: Optional[list[StateName]] = None
        purgeExecution: bool = True
        purgeLog: bool = True
        purgeMetric: bool = True
        purgeStorage: bool = True

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        from orchestrator.engine.memory_platform import parse_instant

        props = self.task.props
        states = [s.strip().upper() for s in render_text_list(ctx, props.get("states"))]
        return platform_of(ctx).purge_executions(
            namespace=render_text(ctx, props.get("namespace")) or None,
            flow_id=render_text(ctx, props.get("flowId")) or None,
            start=parse_instant(render_text(ctx, props.get("startDate"))),
            end=parse_instant(render_text(ctx, props.get("endDate"))),
            states=states or None,
            purge_execution=render_bool(ctx, props.get("purgeExecution"), True),
            purge_log=render_bool(ctx, props.get("purgeLog"), True),
            purge_metric=render_bool(ctx, props.get("purgeMetric"), True),
            purge_storage=render_bool(ctx, props.get("purgeStorage"), True))
