"""``taskCache``: a task's state and outputs reused for its ttl, keyed by the flow, the task as rendered
and the task run's value; failed tasks are not cached (real shell subprocesses, real workers)."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from flows_app import models
from orchestrator.engine import states
from orchestrator.engine.parser import parse_flow
from orchestrator.engine.task_cache import cache_key, value_key

FLOW = """id: {flow_id}
namespace: company.cache
inputs:
  - id: key
    type: STRING
tasks:
  - id: stamp
    type: io.kestra.plugin.scripts.shell.Commands
    taskCache:
      enabled: true
      ttl: PT1H
    commands:
      - test "{{{{ inputs.key }}}}" != fail
      - 'echo "::{{\\"outputs\\":{{\\"nonce\\":\\"$(cat /proc/sys/kernel/random/uuid)\\"}}}}::"'
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.stamp.vars.nonce }}}}"
"""


def deploy() -> str:
    flow_id = f"cache-{uuid.uuid4().hex[:8]}"
    return FLOW.format(flow_id=flow_id)


def nonce(execution) -> str:
    run = next(r for r in execution.task_runs if r.task_id == "stamp")
    return run.outputs["vars"]["nonce"]


def messages(execution_id: str, task_id: str = "stamp") -> list[str]:
    return [e.message for e in models.LogEntry.objects.filter(execution_id=execution_id, task_id=task_id)]


def test_the_same_key_reuses_the_outputs_until_the_ttl_expires(run_flow):
    source = deploy()

    first = run_flow(source, {"key": "a"})
    second = run_flow(source, {"key": "a"})
    other = run_flow(source, {"key": "b"})

    assert [first.state.current, second.state.current, other.state.current] == [states.SUCCESS] * 3
    assert nonce(second) == nonce(first)
    assert "Skipping task execution for task 'stamp' as there is an existing cache entry for it" in messages(second.id)
    assert "Uploading a cache entry for task 'stamp'" in messages(first.id)
    # the next task sees the reused outputs
    assert next(r for r in second.task_runs if r.task_id == "after").outputs["value"] == nonce(first)
    # other rendered properties: another key, the task runs
    assert nonce(other) != nonce(first)
    assert not any(m.startswith("Skipping") for m in messages(other.id))
    flow_id = first.flow_id
    assert models.TaskCacheEntry.objects.filter(flow_id=flow_id).count() == 2

    # past its ttl the entry is dropped and the task runs again
    models.TaskCacheEntry.objects.filter(flow_id=flow_id).update(
        created=models.TaskCacheEntry.objects.get(flow_id=flow_id, execution_id=first.id).created - timedelta(hours=2))
    expired = run_flow(source, {"key": "a"})
    assert expired.state.current == states.SUCCESS
    assert nonce(expired) != nonce(first)
    assert models.TaskCacheEntry.objects.get(flow_id=flow_id, execution_id=expired.id)


def test_a_failed_task_is_not_cached(run_flow):
    source = deploy()

    first = run_flow(source, {"key": "fail"})
    second = run_flow(source, {"key": "fail"})

    assert first.state.current == second.state.current == states.FAILED
    assert not models.TaskCacheEntry.objects.filter(flow_id=first.flow_id).exists()
    assert not any(m.startswith("Skipping") for m in messages(second.id))


def test_a_task_without_task_cache_never_reads_the_cache(run_flow):
    source = deploy().replace("    taskCache:\n      enabled: true\n      ttl: PT1H\n", "")

    first = run_flow(source, {"key": "a"})
    second = run_flow(source, {"key": "a"})

    assert nonce(first) != nonce(second)
    assert not models.TaskCacheEntry.objects.filter(flow_id=first.flow_id).exists()


class _Ctx:
    """A run context's rendering surface (the engine's own renderer)."""

    def __init__(self, variables):
        from orchestrator.engine import expressions

        self.variables = variables
        self.lines: list[str] = []
        self._render = expressions.render

    def render(self, value):
        return self._render(value, self.variables)

    def log(self, level, message):
        self.lines.append(f"{level} {message}")


@pytest.mark.parametrize("change, same", [
    ({"inputs": {"key": "a"}, "workingDir": "/tmp/other"}, True),
    ({"inputs": {"key": "b"}}, False),
])
def test_the_key_is_the_rendered_task_and_not_its_directory(change, same):
    task = parse_flow(deploy()).find_task("stamp")
    base = cache_key(task, _Ctx({"inputs": {"key": "a"}, "workingDir": "/tmp/one"}))

    assert base is not None and len(base) == 64
    assert (cache_key(task, _Ctx(change)) == base) is same


def test_a_key_that_does_not_render_disables_the_cache_with_an_error():
    task = parse_flow(deploy()).find_task("stamp")
    ctx = _Ctx({})

    assert cache_key(task, ctx) is None
    assert ctx.lines and ctx.lines[0].startswith("ERROR Unable to create the cache key for the task 'stamp'")


def test_each_value_of_a_loop_caches_apart():
    assert value_key({"context": {"taskrun": {}}}) == ""
    assert value_key({"context": {"taskrun": {"value": "x"}}}) != value_key({"context": {"taskrun": {"value": "y"}}})
