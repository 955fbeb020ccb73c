"""What every script task shares (Kestra's ``AbstractExecScript``): properties, validation of the
task runner, and one attempt run on the Process runner.

One attempt:

1. the working directory: the surrounding WorkingDirectory's, or a new one (removed afterwards,
   kept on failure when ``KEEP_FAILED_WORKDIR`` is set);
2. ``{{ workingDir }}`` and ``{{ outputFiles['name'] }}`` join the expression context; namespace
   files, then input files are written;
3. the language builds its commands (Python: its dependencies first); ``kestra://`` URIs in them
   are downloaded and replaced by local paths; ``set -e`` leads when ``failFast``;
4. the process runs with the task's environment only (see :func:`script_env`);
5. the outputs: ``vars`` from the ``::{...}::`` lines, ``exitCode``, ``outputFiles`` uploaded,
   ``stdOutLineCount``/``stdErrLineCount``; a non-zero exit code fails the attempt with them.
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import tempfile
from typing import Any, ClassVar, Literal, Optional, Union

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE

from orchestrator.plugins.core._common import CorePlugin, Props, Text

from . import _config
from ._files import (load_namespace_files, non_glob, replace_internal_storage, upload_output_files,
                     write_input_files)
from ._process import run_process

PROCESS = "io.kestra.plugin.core.runner.Process"
DOCKER = "io.kestra.plugin.scripts.runner.docker.Docker"

TextList = Union[list[Text], str]


class ScriptFailure(TaskFailure):
    """A failed attempt that still has outputs (``exitCode``, ``vars``...), as Kestra keeps them."""

    def __init__(self, message: str, outputs: dict[str, Any]):
        super().__init__(message)
        self.outputs = outputs


class NamespaceFilesProps(Props):
    enabled: Union[bool, str] = True
    include: Optional[TextList] = None
    exclude: Optional[TextList] = None
    namespaces: Optional[TextList] = None
    ifExists: Union[Literal["OVERWRITE", "FAIL", "WARN", "IGNORE"], str] = "OVERWRITE"
    folderPerNamespace: Union[bool, str] = False


class ExecScriptProps(Props):
    beforeCommands: Optional[TextList] = None
    env: Optional[Union[dict[str, Any], str]] = None
    interpreter: Optional[TextList] = None
    failFast: Union[bool, str] = True
    warningOnStdErr: Optional[Union[bool, str]] = None      # deprecated in Kestra, not used
    inputFiles: Optional[Union[dict[str, Any], str]] = None
    outputFiles: Optional[TextList] = None
    namespaceFiles: Optional[NamespaceFilesProps] = None
    containerImage: Optional[Text] = None
    taskRunner: Optional[dict[str, Any]] = None
    targetOS: Union[Literal["LINUX", "WINDOWS", "AUTO"], str] = "AUTO"
    outputDirectory: Optional[Union[bool, str]] = None      # deprecated: {{ outputDir }}
    runner: Optional[Union[Literal["PROCESS", "DOCKER"], str]] = None   # deprecated
    docker: Optional[dict[str, Any]] = None                 # deprecated


def container_use(props: dict[str, Any]) -> tuple[str, str] | None:
    """``(field, what)`` when the task asks for a container runner, else None."""
    runner = props.get("taskRunner")
    if isinstance(runner, dict):
        kind = str(runner.get("type") or "")
        return None if kind == PROCESS else ("taskRunner", kind)
    legacy = str(props.get("runner") or "").upper()
    if legacy == "PROCESS":
        return None
    if legacy == "DOCKER":
        return "runner", "runner: DOCKER"
    if props.get("docker") is not None:
        return "docker", "docker options"
    if props.get("containerImage") is not None:
        return "containerImage", f"containerImage {props.get('containerImage')}"
    return None


def container_problem(props: dict[str, Any]) -> tuple[str, str] | None:
    """The validation error of a container task on this installation, if any."""
    use = container_use(props)
    if use is None or _config.container_fallback():
        return None
    field, what = use
    reachable, host = _config.docker_reachable()
    reason = ("running scripts in containers is not supported by Celestra yet" if reachable
              else f"no Docker daemon is reachable at {host}")
    return field, (f"{what} runs the script in a container, and {reason}. Use "
                   f"taskRunner: {{type: {PROCESS}}}, or set CELESTRA_SCRIPTS_CONTAINER_FALLBACK=process "
                   "to run container tasks as local processes on the worker")


def validate_runner(props: dict[str, Any]) -> list[tuple[str, str]]:
    runner = props.get("taskRunner")
    if runner is None:
        return []
    if not isinstance(runner, dict) or not runner.get("type"):
        return [("taskRunner", "must be a map with a 'type'")]
    from orchestrator.engine.plugins import UnknownPluginType, lookup

    try:
        cls = lookup(str(runner["type"]))
    except UnknownPluginType as exc:
        return [("taskRunner.type", str(exc))]
    if not getattr(cls, "is_task_runner", False) and cls.type != PROCESS:
        return [("taskRunner.type", f"{cls.type} is not a task runner")]
    if cls.type == PROCESS and set(runner) - {"type", "version"}:
        extra = sorted(set(runner) - {"type", "version"})[0]
        return [(f"taskRunner.{extra}", f"Unrecognized field \"{extra}\" (the Process runner has no properties)")]
    return []


class ScriptTask(CorePlugin):
    """Base of the script task types: subclasses build the commands of their language."""

    kind = RUNNABLE
    #: Kestra's default container image of the language (informative: only container runners use it)
    default_image: ClassVar[str] = "ubuntu"
    #: environment variables Kestra adds for the language
    language_env: ClassVar[dict[str, str]] = {}

    Props = ExecScriptProps

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        problems = validate_runner(node.props)
        if not problems:
            problem = container_problem(node.props)
            if problem is not None:
                problems.append(problem)
        return problems

    # --- what a language says ---------------------------------------------------------------------

    def commands(self, ctx: Any, workdir: str, env: dict[str, str]) -> list[str]:
        """The rendered commands to run after ``beforeCommands``."""
        raise NotImplementedError

    # --- one attempt --------------------------------------------------------------------------------

    def run(self, ctx: Any) -> dict[str, Any] | None:
        props = self.task.props
        use = container_use(props)
        if use is not None:
            if not _config.container_fallback():
                raise TaskFailure(container_problem(props)[1])  # type: ignore[index]
            ctx.log("WARN", f"{use[1]} ignored: the script runs as a local process on the worker "
                            "(CELESTRA_SCRIPTS_CONTAINER_FALLBACK=process)")
        shared = (getattr(ctx, "variables", None) or {}).get("workingDir")
        conf = _config.config()
        if shared:
            workdir, owned = str(shared), False
        else:
            base = conf.get("WORK_DIR") or None
            if base:
                os.makedirs(base, exist_ok=True)
            workdir, owned = tempfile.mkdtemp(prefix="celestra-script-", dir=base), True
        failed = True
        try:
            outputs = self._run_in(ctx, workdir, conf)
            failed = False
            return outputs
        finally:
            if owned and not (failed and conf.get("KEEP_FAILED_WORKDIR")):
                shutil.rmtree(workdir, ignore_errors=True)
            elif owned:
                ctx.log("INFO", f"The working directory of the failed attempt is kept: {workdir}")

    def _run_in(self, ctx: Any, workdir: str, conf: dict[str, Any]) -> dict[str, Any]:
        props = self.task.props
        ctx.variables["workingDir"] = workdir
        output_names = self.render_list(ctx, props.get("outputFiles"))
        if non_glob(output_names):
            ctx.variables["outputFiles"] = {name: os.path.join(workdir, name) for name in non_glob(output_names)}
        output_dir = None
        if self.flag(ctx, props.get("outputDirectory"), False):
            output_dir = tempfile.mkdtemp(dir=workdir, prefix="output-")
            ctx.variables["outputDir"] = output_dir
        spec = props.get("namespaceFiles")
        if spec is not None and self.flag(ctx, spec.get("enabled"), True):
            load_namespace_files(ctx, workdir, spec)
        write_input_files(ctx, workdir, props.get("inputFiles"))

        env = script_env(workdir, conf)
        if output_dir:
            env["OUTPUT_DIR"] = output_dir
        env.update(self.language_env)
        env.update(self.render_env(ctx, props.get("env")))
        body = [replace_internal_storage(ctx, workdir, c) for c in self.commands(ctx, workdir, env)]
        before = [replace_internal_storage(ctx, workdir, c) for c in self.render_list(ctx, props.get("beforeCommands"))]
        target_os = ctx.render_string(props.get("targetOS") or "AUTO").strip().upper()
        if self.flag(ctx, props.get("failFast"), True):
            before.insert(0, "" if target_os == "WINDOWS" else "set -e")
        interpreter = self.render_list(ctx, props.get("interpreter")) or ["/bin/sh", "-c"]
        separator = "\r\n" if target_os == "WINDOWS" else "\n"
        argv = [*interpreter, separator.join([*before, *body])]

        user = group = None
        run_as = conf.get("RUN_AS")
        if run_as:
            entry = pwd.getpwuid(int(run_as)) if str(run_as).isdigit() else pwd.getpwnam(str(run_as))
            user, group = entry.pw_uid, entry.pw_gid
            for folder, _, files in os.walk(workdir):
                for name in [folder, *(os.path.join(folder, f) for f in files)]:
                    os.chown(name, user, group)
        result = run_process(ctx, argv, cwd=workdir, env=env, grace=float(conf.get("KILL_GRACE") or 0.5),
                             publish=not getattr(self.task, "log_to_file", False), user=user, group=group,
                             label=f"{getattr(ctx, 'execution_id', '')}/{getattr(ctx, 'task_id', '')}")
        uploaded = upload_output_files(ctx, workdir, output_names)
        if output_dir:
            uploaded.update(upload_output_files(ctx, output_dir, ["**"]))
        outputs = {"vars": result.vars, "exitCode": result.exit_code, "outputFiles": uploaded,
                   "stdOutLineCount": result.stdout_lines, "stdErrLineCount": result.stderr_lines}
        if result.exit_code != 0:
            raise ScriptFailure(f"Command failed with exit code {result.exit_code}", outputs)
        return outputs

    # --- rendering helpers --------------------------------------------------------------------------

    @staticmethod
    def render_list(ctx: Any, value: Any) -> list[str]:
        """A ``Property<List<String>>``: a list (each item rendered) or an expression rendering to one."""
        if value is None:
            return []
        if isinstance(value, list):
            return [ctx.render_string(item) for item in value if item is not None]
        rendered = ctx.render(value)
        if isinstance(rendered, str):
            stripped = rendered.strip()
            if stripped.startswith("["):
                try:
                    rendered = json.loads(stripped)
                except ValueError:
                    pass
        if isinstance(rendered, list):
            return [item if isinstance(item, str) else json.dumps(item) for item in rendered]
        return [str(rendered)]

    @staticmethod
    def render_env(ctx: Any, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        rendered = ctx.render(value)
        if isinstance(rendered, str):
            try:
                rendered = json.loads(rendered)
            except ValueError:
                raise TaskFailure("env must be a map of variable name to value") from None
        if not isinstance(rendered, dict):
            raise TaskFailure("env must be a map of variable name to value")
        out = {}
        for key, item in rendered.items():
            if isinstance(item, bool):
                item = "true" if item else "false"
            out[str(key)] = "" if item is None else (item if isinstance(item, str) else json.dumps(item)
                                                     if isinstance(item, (dict, list)) else str(item))
        return out

    @staticmethod
    def flag(ctx: Any, value: Any, default: bool) -> bool:
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        rendered = ctx.render(value)
        if isinstance(rendered, bool):
            return rendered
        return str(rendered).strip().lower() == "true"


def script_env(workdir: str, conf: dict[str, Any], *, path_prefix: str | None = None) -> dict[str, str]:
    """The environment of a script: never the worker's own (no DATABASE_URL, SECRET_KEY, broker URL).

    A minimal PATH (``CELESTRA_SCRIPTS_PATH``, behind the directory of the ``python`` shims), HOME as
    the working directory, a UTF-8 locale, and Kestra's ``WORKING_DIR``; the flow's ``env`` comes on top.
    """
    from ._python import shims_dir

    path = str(conf.get("PATH") or "/usr/local/bin:/usr/bin:/bin")
    prefix = path_prefix or shims_dir(_config.python_interpreter(), conf)
    return {"PATH": f"{prefix}{os.pathsep}{path}", "HOME": workdir, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "WORKING_DIR": workdir}
