"""Script tasks (``io.kestra.plugin.scripts.*``) with real processes.

Most tests run one task on a run context backed by a :class:`MemoryPlatform` (storage and
namespace files in memory, the processes real); the ``run_flow`` ones go through the runtime
(workers, database, API).
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from orchestrator.engine import expressions, states, supervision
from orchestrator.engine.attempt import run_attempt
from orchestrator.engine.flow import FlowValidationError, Task, parse_flow
from orchestrator.engine.memory_platform import MemoryPlatform

NS = "company.team"


class Ctx:
    """A RunContext with the real expression engine, a memory platform, a clock and a kill switch."""

    def __init__(self, platform: Any = None, **variables: Any):
        self.platform = platform if platform is not None else MemoryPlatform(NS, "flow", "exec1", "task", "run1")
        self.task_id = "task"
        self.execution_id = self.platform.execution_id
        self.namespace = self.platform.namespace
        self.flow_id = self.platform.flow_id
        self.variables: dict[str, Any] = {"flow": {"id": self.flow_id, "namespace": self.namespace},
                                          "execution": {"id": self.execution_id},
                                          "taskrun": {"id": self.platform.taskrun_id}, **variables}
        self.logs: list[tuple[str, str]] = []
        self.metrics: list[tuple[str, str, float, dict[str, str]]] = []
        self.deadline: float | None = None
        self.killed = threading.Event()
        self.published = 0

    def render(self, value: Any) -> Any:
        return expressions.render(value, self.variables)

    def render_string(self, value: Any) -> str:
        return expressions.render_string(value, self.variables)

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))

    def metric(self, kind: str, name: str, value: float, tags: dict[str, str] | None = None) -> None:
        self.metrics.append((kind, name, value, tags or {}))

    def sleep(self, seconds: float) -> None:  # pragma: no cover - not used by script tasks
        time.sleep(seconds)

    def set_timeout(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def timed_out(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def cancelled(self) -> bool:
        return self.killed.is_set()

    def lines(self, level: str | None = None) -> list[str]:
        return [m for lvl, m in self.logs if level is None or lvl == level]


def task(body: str) -> Task:
    return parse_flow(f"id: flow\nnamespace: {NS}\ntasks:\n  - id: task\n" + body).tasks[0]


def attempt(body: str, ctx: Ctx | None = None) -> tuple[str, Any, Ctx]:
    ctx = ctx or Ctx()
    parsed = task(body)
    state, outputs = run_attempt(parsed, ctx)
    return state, outputs, ctx


@pytest.fixture(autouse=True)
def scripts_settings(settings, tmp_path_factory):
    """A cache of its own for the session's dependency installs; no container fallback."""
    from django.conf import settings as django_settings

    scripts = dict(django_settings.CELESTRA.get("SCRIPTS") or {})
    scripts["CACHE_DIR"] = str(_session_cache(tmp_path_factory))
    scripts["CONTAINER_FALLBACK"] = ""
    settings.CELESTRA = {**django_settings.CELESTRA, "SCRIPTS": scripts}
    yield scripts


_CACHE: list[Path] = []


def _session_cache(factory) -> Path:
    if not _CACHE:
        _CACHE.append(factory.mktemp("scripts-cache"))
    return _CACHE[0]


def group_members(pgid: int) -> list[tuple[int, str]]:
    """Live (non-zombie) processes of a process group, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append((int(entry.name), fields[0]))
    return found


def wait_until(condition, timeout: float = 30.0, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s")
        time.sleep(0.02)


# --- the output protocol, through the real `kestra` package ----------------------------------------------

def test_outputs_metrics_and_logs_through_the_kestra_package() -> None:
    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.python.Script
    script: |
      from kestra import Kestra
      Kestra.outputs({"rows": 3, "name": "orders", "nested": {"a": [1, 2]}, "ok": True})
      Kestra.outputs({"name": "customers", "ratio": 0.5})
      Kestra.counter("processed", 42, {"table": "orders"})
      Kestra.timer("load", 1.25, {"stage": "extract"})
      logger = Kestra.logger()
      logger.info("info from the logger")
      logger.warning("careful")
      logger.error("broken")
      print("plain line")
    """)
    assert state == states.SUCCESS
    assert outputs["vars"] == {"rows": 3, "name": "customers", "nested": {"a": [1, 2]}, "ok": True, "ratio": 0.5}
    assert outputs["exitCode"] == 0
    assert outputs["outputFiles"] == {}
    # 2 outputs, 2 metrics, the logger's INFO line and the print on stdout; WARN and ERROR on stderr
    assert outputs["stdOutLineCount"] == 6 and outputs["stdErrLineCount"] == 2
    assert ctx.metrics == [("counter", "processed", 42.0, {"table": "orders"}),
                           ("timer", "load", 1.25, {"stage": "extract"})]
    info = ctx.lines("INFO")
    assert len(info) == 2 and info[0].endswith(" - info from the logger") and info[1] == "plain line"
    assert len(ctx.lines("WARN")) == 1 and ctx.lines("WARN")[0].endswith(" - careful")
    assert len(ctx.lines("ERROR")) == 1 and ctx.lines("ERROR")[0].endswith(" - broken")
    assert not any("::" in m for m in ctx.lines())


