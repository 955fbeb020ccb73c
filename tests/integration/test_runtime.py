"""Flows run through Django and real Celery workers: threads on the in-process broker by default,
separate worker processes on Redis + Postgres under `make test-services`."""
from __future__ import annotations

import textwrap
import uuid

import pytest

from flows_app import models
from flows_app.services import create_execution, deploy_flow, wait_for
from orchestrator.engine import states
from orchestrator.engine.errors import FlowNotFound, InputValidationError
from orchestrator.engine.flow import FlowValidationError


def unique(prefix: str) -> str:
    """Flow ids unique per test: long-lived worker processes cache parsed flows per revision."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def source(flow_id: str, body: str) -> str:
    return f"id: {flow_id}\nnamespace: company.tests\n" + textwrap.dedent(body)


def logs_of(execution_id: str) -> list[tuple[str | None, str, str]]:
    return [(e.task_id, e.level, e.message) for e in models.LogEntry.objects.filter(execution_id=execution_id)]


def test_every_core_task_type_runs_end_to_end(run_flow):
    # given: one flow using every task type of the foundation
    flow_id = unique("all-types")
    yaml = source(flow_id, """
    labels:
      team: core
    inputs:
      - id: name
        type: STRING
        defaults: world
    variables:
      greeting: Hello
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message:
          - "{{ vars.greeting }} {{ inputs.name }}"
          - second line
      - id: ret
        type: io.kestra.core.tasks.debugs.Return
        format: "{{ inputs.name | upper }}"
      - id: echo
        type: io.kestra.plugin.core.debug.Echo
        format: "echo {{ outputs.ret.value }}"
      - id: values
        type: io.kestra.plugin.core.output.OutputValues
        values:
          n: "{{ 40 + 2 }}"
          list: [1, 2]
      - id: sleep
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT0.1S
      - id: seq
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: par
            type: io.kestra.plugin.core.flow.Parallel
            tasks:
              - id: p1
                type: io.kestra.plugin.core.debug.Return
                format: p1
              - id: p2
                type: io.kestra.plugin.core.debug.Return
                format: p2
      - id: each
        type: io.kestra.plugin.core.flow.ForEach
        values: ["a", "b"]
        concurrencyLimit: 0
        tasks:
          - id: item
            type: io.kestra.plugin.core.debug.Return
            format: "{{ taskrun.value }}"
      - id: each-seq
        type: io.kestra.core.tasks.flows.EachSequential
        value: '["x"]'
        tasks:
          - id: item-seq
            type: io.kestra.plugin.core.debug.Return
            format: "{{ taskrun.value }}"
      - id: each-par
        type: io.kestra.plugin.core.flow.EachParallel
        value: ["y", "z"]
        tasks:
          - id: item-par
            type: io.kestra.plugin.core.debug.Return
            format: "{{ taskrun.value }}"
      - id: if
        type: io.kestra.plugin.core.flow.If
        condition: "{{ outputs.values.values.n == 42 }}"
        then:
          - id: then
            type: io.kestra.plugin.core.debug.Return
            format: then
      - id: switch
        type: io.kestra.plugin.core.flow.Switch
        value: "{{ inputs.name }}"
        cases:
          world:
            - id: case-world
              type: io.kestra.plugin.core.debug.Return
              format: world
        defaults:
          - id: case-default
            type: io.kestra.plugin.core.debug.Return
            format: default
      - id: allow
        type: io.kestra.plugin.core.flow.AllowFailure
        tasks:
          - id: fail
            type: io.kestra.plugin.core.execution.Fail
            errorMessage: "expected failure"
      - id: labels
        type: io.kestra.plugin.core.execution.Labels
        labels:
          stage: done
    outputs:
      - id: items
        type: STRING
        value: "{{ outputs.item['a'].value }}{{ outputs.item['b'].value }}"
    """)
    # when
    execution = run_flow(yaml)
    # then
    assert execution.state.current == states.WARNING
    by_task = {(r.task_id, r.value): r for r in execution.task_runs}
    assert by_task[("ret", None)].outputs == {"value": "WORLD"}
    assert by_task[("values", None)].outputs == {"values": {"n": 42, "list": [1, 2]}}
    assert by_task[("item", "b")].outputs == {"value": "b"}
    assert by_task[("item-seq", "x")].state.current == states.SUCCESS
    assert by_task[("item-par", "z")].state.current == states.SUCCESS
    assert by_task[("then", None)].state.current == states.SUCCESS
    assert ("case-default", None) not in by_task
    assert by_task[("fail", None)].state.current == states.FAILED
    assert by_task[("allow", None)].state.current == states.WARNING
    assert execution.outputs == {"items": "ab"}
    assert {"key": "stage", "value": "done"} in execution.labels
    assert {"key": "team", "value": "core"} in execution.labels
    logs = logs_of(execution.id)
    assert ("log", "INFO", "Hello world") in logs
    assert ("log", "INFO", "second line") in logs
    assert ("echo", "INFO", "echo WORLD") in logs
    assert ("fail", "ERROR", "expected failure") in logs
    assert (None, "INFO", "Flow completed with state WARNING") in logs
    assert all(r.attempts[0].worker_id for r in execution.task_runs if r.task_id in ("ret", "p1", "item"))


def test_failed_task_runs_errors_and_fails_the_execution(run_flow):
    yaml = source(unique("fails"), """
    tasks:
      - id: ko
        type: io.kestra.plugin.core.execution.Fail
    errors:
      - id: handler
        type: io.kestra.plugin.core.log.Log
        message: "{{ errorLogs()[0].message }}"
    """)
    execution = run_flow(yaml)
    assert execution.state.current == states.FAILED
    assert ("handler", "INFO", "Task failure") in logs_of(execution.id)


def test_retry_waits_in_the_database_and_reattempts(run_flow):
    yaml = source(unique("retry"), """
    tasks:
      - id: ko
        type: io.kestra.plugin.core.execution.Fail
        retry:
          type: constant
          interval: PT0.5S
          maxAttempts: 2
    """)
    execution = run_flow(yaml, timeout=30)
    assert execution.state.current == states.FAILED
    assert len(execution.task_runs[0].attempts) == 2


def test_invalid_inputs_are_refused_before_anything_is_created(transactional_db):
    deployed = deploy_flow(source(unique("inputs"), """
    inputs:
      - id: n
        type: INT
        max: 10
      - id: s
        type: STRING
    tasks:
      - id: a
        type: io.kestra.plugin.core.log.Log
        message: "{{ inputs.n }}"
    """))
    with pytest.raises(InputValidationError) as raised:
        create_execution("company.tests", deployed.parsed.id, {"n": "42"})
    messages = [message for _, message in raised.value.errors]
    assert "Invalid input for `n`, it must be less than `10`, but received `42`" in messages
    assert "Invalid input for `s`, missing required input, but received `null`" in messages
    assert models.Execution.objects.count() == 0


def test_revisions_only_when_the_source_changes(run_flow):
    flow_id = unique("rev")
    first = source(flow_id, """
    tasks:
      - id: a
        type: io.kestra.plugin.core.debug.Return
        format: one
    """)
    assert deploy_flow(first).flow.revision == 1
    again = deploy_flow(first)
    assert (again.flow.revision, again.changed) == (1, False)
    second = first.replace("format: one", "format: two")
    assert deploy_flow(second).flow.revision == 2
    revisions = list(models.FlowRevision.objects.filter(flow__flow_id=flow_id).values_list("revision", "source"))
    assert revisions == [(1, first), (2, second)]
    execution = run_flow(second)
    assert execution.flow_revision == 2
    assert execution.task_runs[0].outputs == {"value": "two"}


def test_bad_flows_and_unknown_flows_are_clear_errors(transactional_db):
    with pytest.raises(FlowValidationError) as raised:
        deploy_flow("id: x\nnamespace: a\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Lgo\n")
    assert "io.kestra.plugin.core.log.Log" in str(raised.value)
    with pytest.raises(FlowValidationError):
        deploy_flow("id: [unclosed\n")
    with pytest.raises(FlowNotFound):
        create_execution("company.tests", "does-not-exist", {})


def test_concurrency_limit_queues_the_second_execution(runtime, transactional_db):
    deployed = deploy_flow(source(unique("conc"), """
    concurrency:
      limit: 1
    tasks:
      - id: wait
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT1S
    """))
    first = create_execution("company.tests", deployed.parsed.id, {})
    wait_for(first.id, until=[states.RUNNING], timeout=30)
    second = create_execution("company.tests", deployed.parsed.id, {})
    wait_for(second.id, until=[states.QUEUED], timeout=30)
    assert wait_for(first.id, timeout=30).state.current == states.SUCCESS
    done = wait_for(second.id, timeout=30)
    assert done.state.current == states.SUCCESS
    assert [h[0] for h in done.state.histories] == ["CREATED", "QUEUED", "RUNNING", "SUCCESS"]


def test_subflow_runs_a_child_execution_and_reads_its_outputs(run_flow):
    child_id, parent_id = unique("child"), unique("parent")
    deploy_flow(source(child_id, """
    inputs:
      - id: n
        type: INT
    tasks:
      - id: double
        type: io.kestra.plugin.core.debug.Return
        format: "{{ inputs.n * 2 }}"
    outputs:
      - id: result
        type: INT
        value: "{{ outputs.double.value }}"
    """))
    parent = run_flow(source(parent_id, f"""
    labels:
      owner: me
    tasks:
      - id: call
        type: io.kestra.plugin.core.flow.Subflow
        namespace: company.tests
        flowId: {child_id}
        inputs:
          n: 21
        inheritLabels: true
      - id: read
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ outputs.call.outputs.result }}}}"
      - id: fire-and-forget
        type: io.kestra.plugin.core.flow.Subflow
        namespace: company.tests
        flowId: {child_id}
        wait: false
        inputs:
          n: 1
    """))
    assert parent.state.current == states.SUCCESS
    runs = {r.task_id: r for r in parent.task_runs}
    assert runs["read"].outputs == {"value": "42"}
    assert runs["call"].outputs["state"] == states.SUCCESS
    child = models.Execution.objects.get(pk=runs["call"].outputs["executionId"])
    assert child.parent_id == parent.id
    assert child.trigger["variables"]["executionId"] == parent.id
    labels = {l["key"]: l["value"] for l in child.labels}
    assert labels["owner"] == "me"
    assert labels["system.correlationId"] == parent.id
    assert set(runs["fire-and-forget"].outputs) == {"executionId"}


def test_subflow_failures_are_transmitted_and_unknown_flows_fail_the_task(run_flow):
    child_id = unique("failing-child")
    deploy_flow(source(child_id, """
    tasks:
      - id: ko
        type: io.kestra.plugin.core.execution.Fail
    """))
    parent = run_flow(source(unique("parent"), f"""
    tasks:
      - id: par
        type: io.kestra.plugin.core.flow.Parallel
        tasks:
          - id: failing
            type: io.kestra.plugin.core.flow.Subflow
            namespace: company.tests
            flowId: {child_id}
          - id: missing
            type: io.kestra.plugin.core.flow.Subflow
            namespace: company.tests
            flowId: no-such-flow
          - id: tolerated
            type: io.kestra.plugin.core.flow.Subflow
            namespace: company.tests
            flowId: {child_id}
            transmitFailed: false
    """))
    runs = {r.task_id: r for r in parent.task_runs}
    assert parent.state.current == states.FAILED
    assert runs["failing"].state.current == states.FAILED
    assert runs["missing"].state.current == states.FAILED
    assert runs["tolerated"].state.current == states.SUCCESS
    assert ("missing", "ERROR", "Unable to find flow 'company.tests'.'no-such-flow'") in logs_of(parent.id)


def test_working_directory_runs_its_tasks_together_on_one_worker(run_flow):
    execution = run_flow(source(unique("wd"), """
    tasks:
      - id: wd
        type: io.kestra.plugin.core.flow.WorkingDirectory
        inputFiles:
          data.txt: "hello"
        outputFiles:
          - "*.txt"
        tasks:
          - id: where
            type: io.kestra.plugin.core.debug.Return
            format: "{{ workingDir }}"
          - id: again
            type: io.kestra.plugin.core.debug.Return
            format: "{{ outputs.where.value }}|{{ workingDir }}|{{ taskrun.parentId }}"
      - id: after
        type: io.kestra.plugin.core.debug.Return
        format: "{{ outputs.wd.outputFiles['data.txt'] }}"
    """))
    assert execution.state.current == states.SUCCESS
    runs = {r.task_id: r for r in execution.task_runs}
    assert [r.task_id for r in sorted(execution.task_runs, key=lambda r: r.seq)] == ["wd", "where", "again", "after"]
    directory = runs["where"].outputs["value"]
    assert runs["again"].outputs["value"] == f"{directory}|{directory}|{runs['wd'].id}"
    assert runs["where"].parent_task_run_id == runs["wd"].id
    assert runs["after"].outputs["value"].startswith("kestra:///company/tests/")


def test_working_directory_failure_runs_its_errors(run_flow):
    execution = run_flow(source(unique("wd-fail"), """
    tasks:
      - id: wd
        type: io.kestra.plugin.core.flow.WorkingDirectory
        tasks:
          - id: ko
            type: io.kestra.plugin.core.execution.Fail
          - id: never
            type: io.kestra.plugin.core.debug.Return
            format: x
        errors:
          - id: handler
            type: io.kestra.plugin.core.debug.Return
            format: handled
    """))
    assert execution.state.current == states.FAILED
    assert [(r.task_id, r.state.current) for r in sorted(execution.task_runs, key=lambda r: r.seq)] == [
        ("wd", "FAILED"), ("ko", "FAILED"), ("handler", "SUCCESS")]


def test_for_each_item_runs_one_subflow_per_batch_and_merges_their_outputs(run_flow):
    from orchestrator.engine.inputs import InputFile
    from storage_app.storage import get

    child_id = unique("item-child")
    deploy_flow(source(child_id, """
    inputs:
      - id: items
        type: STRING
    tasks:
      - id: read
        type: io.kestra.plugin.core.debug.Return
        format: "{{ read(inputs.items) | trim }}"
    outputs:
      - id: lines
        type: STRING
        value: "{{ outputs.read.value }}"
    """))
    execution = run_flow(source(unique("items"), f"""
    inputs:
      - id: file
        type: FILE
    tasks:
      - id: each
        type: io.kestra.plugin.core.flow.ForEachItem
        items: "{{{{ inputs.file }}}}"
        batch:
          rows: 2
        namespace: company.tests
        flowId: {child_id}
        inputs:
          items: "{{{{ taskrun.items }}}}"
      - id: merged
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ outputs.each_merge.subflowOutputs }}}}"
    """), {"file": InputFile("lines.txt", b"a\nb\nc\nd\ne\n")})
    assert execution.state.current == states.SUCCESS
    runs = {r.task_id: r for r in execution.task_runs}
    assert [r.task_id for r in sorted(execution.task_runs, key=lambda r: r.seq)] == [
        "each", "each_split", "each_items", "each_merge", "merged"]
    assert runs["each_items"].outputs == {"numberOfBatches": 3,
                                          "iterations": {"CREATED": 0, "RUNNING": 0, "SUCCESS": 3}}
    merged = get(runs["merged"].outputs["value"]).decode().splitlines()
    assert sorted(merged) == ['{"lines":"a\\nb"}', '{"lines":"c\\nd"}', '{"lines":"e"}']


def test_retry_with_create_new_execution_starts_a_new_attempt(run_flow):
    flow_id = unique("retry-new")
    first = run_flow(source(flow_id, """
    tasks:
      - id: ko
        type: io.kestra.plugin.core.execution.Fail
        retry:
          behavior: CREATE_NEW_EXECUTION
          type: constant
          interval: PT0.2S
          maxAttempts: 2
    """))
    assert first.state.current == states.RETRIED
    assert first.task_runs[0].state.current == states.RETRIED
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        others = list(models.Execution.objects.filter(flow_id=flow_id).exclude(pk=first.id))
        if others and others[0].state in states.TERMINATED:
            break
        time.sleep(0.1)
    assert [(o.state, o.metadata["attemptNumber"]) for o in others] == [(states.FAILED, 2)]
    assert others[0].metadata["originalCreatedDate"] == first.metadata["originalCreatedDate"]


def test_working_directory_loads_its_namespace_files(run_flow):
    from storage_app.models import NamespaceFile

    for path, content in {"/a/1.txt": b"first", "/ignore/2.txt": b"second"}.items():
        NamespaceFile.objects.create(namespace="company.tests", path=path, content=content)
    execution = run_flow(source(unique("wd-nsfiles"), """
    tasks:
      - id: wd
        type: io.kestra.plugin.core.flow.WorkingDirectory
        namespaceFiles:
          enabled: true
          exclude:
            - /ignore/**
        tasks:
          - id: listed
            type: io.kestra.plugin.core.log.Log
            message: done
    """))
    assert execution.state.current == states.SUCCESS, logs_of(execution.id)
    messages = [message for _, _, message in logs_of(execution.id)]
    assert any(m.startswith("Loaded 1 namespace files from 'company.tests'") for m in messages), messages
