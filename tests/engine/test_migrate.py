"""``orchestrator.engine.migrate``: 1.x ⇄ 2.0 rewrites on the text, comments and layout kept."""
from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import pytest

from orchestrator.engine import memory, states
from orchestrator.engine.conditions import ConditionContext, all_valid
from orchestrator.engine.flow import parse_flow
from orchestrator.engine.migrate import MigrationError, migrate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(ROOT.glob("flows/*.yaml"))


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def shape(flow) -> list[tuple[str, str]]:
    return [(task.id, task.type) for task in flow.all_tasks()]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_flow_round_trips_1_to_2_to_1(path):
    original = path.read_text()
    to_2 = migrate(original, 2)
    back = migrate(to_2.text, 1)
    first, second, third = parse_flow(original), parse_flow(to_2.text), parse_flow(back.text)
    assert [t.id for t in first.all_tasks()] == [t.id for t in second.all_tasks()] == [t.id for t in third.all_tasks()]
    assert shape(first) == shape(third)
    assert [n.path for n in to_2.problems if not n.message.startswith("note:")] == []
    # nothing but what the rewrite is about changed: every comment line is still there
    comments = [line for line in original.splitlines() if line.strip().startswith("#")]
    assert all(line in to_2.text.splitlines() for line in comments)


def test_each_and_branch_means_the_same_in_both_generations():
    original = (ROOT / "flows/each_and_branch.yaml").read_text()
    to_2 = migrate(original, 2).text
    back = migrate(to_2, 1).text
    assert "io.kestra.plugin.core.flow.Loop" in to_2 and "taskrun.value" not in to_2

    def results(text: str) -> Counter:
        run = memory.run(text)
        assert run.state == states.SUCCESS, [(line.task_id, line.message) for line in run.logs]
        return Counter((r.task_id, (r.outputs or {}).get("value")) for r in run.execution.task_runs
                       if r.task_id in ("long", "short"))

    expected = results(original)
    assert expected[("long", "banana is a long name")] == 1
    assert results(to_2) == expected == results(back)


def test_flow_trigger_conditions_become_depends_on_any_and_come_back_meaning_the_same():
    original = (ROOT / "flows/notifications.yaml").read_text()
    to_2 = migrate(original, 2).text
    back = migrate(to_2, 1).text
    assert "dependsOn:" in to_2 and "mode: ANY" in to_2 and "conditions:" not in to_2

    def fires(text: str, namespace: str, state: str) -> bool:
        trigger = parse_flow(text).triggers[0]
        if state not in (trigger.props.get("states") or sorted(states.TERMINATED)):
            return False
        execution = {"namespace": namespace, "flowId": "x", "state": {"current": state}}
        return all_valid(trigger.conditions, ConditionContext(execution=execution), skip_multiple=True)

    for namespace, state in (("company.team", "FAILED"), ("company", "WARNING"), ("company.team", "SUCCESS"),
                             ("other", "FAILED")):
        assert fires(original, namespace, state) == fires(to_2, namespace, state) == fires(back, namespace, state)
    assert fires(to_2, "company.team", "FAILED") and not fires(to_2, "other", "FAILED")


def test_run_if_and_checks_condition_are_renamed_and_back_with_comments_kept():
    flow = src("""
        id: f
        namespace: tests
        checks:
          - condition: "{{ true }}"   # keep me
            message: ok
        tasks:
          # the first task
          - id: a
            type: io.kestra.plugin.core.log.Log
            runIf: "{{ 1 == 1 }}"  # inline comment
            message: x
    """)
    to_2 = migrate(flow, 2)
    assert to_2.uses == {1}
    assert '    when: "{{ 1 == 1 }}"  # inline comment\n' in to_2.text
    assert '  - when: "{{ true }}"   # keep me\n' in to_2.text
    assert "  # the first task\n" in to_2.text
    assert migrate(to_2.text, 2).changed is False
    back = migrate(to_2.text, 1)
    assert back.text == flow
    assert migrate(flow, 2).uses == {1} and migrate(to_2.text, 1).uses == {2}


