"""What an operator does to an execution by hand: restart, replay, mark a task run, pause, resume...

Every function here is pure: it takes the flow and an execution (never modified) and returns the
changed copy, or a new execution. Storing it, under the execution's row lock, and waking the
executor up is the caller's job (:mod:`flows_app.services_admin`). The executor then drives what
these functions leave behind (spec §8.7-§8.11):

* an execution in RESTARTED becomes RUNNING at the next step;
* a flowable task run in RUNNING is driven again (its missing children are created);
* a task run in RESTARTED is run again: a runnable one gets a new attempt (its attempt list grows),
  a flowable one (WorkingDirectory) becomes RUNNING with no children.

Messages are Kestra's. :class:`IllegalExecutionState` is Kestra's ``IllegalStateException`` (HTTP
409); :class:`OperationError` its ``IllegalArgumentException`` (HTTP 422).
"""
from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, Iterable

from . import states
from .context import RunIndex
from .errors import CelestraError
from .ids import new_id
from .model import Execution, State, TaskRun
from .timeutil import now as utcnow

RESTARTED_LABEL = "system.restarted"
REPLAY_LABEL = "system.replay"
REPLAYED_LABEL = "system.replayed"

#: states an execution may be moved to when it leaves the concurrency queue by hand
UNQUEUE_STATES = (states.RUNNING, states.CANCELLED, states.FAILED)


class OperationError(CelestraError):
    """The operation cannot apply to this execution (Kestra's IllegalArgumentException, HTTP 422)."""


class IllegalExecutionState(CelestraError):
    """The execution is not in a state that allows the operation (Kestra's IllegalStateException, HTTP 409)."""


# --- helpers -----------------------------------------------------------------------------------------

def _append(state: State, new_state: str, at: datetime) -> State:
    """A transition that is always recorded, as Kestra's ``State.withState`` does (even to the same state)."""
    return State(new_state, [*state.histories, (new_state, at)])


def _task(flow: Any, task_id: str) -> Any | None:
    """The flow's task, or None for a run the flow does not declare (an internal child)."""
    try:
        return flow.find_task(task_id)
    except (CelestraError, KeyError):
        return None


def _is_flowable(task: Any | None) -> bool:
    return task is not None and task.is_flowable


def _restarts_as_a_whole(task: Any | None) -> bool:
    """A task run that restarts as one unit (RESTARTED, its children dropped): runnables and WorkingDirectory."""
    return task is None or not task.is_flowable or bool(task.plugin.restarts_as_a_whole)


def with_label(labels: list[dict[str, str]], key: str, value: str = "true") -> list[dict[str, str]]:
    """The labels plus ``key: value`` (once)."""
    out = [dict(label) for label in labels]
    if {"key": key, "value": value} not in out:
        out.append({"key": key, "value": value})
    return out


def _next_attempt(metadata: dict[str, Any]) -> dict[str, Any]:
    out = dict(metadata or {})
    out["attemptNumber"] = int(out.get("attemptNumber") or 1) + 1
    return out


def _with_ancestors(index: RunIndex, runs: Iterable[TaskRun]) -> set[str]:
    """Ids of the given runs and of all their ancestors."""
    out: set[str] = set()
    for run in runs:
        out.add(run.id)
        out.update(ancestor.id for ancestor in index.ancestors(run))
    return out


def _descendants(index: RunIndex, run_ids: Iterable[str]) -> set[str]:
    out: set[str] = set()
    stack = list(run_ids)
    while stack:
        for child in index.children.get(stack.pop(), ()):
            if child.id not in out:
                out.add(child.id)
                stack.append(child.id)
    return out


def _handler_task_ids(flow: Any) -> set[str]:
    """Ids of every task of a root or local ``errors``/``finally`` list, nested ones included (and
    of ``afterExecution`` and listeners): their runs are dropped by a restart so that they run again
    after it."""
    roots: list[Any] = [*flow.errors, *flow.finally_, *getattr(flow, "after_execution", [])]
    for listener in getattr(flow, "listeners", None) or []:
        roots.extend(listener.get("tasks") or [])
    for task in flow.all_tasks():
        roots.extend(getattr(task, "errors", None) or [])
        roots.extend(getattr(task, "finally_", None) or [])
    out: set[str] = set()
    stack = list(roots)
    while stack:
        task = stack.pop()
        if task.id in out:
            continue
        out.add(task.id)
        stack.extend(task.children())
    return out


