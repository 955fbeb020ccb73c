"""Restart, replay, manual state changes, pause/resume and the concurrency queue, without a database
(spec §8.6-§8.11): an execution is produced by the in-memory runner, changed by an operation, then
driven again by the executor when the test needs its outcome."""
from __future__ import annotations

import textwrap
from datetime import timedelta

import pytest

from orchestrator.engine import expressions, memory, operations, states
from orchestrator.engine.executor import Environment, apply_result, decide
from orchestrator.engine.flow import parse_flow
from orchestrator.engine.model import Execution, State
from orchestrator.engine.timeutil import now

RETURN = "io.kestra.plugin.core.debug.Return"
LOG = "io.kestra.plugin.core.log.Log"
FAIL = "io.kestra.plugin.core.execution.Fail"
#: fails on its first attempt only (``ko`` is undefined), succeeds on the next one
FIRST_ATTEMPT_FAILS = "\"{{ taskrun.attemptsCount == 1 ? 'ok' : ko }}\""


def flow(body: str) -> str:
    return "id: t\nnamespace: tests\n" + textwrap.dedent(body)


def drive(parsed, execution: Execution, max_steps: int = 10_000) -> Execution:
    """Step an existing execution to its end (or until it waits forever), as ``memory.run`` does."""
    clock = [now()]
    env = Environment(render=expressions.render, is_truthy=expressions.is_truthy, now=lambda: clock[0])
    pending = []
    for _ in range(max_steps):
        decision = decide(parsed, execution, env)
        pending.extend(decision.jobs)
        if execution.state.is_terminated():
            break
        if not pending:
            if decision.wake_at is None:
                break
            clock[0] = max(clock[0], decision.wake_at) + timedelta(microseconds=1)
            continue
        result, _ = memory.run_job(parsed, pending.pop(0))
        apply_result(parsed, execution, result, clock[0])
    return execution


def by_task(execution: Execution, task_id: str, value: str | None = None):
    found = [r for r in execution.task_runs if r.task_id == task_id and (value is None or r.value == value)]
    assert found, f"no run of {task_id}"
    return found[0]


def history(state: State) -> list[str]:
    return [s for s, _ in state.histories]


def labels(execution: Execution) -> dict[str, str]:
    return {label["key"]: label["value"] for label in execution.labels}


LAST_FAILED = flow(f"""
tasks:
  - id: a
    type: {RETURN}
    format: a
  - id: seq
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: b
        type: {RETURN}
        format: b
      - id: c
        type: {LOG}
        message: {FIRST_ATTEMPT_FAILS}
    errors:
      - id: local-handler
        type: {LOG}
        message: handled
  - id: d
    type: {RETURN}
    format: d
errors:
  - id: handler
    type: {LOG}
    message: handled
""")


# --- restart -------------------------------------------------------------------------------------------

def test_restart_keeps_the_id_and_restarts_the_failed_run_and_its_ancestors():
    # given an execution failed at c, with its local and global errors handlers run
    run = memory.run(LAST_FAILED)
    assert run.state == states.FAILED
    before = run.execution
    assert [r.task_id for r in before.task_runs] == ["a", "seq", "b", "c", "local-handler", "handler"]
    # when
    restarted = operations.restart(run.flow, before)
    # then the failed runnable is RESTARTED, its flowable parent RUNNING, successful runs kept
    assert restarted.id == before.id
    assert restarted.state.current == states.RESTARTED
    assert history(restarted.state) == history(before.state) + [states.RESTARTED]
    assert [r.task_id for r in restarted.task_runs] == ["a", "seq", "b", "c"]
    assert by_task(restarted, "c").state.current == states.RESTARTED
    assert by_task(restarted, "seq").state.current == states.RUNNING
    assert by_task(restarted, "a").state.current == states.SUCCESS
    assert by_task(restarted, "a").outputs == {"value": "a"}
    assert [r.id for r in restarted.task_runs] == [r.id for r in before.task_runs[:4]]
    assert restarted.metadata["attemptNumber"] == 2
    assert labels(restarted)["system.restarted"] == "true"
    # and the original object is untouched
    assert before.state.current == states.FAILED and len(before.task_runs) == 6


