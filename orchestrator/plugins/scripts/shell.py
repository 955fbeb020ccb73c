"""``io.kestra.plugin.scripts.shell``: a shell script, or shell commands."""
from __future__ import annotations

from typing import Any

from orchestrator.engine.plugins import register

from orchestrator.plugins.core._common import Text

from ._base import ExecScriptProps, ScriptTask, TextList


@register
class Script(ScriptTask):
    """Run an inline shell script (given to the interpreter, ``/bin/sh -c`` by default)."""

    type = "io.kestra.plugin.scripts.shell.Script"
    default_image = "ubuntu"

    class Props(ExecScriptProps):
        script: Text

    def commands(self, ctx: Any, workdir: str, env: dict[str, str]) -> list[str]:
        return [ctx.render_string(self.task.props.get("script"))]


@register
class Commands(ScriptTask):
    """Run shell commands, one after the other in one shell."""

    type = "io.kestra.plugin.scripts.shell.Commands"
    default_image = "ubuntu"

    class Props(ExecScriptProps):
        commands: TextList

    def commands(self, ctx: Any, workdir: str, env: dict[str, str]) -> list[str]:
        return self.render_list(ctx, self.task.props.get("commands"))
