"""``io.kestra.plugin.core.log``: write, fetch and purge execution logs."""
from __future__ import annotations

from typing import Any, Optional

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register

from ._common import CorePlugin, Level, Props, Text, TextOrList

LEVELS = ("ERROR", "WARN", "INFO", "DEBUG", "TRACE")


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
    """Fetch the logs of an execution into an internal-storage file (run by the worker runtime)."""

    type = "io.kestra.plugin.core.log.Fetch"
    aliases = ("io.kestra.core.tasks.log.Fetch",)
    kind = RUNNABLE

    class Props(Props):
        executionId: Optional[Text] = None
        namespace: Optional[Text] = None
        flowId: Optional[Text] = None
        tasksId: Optional[list[Text]] = None
        level: Level = "INFO"


@register
class PurgeLogs(CorePlugin):
    """Delete logs matching a filter (run by the worker runtime, which owns the log store)."""

    type = "io.kestra.plugin.core.log.PurgeLogs"
    kind = RUNNABLE

    class Props(Props):
        namespace: Optional[Text] = None
        flowId: Optional[Text] = None
        logLevels: Optional[list[Level]] = None
        startDate: Optional[Text] = None
        endDate: Text