def _failed_for_restart(flow: Any, run: TaskRun) -> bool:
    """FAILED, KILLED or PAUSED runs restart; so do allowFailure runs whose (last) attempt failed."""
    if run.state.current in (states.FAILED, states.KILLED, states.PAUSED):
        return True
    task = _task(flow, run.task_id)
    if task is None or not task.allow_failure or run.state.current not in (states.WARNING, states.SUCCESS):
        return False
    if run.attempts and run.attempts[-1].state.current == states.FAILED:
        return True
    return any(state == states.FAILED for state, _ in run.state.histories)


def _restart_set(index: RunIndex, chosen: list[TaskRun]) -> set[str]:
    found = _with_ancestors(index, chosen)
    if not found:
        raise OperationError("No task found to restart execution from!")
    return found


def _restarted_state(flow: Any, run: TaskRun, at: datetime) -> State:
    """RESTARTED for a run that runs again as a whole; RUNNING for a flowable ancestor driven again."""
    task = _task(flow, run.task_id)
    target = states.RESTARTED if _restarts_as_a_whole(task) else states.RUNNING
    return _append(run.state, target, at)


def _copy_for(execution: Execution) -> Execution:
    """A deep copy, without the executor's cached run index (it would describe the runs before the change)."""
    index = execution.__dict__.pop("_index", None)
    try:
        return copy.deepcopy(execution)
    finally:
        if index is not None:
            execution.__dict__["_index"] = index


def _restart_runs(flow: Any, runs: dict[str, TaskRun], run_ids: Iterable[str], at: datetime) -> None:
    """Set the runs RESTARTED (their bookkeeping of the previous run cleared) or, for flowable ancestors,
    RUNNING (their bookkeeping kept: loop values, a pause already taken)."""
    for run_id in run_ids:
        run = runs[run_id]
        run.state = _restarted_state(flow, run, at)
        if run.state.current == states.RESTARTED:
            run.internal = {}


# --- plan order (which task runs come after a given one) ------------------------------------------------

def _sections(flow: Any, parent: TaskRun | None) -> list[tuple[str, list[Any]]]:
    """The task lists under ``parent`` (the flow root when None) as (kind, tasks), in plan order.

    kind: ``seq`` (one after another), ``par`` (side by side), ``dag`` (Dag entries), ``errors``,
    ``finally``.
    """
    if parent is None:
        return [("seq", list(flow.tasks)), ("errors", list(flow.errors)), ("finally", list(flow.finally_)),
                ("finally", list(getattr(flow, "after_execution", [])))]
    task = _task(flow, parent.task_id)
    if task is None:
        return []
    out: list[tuple[str, list[Any]]] = []
    # children of one value that run side by side have no plan order between them
    main_kind = "par" if task.plugin.runs_children_in_parallel else "seq"
    for name, shape in task.plugin.task_fields.items():
        if name in ("errors", "finally"):
            continue
        value = task.props.get(name)
        if not value:
            continue
        if shape == "list":
            out.append((main_kind, list(value)))
        elif shape == "map":
            out.extend((main_kind, list(branch)) for branch in value.values() if branch)
        elif shape == "dag":
            out.append(("dag", list(value)))
        elif shape == "single":
            out.append(("seq", [value]))
    out.append(("errors", list(task.errors)))
    out.append(("finally", list(task.finally_)))
    return out


def _dag_dependents(entries: list[dict[str, Any]], task_id: str) -> set[str]:
    """Ids of the Dag tasks that depend on ``task_id``, directly or not."""
    found: set[str] = set()
    frontier = {task_id}
    while frontier:
        nxt = {entry["task"].id for entry in entries
               if set(entry.get("dependsOn") or []) & frontier and entry["task"].id not in found}
        found |= nxt
        frontier = nxt
    return found


def _later_in_plan(flow: Any, index: RunIndex, run: TaskRun) -> set[str]:
    """Ids of the sibling runs that the plan places after ``run`` under the same parent (same loop value)."""
    parent = index.parent(run)
    sections = _sections(flow, parent)
    siblings = [r for r in index.children.get(parent.id if parent else None, ()) if r.value == run.value]
    later_ids: set[str] = set()
    position = None
    for number, (kind, tasks) in enumerate(sections):
        ids = [t["task"].id if kind == "dag" else t.id for t in tasks]
        if run.task_id in ids:
            position = number
            if kind in ("seq", "errors", "finally"):
                later_ids.update(ids[ids.index(run.task_id) + 1:])
            elif kind == "dag":
                later_ids.update(_dag_dependents(tasks, run.task_id))
            break
    if position is None:
        return set()
    kind = sections[position][0]
    for later_kind, tasks in sections[position + 1:]:
        if kind in ("seq", "par", "dag") and later_kind in ("errors", "finally"):
            later_ids.update(t.id for t in tasks)
        elif kind == "errors" and later_kind == "finally":
            later_ids.update(t.id for t in tasks)
    return {r.id for r in siblings if r.task_id in later_ids and r.id != run.id}


