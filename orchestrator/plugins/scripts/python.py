"""``io.kestra.plugin.scripts.python``: a Python script, or commands run with Python at hand."""
from __future__ import annotations

import os
import uuid
from typing import Any, Literal, Optional, Union

from orchestrator.engine.plugins import register

from orchestrator.plugins.core._common import Text

from . import _config
from ._base import ExecScriptProps, ScriptTask, TextList
from ._python import ensure_dependencies, find_python, shims_dir

PRELUDE = "true = True\nfalse = False\nnull = None\n"
PYTHON_ENV = {"PYTHONUNBUFFERED": "true", "PIP_ROOT_USER_ACTION": "ignore", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


class PythonProps(ExecScriptProps):
    dependencies: Optional[TextList] = None
    pythonVersion: Optional[Text] = None
    dependencyCacheEnabled: Union[bool, str] = True
    packageManager: Union[Literal["UV", "PIP"], str] = "UV"


class PythonTask(ScriptTask):
    default_image = "ghcr.io/kestra-io/kestrapy:latest"
    language_env = PYTHON_ENV

    def prepare_python(self, ctx: Any, workdir: str, env: dict[str, str]) -> None:
        """``python`` on the PATH, and the ``dependencies`` first on ``PYTHONPATH``."""
        props = self.task.props
        conf = _config.config()
        version = ctx.render_string(props.get("pythonVersion") or "").strip()
        interpreter = find_python(version, conf) if version else _config.python_interpreter()
        env["PATH"] = f"{shims_dir(interpreter, conf)}{os.pathsep}{env['PATH']}"
        requirements = [r for r in self.render_list(ctx, props.get("dependencies")) if r.strip()]
        if requirements:
            manager = ctx.render_string(props.get("packageManager") or "UV").strip().upper()
            cached = self.flag(ctx, props.get("dependencyCacheEnabled"), True)
            packages = ensure_dependencies(ctx, interpreter, "PIP" if manager == "PIP" else "UV", requirements,
                                           cached, workdir, conf)
            env["PYTHONPATH"] = packages + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")


@register
class Script(PythonTask):
    """Run an inline Python script (written to a file of the working directory)."""

    type = "io.kestra.plugin.scripts.python.Script"

    class Props(PythonProps):
        script: Text

    def commands(self, ctx: Any, workdir: str, env: dict[str, str]) -> list[str]:
        self.prepare_python(ctx, workdir, env)
        path = os.path.join(workdir, f"{uuid.uuid4().hex[:22]}.py")
        with open(path, "w", encoding="utf-8") as handle:
            # Pebble renders booleans and null in lower case: `x = {{ flag }}` must still be Python
            handle.write(PRELUDE + ctx.render_string(self.task.props.get("script")))
        if env.get("PYTHONPATH"):  # the dependencies were installed for this interpreter
            return [f"python {path}"]
        # a virtual environment activated by beforeCommands wins, as in Kestra
        return [f'if [ -n "$VIRTUAL_ENV" ]; then "$VIRTUAL_ENV/bin/python" "{path}"; else python "{path}"; fi']


@register
class Commands(PythonTask):
    """Run shell commands with Python (and the task's dependencies) at hand."""

    type = "io.kestra.plugin.scripts.python.Commands"

    class Props(PythonProps):
        commands: TextList

    def commands(self, ctx: Any, workdir: str, env: dict[str, str]) -> list[str]:
        self.prepare_python(ctx, workdir, env)
        return self.render_list(ctx, self.task.props.get("commands"))
