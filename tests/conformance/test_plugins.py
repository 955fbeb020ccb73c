"""Kestra's test-only plugins: registered by the conformance package only, and behaving as Kestra's."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conformance import plugins
from orchestrator.engine import memory, states
from orchestrator.engine.flow import parse_flow
from orchestrator.engine.secrets_codec import ENCRYPTED_TYPE, decrypt, key_override

ROOT = Path(__file__).resolve().parents[2]
KEY = "I6EGNzRESu3X3pKZidrqCGOHQFUFC0yK"



@pytest.fixture(autouse=True)
def _test_only_plugins():
    """Registered while this module's tests run only: other tests see a production registry."""
    plugins.load()
    yield
    plugins.unload()


def flow(body: str) -> str:
    return "id: t\nnamespace: tests\n" + textwrap.dedent(body)


def runs_by_id(run: memory.MemoryRun) -> dict:
    return {r.task_id: r for r in run.execution.task_runs}


def test_a_production_registry_does_not_know_them():
    # a fresh interpreter that loads the built-in plugins only, as the server and workers do
    code = ("from orchestrator.engine.plugins import registered_types; "
            "import sys; names = registered_types(); "
            "sys.exit(1 if any(n.startswith(('io.kestra.core.tasks.test.', 'io.kestra.core.runners.')) "
            "for n in names) else 0)")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "orchestrator.settings"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def test_every_type_of_test_plugins_md_is_registered():
    assert set(plugins.types()) >= {
        "io.kestra.core.tasks.test.BadExecutable", "io.kestra.core.tasks.test.BadSequential",
        "io.kestra.core.tasks.test.DynamicTask", "io.kestra.core.tasks.test.Encrypted",
        "io.kestra.core.tasks.test.NullOutputTask", "io.kestra.core.tasks.test.Read",
        "io.kestra.core.runners.test.TaskThatFail", "io.kestra.core.runners.test.TaskWithAlias",
        "io.kestra.core.runners.test.task.Alias", "io.kestra.core.runners.test.TriggerWithAlias",
        "io.kestra.core.runners.test.trigger.Alias", "io.kestra.core.runners.test.WorkerTaskResultTooLarge",
        "io.kestra.core.runners.ListenersTestTask", "io.kestra.core.plugins.test.DeprecatedTask",
        "io.kestra.core.runners.PluginDefaultsCaseTest$DefaultSequential1",
        "io.kestra.core.runners.PluginDefaultsCaseTest$DefaultSequential2",
        "io.kestra.core.runners.PluginDefaultsCaseTest$DefaultSequential3",
    }


def test_bad_sequential_runs_its_children_then_fails():
    run = memory.run(flow("""
    tasks:
      - id: flowable
        type: io.kestra.core.tasks.test.BadSequential
        tasks:
          - id: log1
            type: io.kestra.plugin.core.log.Log
            message: Log 1
    """))
    by_id = runs_by_id(run)
    assert by_id["log1"].state.current == states.SUCCESS
    assert by_id["flowable"].state.current == states.FAILED
    assert run.execution.state.current == states.FAILED
    assert any(line.message == "BAM" for line in run.logs)


def test_default_sequentials_output_their_def_from_plugin_defaults():
    run = memory.run(flow("""
    pluginDefaults:
      - type: io.kestra.core.runners.PluginDefaultsCaseTest$DefaultSequential1
        values:
          def: "1"
    tasks:
      - id: first
        type: io.kestra.core.runners.PluginDefaultsCaseTest$DefaultSequential1
        tasks:
          - id: second
            type: io.kestra.core.runners.PluginDefaultsCaseTest$DefaultSequential2
            def: "{{ 1 + 1 }}"
            tasks:
              - id: ok
                type: io.kestra.plugin.core.debug.Return
                format: x
    """))
    by_id = runs_by_id(run)
    assert run.execution.state.current == states.SUCCESS
    assert by_id["first"].outputs == {"def": "1"}
    assert by_id["second"].outputs == {"def": "2"}


def test_task_that_fail_keeps_its_outputs():
    run = memory.run(flow("""
    tasks:
      - id: exception
        type: io.kestra.core.runners.test.TaskThatFail
        message: Oh no!
    """))
    task_run = runs_by_id(run)["exception"]
    assert task_run.state.current == states.FAILED
    assert task_run.outputs == {"message": "Oh no!"}
    assert any(line.message == "An exception occurs" for line in run.logs)