def test_protocol_lines_are_read_whole_and_invalid_ones_are_warned_about() -> None:
    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.shell.Script
    script: |
      echo '::{"outputs":{"a":1,"b":{"c":2}}}::'
      echo '::{"outputs":{"a":3}}::'
      echo 'prefix ::{"outputs":{"x":1}}::'
      echo '::{"outputs":{"y": }}::'
      echo '::{"logs":[{"level":"NOPE","message":"m"}],"outputs":{"z":1}}::'
      echo '::{"logs":[{"level":"DEBUG","message":"from stderr"}],"outputs":{"e":true}}::' >&2
      echo '::{"metrics":[{"name":"n","type":"counter","value":"2.5"}],"assets":{"inputs":[]}}::'
    """)
    assert state == states.SUCCESS
    assert outputs["vars"] == {"a": 3, "b": {"c": 2}, "e": True}
    assert ctx.lines("INFO") == ['prefix ::{"outputs":{"x":1}}::']
    warnings = ctx.lines("WARN")
    assert len(warnings) == 2 and all(w.startswith("Invalid outputs '") for w in warnings)
    assert "unknown level 'NOPE'" in warnings[1]
    assert ctx.lines("DEBUG") == ["from stderr"]
    assert ctx.metrics == [("counter", "n", 2.5, {})]
    assert outputs["stdOutLineCount"] == 6 and outputs["stdErrLineCount"] == 1


# --- process contract -------------------------------------------------------------------------------------

def test_a_failing_script_fails_with_its_exit_code_and_keeps_its_outputs() -> None:
    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.python.Script
    script: |
      import sys
      print('::{"outputs": {"before": "exit"}}::')
      sys.exit(3)
    """)
    assert state == states.FAILED
    assert outputs["exitCode"] == 3
    assert outputs["vars"] == {"before": "exit"}
    assert "Command failed with exit code 3" in ctx.lines("ERROR")


@pytest.mark.parametrize("warning_on_stderr", [None, "true", "false"])
def test_stderr_lines_are_errors_and_do_not_change_the_state(warning_on_stderr: str | None) -> None:
    extra = f"    warningOnStdErr: {warning_on_stderr}\n" if warning_on_stderr else ""
    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo out
      - echo err1 >&2
      - echo err2 >&2
""" + extra)
    assert state == states.SUCCESS
    assert ctx.lines("INFO") == ["out"]
    assert ctx.lines("ERROR") == ["err1", "err2"]
    assert (outputs["stdOutLineCount"], outputs["stdErrLineCount"]) == (1, 2)


def test_before_commands_run_first_in_the_same_shell_and_fail_fast() -> None:
    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.shell.Commands
    beforeCommands:
      - GREETING=hello
      - echo before
    commands:
      - echo "$GREETING from commands"
    """)
    assert state == states.SUCCESS
    assert ctx.lines("INFO") == ["before", "hello from commands"]

    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.shell.Commands
    beforeCommands: ["false"]
    commands: ["echo never"]
    """)
    assert state == states.FAILED and outputs["exitCode"] == 1 and "never" not in ctx.lines("INFO")

    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.shell.Commands
    failFast: false
    commands: ["false", "echo still running"]
    """)
    assert state == states.SUCCESS and ctx.lines("INFO") == ["still running"]


