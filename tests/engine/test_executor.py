"""The executor's decisions, without a database: one test per flowable and per rule."""
from __future__ import annotations

import textwrap

import pytest

from orchestrator.engine import memory, states
from orchestrator.engine.executor import Environment, apply_result, decide
from orchestrator.engine.expressions import is_truthy, render
from orchestrator.engine.flow import parse_flow
from orchestrator.engine.model import Execution

RETURN = "io.kestra.plugin.core.debug.Return"
FAIL = "io.kestra.plugin.core.execution.Fail"
LOG = "io.kestra.plugin.core.log.Log"


def flow(body: str) -> str:
    return "id: t\nnamespace: tests\n" + textwrap.dedent(body)


def states_of(run: memory.MemoryRun) -> list[tuple[str, str | None, str]]:
    return [(r.task_id, r.value, r.state.current) for r in sorted(run.execution.task_runs, key=lambda r: r.seq)]


def test_sequential_tasks_run_in_order_and_see_previous_outputs():
    # given
    source = flow(f"""
    tasks:
      - id: a
        type: {RETURN}
        format: "1"
      - id: b
        type: {RETURN}
        format: "{{{{ outputs.a.value }}}}+1"
    """)
    # when
    run = memory.run(source)
    # then
    assert run.state == states.SUCCESS
    assert states_of(run) == [("a", None, "SUCCESS"), ("b", None, "SUCCESS")]
    assert run.run("b").outputs == {"value": "1+1"}
    assert [h[0] for h in run.run("a").state.histories] == ["CREATED", "RUNNING", "SUCCESS"]


def test_failure_stops_the_main_list_and_runs_errors_then_finally():
    source = flow(f"""
    tasks:
      - id: ok
        type: {RETURN}
        format: x
      - id: ko
        type: {FAIL}
        errorMessage: broken
      - id: never
        type: {RETURN}
        format: x
    errors:
      - id: handler
        type: {LOG}
        message: "handled {{{{ task.id }}}}"
    finally:
      - id: cleanup
        type: {RETURN}
        format: done
    """)
    run = memory.run(source)
    assert run.state == states.FAILED
    assert states_of(run) == [("ok", None, "SUCCESS"), ("ko", None, "FAILED"), ("handler", None, "SUCCESS"),
                              ("cleanup", None, "SUCCESS")]
    assert any(line.message == "broken" and line.level == "ERROR" for line in run.logs)


def test_finally_runs_after_success_and_errors_do_not():
    source = flow(f"""
    tasks:
      - id: ok
        type: {RETURN}
        format: x
    errors:
      - id: handler
        type: {LOG}
        message: never
    finally:
      - id: cleanup
        type: {RETURN}
        format: done
    """)
    run = memory.run(source)
    assert run.state == states.SUCCESS
    assert [r.task_id for r in run.execution.task_runs] == ["ok", "cleanup"]


def test_a_failing_errors_task_does_not_change_the_execution_state():
    source = flow(f"""
    tasks:
      - id: ok
        type: {RETURN}
        format: x
    finally:
      - id: bad
        type: {FAIL}
    """)
    run = memory.run(source)
    assert run.state == states.SUCCESS
    assert run.run("bad").state.current == states.FAILED


def test_parallel_starts_every_child_at_once():
    source = flow(f"""
    tasks:
      - id: par
        type: io.kestra.plugin.core.flow.Parallel
        tasks:
          - id: p1
            type: {RETURN}
            format: "1"
          - id: p2
            type: {RETURN}
            format: "2"
          - id: p3
            type: {RETURN}
            format: "3"
      - id: after
        type: {RETURN}
        format: x
    """)
    execution_flow = parse_flow(source)
    execution = Execution.create("tests", "t", 1)
    decision = decide(execution_flow, execution, Environment(render=render, is_truthy=is_truthy))
    assert sorted(job.task_id for job in decision.jobs) == ["p1", "p2", "p3"]
    run = memory.run(source)
    assert run.state == states.SUCCESS
    assert run.run("after").state.current == states.SUCCESS


def test_parallel_concurrent_limit():
    source = flow(f"""
    tasks:
      - id: par
        type: io.kestra.plugin.core.flow.Parallel
        concurrent: 2
        tasks:
          - id: p1
            type: {RETURN}
            format: "1"
          - id: p2
            type: {RETURN}
            format: "2"
          - id: p3
            type: {RETURN}
            format: "3"
    """)
    execution = Execution.create("tests", "t", 1)
    decision = decide(parse_flow(source), execution, Environment(render=render, is_truthy=is_truthy))
    assert [job.task_id for job in decision.jobs] == ["p1", "p2"]


