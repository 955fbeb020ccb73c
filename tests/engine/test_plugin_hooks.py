"""Behaviour a plugin class brings to the executor: a state resolution that fails, a Subflow result
it refuses, deprecated properties, dynamic task runs."""
from __future__ import annotations

import textwrap
from typing import Any, Optional

from orchestrator.engine import memory, states
from orchestrator.engine.executor import Environment, apply_subflow_result, decide
from orchestrator.engine.expressions import is_truthy, render
from orchestrator.engine.flow import parse_flow
from orchestrator.engine.model import Execution
from orchestrator.engine.plugins import register
from orchestrator.plugins.core._common import CorePlugin, Props, Text
from orchestrator.plugins.core.flow import Sequential, Subflow

PREFIX = "tests.engine.hooks."


@register
class ResolvingSequential(Sequential):
    type = PREFIX + "ResolvingSequential"
    aliases = ()

    class Props(Props):
        refuse: bool = False

    @classmethod
    def resolve_state(cls, task: Any, state: str) -> str:
        if task.props.get("refuse"):
            raise RuntimeError("cannot resolve")
        return state


@register
class RefusingSubflow(Subflow):
    type = PREFIX + "RefusingSubflow"
    aliases = ()

    @classmethod
    def subflow_execution_result(cls, task: Any, result: dict[str, Any]) -> None:
        raise RuntimeError("no result")


@register
class WithDeprecatedProp(CorePlugin):
    type = PREFIX + "WithDeprecatedProp"
    deprecated_props = frozenset({"old"})

    class Props(Props):
        old: Optional[Text] = None
        new: Optional[Text] = None


def flow(body: str) -> str:
    return "id: t\nnamespace: tests\n" + textwrap.dedent(body)


def test_a_failing_resolve_state_fails_the_flowable_and_the_execution():
    # given
    source = flow(f"""
    tasks:
      - id: seq
        type: {PREFIX}ResolvingSequential
        refuse: true
        tasks:
          - id: a
            type: io.kestra.plugin.core.log.Log
            message: hello
    """)
    # when
    run = memory.run(source)
    # then
    by_id = {r.task_id: r for r in run.execution.task_runs}
    assert by_id["a"].state.current == states.SUCCESS
    assert by_id["seq"].state.current == states.FAILED
    assert run.execution.state.current == states.FAILED
    assert any("cannot resolve" in line.message for line in run.logs)


def test_a_subflow_class_that_refuses_the_child_result_fails_its_task_run():
    # given
    parsed = parse_flow(flow(f"""
    tasks:
      - id: call
        type: {PREFIX}RefusingSubflow
        namespace: tests
        flowId: child
    """))
    execution = Execution.create(parsed.namespace, parsed.id, 1)
    env = Environment(render=render, extras={}, is_truthy=is_truthy)
    decision = decide(parsed, execution, env)
    assert [request.flow_id for request in decision.subflows] == ["child"]
    run_id = decision.subflows[0].taskrun_id
    # when: the child ended well
    run = apply_subflow_result(parsed, execution, {"subflow_taskrun_id": run_id, "execution_id": "child-1",
                                                   "state": states.SUCCESS, "outputs": None})
    # then
    assert run is not None and run.state.current == states.FAILED
    assert run.outputs == {"executionId": "child-1"}


def test_deprecated_properties_are_listed_with_their_path():
    parsed = parse_flow(flow(f"""
    tasks:
      - id: a
        type: {PREFIX}WithDeprecatedProp
        old: x
      - id: b
        type: {PREFIX}WithDeprecatedProp
        new: y
    """))
    assert parsed.deprecated_paths == ["tasks[0].old"]


def test_a_worker_result_may_add_dynamic_task_runs_under_its_run():
    # given: a Log task run whose result carries one extra (dynamic) task run
    from orchestrator.engine.attempt import dynamic_task_run
    from orchestrator.engine.executor import apply_result

    parsed = parse_flow(flow("""
    tasks:
      - id: a
        type: io.kestra.plugin.core.log.Log
        message: hi
    """))
    execution = Execution.create(parsed.namespace, parsed.id, 1)
    env = Environment(render=render, extras={}, is_truthy=is_truthy)
    job = decide(parsed, execution, env).jobs[0]
    added = dynamic_task_run(value=job.taskrun_id, state=states.FAILED)
    result = {"taskrun_id": job.taskrun_id, "attempt": 1, "state": states.SUCCESS, "outputs": None,
              "dynamic_task_runs": [added]}
    # when: the result is applied twice (a duplicate delivery)
    apply_result(parsed, execution, result)
    apply_result(parsed, execution, result)
    decide(parsed, execution, env)
    # then: one child run, terminated, never driven; the execution ends on its own tasks' states
    children = [r for r in execution.task_runs if r.parent_task_run_id == job.taskrun_id]
    assert [(r.id, r.value, r.state.current) for r in children] == [(added["id"], job.taskrun_id, states.FAILED)]
    assert execution.state.current == states.SUCCESS