def test_preconditions_become_depends_on_and_window_and_come_back():
    flow = src("""
        id: f
        namespace: tests
        tasks:
          - id: a
            type: io.kestra.plugin.core.log.Log
            message: x
        triggers:
          - id: after
            type: io.kestra.plugin.core.trigger.Flow
            preconditions:
              id: dependsOn
              flows:
                - namespace: company
                  flowId: extract
                  states: [SUCCESS]
              timeWindow:
                type: DURATION_WINDOW
                window: PT2H
            inputs:
              day: "{{ trigger.outputs.day }}"
    """)
    to_2 = migrate(flow, 2)
    assert "    dependsOn:\n      flows:\n        - namespace: company\n" in to_2.text
    assert "    window: PT2H\n    inputs:\n" in to_2.text
    before = parse_flow(flow).triggers[0].props["preconditions"]
    assert parse_flow(to_2.text).triggers[0].props["preconditions"] == before
    back = migrate(to_2.text, 1)
    assert parse_flow(back.text).triggers[0].props["preconditions"] == before
    assert "dependsOn:\n" not in back.text.split("preconditions:")[1].split("flows:")[0]


def test_plugin_defaults_are_written_into_their_tasks():
    flow = src("""
        id: f
        namespace: tests
        pluginDefaults:
          - type: io.kestra.plugin.core.log.Log
            values:
              level: WARN
              message: default
        tasks:
          - id: a
            type: io.kestra.plugin.core.log.Log
            message: own
          - id: b
            type: io.kestra.plugin.core.log.Log
    """)
    to_2 = migrate(flow, 2)
    assert "pluginDefaults" not in to_2.text
    tasks = {t.id: t.props for t in parse_flow(to_2.text).all_tasks()}
    assert tasks["a"]["message"] == "own" and tasks["a"]["level"] == "WARN"
    assert tasks["b"]["message"] == "default" and tasks["b"]["level"] == "WARN"
    original = {t.id: t.props for t in parse_flow(flow).all_tasks()}
    assert {k: (v["message"], v["level"]) for k, v in original.items()} == \
        {k: (v["message"], v["level"]) for k, v in tasks.items()}


def test_each_parallel_becomes_a_loop_with_all_values_at_once_and_for_each_item_is_reported():
    flow = src("""
        id: f
        namespace: tests
        tasks:
          - id: each
            type: io.kestra.plugin.core.flow.EachParallel
            value: [a, b]
            tasks:
              - id: log
                type: io.kestra.plugin.core.log.Log
                message: "{{ taskrun.value }}"
          - id: items
            type: io.kestra.plugin.core.flow.ForEachItem
            items: "{{ outputs.x }}"
            namespace: tests
            flowId: child
    """)
    to_2 = migrate(flow, 2)
    each = parse_flow(to_2.text).find_task("each")
    assert each.type == "io.kestra.plugin.core.flow.Loop"
    assert each.props["values"] == ["a", "b"] and each.props["concurrencyLimit"] == 0
    assert '"{{ item.value }}"' in to_2.text
    assert any(n.path == "tasks[1].type" and "ForEachItem" in n.message for n in to_2.problems)


def test_loop_outputs_of_the_same_iteration_lose_and_regain_their_value_key():
    flow = src("""
        id: f
        namespace: tests
        tasks:
          - id: each
            type: io.kestra.plugin.core.flow.ForEach
            values: [a, b]
            tasks:
              - id: ret
                type: io.kestra.plugin.core.debug.Return
                format: "{{ taskrun.value }}!"
              - id: log
                type: io.kestra.plugin.core.log.Log
                message: "{{ outputs.ret[taskrun.value].value }}"
    """)
    to_2 = migrate(flow, 2)
    assert 'message: "{{ outputs.ret.value }}"' in to_2.text
    assert migrate(to_2.text, 1).text == flow
    logs = lambda text: sorted(l.message for l in memory.run(text).logs if l.task_id == "log")
    assert logs(flow) == logs(to_2.text) == ["a!", "b!"]


def test_not_a_flow_is_an_error():
    with pytest.raises(MigrationError):
        migrate("- a\n- b\n")
    with pytest.raises(MigrationError):
        migrate("id: [unclosed\n")
