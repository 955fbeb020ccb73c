"""``io.kestra.core.tasks.scripts``: the deprecated Bash, Python and Node tasks (Kestra's
``AbstractBash``), which flows still use. Their properties differ from the current script tasks:

* ``commands`` joined by newlines and given to ``interpreter`` + ``interpreterArgs``
  (``/bin/sh -c``), led by ``set -o errexit`` when ``exitOnFailed`` (the default);
* ``outputFiles`` (and the deprecated ``outputsFiles``, ``files``) are *names*: each gets an
  empty file ``<name>_<random>`` in the working directory, its path is ``{{ outputFiles.<name> }}``
  (and ``{{ temp.<name> }}``) in the commands, and it is uploaded after the run under ``<name>``;
  ``outputDirs`` likewise give directories (``{{ outputDirs.<name> }}``) whose files are uploaded
  as ``<name>/<relative path>``;
* outputs: ``vars``, ``exitCode``, ``stdOutLineCount``, ``stdErrLineCount``, ``outputFiles`` and
  its deprecated twin ``files``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Literal, Optional, Union

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import register

from orchestrator.plugins.core._common import Props, Text

from . import _config
from ._base import ScriptFailure, ScriptTask, TextList, script_env
from ._files import inside, replace_internal_storage, write_input_files
from ._process import run_process
from ._python import ensure_dependencies, shims_dir


class AbstractBashProps(Props):
    runner: Union[Literal["PROCESS", "DOCKER"], str] = "PROCESS"
    dockerOptions: Optional[dict[str, Any]] = None
    interpreter: Text = "/bin/sh"
    interpreterArgs: list[Text] = ["-c"]
    exitOnFailed: Union[bool, str] = True
    files: Optional[TextList] = None           # deprecated: outputFiles
    outputsFiles: Optional[TextList] = None    # deprecated: outputFiles
    outputFiles: Optional[TextList] = None
    outputDirs: Optional[TextList] = None      # deprecated
    inputFiles: Optional[Union[dict[str, Any], str]] = None
    env: Optional[Union[dict[str, Any], str]] = None
    warningOnStdErr: Optional[Union[bool, str]] = None   # not used anymore (as in Kestra)


class AbstractBash(ScriptTask):
    deprecated = True

    def legacy_commands(self, ctx: Any, workdir: str, env: dict[str, str]) -> list[str]:
        return self.render_list(ctx, self.task.props.get("commands"))

    def _run_in(self, ctx: Any, workdir: str, conf: dict[str, Any]) -> dict[str, Any]:
        props = self.task.props
        ctx.variables["workingDir"] = workdir
        ctx.log("INFO", f"Running script with working directory: {workdir}")
        names = [*self.render_list(ctx, props.get("outputFiles")), *self.render_list(ctx, props.get("outputsFiles")),
                 *self.render_list(ctx, props.get("files"))]
        files: dict[str, str] = {}
        for name in names:
            inside(workdir, name, "outputFile")
            handle, path = tempfile.mkstemp(prefix=(name + "_").rjust(3, "_"), dir=workdir)
            os.close(handle)
            files[name] = path
        if files:
            ctx.variables["outputFiles"] = dict(files)
            ctx.variables["temp"] = dict(files)
        dirs: dict[str, str] = {}
        for name in self.render_list(ctx, props.get("outputDirs")):
            inside(workdir, name, "outputFile")
            dirs[name] = tempfile.mkdtemp(prefix=name + "_", dir=workdir)
        if dirs:
            ctx.variables["outputDirs"] = dict(dirs)
        write_input_files(ctx, workdir, props.get("inputFiles"))
        env = script_env(workdir, conf)
        env.update(self.language_env)
        env.update(self.render_env(ctx, props.get("env")))
        lines = [replace_internal_storage(ctx, workdir, c) for c in self.legacy_commands(ctx, workdir, env)]
        if self.flag(ctx, props.get("exitOnFailed"), True):
            lines.insert(0, "set -o errexit")
        interpreter = [ctx.render_string(props.get("interpreter") or "/bin/sh"),
                       *[ctx.render_string(a) for a in (props.get("interpreterArgs") or ["-c"])]]
        result = run_process(ctx, [*interpreter, "\n".join(lines)], cwd=workdir, env=env,
                             grace=float(conf.get("KILL_GRACE") or 0.5),
                             publish=not getattr(self.task, "log_to_file", False),
                             label=f"{getattr(ctx, 'execution_id', '')}/{getattr(ctx, 'task_id', '')}")
        platform = _platform(ctx)
        uploaded: dict[str, str] = {}
        for name, path in files.items():
            if os.path.isfile(path):
                uploaded[name] = platform.put_file(Path(path).read_bytes(), os.path.basename(path))
            else:
                ctx.log("DEBUG", f"Output file not found or is not a file: {path}")
        for name, path in dirs.items():
            for file in sorted(p for p in Path(path).rglob("*") if p.is_file()):
                relative = f"{name}/{file.relative_to(path).as_posix()}"
                uploaded[relative] = platform.put_file(file.read_bytes(), relative)
        outputs = {"vars": result.vars, "exitCode": result.exit_code, "stdOutLineCount": result.stdout_lines,
                   "stdErrLineCount": result.stderr_lines, "files": uploaded, "outputFiles": uploaded}
        if result.exit_code != 0:
            raise ScriptFailure(f"Command failed with exit code {result.exit_code}", outputs)
        return outputs


def _platform(ctx: Any) -> Any:
    from ._files import platform_of

    return platform_of(ctx)


@register
class Bash(AbstractBash):
    """Deprecated: run shell commands (use io.kestra.plugin.scripts.shell.Commands)."""

    type = "io.kestra.core.tasks.scripts.Bash"

    class Props(AbstractBashProps):
        commands: list[Text]


@register
class Python(AbstractBash):
    """Deprecated: run ``main.py`` of ``inputFiles`` (use io.kestra.plugin.scripts.python.Script).

    ``requirements`` are installed as the current tasks' ``dependencies`` are (a cached directory
    on ``PYTHONPATH``) rather than into a virtual environment of the working directory; the default
    ``./bin/python main.py`` runs the worker's Python."""

    type = "io.kestra.core.tasks.scripts.Python"
    language_env = {"PYTHONUNBUFFERED": "true"}

    class Props(AbstractBashProps):
        pythonPath: Text = "python"
        args: Optional[list[Text]] = None
        requirements: Optional[list[Text]] = None
        commands: list[Text] = ["./bin/python main.py"]
        virtualEnv: Union[bool, str] = True
        packageManager: Union[Literal["UV", "PIP"], str] = "PIP"

    def legacy_commands(self, ctx: Any, workdir: str, env: dict[str, str]) -> list[str]:
        props = self.task.props
        commands = props.get("commands") or ["./bin/python main.py"]
        if commands == ["./bin/python main.py"] and not os.path.isfile(os.path.join(workdir, "main.py")):
            raise TaskFailure("Invalid input files structure, expecting inputFiles property to contain at least "
                              "a main.py key with python code value.")
        conf = _config.config()
        python_path = ctx.render_string(props.get("pythonPath") or "python")
        interpreter = _config.python_interpreter() if python_path == "python" else python_path
        env["PATH"] = f"{shims_dir(interpreter, conf)}{os.pathsep}{env['PATH']}"
        requirements = self.render_list(ctx, props.get("requirements"))
        if requirements and self.flag(ctx, props.get("virtualEnv"), True):
            manager = ctx.render_string(props.get("packageManager") or "PIP").strip().upper()
            env["PYTHONPATH"] = ensure_dependencies(ctx, interpreter, "UV" if manager == "UV" else "PIP",
                                                    requirements, True, workdir, conf)
        args = " ".join(ctx.render_string(a) for a in props.get("args") or [])
        out = []
        for command in commands:
            rendered = ctx.render_string(command) + (" " + args if args else "")
            for prefix in ("./.venv/bin/python", "./bin/python"):
                if rendered.startswith(prefix):
                    rendered = "python" + rendered[len(prefix):]
            out.append(rendered)
        return out


@register
class Node(AbstractBash):
    """Deprecated: run ``main.js`` of ``inputFiles`` (use io.kestra.plugin.scripts.node.Script);
    ``npm install`` first when a ``package.json`` is given."""

    type = "io.kestra.core.tasks.scripts.Node"

    class Props(AbstractBashProps):
        nodePath: Text = "node"
        npmPath: Text = "npm"
        args: Optional[list[Text]] = None

    def legacy_commands(self, ctx: Any, workdir: str, env: dict[str, str]) -> list[str]:
        props = self.task.props
        if not os.path.isfile(os.path.join(workdir, "main.js")):
            raise TaskFailure("Invalid input files structure, expecting inputFiles property to contain at least "
                              "a main.js key with javascript code value.")
        node = ctx.render_string(props.get("nodePath") or "node")
        args = " ".join(ctx.render_string(a) for a in props.get("args") or [])
        lines = []
        if os.path.isfile(os.path.join(workdir, "package.json")):
            lines.append(f"{ctx.render_string(props.get('npmPath') or 'npm')} i > /dev/null")
        lines.append(f"{node} main.js" + (" " + args if args else ""))
        return lines