def test_the_script_sees_its_env_and_never_the_servers(monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://secret@db/celestra")
    monkeypatch.setenv("SECRET_KEY", "s3cr3t")
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://secret:6379/0")
    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.python.Script
    env:
      FLOW_VAR: "{{ flow.id }}-value"
      NUMBER: 3
    script: |
      import json, os
      print('::' + json.dumps({"outputs": {"env": dict(os.environ), "cwd": os.getcwd()}}) + '::')
    """)
    assert state == states.SUCCESS
    env = outputs["vars"]["env"]
    assert env["FLOW_VAR"] == "flow-value" and env["NUMBER"] == "3"
    assert env["WORKING_DIR"] == outputs["vars"]["cwd"] == env["HOME"]
    assert env["PYTHONUNBUFFERED"] == "true"
    for leaked in ("DATABASE_URL", "SECRET_KEY", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV"):
        assert leaked not in env
    assert not any("secret" in str(value) for value in env.values())
    assert not os.path.exists(outputs["vars"]["cwd"])  # the working directory is removed afterwards


def test_node_and_shell_scripts_and_the_working_dir_expression() -> None:
    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.node.Script
    script: |
      const fs = require('fs');
      console.log('::' + JSON.stringify({outputs: {dir: process.cwd(), same: process.cwd() === '{{ workingDir }}'}}) + '::');
    """)
    assert state == states.SUCCESS and outputs["vars"]["same"] is True

    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.shell.Script
    script: |
      for i in 1 2 3; do echo "line $i"; done
    """)
    assert state == states.SUCCESS and ctx.lines("INFO") == ["line 1", "line 2", "line 3"]


# --- files ------------------------------------------------------------------------------------------------

def test_input_files_inline_and_from_storage_and_output_files_globs() -> None:
    ctx = Ctx()
    stored = ctx.platform.put_file(b"a,b\n1,2\n", "data.csv")
    ctx.variables["stored"] = stored
    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.python.Commands
    inputFiles:
      main.py: |
        import shutil
        shutil.copy("in/data.csv", "out/copy.csv")
        open("out/sub/note.txt", "w").write("{{ flow.id }}")
        open("skip.log", "w").write("no")
      in/data.csv: "{{ stored }}"
    beforeCommands: ["mkdir -p out/sub"]
    outputFiles: ["out/**", "missing.txt"]
    commands: ["python main.py", "cat {{ stored }}"]
    """, ctx)
    assert state == states.SUCCESS, ctx.logs
    files = outputs["outputFiles"]
    assert sorted(files) == ["out/copy.csv", "out/sub/note.txt"]
    assert ctx.platform.read_file(files["out/copy.csv"]) == b"a,b\n1,2\n"
    assert ctx.platform.read_file(files["out/sub/note.txt"]) == b"flow"
    assert all(uri.startswith("kestra:///company/team/flow/executions/exec1/tasks/task/run1/") for uri in files.values())
    assert ctx.lines("INFO") == ["a,b", "1,2"]  # the kestra:// URI in a command is a local file


def test_output_files_expression_gives_the_path_to_write() -> None:
    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.shell.Script
    outputFiles: [result.json]
    script: |
      echo '{"ok": true}' > {{ outputFiles['result.json'] }}
    """)
    assert state == states.SUCCESS
    assert json.loads(ctx.platform.read_file(outputs["outputFiles"]["result.json"])) == {"ok": True}


def test_input_file_paths_must_stay_in_the_working_directory() -> None:
    state, _, ctx = attempt("""
    type: io.kestra.plugin.scripts.shell.Commands
    inputFiles:
      ../escape.txt: nope
    commands: ["true"]
    """)
    assert state == states.FAILED
    assert "Invalid inputFile (only relative path is supported) for path '../escape.txt'" in ctx.lines("ERROR")


def test_namespace_files_are_in_the_working_directory() -> None:
    platform = MemoryPlatform(NS, "flow", "exec1", "task", "run1")
    platform.nsfile_write(NS, "/scripts/helper.py", b"VALUE = 'from the namespace'\n")
    platform.nsfile_write(NS, "/scripts/skip.py", b"raise SystemExit(9)\n")
    platform.nsfile_write(NS, "/README.md", b"docs")
    platform.nsfile_write("company.other", "/shared.txt", b"other namespace")
    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.python.Script
    namespaceFiles:
      enabled: true
      include: ["scripts/**", "/shared.txt"]
      exclude: ["**/skip.py"]
      namespaces: ["company.team", "company.other"]
    script: |
      import os, sys
      sys.path.insert(0, "scripts")
      from helper import VALUE
      print(VALUE)
      print(sorted(os.path.join(d, f) for d, _, fs in os.walk(".") for f in fs if "cache" not in d and (not f.endswith(".py") or "scripts" in d)))
      print(open("shared.txt").read())
    """, Ctx(platform))
    assert state == states.SUCCESS, ctx.logs
    assert ctx.lines("INFO")[1:] == ["from the namespace", "['./scripts/helper.py', './shared.txt']", "other namespace"]
    assert ctx.lines("INFO")[0].startswith("Loaded 2 namespace files from 'company.team, company.other' in ")
    assert ("counter", "namespacefiles.count", 2.0, {}) in ctx.metrics

    state, _, ctx = attempt("""
    type: io.kestra.plugin.scripts.shell.Commands
    namespaceFiles:
      enabled: true
      include: ["/README.md"]
      ifExists: FAIL
    inputFiles:
      README.md: mine
    commands: ["cat README.md"]
    """, Ctx(platform))
    assert state == states.SUCCESS and ctx.lines("INFO")[-1] == "mine"  # input files come after namespace files

    state, _, ctx = attempt("""
    type: io.kestra.plugin.scripts.shell.Commands
    namespaceFiles:
      enabled: true
      folderPerNamespace: true
    commands: ["cat company.team/README.md"]
    """, Ctx(platform))
    assert state == states.SUCCESS and ctx.lines("INFO")[-1] == "docs"


# --- timeout and kill -------------------------------------------------------------------------------------

SLEEPER = """
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - sleep 300 &
      - echo "pgid $(ps -o pgid= $$ | tr -d ' ') child $!"
      - wait
"""


def _pgid(ctx: Ctx) -> int:
    line = next(m for m in ctx.lines("INFO") if m.startswith("pgid "))
    return int(line.split()[1])


