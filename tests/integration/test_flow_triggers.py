"""Flow triggers (spec §7.4) through the running executor: conditions, preconditions, windows, states."""
from __future__ import annotations

import textwrap
import time
import uuid

import pytest

from flows_app import models
from flows_app.services import create_execution, deploy_flow, load_execution, wait_for
from orchestrator.engine import states
from orchestrator.runtime.flow_triggers import clear_registry, fire_flow_triggers
from orchestrator.runtime.flows import clear_cache


@pytest.fixture
def ns(runtime, transactional_db) -> str:
    """A namespace of its own per test: namespace conditions must not see other tests' executions."""
    clear_cache()
    clear_registry()
    return f"company.ft{uuid.uuid4().hex[:8]}"


def deploy(namespace: str, flow_id: str, body: str):
    return deploy_flow(f"id: {flow_id}\nnamespace: {namespace}\n" + textwrap.dedent(body))


def executions_of(namespace: str, flow_id: str) -> list[models.Execution]:
    return list(models.Execution.objects.filter(namespace=namespace, flow_id=flow_id).order_by("created", "id"))


def wait_executions(namespace: str, flow_id: str, count: int = 1, timeout: float = 20.0) -> list[str]:
    """Poll until ``count`` executions of the flow exist and are terminated."""
    deadline = time.monotonic() + timeout
    while True:
        rows = executions_of(namespace, flow_id)
        if len(rows) >= count and all(r.state in states.TERMINATED for r in rows):
            return [r.id for r in rows]
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(rows)} execution(s) of {flow_id} after {timeout}s: {[r.state for r in rows]}")
        time.sleep(0.05)


def evaluate_again(execution_id: str) -> list[str]:
    """The Flow-trigger evaluation of an ended execution, run here and now on the same data as the
    runtime's: a test asserts on what it creates instead of sleeping and seeing nothing."""
    return fire_flow_triggers(execution_id)


