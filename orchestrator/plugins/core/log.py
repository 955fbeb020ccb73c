"""``io.kestra.plugin.core.log``: write, fetch and purge execution logs."""
from __future__ import annotations

from typing import Any, Optional

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.levels import LEVELS
from orchestrator.engine.memory_platform import parse_instant
from orchestrator.engine.plugins import RUNNABLE, RunContext, register

from ._common import CorePlugin, Level, Props, Text, TextOrList
from orchestrator.engine.memory_platform import platform_of

from ._ion import ion_dumps
from ._render import render_text, render_text_list



def render_level(ctx: RunContext, value: Any) -> str:
    """``level`` is a dynamic enum: render it, then it must be one of Kestra's log levels."""
    level = ctx.render_string(value if value is not None else "INFO").strip().upper()
    if level not in LEVELS:
        raise TaskFailure(f"Invalid log level '{level}', must be one of {', '.join(LEVELS)}")
    return level


@register
class Log(CorePlugin):
    """Log a message (or each message of a list) at a level."""

    type = "io.kestra.plugin.core.log.Log"
    aliases = ("io.kestra.core.tasks.log.Log",)
    kind = RUNNABLE

    class Props(Props):
        message: TextOrList
        level: Level = "INFO"

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        level = render_level(ctx, props.get("level"))
        message = props.get("message")
        for item in message if isinstance(message, list) else [message]:
            ctx.log(level, ctx.render_string(item))
        return None


@register
class Fetch(CorePlugin):
    """Fetch the logs of an execution (the current one by default) into an ION file of log entries."""

    type = "io.kestra.plugin.core.log.Fetch"
    aliases = ("io.kestra.core.tasks.log.Fetch",)
    kind = RUNNABLE

    class Props(Props):
        executionId: Optional[Text] = None
        namespace: Optional[Text] = None
        flowId: Optional[Text] = None
        tasksId: Optional[list[Text]] = None
        level: Level = "INFO"

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        execution_id = (render_text(ctx, props.get("executionId")) or "").strip() or ctx.execution_id
        level = render_level(ctx, props.get("level"))
        task_ids = render_text_list(ctx, props.get("tasksId"))
        entries = platform.fetch_logs(execution_id, task_ids=task_ids or None, min_level=level)
        namespace = render_text(ctx, props.get("namespace"))
        flow_id = render_text(ctx, props.get("flowId"))
        if namespace:
            entries = [e for e in entries if e.get("namespace") == namespace]
        if flow_id:
            entries = [e for e in entries if e.get("flowId") == flow_id]
        lines = []
        for entry in entries:
            record = {key: value for key, value in entry.items() if value is not None}
            if record.get("timestamp"):
                record["timestamp"] = parse_instant(record["timestamp"])
            lines.append(ion_dumps(record) + "\n")
        uri = platform.put_file("".join(lines).encode("utf-8"), extension=".ion")
        return {"size": len(entries), "uri": uri}


@register
class PurgeLogs(CorePlugin):
    """Delete the logs matching a filter; ``count`` is the number of deleted entries."""

    type = "io.kestra.plugin.core.log.PurgeLogs"
    kind = RUNNABLE

    class Props(Props):
        namespace: Optional[Text] = None
        flowId: Optional[Text] = None
        logLevels: Optional[list[Level]] = None
        startDate: Optional[Text] = None
        endDate: Text

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        levels = [render_level(ctx, level) for level in render_text_list(ctx, props.get("logLevels"))]
        count = platform_of(ctx).purge_logs(
            namespace=render_text(ctx, props.get("namespace")) or None,
            flow_id=render_text(ctx, props.get("flowId")) or None,
            levels=levels or None,
            start=parse_instant(render_text(ctx, props.get("startDate"))),
            end=parse_instant(render_text(ctx, props.get("endDate"))))
        return {"count": count}

