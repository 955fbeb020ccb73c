"""``io.kestra.plugin.core.templating``: TemplatedTask (render a task definition, then run it)."""
from __future__ import annotations

from orchestrator.engine.plugins import RUNNABLE, register

from ._common import CorePlugin, Props, Text


@register
class TemplatedTask(CorePlugin):
    type = "io.kestra.plugin.core.templating.TemplatedTask"
    aliases = ("io.kestra.core.tasks.templating.TemplatedTask",)
    kind = RUNNABLE

    class Props(Props):
        spec: Text