def test_foreach_keys_outputs_by_value_and_dedupes_values():
    source = flow(f"""
    tasks:
      - id: each
        type: io.kestra.plugin.core.flow.ForEach
        values: ["a", "b", "a", 1]
        tasks:
          - id: inner
            type: {RETURN}
            format: "{{{{ taskrun.value }}}}-{{{{ taskrun.iteration }}}}"
      - id: read
        type: {RETURN}
        format: "{{{{ outputs.inner['b'].value }}}}|{{{{ outputs.inner['1'].value }}}}"
    """)
    run = memory.run(source)
    assert run.state == states.SUCCESS
    assert [(r.task_id, r.value) for r in run.execution.task_runs if r.task_id == "inner"] == \
        [("inner", "a"), ("inner", "b"), ("inner", "1")]
    assert run.run("read").outputs == {"value": "b-1|1-2"}


def test_foreach_concurrency_limit_one_runs_value_by_value():
    source = flow(f"""
    tasks:
      - id: each
        type: io.kestra.plugin.core.flow.ForEach
        values: '["x", "y"]'
        tasks:
          - id: one
            type: {RETURN}
            format: "1"
          - id: two
            type: {RETURN}
            format: "2"
    """)
    run = memory.run(source)
    assert [(r.task_id, r.value) for r in sorted(run.execution.task_runs, key=lambda r: r.seq)][1:] == \
        [("one", "x"), ("two", "x"), ("one", "y"), ("two", "y")]


def test_foreach_unlimited_starts_every_value():
    source = flow(f"""
    tasks:
      - id: each
        type: io.kestra.plugin.core.flow.ForEach
        values: [1, 2, 3]
        concurrencyLimit: 0
        tasks:
          - id: one
            type: {RETURN}
            format: "1"
    """)
    execution = Execution.create("tests", "t", 1)
    decision = decide(parse_flow(source), execution, Environment(render=render, is_truthy=is_truthy))
    assert [job.context["taskrun"]["value"] for job in decision.jobs] == ["1", "2", "3"]


def test_nested_foreach_outputs_nest_keys_and_parent_value():
    source = flow(f"""
    tasks:
      - id: outer
        type: io.kestra.plugin.core.flow.ForEach
        values: ["o1", "o2"]
        tasks:
          - id: inner
            type: io.kestra.plugin.core.flow.ForEach
            values: ["i1"]
            tasks:
              - id: leaf
                type: {RETURN}
                format: "{{{{ parent.taskrun.value }}}}/{{{{ taskrun.value }}}}"
      - id: read
        type: {RETURN}
        format: "{{{{ outputs.leaf['o2']['i1'].value }}}}"
    """)
    run = memory.run(source)
    assert run.state == states.SUCCESS
    assert run.run("read").outputs == {"value": "o2/i1"}


def test_foreach_with_null_value_fails():
    source = flow(f"""
    tasks:
      - id: each
        type: io.kestra.plugin.core.flow.ForEach
        values: '["a", null]'
        tasks:
          - id: one
            type: {RETURN}
            format: "1"
    """)
    run = memory.run(source)
    assert run.state == states.FAILED
    assert any("Found '1' null values on Each" in line.message for line in run.logs)


@pytest.mark.parametrize("value, branch", [("true", "yes"), ("false", "no"), ("0", "no"), ("", "no"), ("x", "yes")])
def test_if_picks_then_or_else(value, branch):
    source = flow(f"""
    inputs:
      - id: v
        type: STRING
        required: false
    tasks:
      - id: cond
        type: io.kestra.plugin.core.flow.If
        condition: "{{{{ inputs.v }}}}"
        then:
          - id: "yes"
            type: {RETURN}
            format: "1"
        else:
          - id: "no"
            type: {RETURN}
            format: "2"
    """)
    run = memory.run(source, {"v": value})
    assert [r.task_id for r in run.execution.task_runs] == ["cond", branch]
    assert run.run("cond").outputs == {"evaluationResult": branch == "yes"}


