"""Kestra 2.0's ``io.kestra.plugin.core.flow.Loop`` in the in-memory runner."""
from __future__ import annotations

import textwrap

import pytest

from orchestrator.engine import memory, states
from orchestrator.engine.flow import FlowValidationError, parse_flow


def flow(tasks: str) -> str:
    return "id: loop\nnamespace: tests\ntasks:\n" + textwrap.indent(textwrap.dedent(tasks), "  ")


def messages(run, task_id):
    return [line.message for line in run.logs if line.task_id == task_id]


def test_loop_runs_its_tasks_once_per_value_in_order_with_the_item_variable():
    run = memory.run(flow("""
        - id: loop
          type: io.kestra.plugin.core.flow.Loop
          values: ["a", "b", "a"]
          tasks:
            - id: log
              type: io.kestra.plugin.core.log.Log
              message: "index={{ item.index }} value={{ item.value }}"
    """))
    assert run.state == states.SUCCESS, [(l.task_id, l.message) for l in run.logs]
    # values are not deduplicated, unlike ForEach
    assert messages(run, "log") == ["index=0 value=a", "index=1 value=b", "index=2 value=a"]
    outputs = run.run("loop").outputs
    assert outputs["iterationCount"] == 3
    assert outputs["terminatedIterations"] == 3
    assert outputs["runningIterations"] == 0


def test_loop_over_a_map_sets_item_key_and_a_json_string_of_values():
    run = memory.run(flow("""
        - id: loop
          type: io.kestra.plugin.core.flow.Loop
          values: '{"x": 1, "y": {"n": 2}}'
          tasks:
            - id: log
              type: io.kestra.plugin.core.log.Log
              message: "{{ item.key }}={{ item.value }}"
    """))
    assert run.state == states.SUCCESS
    assert messages(run, "log") == ["x=1", 'y={"n":2}']


def test_nested_loops_see_their_parents_and_siblings_of_the_same_iteration():
    run = memory.run(flow("""
        - id: outer
          type: io.kestra.plugin.core.flow.Loop
          values: [b1, b2]
          tasks:
            - id: inner
              type: io.kestra.plugin.core.flow.Loop
              values: [2025, 2026]
              tasks:
                - id: ret
                  type: io.kestra.plugin.core.debug.Return
                  format: "{{ item.parent.value }}-{{ item.value }}"
                - id: log
                  type: io.kestra.plugin.core.log.Log
                  message: "{{ outputs.ret.value }} {{ item.parents[0].index }}"
    """))
    assert run.state == states.SUCCESS, [(l.task_id, l.message) for l in run.logs]
    assert messages(run, "log") == ["b1-2025 0", "b1-2026 0", "b2-2025 1", "b2-2026 1"]


def test_declared_outputs_are_collected_per_iteration():
    run = memory.run(flow("""
        - id: loop
          type: io.kestra.plugin.core.flow.Loop
          values: [1, 2, 3]
          concurrencyLimit: 0
          outputs:
            - id: squared
              type: INT
              value: "{{ outputs.calc.value }}"
          tasks:
            - id: calc
              type: io.kestra.plugin.core.debug.Return
              format: "{{ item.value }}{{ item.value }}"  # item.value is text
        - id: after
          type: io.kestra.plugin.core.log.Log
          message: "{{ outputs.loop.outputs | length }} {{ outputs.loop.outputs[2].outputs.squared }}"
    """))
    assert run.state == states.SUCCESS, [(l.task_id, l.message) for l in run.logs]
    entries = run.run("loop").outputs["outputs"]
    assert [e["outputs"]["squared"] for e in entries] == [11, 22, 33]
    assert entries[1]["item"] == {"value": "2", "iteration": 2}
    assert messages(run, "after") == ["3 33"]