def test_a_restarted_run_gets_a_new_attempt_and_the_flow_goes_on():
    run = memory.run(LAST_FAILED)
    restarted = operations.restart(run.flow, run.execution)
    # when the executor drives it again
    done = drive(run.flow, restarted)
    # then
    assert done.state.current == states.SUCCESS
    assert [r.task_id for r in done.task_runs] == ["a", "seq", "b", "c", "d"]
    assert len(by_task(done, "c").attempts) == 2
    assert len(by_task(done, "a").attempts) == 1
    assert history(by_task(done, "c").state)[-4:] == [states.FAILED, states.RESTARTED, states.RUNNING,
                                                      states.SUCCESS]
    assert all(r.state.current == states.SUCCESS for r in done.task_runs)


def test_restart_can_be_repeated():
    source = flow(f"""
    tasks:
      - id: t1
        type: {RETURN}
        format: "{{{{ missingVar }}}}"
    """)
    run = memory.run(source)
    once = drive(run.flow, operations.restart(run.flow, run.execution))
    assert once.state.current == states.FAILED
    twice = drive(run.flow, operations.restart(run.flow, once))
    assert twice.state.current == states.FAILED
    assert len(by_task(twice, "t1").attempts) == 3
    assert twice.metadata["attemptNumber"] == 3
    assert [label["key"] for label in twice.labels].count("system.restarted") == 1


def test_restart_refuses_a_running_execution():
    parsed = parse_flow(LAST_FAILED)
    execution = Execution.create("tests", "t", 1)
    execution.state = execution.state.with_state(states.RUNNING)
    with pytest.raises(operations.IllegalExecutionState,
                       match="Execution must be terminated to be restarted, current state is 'RUNNING' !"):
        operations.restart(parsed, execution)


def test_restart_without_a_failed_task_is_refused():
    run = memory.run(flow(f"""
    tasks:
      - id: ok
        type: {RETURN}
        format: x
    """))
    with pytest.raises(operations.OperationError, match="No task found to restart execution from!"):
        operations.restart(run.flow, run.execution)


def test_restart_inside_loops_restarts_every_failed_value():
    source = flow(f"""
    tasks:
      - id: each
        type: io.kestra.plugin.core.flow.ForEach
        concurrencyLimit: 0
        values: ["v1", "v2", "v3"]
        tasks:
          - id: seq
            type: io.kestra.plugin.core.flow.Sequential
            tasks:
              - id: t
                type: {LOG}
                message: {FIRST_ATTEMPT_FAILS}
      - id: end
        type: {RETURN}
        format: end
    """)
    run = memory.run(source)
    assert run.state == states.FAILED
    restarted = operations.restart(run.flow, run.execution)
    assert sum(r.state.current == states.RESTARTED for r in restarted.task_runs) == 3
    assert sum(r.state.current == states.RUNNING for r in restarted.task_runs) == 4  # each + 3 seq
    done = drive(run.flow, restarted)
    assert done.state.current == states.SUCCESS
    assert by_task(done, "end").state.current == states.SUCCESS


def test_restart_of_an_allow_failure_run_whose_attempt_failed():
    run = memory.run(flow(f"""
    tasks:
      - id: soft
        type: {LOG}
        allowFailure: true
        message: {FIRST_ATTEMPT_FAILS}
    """))
    assert run.state == states.WARNING
    restarted = operations.restart(run.flow, run.execution)
    assert by_task(restarted, "soft").state.current == states.RESTARTED
    assert drive(run.flow, restarted).state.current == states.SUCCESS