def test_switch_case_keys_compare_as_strings_and_defaults():
    source = flow(f"""
    inputs:
      - id: v
        type: STRING
    tasks:
      - id: sw
        type: io.kestra.plugin.core.flow.Switch
        value: "{{{{ inputs.v }}}}"
        cases:
          1:
            - id: one
              type: {RETURN}
              format: "1"
          "true":
            - id: yes
              type: {RETURN}
              format: "t"
        defaults:
          - id: other
            type: {RETURN}
            format: "d"
    """)
    assert [r.task_id for r in memory.run(source, {"v": "1"}).execution.task_runs] == ["sw", "one"]
    run = memory.run(source, {"v": "zzz"})
    assert [r.task_id for r in run.execution.task_runs] == ["sw", "other"]
    assert run.run("sw").outputs == {"value": "zzz", "defaults": True}


def test_allow_failure_task_turns_failure_into_warning_and_continues():
    source = flow(f"""
    tasks:
      - id: af
        type: io.kestra.plugin.core.flow.AllowFailure
        tasks:
          - id: ko
            type: {FAIL}
          - id: skipped
            type: {RETURN}
            format: x
      - id: next
        type: {RETURN}
        format: x
    """)
    run = memory.run(source)
    assert run.state == states.WARNING
    assert states_of(run) == [("af", None, "WARNING"), ("ko", None, "FAILED"), ("next", None, "SUCCESS")]


def test_allow_failure_property_and_allow_warning():
    source = flow(f"""
    tasks:
      - id: ko
        type: {FAIL}
        allowFailure: true
      - id: ko2
        type: {FAIL}
        allowFailure: true
        allowWarning: true
      - id: next
        type: {RETURN}
        format: x
    """)
    run = memory.run(source)
    assert run.state == states.WARNING
    assert states_of(run) == [("ko", None, "WARNING"), ("ko2", None, "SUCCESS"), ("next", None, "SUCCESS")]


def test_run_if_false_skips_and_disabled_never_creates():
    source = flow(f"""
    tasks:
      - id: skipped
        type: {RETURN}
        format: x
        runIf: "{{{{ 1 == 2 }}}}"
      - id: off
        type: {RETURN}
        format: x
        disabled: true
      - id: last
        type: {RETURN}
        format: x
    """)
    run = memory.run(source)
    assert run.state == states.SUCCESS
    assert states_of(run) == [("skipped", None, "SKIPPED"), ("last", None, "SUCCESS")]


def test_flowable_with_all_children_disabled_succeeds():
    source = flow(f"""
    tasks:
      - id: seq
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: off
            type: {RETURN}
            format: x
            disabled: true
    """)
    run = memory.run(source)
    assert run.state == states.SUCCESS
    assert states_of(run) == [("seq", None, "SUCCESS")]


def test_local_errors_of_a_flowable_run_and_it_stays_failed():
    source = flow(f"""
    tasks:
      - id: seq
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: ko
            type: {FAIL}
        errors:
          - id: local
            type: {RETURN}
            format: x
    errors:
      - id: global
        type: {RETURN}
        format: x
    """)
    run = memory.run(source)
    assert run.state == states.FAILED
    assert states_of(run) == [("seq", None, "FAILED"), ("ko", None, "FAILED"), ("local", None, "SUCCESS"),
                              ("global", None, "SUCCESS")]


def test_retry_makes_new_attempts_of_the_same_task_run():
    source = flow(f"""
    tasks:
      - id: ko
        type: {FAIL}
        retry:
          type: constant
          interval: PT1S
          maxAttempts: 3
    """)
    run = memory.run(source)
    assert run.state == states.FAILED
    assert len(run.execution.task_runs) == 1
    assert len(run.run("ko").attempts) == 3
    assert states.RETRYING in [h[0] for h in run.run("ko").state.histories]


def test_flow_retry_applies_to_tasks_without_their_own():
    source = flow(f"""
    retry:
      type: constant
      interval: PT0.1S
      maxAttempts: 2
    tasks:
      - id: ko
        type: {FAIL}
    """)
    run = memory.run(source)
    assert len(run.run("ko").attempts) == 2


def test_a_duplicate_or_stale_result_changes_nothing():
    source = flow(f"""
    tasks:
      - id: a
        type: {RETURN}
        format: x
      - id: b
        type: {RETURN}
        format: y
    """)
    results: list[dict] = []
    run = memory.run(source, results=results)
    snapshot = run.execution.to_json()
    for result in results:
        assert apply_result(run.flow, run.execution, result) is None
    stale = dict(results[0], attempt=5, state="FAILED")
    assert apply_result(run.flow, run.execution, stale) is None
    assert run.execution.to_json() == snapshot


