"""``io.kestra.core.plugins.test``: a deprecated task, for validation warnings."""
from __future__ import annotations

from typing import Any, Optional

from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Props, Text


@register
class DeprecatedTask(CorePlugin):
    """A deprecated type whose ``additionalProperty`` is deprecated too; it does nothing."""

    type = "io.kestra.core.plugins.test.DeprecatedTask"
    kind = RUNNABLE
    deprecated = True
    deprecated_props = frozenset({"additionalProperty"})

    class Props(Props):
        additionalProperty: Optional[Text] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        return None
