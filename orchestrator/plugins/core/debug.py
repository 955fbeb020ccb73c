"""``io.kestra.plugin.core.debug``: Return (an output) and Echo (deprecated, a log)."""
from __future__ import annotations

import time
from typing import Any, Optional

from orchestrator.engine.plugins import RUNNABLE, RunContext, register

from ._common import CorePlugin, Level, Props, Text
from .log import render_level


@register
class Return(CorePlugin):
    """Render ``format`` and expose it as ``outputs.<id>.value``."""

    type = "io.kestra.plugin.core.debug.Return"
    aliases = ("io.kestra.core.tasks.debugs.Return",)
    kind = RUNNABLE

    class Props(Props):
        format: Optional[Text] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        template = self.task.props.get("format")
        started = time.perf_counter()
        value = ctx.render_string(template) if template is not None else None
        elapsed = time.perf_counter() - started
        # Kestra tags both metrics with format=foo; kept so that metric queries match.
        ctx.metric("counter", "length", float(len(value or "")), {"format": "foo"})
        ctx.metric("timer", "duration", elapsed, {"format": "foo"})
        return {"value": value}


@register
class Echo(CorePlugin):
    """Deprecated predecessor of Log: log ``format`` at ``level``."""

    type = "io.kestra.plugin.core.debug.Echo"
    aliases = ("io.kestra.core.tasks.debugs.Echo",)
    kind = RUNNABLE
    deprecated = True

    class Props(Props):
        format: Text
        level: Level = "INFO"

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        ctx.log(render_level(ctx, props.get("level")), ctx.render_string(props.get("format")))
        return None