def test_worker_group_key_is_carried_by_the_job():
    source = flow(f"""
    tasks:
      - id: gpu
        type: {RETURN}
        format: x
        workerGroup:
          key: gpu
    """)
    execution = Execution.create("tests", "t", 1)
    decision = decide(parse_flow(source), execution, Environment(render=render, is_truthy=is_truthy))
    assert [(job.task_id, job.worker_group) for job in decision.jobs] == [("gpu", "gpu")]


def test_labels_task_updates_execution_labels():
    source = flow(f"""
    tasks:
      - id: lab
        type: io.kestra.plugin.core.execution.Labels
        labels:
          env: "{{{{ 'p' ~ 'rod' }}}}"
      - id: read
        type: {RETURN}
        format: "{{{{ labels.env }}}}"
    """)
    run = memory.run(source)
    assert run.state == states.SUCCESS
    assert {"key": "env", "value": "prod"} in run.execution.labels
    assert run.run("read").outputs == {"value": "prod"}


def test_flow_outputs_are_rendered_and_typed_at_the_end():
    source = flow(f"""
    tasks:
      - id: a
        type: {RETURN}
        format: "42"
    outputs:
      - id: answer
        type: INT
        value: "{{{{ outputs.a.value }}}}"
    """)
    run = memory.run(source)
    assert run.state == states.SUCCESS
    assert run.execution.outputs == {"answer": 42}


def test_flow_outputs_that_fail_to_render_fail_the_execution():
    source = flow(f"""
    tasks:
      - id: a
        type: {RETURN}
        format: "x"
    outputs:
      - id: answer
        type: INT
        value: "{{{{ outputs.a.value }}}}"
    """)
    run = memory.run(source)
    assert run.state == states.FAILED
    assert any(line.message.startswith("Failed to render output values") for line in run.logs)


def test_undefined_variable_fails_the_task_with_its_name():
    source = flow(f"""
    tasks:
      - id: a
        type: {RETURN}
        format: "{{{{ nope }}}}"
    """)
    run = memory.run(source)
    assert run.state == states.FAILED
    assert any("nope" in line.message for line in run.logs if line.level == "ERROR")


def test_dag_respects_dependencies():
    source = flow(f"""
    tasks:
      - id: dag
        type: io.kestra.plugin.core.flow.Dag
        tasks:
          - task:
              id: c
              type: {RETURN}
              format: "{{{{ outputs.a.value }}}}{{{{ outputs.b.value }}}}"
            dependsOn: [a, b]
          - task:
              id: a
              type: {RETURN}
              format: "A"
          - task:
              id: b
              type: {RETURN}
              format: "B"
            dependsOn: [a]
    """)
    execution = Execution.create("tests", "t", 1)
    decision = decide(parse_flow(source), execution, Environment(render=render, is_truthy=is_truthy))
    assert [job.task_id for job in decision.jobs] == ["a"]
    run = memory.run(source)
    assert run.state == states.SUCCESS
    assert run.run("c").outputs == {"value": "AB"}


def test_execution_ends_with_flow_completed_log():
    run = memory.run(flow(f"""
    tasks:
      - id: a
        type: {LOG}
        message: hi
    """))
    assert run.logs[-1].message == "Flow completed with state SUCCESS"


def test_pause_with_a_delay_pauses_the_execution_then_resumes_by_itself():
    source = flow(f"""
    tasks:
      - id: pause
        type: io.kestra.plugin.core.flow.Pause
        pauseDuration: PT1S
      - id: after
        type: {RETURN}
        format: x
    """)
    parsed = parse_flow(source)
    execution = Execution.create("tests", "t", 1)
    env = Environment(render=render, is_truthy=is_truthy)
    decision = decide(parsed, execution, env)
    assert execution.state.current == states.PAUSED
    assert decision.wake_at is not None and decision.jobs == []
    # when: the executor is woken after the delay
    later = Environment(render=render, is_truthy=is_truthy, now=lambda: decision.wake_at)
    decision = decide(parsed, execution, later)
    # then
    assert execution.state.current == states.RUNNING
    assert [j.task_id for j in decision.jobs] == ["after"]
    pause = execution.task_runs[0]
    assert [h[0] for h in pause.state.histories] == ["CREATED", "RUNNING", "PAUSED", "RUNNING", "SUCCESS"]