def test_a_timeout_stops_the_script_and_its_children() -> None:
    ctx = Ctx()
    state, outputs, ctx = attempt(SLEEPER + "    timeout: PT1S\n", ctx)
    assert state == states.FAILED
    assert "Timeout after PT1S" in ctx.lines("ERROR")
    pgid = _pgid(ctx)
    assert group_members(pgid) == []
    assert all(g.pgid != pgid for g in supervision.live_groups())


def test_a_kill_stops_the_script_and_its_children() -> None:
    ctx = Ctx()

    def kill_once_started() -> None:
        wait_until(lambda: any(m.startswith("pgid ") for m in ctx.lines()), message="script started")
        ctx.killed.set()

    killer = threading.Thread(target=kill_once_started)
    killer.start()
    state, outputs, ctx = attempt(SLEEPER, ctx)
    killer.join()
    assert state == states.FAILED
    assert "Task attempt killed: Killed" in ctx.lines("ERROR")
    assert group_members(_pgid(ctx)) == []


def test_what_a_finished_script_left_running_is_stopped() -> None:
    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - sleep 300 > /dev/null 2>&1 &
      - echo "pgid $(ps -o pgid= $$ | tr -d ' ')"
    """)
    assert state == states.SUCCESS
    assert group_members(_pgid(ctx)) == []


def test_supervision_terminates_every_live_group() -> None:
    import subprocess

    proc = subprocess.Popen(["/bin/sh", "-c", "trap '' TERM; sleep 300 & wait"], start_new_session=True)
    supervision.register(proc.pid, "test")
    wait_until(lambda: len(group_members(proc.pid)) == 2, message="the group has its child")
    assert proc.pid in supervision.terminate_all(grace=0.2)
    proc.wait(10)
    wait_until(lambda: group_members(proc.pid) == [], message="the group is gone")
    assert supervision.live_groups() == []
    assert proc.returncode == -signal.SIGKILL  # it ignored SIGTERM: SIGKILL after the grace


# --- Python dependencies ----------------------------------------------------------------------------------

def test_dependencies_are_installed_once_and_reused(scripts_settings) -> None:
    body = """
    type: io.kestra.plugin.scripts.python.Script
    dependencies: ["termcolor==3.3.0"]
    script: |
      import termcolor
      from kestra import Kestra
      Kestra.outputs({"path": termcolor.__file__})
    """
    state, first, ctx1 = attempt(body)
    assert state == states.SUCCESS, ctx1.logs
    cache = Path(scripts_settings["CACHE_DIR"]) / "python-deps"
    installed = Path(first["vars"]["path"]).resolve()
    assert cache.resolve() in installed.parents
    stamp = installed.stat().st_mtime_ns
    assert ("counter", "dependencies.cache.miss", 1.0, {}) in ctx1.metrics or \
        ("counter", "dependencies.cache.hit", 1.0, {}) in ctx1.metrics  # an earlier run may have built it
    # when: a second task asks for the same set
    state, second, ctx2 = attempt(body)
    # then: nothing is installed again
    assert state == states.SUCCESS
    assert second["vars"]["path"] == first["vars"]["path"]
    assert ("counter", "dependencies.cache.hit", 1.0, {}) in ctx2.metrics
    assert not any(m.startswith("Installed") for m in ctx2.lines("INFO"))
    assert installed.stat().st_mtime_ns == stamp
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_a_failed_install_fails_the_task_with_the_installers_message() -> None:
    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.python.Script
    dependencies: ["celestra-no-such-package-d41d8cd9==0.0.1"]
    script: print("never")
    """)
    assert state == states.FAILED
    message = ctx.lines("ERROR")[0]
    assert message.startswith("dependencies: installing celestra-no-such-package-d41d8cd9==0.0.1 failed")
    assert "celestra-no-such-package-d41d8cd9" in message.split(":", 2)[2]
    assert "never" not in ctx.lines("INFO")


def test_python_version_must_be_present_on_the_worker() -> None:
    state, _, ctx = attempt("""
    type: io.kestra.plugin.scripts.python.Script
    pythonVersion: "2.1"
    script: print(1)
    """)
    assert state == states.FAILED
    assert ctx.lines("ERROR")[0].startswith("pythonVersion: no Python 2.1 interpreter is installed on this worker")


# --- container runners ------------------------------------------------------------------------------------

def test_container_tasks_fail_validation_naming_the_field() -> None:
    with pytest.raises(FlowValidationError) as caught:
        parse_flow(f"""id: flow
namespace: {NS}
tasks:
  - id: py
    type: io.kestra.plugin.scripts.python.Script
    containerImage: python:3.12-slim
    script: print(1)
  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.scripts.runner.docker.Docker
      pullPolicy: IF_NOT_PRESENT
    commands: [echo]
""")
    errors = {e.path: e for e in caught.value.errors}
    assert errors["tasks[0].containerImage"].line == 6
    assert "no Docker daemon is reachable" in errors["tasks[0].containerImage"].message
    assert "CELESTRA_SCRIPTS_CONTAINER_FALLBACK=process" in errors["tasks[0].containerImage"].message
    assert errors["tasks[1].taskRunner"].message.startswith(
        "io.kestra.plugin.scripts.runner.docker.Docker runs the script in a container")


