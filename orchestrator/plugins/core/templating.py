"""``io.kestra.plugin.core.templating``: TemplatedTask (render a task definition, then run it)."""
from __future__ import annotations

from typing import Any

import yaml

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register

from ._common import CorePlugin, Props, Text


@register
class TemplatedTask(CorePlugin):
    """Render ``spec``, read it as the YAML of a runnable task and run that task in this task run:
    its outputs are this task's outputs."""

    type = "io.kestra.plugin.core.templating.TemplatedTask"
    aliases = ("io.kestra.core.tasks.templating.TemplatedTask",)
    kind = RUNNABLE

    class Props(Props):
        spec: Text

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        from orchestrator.engine.flow import FlowValidationError, parse_flow

        rendered = ctx.render_string(self.task.props.get("spec"))
        try:
            definition = yaml.safe_load(rendered)
        except yaml.YAMLError as exc:
            raise TaskFailure(f"Unable to read the templated task: {exc}") from None
        if not isinstance(definition, dict) or not definition.get("type"):
            raise TaskFailure("The templated task must be a task definition with a `type`")
        definition = {"id": self.task.id, **definition}
        document = {"id": ctx.flow_id, "namespace": ctx.namespace, "tasks": [definition]}
        try:
            flow = parse_flow(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
        except FlowValidationError as exc:
            raise TaskFailure(f"Invalid templated task: {exc}") from None
        task = flow.tasks[0]
        if task.plugin is type(self) or issubclass(task.plugin, TemplatedTask):
            raise TaskFailure("The templated task cannot be of type 'io.kestra.plugin.core.templating.TemplatedTask'")
        if task.plugin.kind != RUNNABLE:
            raise TaskFailure("The templated task must be a runnable task")
        return task.plugin(task).run(ctx)