def test_pause_behaviors_and_timeout():
    for behavior, expected in [("WARN", states.WARNING), ("FAIL", states.FAILED), ("CANCEL", states.CANCELLED)]:
        run = memory.run(flow(f"""
        tasks:
          - id: pause
            type: io.kestra.plugin.core.flow.Pause
            pauseDuration: PT1S
            behavior: {behavior}
        """))
        assert run.state == expected, behavior
    run = memory.run(flow("""
    tasks:
      - id: pause
        type: io.kestra.plugin.core.flow.Pause
        timeout: PT1S
    """))
    assert run.state == states.FAILED


def test_switch_without_a_match_or_defaults_fails():
    run = memory.run(flow(f"""
    tasks:
      - id: sw
        type: io.kestra.plugin.core.flow.Switch
        value: "nothing"
        cases:
          a:
            - id: a
              type: {RETURN}
              format: x
    """))
    assert run.state == states.FAILED
    assert states_of(run) == [("sw", None, "FAILED")]


def test_children_of_non_dynamic_flowables_have_no_value():
    run = memory.run(flow(f"""
    tasks:
      - id: each
        type: io.kestra.plugin.core.flow.ForEach
        values: ["v"]
        tasks:
          - id: seq
            type: io.kestra.plugin.core.flow.Sequential
            tasks:
              - id: leaf
                type: {RETURN}
                format: "{{{{ parent.taskrun.value }}}}"
      - id: read
        type: {RETURN}
        format: "{{{{ outputs.leaf['v'].value }}}}"
    """))
    assert states_of(run)[1:3] == [("seq", "v", "SUCCESS"), ("leaf", None, "SUCCESS")]
    assert run.run("read").outputs == {"value": "v"}


def test_exit_ends_the_execution_in_the_given_state():
    run = memory.run(flow(f"""
    tasks:
      - id: stop
        type: io.kestra.plugin.core.execution.Exit
        state: WARNING
      - id: never
        type: {RETURN}
        format: x
    """))
    assert run.state == states.WARNING
    assert [r.task_id for r in run.execution.task_runs] == ["stop"]


def test_loop_until_repeats_until_the_condition_holds():
    run = memory.run(flow("""
    tasks:
      - id: loop
        type: io.kestra.plugin.core.flow.LoopUntil
        condition: "{{ outputs.count.value == '3' }}"
        checkFrequency:
          interval: PT0.1S
        tasks:
          - id: count
            type: io.kestra.plugin.core.debug.Return
            format: "{{ outputs.loop.iterationCount }}"
    """))
    assert run.state == states.SUCCESS
    assert [(r.task_id, r.iteration) for r in run.execution.task_runs][1:] == [("count", 1), ("count", 2), ("count", 3)]
    assert run.run("loop").outputs == {"iterationCount": 3}


@pytest.mark.parametrize("fail_on_max, expected", [(False, states.SUCCESS), (True, states.FAILED)])
def test_loop_until_stops_at_max_iterations(fail_on_max, expected):
    run = memory.run(flow(f"""
    tasks:
      - id: loop
        type: io.kestra.plugin.core.flow.LoopUntil
        condition: "{{{{ false }}}}"
        failOnMaxReached: {str(fail_on_max).lower()}
        checkFrequency:
          interval: PT0.1S
          maxIterations: 2
        tasks:
          - id: count
            type: {RETURN}
            format: x
    """))
    assert run.state == expected
    assert len(run.runs("count")) == 2
    assert any(line.message == "Max iterations reached" for line in run.logs)


def test_after_execution_and_listeners_run_once_the_state_is_final():
    run = memory.run(flow(f"""
    listeners:
      - tasks:
          - id: listener
            type: {FAIL}
    tasks:
      - id: ko
        type: {FAIL}
    afterExecution:
      - id: notify
        type: {RETURN}
        format: "{{{{ execution.state }}}}"
    """))
    assert run.state == states.FAILED
    assert states_of(run) == [("ko", None, "FAILED"), ("listener", None, "FAILED"), ("notify", None, "SUCCESS")]
    assert run.run("notify").outputs == {"value": "FAILED"}


def test_listeners_run_only_when_their_conditions_hold():
    run = memory.run(flow(f"""
    listeners:
      - conditions:
          - type: io.kestra.plugin.core.condition.ExecutionStatus
            in: [FAILED]
        tasks:
          - id: on-failure
            type: {RETURN}
            format: x
      - conditions:
          - type: io.kestra.plugin.core.condition.ExecutionStatus
            in: [SUCCESS]
        tasks:
          - id: on-success
            type: {RETURN}
            format: x
    tasks:
      - id: ok
        type: {RETURN}
        format: x
    """))
    assert [r.task_id for r in run.execution.task_runs] == ["ok", "on-success"]