def wait_until(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen after {timeout}s: {what}")
        time.sleep(0.05)


def window_results(namespace: str, condition_id: str) -> dict | None:
    row = models.TriggerState.objects.filter(namespace=namespace, flow_id="listener",
                                             condition_id=condition_id).first()
    return None if row is None else row.results


def run(namespace: str, flow_id: str, **kwargs):
    execution = create_execution(namespace, flow_id, kwargs.pop("inputs", {}), **kwargs)
    return wait_for(execution.id, timeout=30)


UPSTREAM = """
labels:
  env: prod
outputs:
  - id: day
    type: STRING
    value: "{{ outputs.only.value }}"
tasks:
  - id: only
    type: io.kestra.plugin.core.debug.Return
    format: "2024-06-{{ inputs.day ?? '10' }}"
inputs:
  - id: day
    type: STRING
    required: false
"""


def test_listener_gets_trigger_variables_inputs_and_correlation_id(ns):
    deploy(ns, "upstream", UPSTREAM)
    deploy(ns, "listener", f"""
    inputs:
      - id: day
        type: STRING
      - id: task_value
        type: STRING
    labels:
      kind: listener
    tasks:
      - id: echo
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ inputs.day }}}} {{{{ inputs.task_value }}}} {{{{ trigger.state }}}}"
    triggers:
      - id: after
        type: io.kestra.plugin.core.trigger.Flow
        labels:
          from: "{{{{ trigger.flowId }}}}"
        inputs:
          day: "{{{{ trigger.outputs.day }}}}"
          task_value: "{{{{ outputs.only.value }}}}"
        conditions:
          - type: io.kestra.plugin.core.condition.ExecutionFlow
            namespace: {ns}
            flowId: upstream
          - type: io.kestra.plugin.core.condition.ExecutionStatus
            in: [SUCCESS]
    """)
    upstream = run(ns, "upstream", inputs={"day": "12"})
    (listener_id,) = wait_executions(ns, "listener")
    listener = load_execution(listener_id)
    assert listener.state.current == states.SUCCESS
    variables = listener.trigger["variables"]
    assert listener.trigger["id"] == "after" and listener.trigger["type"] == "io.kestra.plugin.core.trigger.Flow"
    assert variables["executionId"] == upstream.id
    assert (variables["namespace"], variables["flowId"], variables["flowRevision"]) == (ns, "upstream", 1)
    assert variables["state"] == "SUCCESS"
    assert variables["executionLabels"] == {"env": "prod"}
    assert variables["outputs"] == {"day": "2024-06-12"}
    assert listener.inputs == {"day": "2024-06-12", "task_value": "2024-06-12"}
    assert listener.task_runs[0].outputs == {"value": "2024-06-12 2024-06-12 SUCCESS"}
    labels = listener.labels_map()
    assert labels["kind"] == "listener" and labels["from"] == "upstream"
    assert labels["system.correlationId"] == upstream.labels_map()["system.correlationId"]


def test_conditions_not_met_create_nothing(ns):
    deploy(ns, "failing", """
    tasks:
      - id: fail
        type: io.kestra.plugin.core.execution.Fail
    """)
    deploy(ns, "listener", f"""
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: hi
    triggers:
      - id: after
        type: io.kestra.plugin.core.trigger.Flow
        conditions:
          - type: io.kestra.plugin.core.condition.ExecutionNamespace
            namespace: {ns}
          - type: io.kestra.plugin.core.condition.ExecutionStatus
            in: [SUCCESS]
    """)
    failing = run(ns, "failing")
    assert failing.state.current == states.FAILED
    assert evaluate_again(failing.id) == []
    assert executions_of(ns, "listener") == []


def test_a_flow_never_triggers_itself_and_missing_required_inputs_do_not_block(ns):
    deploy(ns, "upstream", UPSTREAM)
    deploy(ns, "listener", f"""
    inputs:
      - id: required_one
        type: STRING
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: hi
    triggers:
      - id: any_success
        type: io.kestra.plugin.core.trigger.Flow
        conditions:
          - type: io.kestra.plugin.core.condition.ExecutionNamespace
            namespace: {ns}
          - type: io.kestra.plugin.core.condition.ExecutionStatus
            in: [SUCCESS]
    """)
    run(ns, "upstream")
    (listener_id,) = wait_executions(ns, "listener")
    assert evaluate_again(listener_id) == []  # its own SUCCESS does not trigger it again
    assert len(executions_of(ns, "listener")) == 1
    assert load_execution(listener_id).state.current == states.SUCCESS


def test_default_states_are_terminal_ones(ns):
    deploy(ns, "upstream", UPSTREAM)
    deploy(ns, "failing", "tasks:\n  - id: fail\n    type: io.kestra.plugin.core.execution.Fail\n")
    deploy(ns, "listener", f"""
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: "{{{{ trigger.state }}}}"
    triggers:
      - id: any
        type: io.kestra.plugin.core.trigger.Flow
        conditions:
          - type: io.kestra.plugin.core.condition.ExecutionNamespace
            namespace: {ns}
            comparison: PREFIX
    """)
    run(ns, "upstream")
    run(ns, "failing")
    ids = wait_executions(ns, "listener", 2)
    assert sorted(load_execution(i).trigger["variables"]["state"] for i in ids) == ["FAILED", "SUCCESS"]


def test_states_include_non_terminal_transitions(ns):
    deploy(ns, "paused", """
    tasks:
      - id: pause
        type: io.kestra.plugin.core.flow.Pause
        delay: PT0.3S
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: resumed
    """)
    deploy(ns, "listener", f"""
    outputs:
      - id: status
        type: STRING
        value: "{{{{ trigger.state }}}}"
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: "{{{{ trigger.state }}}}"
    triggers:
      - id: every_state
        type: io.kestra.plugin.core.trigger.Flow
        states: [RUNNING, PAUSED, SUCCESS]
        conditions:
          - type: io.kestra.plugin.core.condition.ExecutionFlow
            namespace: {ns}
            flowId: paused
    """)
    assert run(ns, "paused").state.current == states.SUCCESS
    ids = wait_executions(ns, "listener", 4)
    assert [load_execution(i).outputs["status"] for i in ids] == ["RUNNING", "PAUSED", "RUNNING", "SUCCESS"]


PRECONDITIONS = """
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ trigger.outputs ?? 'none' }}}}"
triggers:
  - id: both
    type: io.kestra.plugin.core.trigger.Flow
    preconditions:
      id: both_done
      flows:
        - namespace: {ns}
          flowId: a
          states: [SUCCESS]
        - namespace: {ns}
          flowId: b
      where:
        - id: prod_only
          filters:
            - field: EXPRESSION
              type: IS_TRUE
              value: "{{{{ labels.env == 'prod' }}}}"
"""


def test_preconditions_wait_for_every_upstream_then_reset(ns):
    for flow_id in ("a", "b"):
        deploy(ns, flow_id, "labels:\n  env: prod\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n"
                            "    message: hi\n")
    deploy(ns, "listener", PRECONDITIONS.format(ns=ns))
    run(ns, "a")
    second_a = run(ns, "a")
    expected = {"condition_1": True, "condition_3_prod_only": True}
    wait_until(lambda: window_results(ns, "both_done") == expected, f"window {expected}")
    assert evaluate_again(second_a.id) == []
    assert executions_of(ns, "listener") == []
    run(ns, "b")
    wait_executions(ns, "listener", 1)
    assert not models.TriggerState.objects.filter(namespace=ns, condition_id="both_done").exists()  # reset
    second_b = run(ns, "b")
    assert evaluate_again(second_b.id) == []  # both are needed again
    assert len(executions_of(ns, "listener")) == 1


def test_preconditions_filters_keep_unmatched_executions_out(ns):
    deploy(ns, "a", "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
    deploy(ns, "b", "labels:\n  env: prod\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n"
                    "    message: hi\n")
    deploy(ns, "listener", PRECONDITIONS.format(ns=ns))
    run(ns, "a")  # no env label: the where filter cannot be evaluated (logged), the flows entry matches
    wait_until(lambda: window_results(ns, "both_done") == {"condition_1": True}, "window {condition_1: True}")
    wait_until(lambda: models.LogEntry.objects.filter(namespace=ns, flow_id="listener", level="WARN",
                                                      message__contains="condition_3_prod_only").exists(),
               "a WARN log naming condition_3_prod_only")
    run(ns, "b")  # b satisfies its flows entry and the filter: all three are met
    wait_executions(ns, "listener", 1)


def test_multiple_condition_without_reset_fires_on_each_new_match(ns):
    for flow_id in ("a", "b"):
        deploy(ns, flow_id, "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
    deploy(ns, "listener", f"""
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: hi
    triggers:
      - id: multiple
        type: io.kestra.plugin.core.trigger.Flow
        conditions:
          - type: io.kestra.plugin.core.condition.ExecutionStatus
            in: [SUCCESS]
          - id: ab
            type: io.kestra.plugin.core.condition.MultipleCondition
            resetOnSuccess: false
            timeWindow:
              type: SLIDING_WINDOW
              window: PT1H
            conditions:
              flow-a:
                type: io.kestra.plugin.core.condition.ExecutionFlow
                namespace: {ns}
                flowId: a
              flow-b:
                type: io.kestra.plugin.core.condition.ExecutionFlow
                namespace: {ns}
                flowId: b
    """)
    first_a = run(ns, "a")
    assert evaluate_again(first_a.id) == []
    assert executions_of(ns, "listener") == []
    run(ns, "b")
    wait_executions(ns, "listener", 1)
    run(ns, "a")
    wait_executions(ns, "listener", 2)


def test_disabled_trigger_state_and_stop_after(ns):
    deploy(ns, "upstream", UPSTREAM)
    deploy(ns, "listener", f"""
    tasks:
      - id: fail
        type: io.kestra.plugin.core.execution.Fail
    triggers:
      - id: after
        type: io.kestra.plugin.core.trigger.Flow
        stopAfter: [FAILED]
        conditions:
          - type: io.kestra.plugin.core.condition.ExecutionFlow
            namespace: {ns}
            flowId: upstream
    """)
    run(ns, "upstream")
    (first,) = wait_executions(ns, "listener")
    assert load_execution(first).state.current == states.FAILED
    state = models.TriggerState.objects.get(namespace=ns, flow_id="listener", trigger_id="after", condition_id="")
    deadline = time.monotonic() + 5
    while not state.disabled and time.monotonic() < deadline:
        time.sleep(0.05)
        state.refresh_from_db()
    assert state.disabled  # stopAfter: the listener's execution ended FAILED
    again = run(ns, "upstream")
    assert evaluate_again(again.id) == []  # the trigger is disabled
    assert len(executions_of(ns, "listener")) == 1


def test_evaluation_errors_never_raise(ns):
    assert fire_flow_triggers("does-not-exist") == []


def test_unrenderable_inputs_are_logged_and_create_nothing(ns):
    deploy(ns, "upstream", UPSTREAM)
    deploy(ns, "listener", f"""
    inputs:
      - id: x
        type: STRING
        required: false
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: hi
    triggers:
      - id: after
        type: io.kestra.plugin.core.trigger.Flow
        inputs:
          x: "{{{{ nope.missing }}}}"
        conditions:
          - type: io.kestra.plugin.core.condition.ExecutionFlow
            namespace: {ns}
            flowId: upstream
    """)
    run(ns, "upstream")
    wait_until(lambda: models.LogEntry.objects.filter(namespace=ns, flow_id="listener", trigger_id="after",
                                                      level="WARN").exists(), "a WARN log of trigger 'after'")
    assert executions_of(ns, "listener") == []