def test_task_runner_types_are_checked() -> None:
    with pytest.raises(FlowValidationError) as caught:
        task("""
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.scripts.runner.docker.Dockr
    commands: [echo]
""")
    assert "Invalid type: io.kestra.plugin.scripts.runner.docker.Dockr (did you mean " \
           "io.kestra.plugin.scripts.runner.docker.Docker" in str(caught.value)
    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    commands: [echo on the worker]
""")
    assert state == states.SUCCESS and ctx.lines("INFO") == ["on the worker"]


def test_the_process_fallback_runs_container_tasks_locally(scripts_settings) -> None:
    scripts_settings["CONTAINER_FALLBACK"] = "process"
    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.python.Script
    containerImage: python:3.12-slim
    taskRunner:
      type: io.kestra.plugin.scripts.runner.docker.Docker
    script: print("local")
""")
    assert state == states.SUCCESS
    assert ctx.lines("INFO") == ["local"]
    assert ctx.lines("WARN")[0].startswith("io.kestra.plugin.scripts.runner.docker.Docker ignored")


# --- the legacy Bash task ---------------------------------------------------------------------------------

def test_legacy_bash_output_files_vars_and_metrics() -> None:
    state, outputs, ctx = attempt("""
    type: io.kestra.core.tasks.scripts.Bash
    outputFiles: [first]
    outputsFiles: [second]
    inputFiles:
      script.sh: echo "from $(basename {{ workingDir }})"
    commands:
      - echo 1 >> {{ outputFiles.first }}
      - echo 2 >> {{ temp.second }}
      - /bin/sh script.sh
      - echo '::{"outputs":{"test":"value","int":2}}::'
      - echo '::{"metrics":[{"name":"count","type":"counter","value":1,"tags":{"tag1":"i"}}]}::'
""")
    assert state == states.SUCCESS
    assert outputs["vars"] == {"test": "value", "int": 2}
    assert sorted(outputs["outputFiles"]) == ["first", "second"] and outputs["files"] == outputs["outputFiles"]
    assert ctx.platform.read_file(outputs["outputFiles"]["first"]) == b"1\n"
    assert ctx.platform.read_file(outputs["outputFiles"]["second"]) == b"2\n"
    assert ("counter", "count", 1.0, {"tag1": "i"}) in ctx.metrics
    assert ctx.lines("INFO")[0].startswith("Running script with working directory: ")
    assert ctx.lines("INFO")[1].startswith("from celestra-script-")

    state, outputs, ctx = attempt("""
    type: io.kestra.core.tasks.scripts.Bash
    exitOnFailed: false
    commands: ["false", "echo continued", "exit 4"]
""")
    assert state == states.FAILED and outputs["exitCode"] == 4 and "continued" in ctx.lines("INFO")


def test_legacy_python_and_node_run_their_main_file() -> None:
    state, outputs, ctx = attempt("""
    type: io.kestra.core.tasks.scripts.Python
    args: ["--name", "ada"]
    inputFiles:
      main.py: |
        import sys
        from kestra import Kestra
        Kestra.outputs({"args": sys.argv[1:]})
""")
    assert state == states.SUCCESS, ctx.logs
    assert outputs["vars"] == {"args": ["--name", "ada"]}
    state, outputs, ctx = attempt("""
    type: io.kestra.core.tasks.scripts.Node
    inputFiles:
      main.js: |
        console.log('::' + JSON.stringify({outputs: {node: true}}) + '::')
""")
    assert state == states.SUCCESS and outputs["vars"] == {"node": True}


# --- through the runtime ----------------------------------------------------------------------------------

def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_output_files_round_trip_into_the_next_task(run_flow) -> None:
    execution = run_flow(f"""
id: {unique("files")}
namespace: company.scripts
tasks:
  - id: produce
    type: io.kestra.plugin.scripts.python.Script
    outputFiles: ["*.csv"]
    script: |
      with open("orders.csv", "w") as f:
          f.write("id,total\\n1,10\\n2,32\\n")
  - id: consume
    type: io.kestra.plugin.scripts.shell.Commands
    inputFiles:
      orders.csv: "{{{{ outputs.produce.outputFiles['orders.csv'] }}}}"
    commands:
      - total=$(awk -F, 'NR>1 {{s+=$2}} END {{print s}}' orders.csv)
      - echo "::{{\\"outputs\\":{{\\"total\\":$total}}}}::"
""")
    assert execution.state.current == states.SUCCESS
    consume = next(r for r in execution.task_runs if r.task_id == "consume")
    assert consume.outputs["vars"] == {"total": 42}
    produce = next(r for r in execution.task_runs if r.task_id == "produce")
    assert produce.outputs["outputFiles"]["orders.csv"].startswith("kestra:///company/scripts/")