def test_a_failed_iteration_fails_the_loop_and_stops_it_with_errors_run_in_that_iteration():
    run = memory.run(flow("""
        - id: loop
          type: io.kestra.plugin.core.flow.Loop
          values: [ok, boom, ok2]
          tasks:
            - id: maybe
              type: io.kestra.plugin.core.execution.Fail
              condition: "{{ item.value == 'boom' }}"
          errors:
            - id: handle
              type: io.kestra.plugin.core.log.Log
              message: "failed {{ item.index }}"
          finally:
            - id: cleanup
              type: io.kestra.plugin.core.log.Log
              message: done
    """))
    assert run.state == states.FAILED
    assert run.run("loop").state.current == states.FAILED
    assert messages(run, "handle") == ["failed 1"]
    assert messages(run, "cleanup") == ["done"]
    assert len(run.runs("maybe")) == 2  # the third iteration never started


def test_transmit_failed_false_runs_every_iteration_and_the_loop_succeeds():
    run = memory.run(flow("""
        - id: loop
          type: io.kestra.plugin.core.flow.Loop
          values: [ok, boom, ok2]
          transmitFailed: false
          tasks:
            - id: maybe
              type: io.kestra.plugin.core.execution.Fail
              condition: "{{ item.value == 'boom' }}"
    """))
    assert run.run("loop").state.current == states.SUCCESS
    assert len(run.runs("maybe")) == 3


def test_concurrency_limit_bounds_the_iterations_in_flight():
    run = memory.run(flow("""
        - id: loop
          type: io.kestra.plugin.core.flow.Loop
          values: [1, 2, 3, 4]
          concurrencyLimit: 2
          tasks:
            - id: wait
              type: io.kestra.plugin.core.flow.Sleep
              duration: PT0S
    """))
    assert run.state == states.SUCCESS
    assert len(run.runs("wait")) == 4


def test_null_values_fail_the_loop_naming_values():
    run = memory.run(flow("""
        - id: loop
          type: io.kestra.plugin.core.flow.Loop
          values: "[1, null]"
          tasks:
            - id: log
              type: io.kestra.plugin.core.log.Log
              message: x
    """))
    assert run.state == states.FAILED
    assert any(m.startswith("values:") for m in messages(run, "loop"))


def test_an_unknown_loop_property_is_an_error_naming_it():
    with pytest.raises(FlowValidationError) as info:
        parse_flow(flow("""
            - id: loop
              type: io.kestra.plugin.core.flow.Loop
              values: [1]
              concurrency: 2
              tasks:
                - id: log
                  type: io.kestra.plugin.core.log.Log
                  message: x
        """))
    assert "concurrency" in str(info.value)


# --- when (2.0's runIf and checks.condition) ------------------------------------------------------

def test_when_skips_a_task_like_run_if():
    run = memory.run(flow("""
        - id: loop
          type: io.kestra.plugin.core.flow.Loop
          values: [1, 2, 3]
          tasks:
            - id: odd
              type: io.kestra.plugin.core.log.Log
              when: "{{ item.index != 1 }}"
              message: "{{ item.value }}"
        - id: legacy
          type: io.kestra.plugin.core.log.Log
          runIf: "false"
          message: never
    """))
    assert run.state == states.SUCCESS
    assert messages(run, "odd") == ["1", "3"]
    assert [r.state.current for r in run.runs("odd")] == [states.SUCCESS, states.SKIPPED, states.SUCCESS]
    assert run.run("legacy").state.current == states.SKIPPED


def test_when_and_run_if_on_one_task_is_an_error_naming_the_field_and_line():
    with pytest.raises(FlowValidationError) as info:
        parse_flow(flow("""
            - id: log
              type: io.kestra.plugin.core.log.Log
              runIf: "true"
              when: "true"
              message: x
        """))
    text = str(info.value)
    assert "log.when" in text and "runIf" in text
    assert [error.line for error in info.value.errors] == [8]


