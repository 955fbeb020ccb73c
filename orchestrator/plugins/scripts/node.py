"""``io.kestra.plugin.scripts.node``: a Node.js script, or commands run with Node at hand."""
from __future__ import annotations

import os
import uuid
from typing import Any

from orchestrator.engine.plugins import register

from orchestrator.plugins.core._common import Text

from ._base import ExecScriptProps, ScriptTask, TextList

NODE_ENV = {"PYTHONUNBUFFERED": "true", "PIP_ROOT_USER_ACTION": "ignore"}  # as Kestra sets them for Node too


@register
class Script(ScriptTask):
    """Run an inline Node.js script (written to a ``.js`` file of the working directory)."""

    type = "io.kestra.plugin.scripts.node.Script"
    default_image = "node"
    language_env = NODE_ENV

    class Props(ExecScriptProps):
        script: Text

    def commands(self, ctx: Any, workdir: str, env: dict[str, str]) -> list[str]:
        path = os.path.join(workdir, f"{uuid.uuid4().hex[:22]}.js")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(ctx.render_string(self.task.props.get("script")))
        return [f"node {path}"]


@register
class Commands(ScriptTask):
    """Run shell commands with Node.js at hand (``node main.js``, ``npm install``...)."""

    type = "io.kestra.plugin.scripts.node.Commands"
    default_image = "node"

    class Props(ExecScriptProps):
        commands: TextList

    def commands(self, ctx: Any, workdir: str, env: dict[str, str]) -> list[str]:
        return self.render_list(ctx, self.task.props.get("commands"))
