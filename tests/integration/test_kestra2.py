"""Kestra 2.0 flows through Django and real Celery workers: Loop, when, the dependsOn Flow trigger."""
from __future__ import annotations

import textwrap
import uuid

import pytest

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


def _wait_executions(namespace: str, flow_id: str, count: int, timeout: float = 30.0) -> list[models.Execution]:
    import time

    deadline = time.monotonic() + timeout
    while True:
        rows = list(models.Execution.objects.filter(namespace=namespace, flow_id=flow_id).order_by("created", "id"))
        if len(rows) >= count and all(r.state in states.TERMINATED for r in rows):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(rows)} execution(s) of {flow_id} after {timeout}s: {[r.state for r in rows]}")
        time.sleep(0.05)


def test_a_2_0_flow_with_loop_when_and_a_depends_on_trigger_runs_after_its_upstreams(runtime, transactional_db):
    from flows_app.services import create_execution, deploy_flow, wait_for
    from orchestrator.runtime.flow_triggers import clear_registry
    from orchestrator.runtime.flows import clear_cache

    clear_cache()
    clear_registry()
    namespace = f"company.k2{uuid.uuid4().hex[:8]}"
    for upstream in ("extract", "load"):
        deploy_flow(f"id: {upstream}\nnamespace: {namespace}\ntasks:\n"
                    "  - id: ok\n    type: io.kestra.plugin.core.log.Log\n    message: done\n")
    deploy_flow(textwrap.dedent(f"""\
        id: report
        namespace: {namespace}
        tasks:
          - id: each
            type: io.kestra.plugin.core.flow.Loop
            values: [1, 2]
            tasks:
              - id: log
                type: io.kestra.plugin.core.log.Log
                when: "{{{{ item.index == 1 }}}}"
                message: "after {{{{ trigger.flowId }}}} {{{{ item.value }}}}"
        triggers:
          - id: both
            type: io.kestra.plugin.core.trigger.Flow
            dependsOn:
              flows:
                - namespace: {namespace}
                  flowId: extract
                  states: [SUCCESS]
                - namespace: {namespace}
                  flowId: load
                  states: [SUCCESS]
            window: PT1H
            mode: ALL
        """))
    deploy_flow(textwrap.dedent(f"""\
        id: alert
        namespace: {namespace}
        tasks:
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: "{{{{ trigger.flowId }}}}"
        triggers:
          - id: any
            type: io.kestra.plugin.core.trigger.Flow
            dependsOn:
              flows:
                - namespace: {namespace}
                  flowId: extract
                - namespace: {namespace}
                  flowId: load
            mode: ANY
        """))
    # given: one upstream only
    wait_for(create_execution(namespace, "extract", {}).id, timeout=30)
    alerts = _wait_executions(namespace, "alert", 1)
    assert models.Execution.objects.filter(namespace=namespace, flow_id="report").count() == 0
    # when: the second upstream ends too
    wait_for(create_execution(namespace, "load", {}).id, timeout=30)
    # then: mode ALL fires once both succeeded within the window, mode ANY once per upstream
    reports = _wait_executions(namespace, "report", 1)
    alerts = _wait_executions(namespace, "alert", 2)
    assert len(reports) == 1 and reports[0].state == states.SUCCESS
    assert sorted(messages(a.id, "log")[0] for a in alerts) == ["extract", "load"]
    assert messages(reports[0].id, "log") == ["after load 2"]


def test_flow_migrate_checks_writes_and_goes_back(tmp_path):
    import shutil
    from pathlib import Path

    from django.core.management import CommandError, call_command

    root = Path(__file__).resolve().parents[2]
    for name in ("each_and_branch.yaml", "notifications.yaml", "hello.yaml"):
        shutil.copy(root / "flows" / name, tmp_path / name)
    originals = {p.name: p.read_text() for p in tmp_path.iterdir()}
    # --check (the default) reports and exits 1, writing nothing
    with pytest.raises(CommandError) as info:
        call_command("flow", "migrate", str(tmp_path))
    assert "2 flow(s) would change" in str(info.value)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == originals
    # --write rewrites to 2.0; a second check has nothing left to do
    call_command("flow", "migrate", str(tmp_path), "--write")
    assert "io.kestra.plugin.core.flow.Loop" in (tmp_path / "each_and_branch.yaml").read_text()
    assert "dependsOn:" in (tmp_path / "notifications.yaml").read_text()
    call_command("flow", "migrate", str(tmp_path), "--check")
    # --to 1 goes back to the very same text
    call_command("flow", "migrate", str(tmp_path), "--to", "1", "--write")
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == originals