def test_restart_with_a_revision_is_a_new_execution():
    run = memory.run(LAST_FAILED)
    restarted = operations.restart(run.flow, run.execution, revision=2)
    assert restarted.id != run.execution.id
    assert restarted.parent_id == run.execution.id
    assert restarted.original_id == run.execution.original_id
    assert restarted.flow_revision == 2
    old_ids = {r.id for r in run.execution.task_runs}
    assert not {r.id for r in restarted.task_runs} & old_ids
    seq = by_task(restarted, "seq")
    assert by_task(restarted, "c").parent_task_run_id == seq.id
    assert all(r.execution_id == restarted.id for r in restarted.task_runs)


# --- replay --------------------------------------------------------------------------------------------

SEQUENCE = flow(f"""
tasks:
  - id: first
    type: {RETURN}
    format: "1"
  - id: second
    type: {RETURN}
    format: "{{{{ outputs.first.value }}}}+2"
  - id: third
    type: {RETURN}
    format: "3"
finally:
  - id: cleanup
    type: {RETURN}
    format: done
""")


def test_replay_from_a_task_run_copies_what_precedes_it_into_a_new_execution():
    run = memory.run(SEQUENCE)
    original = run.execution
    second = by_task(original, "second")
    # when
    replayed = operations.replay(run.flow, original, second.id)
    # then
    assert replayed.id != original.id
    assert replayed.parent_id == original.id
    assert replayed.original_id == original.id
    assert replayed.state.current == states.RESTARTED
    assert history(replayed.state) == history(original.state) + [states.RESTARTED]
    assert [r.task_id for r in replayed.task_runs] == ["first", "second"]
    assert [r.state.current for r in replayed.task_runs] == [states.SUCCESS, states.RESTARTED]
    assert not {r.id for r in replayed.task_runs} & {r.id for r in original.task_runs}
    assert by_task(replayed, "first").outputs == {"value": "1"}
    assert replayed.metadata["attemptNumber"] == 2
    assert labels(replayed)["system.replay"] == "true"
    assert replayed.inputs == original.inputs
    # and it runs from there
    done = drive(run.flow, replayed)
    assert done.state.current == states.SUCCESS
    assert [r.task_id for r in done.task_runs] == ["first", "second", "third", "cleanup"]
    assert len(by_task(done, "second").attempts) == 2
    assert len(by_task(done, "first").attempts) == 1


def test_replay_of_a_replay_keeps_the_first_original_id():
    run = memory.run(SEQUENCE)
    first = operations.replay(run.flow, run.execution, by_task(run.execution, "third").id)
    again = operations.replay(run.flow, drive(run.flow, first), None)
    assert again.original_id == run.execution.id
    assert again.parent_id == first.id


def test_replay_from_the_start_is_a_fresh_execution():
    run = memory.run(SEQUENCE)
    replayed = operations.replay(run.flow, run.execution)
    assert replayed.task_runs == []
    assert replayed.state.current == states.CREATED
    assert history(replayed.state) == [states.CREATED]
    assert drive(run.flow, replayed).state.current == states.SUCCESS


def test_replay_from_an_unknown_task_run_is_refused():
    run = memory.run(SEQUENCE)
    with pytest.raises(operations.OperationError, match="No task found to restart execution from!"):
        operations.replay(run.flow, run.execution, "unknownTaskId")


def test_replay_with_new_inputs_and_revision():
    run = memory.run(SEQUENCE)
    replayed = operations.replay(run.flow, run.execution, revision=3, inputs={"name": "other"})
    assert replayed.flow_revision == 3
    assert replayed.inputs == {"name": "other"}


def test_mark_replayed_labels_the_original():
    run = memory.run(SEQUENCE)
    marked = operations.mark_replayed(run.execution)
    assert labels(marked)["system.replayed"] == "true"
    assert "system.replayed" not in labels(run.execution)