def test_null_output_keeps_the_null_value():
    run = memory.run(flow("""
    tasks:
      - id: n
        type: io.kestra.core.tasks.test.NullOutputTask
    """))
    assert runs_by_id(run)["n"].outputs == {"value": None}


def test_alias_task_logs_under_both_names():
    run = memory.run(flow("""
    tasks:
      - id: origin
        type: io.kestra.core.runners.test.TaskWithAlias
        message: I'm the original task
      - id: alias
        type: io.kestra.core.runners.test.task.Alias
        message: I'm an alias
    """))
    assert run.execution.state.current == states.SUCCESS
    messages = [line.message for line in run.logs]
    assert "I'm the original task" in messages and "I'm an alias" in messages


def test_alias_trigger_parses_and_never_fires():
    from conformance.plugins.runners_test import TriggerWithAlias

    parsed = parse_flow(flow("""
    triggers:
      - id: alias
        type: io.kestra.core.runners.test.trigger.Alias
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: Hello World
    """))
    trigger = parsed.triggers[0]
    assert trigger.plugin is TriggerWithAlias
    assert TriggerWithAlias(trigger).evaluate(None) is None


@pytest.mark.parametrize("key", [KEY, None])
def test_encrypted_outputs_an_encrypted_string(key):
    with key_override(key):
        run = memory.run(flow("""
        tasks:
          - id: hello
            type: io.kestra.core.tasks.test.Encrypted
            format: Hello World
        """))
        value = runs_by_id(run)["hello"].outputs["value"]
        assert value["type"] == ENCRYPTED_TYPE
        if key is None:
            assert value["value"] == "Hello World"  # no key configured: the plain text
        else:
            assert value["value"] != "Hello World" and decrypt(value["value"]) == "Hello World"


def test_worker_task_result_too_large():
    run = memory.run(flow("""
    tasks:
      - id: big
        type: io.kestra.core.runners.test.WorkerTaskResultTooLarge
    """))
    assert runs_by_id(run)["big"].outputs["value"] == "a" * 1_100_000


@pytest.mark.parametrize("fail, state", [(False, states.SUCCESS), (True, states.FAILED)])
def test_dynamic_task_adds_a_task_run_under_its_own(fail, state):
    run = memory.run(flow(f"""
    tasks:
      - id: dynamic
        type: io.kestra.core.tasks.test.DynamicTask
        fail: {str(fail).lower()}
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: End log
    """))
    own = runs_by_id(run)["dynamic"]
    added = [r for r in run.execution.task_runs if r.parent_task_run_id == own.id]
    assert len(added) == 1
    assert (added[0].value, added[0].state.current) == (own.id, state)
    assert own.state.current == state
    assert run.execution.state.current == state
    assert len(run.execution.task_runs) == (2 if fail else 3)


def test_read_reads_inside_the_working_directory_only(tmp_path):
    from conformance.plugins.tasks_test import Read
    from orchestrator.engine.errors import TaskFailure

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "1.txt").write_text("first", encoding="utf-8")

    class Context:
        working_dir = str(tmp_path)

        def render_string(self, value):
            return str(value)

    parsed = parse_flow(flow("""
    tasks:
      - id: r
        type: io.kestra.core.tasks.test.Read
        path: /a/1.txt
    """))
    assert Read(parsed.tasks[0]).run(Context()) == {"value": "first"}
    parsed.tasks[0].props["path"] = "/missing.txt"
    with pytest.raises(TaskFailure, match="No such file"):
        Read(parsed.tasks[0]).run(Context())
    parsed.tasks[0].props["path"] = "../../etc/passwd"
    with pytest.raises(TaskFailure, match="outside the working directory"):
        Read(parsed.tasks[0]).run(Context())


def test_deprecated_task_paths():
    parsed = parse_flow(flow("""
    tasks:
      - id: a
        type: io.kestra.plugin.core.log.Log
        message: x
      - id: b
        type: io.kestra.core.plugins.test.DeprecatedTask
        additionalProperty: value
    """))
    assert parsed.deprecated_paths[:2] == ["tasks[1]", "tasks[1].additionalProperty"]
