"""Flow SLAs (spec §10.11) through the running executor."""
from __future__ import annotations

import textwrap
import uuid
from types import SimpleNamespace

import pytest

from flows_app import models
from orchestrator.engine import states
from orchestrator.engine.executor import Decision
from orchestrator.engine.model import Execution
from orchestrator.runtime.sla import check_sla


def source(body: str) -> str:
    return f"id: sla-{uuid.uuid4().hex[:8]}\nnamespace: company.sla\n" + textwrap.dedent(body)


def logs(execution_id: str) -> list[tuple[str, str]]:
    return [(e.level, e.message) for e in models.LogEntry.objects.filter(execution_id=execution_id)]


SLEEPY = """
sla:
  - id: maxDuration
    type: MAX_DURATION
    behavior: {behavior}
    duration: {duration}
    labels:
      sla: late
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: {sleep}
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: done
"""


def test_max_duration_fail_fails_the_running_task_and_the_execution(run_flow):
    execution = run_flow(source(SLEEPY.format(behavior="FAIL", duration="PT0.5S", sleep="PT3S")), timeout=20)
    assert execution.state.current == states.FAILED
    sleep = next(r for r in execution.task_runs if r.task_id == "sleep")
    assert sleep.state.current == states.FAILED
    assert not any(r.task_id == "after" for r in execution.task_runs)
    messages = logs(execution.id)
    assert any(level == "WARN" and m.startswith("SLA 'maxDuration' violated: execution duration of")
               for level, m in messages)
    assert any(level == "ERROR" and m.startswith("Execution failed due to SLA 'maxDuration' violated")
               for level, m in messages)
    assert execution.labels_map()["sla"] == "late"


def test_max_duration_not_reached(run_flow):
    execution = run_flow(source(SLEEPY.format(behavior="FAIL", duration="PT10S", sleep="PT0.2S")))
    assert execution.state.current == states.SUCCESS
    assert "sla" not in execution.labels_map()


def test_max_duration_none_only_labels_once(run_flow):
    execution = run_flow(source(SLEEPY.format(behavior="NONE", duration="PT0.3S", sleep="PT1.5S")), timeout=20)
    assert execution.state.current == states.SUCCESS
    assert execution.labels_map()["sla"] == "late"
    assert sum(1 for _, m in logs(execution.id) if m.startswith("SLA 'maxDuration' violated")) == 1
    assert [label["key"] for label in execution.labels].count("sla") == 1


ASSERTION = """
inputs:
  - id: mode
    type: STRING
    defaults: PASS
sla:
  - id: cancel_it
    type: EXECUTION_ASSERTION
    behavior: CANCEL
    assert: "{{ inputs.mode != 'CANCEL' }}"
  - id: label_it
    type: EXECUTION_ASSERTION
    behavior: NONE
    assert: "{{ inputs.mode != 'LABEL' }}"
    labels:
      sla: violated
  - id: fail_it
    type: EXECUTION_ASSERTION
    behavior: FAIL
    assert: "{{ inputs.mode != 'FAIL' }}"
tasks:
  - id: return
    type: io.kestra.plugin.core.debug.Return
    format: ok
"""


@pytest.mark.parametrize("mode, final, label", [
    ("PASS", states.SUCCESS, None),
    ("CANCEL", states.CANCELLED, None),
    ("LABEL", states.SUCCESS, "violated"),
    ("FAIL", states.FAILED, None),
])
def test_execution_assertion(run_flow, mode, final, label):
    execution = run_flow(source(ASSERTION), {"mode": mode})
    assert execution.state.current == final
    assert execution.labels_map().get("sla") == label
    if final != states.SUCCESS:
        assert any(m.startswith("SLA '") and "assertion is false" in m for _, m in logs(execution.id))


def test_an_assertion_that_cannot_render_is_a_violation(run_flow):
    execution = run_flow(source("""
    sla:
      - id: broken
        type: EXECUTION_ASSERTION
        behavior: FAIL
        assert: "{{ nope.missing }}"
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: hi
    """))
    assert execution.state.current == states.FAILED
    assert any("could not be evaluated" in m for _, m in logs(execution.id))


def test_check_sla_never_raises():
    flow = SimpleNamespace(sla=[{"id": "x", "type": "MAX_DURATION", "behavior": "FAIL", "duration": "not a duration"}],
                           all_tasks=lambda: [], variables={})
    execution = Execution.create("company.sla", "f", 1)
    decision = Decision()
    check_sla(flow, execution, decision)  # the error is reported in the logs, not raised
    assert any("Ignoring SLA 'x'" in line.message for line in decision.logs)
    assert execution.state.current == states.CREATED
