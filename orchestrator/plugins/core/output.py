"""``io.kestra.plugin.core.output``: OutputValues."""
from __future__ import annotations

from typing import Any, Optional

from orchestrator.engine.plugins import RUNNABLE, RunContext, register

from ._common import CorePlugin, Props


@register
class OutputValues(CorePlugin):
    """Expose rendered values as ``outputs.<id>.values.<key>`` (lone expressions keep their type)."""

    type = "io.kestra.plugin.core.output.OutputValues"
    kind = RUNNABLE

    class Props(Props):
        values: Optional[dict[str, Any]] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        return {"values": ctx.render(self.task.props.get("values") or {})}
