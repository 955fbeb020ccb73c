"""``io.kestra.plugin.core.runner``: task runners (a ``taskRunner:`` of script tasks, not tasks)."""
from __future__ import annotations

from orchestrator.engine.plugins import OTHER, register

from ._common import CorePlugin, Props


@register
class Process(CorePlugin):
    """Run the script as a local process on the worker (no isolation); it has no properties."""

    type = "io.kestra.plugin.core.runner.Process"
    kind = OTHER

    class Props(Props):
        pass