def test_checks_accept_when_and_refuse_both_spellings():
    parsed = parse_flow("id: c\nnamespace: tests\nchecks:\n  - when: \"{{ true }}\"\n    message: ok\n"
                        "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: x\n")
    assert parsed.checks[0]["condition"] == "{{ true }}"
    with pytest.raises(FlowValidationError) as info:
        parse_flow("id: c\nnamespace: tests\nchecks:\n  - when: a\n    condition: b\n    message: ok\n"
                   "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: x\n")
    assert "checks[0].when" in str(info.value) and "condition" in str(info.value)


# --- the 2.0 Flow trigger: dependsOn / window / mode -----------------------------------------------

TRIGGER_FLOW = """id: listener
namespace: tests
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: x
triggers:
  - id: after
    type: io.kestra.plugin.core.trigger.Flow
{body}"""


def trigger_of(body: str):
    return parse_flow(TRIGGER_FLOW.format(body=textwrap.indent(textwrap.dedent(body), "    "))).triggers[0]


def test_depends_on_with_mode_all_becomes_preconditions_with_its_window():
    trigger = trigger_of("""
        dependsOn:
          flows:
            - namespace: company.a
              flowId: extract
              states: [SUCCESS]
          namespaces:
            - namespace: company.b
              prefix: true
              states: [FAILED]
        window: PT2H
    """)
    pre = trigger.props["preconditions"]
    assert pre["id"] == "dependsOn"
    assert pre["flows"] == [{"namespace": "company.a", "flowId": "extract", "states": ["SUCCESS"]}]
    assert pre["timeWindow"] == {"type": "DURATION_WINDOW", "window": "PT2H"}
    assert pre["where"][0]["filters"] == [{"field": "NAMESPACE", "type": "STARTS_WITH", "value": "company.b"},
                                          {"field": "STATE", "type": "IN", "values": ["FAILED"]}]
    assert "dependsOn" not in trigger.props and "window" not in trigger.props


def test_depends_on_with_mode_any_holds_for_any_one_dependency_and_when_is_a_condition():
    from orchestrator.engine.conditions import ConditionContext, all_valid

    trigger = trigger_of("""
        dependsOn:
          flows:
            - namespace: company.a
              flowId: extract
              states: [SUCCESS]
          namespaces:
            - namespace: company.b
              prefix: true
              states: [FAILED]
        mode: ANY
        when: "{{ 1 == 1 }}"
    """)
    assert trigger.props.get("preconditions") is None
    assert trigger.props["states"] == ["FAILED", "SUCCESS"]
    assert trigger.conditions[0].props["expression"] == "{{ 1 == 1 }}"

    def holds(namespace: str, flow_id: str, state: str) -> bool:
        execution = {"namespace": namespace, "flowId": flow_id, "state": {"current": state}}
        ctx = ConditionContext(execution=execution, flow={"namespace": "tests", "id": "listener"})
        return all_valid(trigger.conditions, ctx, skip_multiple=True)

    assert holds("company.a", "extract", "SUCCESS")
    assert not holds("company.a", "extract", "FAILED")
    assert not holds("company.a", "other", "SUCCESS")
    assert holds("company.b.team", "any", "FAILED")
    assert not holds("other.company.b", "any", "FAILED")  # a prefix of the text, as ExecutionNamespace


@pytest.mark.parametrize("body, field", [
    ("dependsOn:\n  flows: [{namespace: a}]\npreconditions:\n  id: p\n  flows: [{namespace: a}]\n", "after.dependsOn"),
    ("window: PT1H\npreconditions:\n  id: p\n  flows: [{namespace: a}]\n", "after.window"),
    ("dependsOn: {}\n", "after.dependsOn"),
    ("dependsOn:\n  flows: [{namespace: a}]\nmode: ANY\nwindow: PT1H\n", "after.window"),
    ("dependsOn:\n  flows: [{namespace: a}]\nmode: SOME\n", "mode"),
])
def test_bad_2_0_trigger_forms_are_errors_naming_the_field(body, field):
    with pytest.raises(FlowValidationError) as info:
        trigger_of(body)
    assert field in str(info.value)