NESTED_PARALLEL = flow(f"""
tasks:
  - id: par
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: p1
        type: {RETURN}
        format: p1
      - id: inner
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: i1
            type: {RETURN}
            format: i1
          - id: i2
            type: {RETURN}
            format: i2
      - id: p3
        type: {RETURN}
        format: p3
  - id: end
    type: {RETURN}
    format: end
""")


def test_replay_from_a_flowable_drops_its_children_and_what_follows_but_not_parallel_branches():
    run = memory.run(NESTED_PARALLEL)
    assert len(run.execution.task_runs) == 7
    inner = by_task(run.execution, "inner")
    replayed = operations.replay(run.flow, run.execution, inner.id)
    assert sorted(r.task_id for r in replayed.task_runs) == ["inner", "p1", "p3", "par"]
    assert by_task(replayed, "inner").state.current == states.RUNNING
    assert history(by_task(replayed, "inner").state) == [states.CREATED, states.RUNNING, states.SUCCESS,
                                                         states.RUNNING]
    assert by_task(replayed, "par").state.current == states.RUNNING
    done = drive(run.flow, replayed)
    assert done.state.current == states.SUCCESS
    assert sorted(r.task_id for r in done.task_runs) == ["end", "i1", "i2", "inner", "p1", "p3", "par"]


def test_successors_follow_the_plan():
    source = flow(f"""
    tasks:
      - id: a
        type: {RETURN}
        format: a
      - id: dag
        type: io.kestra.plugin.core.flow.Dag
        tasks:
          - task:
              id: d1
              type: {RETURN}
              format: d1
          - task:
              id: d2
              type: {RETURN}
              format: d2
            dependsOn: [d1]
          - task:
              id: d3
              type: {RETURN}
              format: d3
      - id: z
        type: {RETURN}
        format: z
    finally:
      - id: f
        type: {RETURN}
        format: f
    """)
    run = memory.run(source)
    assert run.state == states.SUCCESS
    ids = {r.task_id: r.id for r in run.execution.task_runs}
    after_d1 = operations.successors(run.flow, run.execution, ids["d1"])
    assert {r.task_id for r in run.execution.task_runs if r.id in after_d1} == {"d2", "z", "f"}
    after_a = operations.successors(run.flow, run.execution, ids["a"])
    assert {r.task_id for r in run.execution.task_runs if r.id in after_a} == {"dag", "d1", "d2", "d3", "z", "f"}


# --- mark as -------------------------------------------------------------------------------------------

EACH_PARALLEL = flow(f"""
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.EachParallel
    value: ["v1", "v2"]
    tasks:
      - id: seq
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: t1
            type: {RETURN}
            format: "{{{{ parents[0].taskrun.value }}}}"
  - id: end
    type: {RETURN}
    format: end
""")


def test_mark_as_sets_the_run_and_its_last_attempt_and_reruns_its_ancestors():
    run = memory.run(EACH_PARALLEL)
    assert run.state == states.SUCCESS
    t1 = next(r for r in run.execution.task_runs
              if r.task_id == "t1" and by_id(run.execution, r.parent_task_run_id).value == "v1")
    marked = operations.mark_as(run.flow, run.execution, t1.id, states.FAILED)
    changed = by_id(marked, t1.id)
    assert changed.state.current == states.FAILED
    assert history(changed.state) == [states.CREATED, states.RUNNING, states.SUCCESS, states.FAILED]
    assert changed.attempts[-1].state.current == states.FAILED
    assert by_id(marked, t1.parent_task_run_id).state.current == states.RUNNING
    assert by_task(marked, "each").state.current == states.RUNNING
    assert marked.state.current == states.RESTARTED
    assert len(history(marked.state)) == 4
    assert len(marked.task_runs) == len(run.execution.task_runs)
    assert drive(run.flow, marked).state.current == states.FAILED


