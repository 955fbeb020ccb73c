"""What a plugin's tests need: a real run context on the in-memory platform, and task parsing.

:class:`TaskContext` implements the worker's :class:`~orchestrator.engine.plugins.RunContext` with
the real expression engine and a :class:`~orchestrator.engine.memory_platform.MemoryPlatform`
(files, KV, namespace files, logs, executions, triggers in dicts); it records what the task logged,
measured and slept. :func:`parse_task` parses one task as the executor hands it to a worker
(defaults filled in) and :func:`run_task` runs it. Pure Python: no database, no broker.
"""
from __future__ import annotations

from typing import Any

from orchestrator.engine import expressions
from orchestrator.engine.flow import Task, parse_flow
from orchestrator.engine.memory_platform import MemoryPlatform

__all__ = ["NAMESPACE", "TaskContext", "parse_task", "run_task"]

NAMESPACE = "company.team"


class TaskContext:
    """A run context for one task run of execution ``exec1`` of flow ``flow`` (by default)."""

    def __init__(self, platform: MemoryPlatform | None = None, *, task_id: str = "task",
                 working_dir: str | None = None, **variables: Any):
        self.platform = platform if platform is not None else MemoryPlatform(NAMESPACE, "flow", "exec1", task_id,
                                                                             "run1")
        self.task_id = task_id
        self.taskrun_id = self.platform.taskrun_id
        self.execution_id = self.platform.execution_id
        self.namespace = self.platform.namespace
        self.flow_id = self.platform.flow_id
        self.variables: dict[str, Any] = {
            "flow": {"id": self.flow_id, "namespace": self.namespace}, "execution": {"id": self.execution_id},
            "taskrun": {"id": self.taskrun_id}, **variables}
        if working_dir is not None:
            self.working_dir = working_dir
        self.logs: list[tuple[str, str]] = []
        self.metrics: list[tuple[str, str, float, dict[str, str] | None]] = []
        self.slept: list[float] = []

    def render(self, value: Any) -> Any:
        return expressions.render(value, self.variables)

    def render_string(self, value: Any) -> str:
        return expressions.render_string(value, self.variables)

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))

    def metric(self, kind: str, name: str, value: float, tags: dict[str, str] | None = None) -> None:
        self.metrics.append((kind, name, value, tags))

    def sleep(self, seconds: float) -> None:
        """Recorded, not waited: a test asserts on the seconds asked for."""
        self.slept.append(seconds)


def parse_task(body: str, *, namespace: str = NAMESPACE, task_id: str = "task") -> Task:
    """One task of a flow, from the YAML of its properties below ``- id: <task_id>`` (indented 4)."""
    return parse_flow(f"id: flow\nnamespace: {namespace}\ntasks:\n  - id: {task_id}\n" + body).tasks[0]


def run_task(body: str, ctx: TaskContext) -> Any:
    """Parse a task and run it in ``ctx``; returns its outputs."""
    parsed = parse_task(body, task_id=ctx.task_id)
    return parsed.plugin(parsed).run(ctx)