def test_a_working_directory_shares_its_directory_with_script_tasks(run_flow) -> None:
    execution = run_flow(f"""
id: {unique("wd")}
namespace: company.scripts
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: write
        type: io.kestra.plugin.scripts.shell.Commands
        commands: ["echo shared > note.txt"]
      - id: read
        type: io.kestra.plugin.scripts.python.Script
        script: |
          from kestra import Kestra
          Kestra.outputs({{"note": open("note.txt").read().strip()}})
""")
    assert execution.state.current == states.SUCCESS
    read = next(r for r in execution.task_runs if r.task_id == "read")
    assert read.outputs["vars"] == {"note": "shared"}


def test_a_timeout_through_the_worker_leaves_no_process(run_flow) -> None:
    from flows_app.models import LogEntry

    execution = run_flow(f"""
id: {unique("timeout")}
namespace: company.scripts
tasks:
  - id: slow
    type: io.kestra.plugin.scripts.shell.Commands
    timeout: PT1S
    commands:
      - sleep 300 &
      - echo "pgid $(ps -o pgid= $$ | tr -d ' ')"
      - wait
""")
    assert execution.state.current == states.FAILED
    messages = list(LogEntry.objects.filter(execution_id=execution.id).values_list("message", flat=True))
    assert "Timeout after PT1S" in messages
    pgid = int(next(m for m in messages if m.startswith("pgid ")).split()[1])
    assert group_members(pgid) == []


def test_live_logs_are_visible_through_the_api_while_the_script_runs(runtime, transactional_db, tmp_path) -> None:
    from django.test import Client

    from flows_app.services import create_execution, deploy_flow, wait_for
    from orchestrator.runtime.flows import clear_cache

    sentinel = tmp_path / "go"
    clear_cache()
    deployed = deploy_flow(f"""
id: {unique("live")}
namespace: company.scripts
tasks:
  - id: long
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo "first line"
      - while [ ! -e {sentinel} ]; do sleep 0.05; done
      - echo "last line"
""")
    execution = create_execution(deployed.parsed.namespace, deployed.parsed.id, {})
    client = Client()

    def messages() -> list[str]:
        response = client.get(f"/api/v1/main/logs/{execution.id}")
        assert response.status_code == 200
        return [entry["message"] for entry in response.json()]

    # then: the first line is served while the script still waits for the sentinel
    wait_until(lambda: "first line" in messages(), message="the first line in the API")
    assert wait_for(execution.id, until=[states.RUNNING], timeout=5).state.current == states.RUNNING
    assert "last line" not in messages()
    sentinel.write_text("go")
    done = wait_for(execution.id, timeout=60)
    assert done.state.current == states.SUCCESS
    final = messages()
    assert final.count("first line") == 1 and final.count("last line") == 1


def test_blueprints_without_network_run_to_success(scripts_settings) -> None:
    from orchestrator.engine.memory import run

    scripts_settings["CONTAINER_FALLBACK"] = "process"
    for name, source in BLUEPRINTS.items():
        result = run(source)
        assert result.state == states.SUCCESS, (name, [(l.level, l.message) for l in result.logs])


def test_blueprints_that_need_the_network_validate(scripts_settings) -> None:
    scripts_settings["CONTAINER_FALLBACK"] = "process"
    for source in NETWORK_BLUEPRINTS.values():
        parse_flow(source)


