"""Kestra 2.0 flows through Django and real Celery workers: Loop, when, the dependsOn Flow trigger."""
from __future__ import annotations

import textwrap
import uuid

from flows_app import models
from orchestrator.engine import states


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def source(flow_id: str, body: str) -> str:
    return f"id: {flow_id}\nnamespace: company.kestra2\n" + textwrap.dedent(body)


def messages(execution_id: str, task_id: str) -> list[str]:
    return [e.message for e in models.LogEntry.objects.filter(execution_id=execution_id, task_id=task_id)
            .order_by("timestamp", "id")]


def test_a_2_0_flow_with_loop_and_when_runs_on_workers(run_flow):
    execution = run_flow(source(unique("loop"), """
    tasks:
      - id: loop
        type: io.kestra.plugin.core.flow.Loop
        values: ["a", "b", "c"]
        concurrencyLimit: 2
        outputs:
          - id: upper
            type: STRING
            value: "{{ outputs.ret.value }}"
        tasks:
          - id: ret
            type: io.kestra.plugin.core.debug.Return
            format: "{{ item.value | upper }}"
          - id: log
            type: io.kestra.plugin.core.log.Log
            when: "{{ item.value != 'b' }}"
            message: "{{ item.index }}:{{ outputs.ret.value }}"
      - id: total
        type: io.kestra.plugin.core.log.Log
        message: "{{ outputs.loop.iterationCount }} {{ outputs.loop.outputs | length }}"
    """))
    assert execution.state.current == states.SUCCESS
    assert sorted(messages(execution.id, "log")) == ["0:A", "2:C"]
    assert messages(execution.id, "total") == ["3 3"]
    skipped = [r for r in execution.task_runs if r.task_id == "log" and r.state.current == states.SKIPPED]
    assert len(skipped) == 1
    loop = next(r for r in execution.task_runs if r.task_id == "loop")
    assert [entry["outputs"]["upper"] for entry in loop.outputs["outputs"]] == ["A", "B", "C"]