def test_mark_as_a_flowable_sets_it_without_attempts():
    run = memory.run(EACH_PARALLEL)
    seq = next(r for r in run.execution.task_runs if r.task_id == "seq" and r.value == "v1")
    marked = operations.mark_as(run.flow, run.execution, seq.id, states.FAILED)
    assert by_id(marked, seq.id).state.current == states.FAILED
    assert by_id(marked, seq.id).attempts == []
    assert by_task(marked, "each").state.current == states.RUNNING


def test_marking_a_failed_task_success_lets_the_flow_go_on():
    run = memory.run(flow(f"""
    tasks:
      - id: ko
        type: {FAIL}
      - id: after
        type: {RETURN}
        format: x
    """))
    assert run.state == states.FAILED
    marked = operations.mark_as(run.flow, run.execution, by_task(run.execution, "ko").id, "success")
    done = drive(run.flow, marked)
    assert done.state.current == states.SUCCESS
    assert by_task(done, "after").state.current == states.SUCCESS


def test_mark_as_checks_the_state_and_the_task_run():
    run = memory.run(EACH_PARALLEL)
    with pytest.raises(operations.OperationError, match="Invalid state 'NOPE'"):
        operations.mark_as(run.flow, run.execution, run.execution.task_runs[0].id, "NOPE")
    with pytest.raises(operations.OperationError, match="No task found to restart execution from!"):
        operations.mark_as(run.flow, run.execution, "unknown", states.SUCCESS)


def test_change_status_only_between_terminal_states():
    run = memory.run(EACH_PARALLEL)
    changed = operations.change_status(run.execution, "failed")
    assert changed.state.current == states.FAILED
    assert history(changed.state)[-2:] == [states.SUCCESS, states.FAILED]
    with pytest.raises(operations.OperationError,
                       match="You can only change the state of an execution to a terminal state."):
        operations.change_status(run.execution, states.RUNNING)
    running = Execution.create("tests", "t", 1)
    running.state = running.state.with_state(states.RUNNING)
    with pytest.raises(operations.OperationError, match="You can only change the state of a terminated execution."):
        operations.change_status(running, states.SUCCESS)


def by_id(execution: Execution, run_id: str):
    return next(r for r in execution.task_runs if r.id == run_id)


# --- pause / resume ------------------------------------------------------------------------------------

PAUSE_ON_RESUME = flow(f"""
tasks:
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: asked
        type: STRING
  - id: last
    type: {RETURN}
    format: "{{{{ outputs.pause.onResume.asked }}}}"
""")


def test_resume_ends_the_pause_with_its_inputs_as_outputs():
    run = memory.run(PAUSE_ON_RESUME)
    assert run.state == states.PAUSED
    assert operations.resume_definitions(run.flow, run.execution) == [{"id": "asked", "type": "STRING"}]
    resumed = operations.resume(run.flow, run.execution, {"asked": "yes"})
    pause = by_task(resumed, "pause")
    assert pause.state.current == states.SUCCESS
    assert history(pause.state)[-3:] == [states.PAUSED, states.RUNNING, states.SUCCESS]
    assert pause.outputs["onResume"] == {"asked": "yes"}
    assert pause.outputs["resumed"]["to"] == states.RUNNING
    assert pause.outputs["resumed"]["by"] is None
    assert resumed.state.current == states.RESTARTED
    done = drive(run.flow, resumed)
    assert done.state.current == states.SUCCESS
    assert by_task(done, "last").outputs == {"value": "yes"}


def test_resume_runs_the_tasks_of_a_pause_that_has_some():
    source = flow(f"""
    tasks:
      - id: pause
        type: io.kestra.plugin.core.flow.Pause
        tasks:
          - id: inside
            type: {RETURN}
            format: inside
      - id: last
        type: {RETURN}
        format: last
    """)
    run = memory.run(source)
    assert run.state == states.PAUSED
    resumed = operations.resume(run.flow, run.execution, {})
    assert by_task(resumed, "pause").state.current == states.RUNNING
    done = drive(run.flow, resumed)
    assert done.state.current == states.SUCCESS
    assert [r.task_id for r in done.task_runs] == ["pause", "inside", "last"]