#: flows from Kestra's plugin documentation and blueprints using script tasks and core plugins only
BLUEPRINTS = {
    "python_output_file": """
id: python_output_file
namespace: company.team
tasks:
  - id: python
    type: io.kestra.plugin.scripts.python.Script
    outputFiles:
      - "myfile.txt"
    script: |
      f = open("myfile.txt", "a")
      f.write("Hello from a Kestra task!")
      f.close()
""",
    "python_logs": """
id: python_logs
namespace: company.team
tasks:
  - id: python_logger
    type: io.kestra.plugin.scripts.python.Script
    allowFailure: true
    warningOnStdErr: false
    script: |
      import time
      from kestra import Kestra
      logger = Kestra.logger()
      logger.debug("DEBUG is used for diagnostic info.")
      time.sleep(0.1)
      logger.info("INFO confirms normal operation.")
      logger.warning("WARNING signals something unexpected.")
      logger.error("ERROR indicates a serious issue.")
      logger.critical("CRITICAL means a severe failure.")
""",
    "new_shell": """
id: new_shell
namespace: company.team
tasks:
  - id: shell
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    commands:
      - echo "Hello World"
""",
    "shell_script_outputs": """
id: shell_script_example
namespace: company.team
tasks:
  - id: http_download
    type: io.kestra.plugin.scripts.shell.Script
    containerImage: ubuntu
    outputFiles:
      - "*.txt"
    script: |
      echo "Hello" > first.txt
      echo '::{"outputs":{"test":"value","int":2,"bool":true,"float":3.65}}::'
  - id: use_output
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.http_download.vars.test }} {{ outputs.http_download.outputFiles['first.txt'] }}"
""",
    "node_script": """
id: node_script
namespace: company.team
tasks:
  - id: node_script
    type: io.kestra.plugin.scripts.node.Script
    script: |
      const data = { message: "Hello from Node.js" };
      console.log('::' + JSON.stringify({outputs: data}) + '::');
""",
    "python_commands_namespace_files": """
id: python_commands
namespace: company.team
tasks:
  - id: python
    type: io.kestra.plugin.scripts.python.Commands
    namespaceFiles:
      enabled: true
    inputFiles:
      main.py: |
        from kestra import Kestra
        Kestra.outputs({"ok": 1})
    taskRunner:
      type: io.kestra.plugin.scripts.runner.docker.Docker
    containerImage: ghcr.io/kestra-io/pydata:latest
    commands:
      - python main.py
""",
    "bash_set_outputs": """
id: bash_set_outputs
namespace: company.team
tasks:
  - id: bash
    type: io.kestra.core.tasks.scripts.Bash
    commands:
      - echo '::{"outputs":{"test":"value","int":2,"bool":true,"float":3.65}}::'
""",
    "bash_generate_files": """
id: bash_generate_files
namespace: company.team
tasks:
  - id: bash
    type: io.kestra.core.tasks.scripts.Bash
    outputFiles:
      - first
      - second
    commands:
      - echo "1" >> {{ outputFiles.first }}
      - echo "2" >> {{ outputFiles.second }}
""",
    "shell_input_output_files": """
id: new_shell_with_file
namespace: company.team
tasks:
  - id: make
    type: io.kestra.plugin.core.storage.Write
    content: "some data"
    extension: .txt
  - id: shell
    type: io.kestra.plugin.scripts.shell.Commands
    inputFiles:
      data.txt: "{{ outputs.make.uri }}"
    outputFiles:
      - out.txt
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    commands:
      - cp {{ workingDir }}/data.txt {{ workingDir }}/out.txt
""",
}

NETWORK_BLUEPRINTS = {
    "python_demo": """
id: python_demo
namespace: company.team
tasks:
  - id: python
    type: io.kestra.plugin.scripts.python.Script
    beforeCommands:
      - pip install requests
    script: |
      from kestra import Kestra
      import requests
      response = requests.get('https://kestra.io')
      print(response.status_code)
      Kestra.outputs({'status': response.status_code, 'text': response.text})
""",
    "pass_data_between_tasks": """
id: pass_data_between_tasks
namespace: company.team
tasks:
  - id: download
    type: io.kestra.plugin.core.http.Download
    uri: https://huggingface.co/datasets/kestra/datasets/raw/main/csv/orders.csv
  - id: python
    type: io.kestra.plugin.scripts.python.Script
    script: |
      with open('{{ outputs.download.uri }}', 'r') as f:
        print(f.read())
""",
    "python_outputs": """
id: python_outputs
namespace: company.team
tasks:
  - id: clean_dataset
    type: io.kestra.plugin.scripts.python.Script
    containerImage: ghcr.io/kestra-io/pydata:latest
    outputFiles:
      - "clean_dataset.csv"
    script: |
      import pandas as pd
      df = pd.read_csv("https://huggingface.co/datasets/kestra/datasets/raw/main/csv/messy_dataset.csv")
      df.to_csv("clean_dataset.csv", index=False)
  - id: read_file_from_python
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    commands:
      - head -n 10 {{ outputs.clean_dataset.outputFiles['clean_dataset.csv'] }}
""",
    "before_commands_example": """
id: before_commands_example
namespace: company.team
inputs:
  - id: url
    type: URI
    defaults: https://jsonplaceholder.typicode.com/todos/1
tasks:
  - id: transform
    type: io.kestra.plugin.scripts.python.Script
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    beforeCommands:
      - pip install kestra requests --break-system-packages
    script: |
      import requests
      from kestra import Kestra
      url = "{{ inputs.url }}"
      response = requests.get(url)
      print('Status Code:', response.status_code)
      Kestra.outputs(response.json())
""",
    "python_dependencies": """
id: python_dependencies
namespace: company.team
tasks:
  - id: python
    type: io.kestra.plugin.scripts.python.Script
    containerImage: python:3.13-slim
    dependencies:
      - pandas
      - kestra
    script: |
      import pandas as pd
      print(pd.__version__)
""",
    "bash_run_php_code": """
id: bash_run_php_code
namespace: company.team
tasks:
  - id: bash
    type: io.kestra.core.tasks.scripts.Bash
    runner: DOCKER
    dockerOptions:
      image: php
    commands:
      - php -r 'print(phpversion() . "\\n");'
""",
}


def test_the_example_flows_run_to_success() -> None:
    from orchestrator.engine.memory import run

    root = Path(__file__).resolve().parents[2] / "flows"
    expected = {"scripts_python.yaml": ("report", "5 orders, 150 in total"),
                "scripts_shell.yaml": ("show", "9 words on 2 lines"),
                "scripts_node.yaml": ("log", "The 20th Fibonacci number is 4181")}
    for name, (task_id, message) in expected.items():
        result = run((root / name).read_text())
        assert result.state == states.SUCCESS, (name, [(l.level, l.message) for l in result.logs])
        assert any(l.task_id == task_id and l.message.startswith(message) for l in result.logs), name