def successors(flow: Any, execution: Execution, taskrun_id: str) -> set[str]:
    """Ids of the task runs that come after ``taskrun_id`` in the flow's plan, and of its own children.

    Walking up from the run: at each level, the later siblings of a sequential list (and the
    ``errors``/``finally`` of that level), the Dag tasks depending on it, and everything below
    them. Branches of a Parallel or loop values are not ordered against each other.
    """
    index = RunIndex(execution)
    run = index.by_id.get(taskrun_id)
    if run is None:
        return set()
    out = _descendants(index, [run.id])
    current: TaskRun | None = run
    while current is not None:
        later = _later_in_plan(flow, index, current)
        out |= later | _descendants(index, later)
        current = index.parent(current)
    return out


# --- restart (spec §8.8) ------------------------------------------------------------------------------

def restart(flow: Any, execution: Execution, *, revision: int | None = None,
            now: datetime | None = None) -> Execution:
    """Restart a terminated (or paused) execution from its failed task runs.

    1. Every FAILED/KILLED/PAUSED task run (and allowFailure runs whose attempt failed) and all
       their ancestors restart: runnables (and WorkingDirectory) → RESTARTED, flowables → RUNNING.
    2. Children of a restarted WorkingDirectory are dropped, and so are the runs of every
       ``errors``/``finally``/``afterExecution`` task, so that they run again.
    3. The execution → RESTARTED, ``metadata.attemptNumber`` + 1, label ``system.restarted: true``.
       Without ``revision`` it keeps its id and task run ids; with one, it becomes a new execution
       (new ids, ``parentId`` = this one) of that flow revision.
    """
    moment = now or utcnow()
    current = execution.state.current
    if not (execution.state.is_terminated() or current == states.PAUSED):
        raise IllegalExecutionState(
            f"Execution must be terminated to be restarted, current state is '{current}' !")
    index = RunIndex(execution)
    to_restart = _restart_set(index, [r for r in execution.task_runs if _failed_for_restart(flow, r)])
    out = _copy_for(execution)
    runs = {r.id: r for r in out.task_runs}
    _restart_runs(flow, runs, to_restart, moment)
    dropped: set[str] = set()
    for run_id in to_restart:
        task = _task(flow, runs[run_id].task_id)
        if task is not None and task.plugin.restarts_as_a_whole:
            dropped |= _descendants(index, [run_id])
    handlers = _handler_task_ids(flow)
    dropped |= {r.id for r in out.task_runs if r.task_id in handlers}
    dropped |= _descendants(index, dropped)
    out.task_runs = [r for r in out.task_runs if r.id not in dropped]
    out.state = _append(execution.state, states.RESTARTED, moment)
    out.metadata = _next_attempt(execution.metadata)
    out.labels = with_label(execution.labels, RESTARTED_LABEL)
    if revision is not None:
        out = _as_new_execution(out, execution, revision)
    return out


def _as_new_execution(out: Execution, source: Execution, revision: int | None) -> Execution:
    """The same runs under a new execution id and new task run ids; ``parentId`` = the source's id."""
    new_execution_id = new_id()
    mapping = {run.id: new_id() for run in out.task_runs}
    for run in out.task_runs:
        run.id = mapping[run.id]
        run.execution_id = new_execution_id
        run.parent_task_run_id = mapping.get(run.parent_task_run_id) if run.parent_task_run_id else None
    out.id = new_execution_id
    out.parent_id = source.id
    out.original_id = source.original_id or source.id
    if revision is not None:
        out.flow_revision = revision
    return out


# --- replay (spec §8.9) -------------------------------------------------------------------------------