def test_marking_a_paused_pause_running_ends_it():
    run = memory.run(flow(f"""
    tasks:
      - id: pause
        type: io.kestra.plugin.core.flow.Pause
      - id: last
        type: {RETURN}
        format: last
    """))
    marked = operations.mark_as(run.flow, run.execution, by_task(run.execution, "pause").id, states.RUNNING)
    assert by_task(marked, "pause").state.current == states.SUCCESS
    assert drive(run.flow, marked).state.current == states.SUCCESS


def test_resume_refuses_an_execution_that_is_not_paused():
    run = memory.run(SEQUENCE)
    with pytest.raises(operations.IllegalExecutionState, match="Execution is not paused"):
        operations.resume(run.flow, run.execution, {})


def test_pause_and_resume_by_hand():
    parsed = parse_flow(SEQUENCE)
    execution = Execution.create("tests", "t", 1)
    execution.state = execution.state.with_state(states.RUNNING)
    paused = operations.pause(execution)
    assert paused.state.current == states.PAUSED
    resumed = operations.resume(parsed, paused)
    assert resumed.state.current == states.RUNNING
    assert history(resumed.state) == [states.CREATED, states.RUNNING, states.PAUSED, states.RUNNING]


def test_only_a_running_execution_can_be_paused():
    run = memory.run(SEQUENCE)
    with pytest.raises(operations.OperationError, match="The execution is not running"):
        operations.pause(run.execution)


def test_restart_of_a_paused_execution_resumes_the_pause():
    run = memory.run(PAUSE_ON_RESUME)
    restarted = operations.restart(run.flow, run.execution)
    assert by_task(restarted, "pause").state.current == states.RUNNING
    assert restarted.state.current == states.RESTARTED


# --- concurrency queue and force run -------------------------------------------------------------------

def queued() -> Execution:
    execution = Execution.create("tests", "t", 1)
    execution.state = execution.state.with_state(states.QUEUED)
    return execution


def test_unqueue_to_running_or_to_an_end():
    assert operations.unqueue(queued()).state.current == states.RUNNING
    assert operations.unqueue(queued(), "cancelled").state.current == states.CANCELLED
    with pytest.raises(operations.OperationError,
                       match=r"Invalid target state: SUCCESS. Valid states are: \[RUNNING, CANCELLED, FAILED\]"):
        operations.unqueue(queued(), states.SUCCESS)
    with pytest.raises(operations.OperationError, match="Only QUEUED execution can be unqueued"):
        operations.unqueue(Execution.create("tests", "t", 1))


def test_force_run():
    parsed = parse_flow(SEQUENCE)
    created = Execution.create("tests", "t", 1, schedule_date=now() + timedelta(hours=1))
    forced = operations.force_run(parsed, created)
    assert forced.state.current == states.RUNNING
    assert forced.schedule_date is None
    assert operations.force_run(parsed, queued()).state.current == states.RUNNING
    run = memory.run(PAUSE_ON_RESUME)
    forced = operations.force_run(run.flow, run.execution)
    assert by_task(forced, "pause").state.current == states.SUCCESS
    assert "onResume" not in by_task(forced, "pause").outputs
    with pytest.raises(operations.OperationError, match="Only non terminated executions can be forced run."):
        operations.force_run(parsed, memory.run(SEQUENCE).execution)


def test_marking_a_runnable_created_runs_it_again():
    run = memory.run(SEQUENCE)
    second = by_task(run.execution, "second")
    marked = operations.mark_as(run.flow, run.execution, second.id, states.CREATED)
    assert by_id(marked, second.id).state.current == states.RESTARTED
    done = drive(run.flow, marked)
    assert done.state.current == states.SUCCESS
    assert len(by_id(done, second.id).attempts) == 2