def test_the_worker_context_kill_flag_stops_the_script(transactional_db) -> None:
    from flows_app.models import LogEntry
    from orchestrator.runtime.worker import WorkerRunContext

    # given: a worker's run context for one attempt (its lines are published to the database as they come)
    ctx = WorkerRunContext({"task_id": "task", "taskrun_id": "run1", "execution_id": "exec1", "namespace": NS,
                            "flow_id": "flow", "attempt": 1,
                            "context": {"flow": {"id": "flow", "namespace": NS}, "taskrun": {"id": "run1"}}}, None)
    parsed = task(SLEEPER)
    done: list[tuple[str, Any]] = []

    def messages() -> list[str]:
        published = list(LogEntry.objects.filter(execution_id="exec1").values_list("message", flat=True))
        return published + [line["message"] for line in list(ctx.logs)]

    runner = threading.Thread(target=lambda: done.append(run_attempt(parsed, ctx)))
    runner.start()
    # when: the script runs, and the attempt's kill flag is set
    wait_until(lambda: any(m.startswith("pgid ") for m in messages()) or done, message="script started")
    ctx.killed.set()
    runner.join(30)
    # then: the attempt is killed and its process group is gone
    assert done and done[0][0] == states.FAILED
    assert "Task attempt killed: Killed" in messages()
    pgid = int(next(m for m in messages() if m.startswith("pgid ")).split()[1])
    assert group_members(pgid) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_scripts_run_as_the_configured_user(scripts_settings) -> None:
    import pwd

    scripts_settings["RUN_AS"] = "nobody"
    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.shell.Commands
    outputFiles: [who.txt]
    commands:
      - id -u > who.txt
      - cat who.txt
""")
    assert state == states.SUCCESS, ctx.logs
    assert ctx.lines("INFO") == [str(pwd.getpwnam("nobody").pw_uid)]


def test_python_scripts_read_rendered_booleans_and_null_and_an_activated_venv_wins(tmp_path) -> None:
    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.python.Script
    script: |
      from kestra import Kestra
      Kestra.outputs({"flag": {{ flow.id == 'flow' }}, "other": {{ false }}, "nothing": null})
""")
    assert state == states.SUCCESS, ctx.logs
    assert outputs["vars"] == {"flag": True, "other": False, "nothing": None}
    state, outputs, ctx = attempt(f"""
    type: io.kestra.plugin.scripts.python.Script
    beforeCommands:
      - python -m venv {tmp_path}/venv
      - . {tmp_path}/venv/bin/activate
    script: |
      import sys
      print(sys.prefix)
""")
    assert state == states.SUCCESS, ctx.logs
    assert ctx.lines("INFO") == [f"{tmp_path}/venv"]


def test_two_tasks_building_the_same_dependencies_at_once_install_them_once(scripts_settings, tmp_path) -> None:
    # given: an empty cache, and two attempts asking for the same set at the same moment
    scripts_settings["CACHE_DIR"] = str(tmp_path / "cache")
    body = """
    type: io.kestra.plugin.scripts.python.Script
    dependencies: ["termcolor==3.3.0"]
    script: |
      import termcolor
      print(termcolor.__file__)
"""
    results: list[tuple[str, Any, Ctx]] = []
    start = threading.Barrier(2)
    parsed = task(body)

    def one() -> None:
        ctx = Ctx()
        start.wait()
        state, outputs = run_attempt(parsed, ctx)
        results.append((state, outputs, ctx))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    # then: both ran with the same installed package, built once
    assert [r[0] for r in results] == [states.SUCCESS, states.SUCCESS], [r[2].logs for r in results]
    paths = {r[2].lines("INFO")[-1] for r in results}
    assert len(paths) == 1
    metrics = sorted(m[1] for r in results for m in r[2].metrics)
    assert metrics == ["dependencies.cache.hit", "dependencies.cache.miss"]
    deps = Path(scripts_settings["CACHE_DIR"]) / "python-deps"
    assert [p.name for p in deps.iterdir() if not p.name.endswith(".lock")] == [Path(paths.pop()).parents[1].name]


def test_the_deprecated_output_directory_uploads_what_is_written_there() -> None:
    state, outputs, ctx = attempt("""
    type: io.kestra.plugin.scripts.shell.Commands
    outputDirectory: true
    commands:
      - mkdir -p {{ outputDir }}/nested
      - echo a > {{ outputDir }}/a.txt
      - echo b > "$OUTPUT_DIR/nested/b.txt"
""")
    assert state == states.SUCCESS, ctx.logs
    assert sorted(outputs["outputFiles"]) == ["a.txt", "nested/b.txt"]
    assert ctx.platform.read_file(outputs["outputFiles"]["nested/b.txt"]) == b"b\n"
