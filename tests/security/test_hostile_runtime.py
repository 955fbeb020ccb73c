"""A runaway expression inside a running flow fails its task under the task's timeout, and the
worker goes on running other tasks (in-process runtime; real worker processes under test-services)."""
from __future__ import annotations

import textwrap
import uuid

from flows_app import models
from orchestrator.engine import states


def source(body: str) -> str:
    return f"id: hostile-{uuid.uuid4().hex[:8]}\nnamespace: company.tests\n" + textwrap.dedent(body)


def logs_of(execution_id: str) -> list[tuple[str | None, str, str]]:
    return [(e.task_id, e.level, e.message) for e in models.LogEntry.objects.filter(execution_id=execution_id)]


def test_runaway_jq_fails_the_task_within_its_timeout(run_flow):
    yaml = source("""
    tasks:
      - id: loop
        type: io.kestra.plugin.core.log.Log
        timeout: PT1S
        message: "{{ '{}' | jq('def f: f; f') }}"
      - id: never
        type: io.kestra.plugin.core.log.Log
        message: not reached
    errors:
      - id: after
        type: io.kestra.plugin.core.log.Log
        message: "still alive: {{ 1 + 1 }}"
    """)
    execution = run_flow(yaml, timeout=60)

    assert execution.state.current == states.FAILED
    messages = [message for task, level, message in logs_of(execution.id) if task == "loop"]
    # the expression's budget, or (on a prefork worker) the task's own timeout, whichever fires first
    assert any("jq program 'def f: f; f' ran past the time budget" in m or m == "Timeout after PT1S"
               for m in messages), messages
    assert ("after", "INFO", "still alive: 2") in logs_of(execution.id)


def test_runaway_regex_in_a_task_property_fails_the_task(run_flow):
    yaml = source("""
    tasks:
      - id: regex
        type: io.kestra.plugin.core.log.Log
        timeout: PT1S
        message: "{{ 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!'.matches('(a|aa)+$') }}"
    """)
    execution = run_flow(yaml, timeout=60)

    assert execution.state.current == states.FAILED
    messages = [message for task, level, message in logs_of(execution.id) if task == "regex"]
    assert any("ran past the time budget" in m or m == "Timeout after PT1S" for m in messages), messages