def replay(flow: Any, execution: Execution, taskrun_id: str | None = None, *, revision: int | None = None,
           inputs: dict[str, Any] | None = None, now: datetime | None = None) -> Execution:
    """A new execution that runs this one again, from the start or from one of its task runs.

    * Without ``taskrun_id``: a fresh execution (CREATED, no task run) with the same inputs.
    * With one: the runs before it in the plan are copied (outputs kept, new ids); the chosen run
      and its ancestors restart (runnable → RESTARTED, flowable → RUNNING); the runs after it and
      its own children are dropped. The state history is the original's plus RESTARTED.

    The new execution has ``parentId`` = this execution, ``originalId`` = the first of the replay
    chain, ``metadata.attemptNumber`` + 1 and the label ``system.replay: true``; ``inputs`` (already
    typed) replace the original inputs. The caller labels the original ``system.replayed: true``.
    """
    moment = now or utcnow()
    out = _copy_for(execution)
    if taskrun_id is None:
        out.task_runs = []
        out.state = State.new(states.CREATED, moment)
        out.outputs = None
    else:
        index = RunIndex(execution)
        chosen = [r for r in execution.task_runs if r.id == taskrun_id]
        to_restart = _restart_set(index, chosen)
        dropped = successors(flow, execution, taskrun_id) - to_restart
        for run_id in to_restart:
            task = _task(flow, index.by_id[run_id].task_id)
            if task is not None and task.plugin.restarts_as_a_whole:
                dropped |= _descendants(index, [run_id])
        _restart_runs(flow, {r.id: r for r in out.task_runs}, to_restart, moment)
        out.task_runs = [r for r in out.task_runs if r.id not in dropped]
        out.state = _append(execution.state, states.RESTARTED, moment)
    out.metadata = _next_attempt(execution.metadata)
    out.labels = with_label(execution.labels, REPLAY_LABEL)
    out.schedule_date = None
    if inputs is not None:
        out.inputs = inputs
    return _as_new_execution(out, execution, revision)


def mark_replayed(execution: Execution) -> Execution:
    """The original of a replay gets the label ``system.replayed: true``."""
    out = _copy_for(execution)
    out.labels = with_label(execution.labels, REPLAYED_LABEL)
    return out


# --- manual state changes (spec §8.11) ----------------------------------------------------------------

def _resumed_outputs(run: TaskRun, to_state: str, inputs: dict[str, Any] | None) -> dict[str, Any]:
    outputs = dict(run.outputs or {})
    if inputs is not None:
        outputs["onResume"] = inputs
    outputs["resumed"] = {"by": None, "on": datetime.now().isoformat(), "to": to_state}
    return outputs


def mark_as(flow: Any, execution: Execution, taskrun_id: str, state: str, *, now: datetime | None = None,
            inputs: dict[str, Any] | None = None, resumed: bool = False) -> Execution:
    """Set a task run to ``state`` and let the executor go on from there (``POST …/state``).

    1. The run (and its last attempt) takes ``state``; its flowable ancestors go back to RUNNING so
       that they compute their state again.
    2. A Pause run set to RUNNING without ``tasks`` ends SUCCESS at once (KILLED when set to
       KILLING); a resumed Pause run gets the ``onResume``/``resumed`` outputs. A runnable set to
       CREATED (or RESTARTED) is left RESTARTED, so that the executor runs it again.
    3. The execution → RESTARTED (``metadata.attemptNumber`` + 1), unless another task run is still
       PAUSED (parallel pauses): it then stays as it is.
    """
    moment = now or utcnow()
    state = str(state or "").upper()
    if state not in states.ALL_STATES:
        raise OperationError(f"Invalid state '{state}'")
    index = RunIndex(execution)
    chosen = [r for r in execution.task_runs if r.id == taskrun_id]
    to_change = _restart_set(index, chosen)
    out = _copy_for(execution)
    out.metadata = _next_attempt(execution.metadata)
    runs = {r.id: r for r in out.task_runs}
    for run_id in to_change:
        run = runs[run_id]
        task = _task(flow, run.task_id)
        if _is_flowable(task) and run_id != taskrun_id:
            run.state = _append(run.state, states.RUNNING, moment)
            continue
        if state in states.CREATED_LIKE and not _is_flowable(task):
            # to be run again: the executor re-runs a RESTARTED runnable (a new attempt)
            run.state = _append(run.state, states.RESTARTED, moment)
            run.internal = {}
            continue
        run.state = _append(run.state, state, moment)
        if task is not None and task.plugin.pauses:
            if resumed or task.props.get("onResume") is not None:
                run.outputs = _resumed_outputs(run, state, inputs)
            if not task.props.get("tasks"):
                if state == states.RUNNING:
                    run.state = _append(run.state, states.SUCCESS, moment)
                elif state == states.KILLING:
                    run.state = _append(run.state, states.KILLED, moment)
            run.internal.pop("resumeAt", None)
            run.internal.pop("timeoutAt", None)
        if run.attempts:
            last = run.attempts[-1]
            last.state = _append(last.state, state, moment)
    if any(r.state.current == states.PAUSED for r in out.task_runs):
        return out
    out.state = _append(execution.state, states.RESTARTED, moment)
    return out


