"""The outputs a task's expressions can read (what a worker job carries)."""
from __future__ import annotations

import pytest

from orchestrator.engine.flow import parse_flow
from orchestrator.engine.references import referenced


def task_with(fmt: str):
    source = f"id: t\nnamespace: n\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.debug.Return\n    format: {fmt!r}\n"
    return parse_flow(source).find_task("a")


@pytest.mark.parametrize("fmt, outputs, tasks", [
    ("plain text", set(), set()),
    ("{{ outputs.first.value }}", {"first"}, set()),
    ("{{ outputs['with-dash'].value ~ outputs.other.x }}", {"with-dash", "other"}, set()),
    ("{{ tasks.first.state }}", set(), {"first"}),
    ("{{ outputs[taskrun.value] }}", None, set()),
    ("{{ outputs }}", None, set()),
    ("{{ render(vars.template) }}", None, None),
    ("{{ currentEachOutput(outputs.inner).value }}", {"inner"}, set()),
])
def test_references_found_in_properties(fmt, outputs, tasks):
    found = referenced(task_with(fmt))
    assert found == {"outputs": outputs, "tasks": tasks}