def change_status(execution: Execution, state: str, *, now: datetime | None = None) -> Execution:
    """Rewrite the state of a terminated execution to another terminal state; nothing runs."""
    state = str(state or "").upper()
    if state not in states.TERMINATED:
        raise OperationError("You can only change the state of an execution to a terminal state.")
    if not execution.state.is_terminated():
        raise OperationError("You can only change the state of a terminated execution.")
    out = _copy_for(execution)
    out.state = _append(execution.state, state, now or utcnow())
    return out


# --- pause / resume (spec §8.7) -----------------------------------------------------------------------

def paused_run(flow: Any, execution: Execution) -> tuple[TaskRun, Any] | None:
    """The first PAUSED task run (creation order) and its task, or None (manual pause)."""
    for run in sorted(execution.task_runs, key=lambda r: r.seq):
        if run.state.current == states.PAUSED:
            return run, _task(flow, run.task_id)
    return None


def resume_definitions(flow: Any, execution: Execution) -> list[dict[str, Any]]:
    """The ``onResume`` input definitions of the paused Pause task (empty for a manual pause)."""
    found = paused_run(flow, execution)
    if found is None or found[1] is None or not found[1].plugin.pauses:
        return []
    return list(found[1].props.get("onResume") or [])


def resume(flow: Any, execution: Execution, inputs: dict[str, Any] | None = None, *,
           now: datetime | None = None) -> Execution:
    """Resume a PAUSED execution; ``inputs`` are the Pause's ``onResume`` inputs, already typed.

    The first paused task run is marked RUNNING (a Pause without ``tasks`` ends SUCCESS) with
    outputs ``onResume`` and ``resumed``, and the execution → RESTARTED. An execution paused by hand
    (no paused task run) goes back to RUNNING.
    """
    if execution.state.current != states.PAUSED:
        raise IllegalExecutionState("Execution is not paused, can't resume it")
    found = paused_run(flow, execution)
    if found is None:
        out = _copy_for(execution)
        out.state = _append(execution.state, states.RUNNING, now or utcnow())
        return out
    return mark_as(flow, execution, found[0].id, states.RUNNING, now=now, inputs=inputs, resumed=True)


def pause(execution: Execution, *, now: datetime | None = None) -> Execution:
    """A RUNNING execution → PAUSED: running task runs go on, no new one starts until resumed."""
    if execution.state.current != states.RUNNING:
        raise OperationError("The execution is not running")
    out = _copy_for(execution)
    out.state = _append(execution.state, states.PAUSED, now or utcnow())
    return out


# --- concurrency queue (spec §8.6) --------------------------------------------------------------------

def unqueue(execution: Execution, state: str | None = None, *, now: datetime | None = None) -> Execution:
    """Take a QUEUED execution out of its flow's queue, into RUNNING (default), CANCELLED or FAILED."""
    if execution.state.current != states.QUEUED:
        raise OperationError("Only QUEUED execution can be unqueued")
    target = str(state or states.RUNNING).upper()
    if target not in UNQUEUE_STATES:
        raise OperationError(f"Invalid target state: {target}. Valid states are: [{', '.join(UNQUEUE_STATES)}]")
    out = _copy_for(execution)
    out.state = _append(execution.state, target, now or utcnow())
    return out


def force_run(flow: Any, execution: Execution, *, now: datetime | None = None) -> Execution:
    """Run a waiting execution now: CREATED → RUNNING (schedule date and concurrency limit ignored),
    QUEUED → unqueued, PAUSED → resumed without inputs; any other running state is left as it is."""
    if execution.state.is_terminated():
        raise OperationError("Only non terminated executions can be forced run.")
    current = execution.state.current
    if current in states.CREATED_LIKE:
        out = _copy_for(execution)
        out.state = _append(execution.state, states.RUNNING, now or utcnow())
        out.schedule_date = None
        return out
    if current == states.QUEUED:
        return unqueue(execution, states.RUNNING, now=now)
    if current == states.PAUSED:
        found = paused_run(flow, execution)
        if found is None:
            return resume(flow, execution, now=now)
        return mark_as(flow, execution, found[0].id, states.RUNNING, now=now, resumed=True)
    return _copy_for(execution)
