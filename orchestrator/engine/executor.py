"""The executor's decision: given a flow and an execution, what happens next.

Everything here is pure: no database, no broker. :func:`decide` mutates the execution it is
given (new task runs, state transitions) and returns a :class:`Decision` listing what changed and
what the shell must do (dispatch jobs to workers, create subflow executions, wake up later).
:func:`apply_result` folds one worker result into the execution, idempotently.

Algorithm of one step (spec §4.1, §8.4):

1. A CREATED execution becomes RUNNING.
2. The root block is driven: ``tasks`` one after another, then ``errors`` if a root task failed,
   then ``finally``. Driving a block visits every task run of it; a flowable run is driven
   recursively with its own strategy (sequential, parallel, each value, dag, if, switch...).
3. New runnable task runs become worker jobs; ``runIf`` false makes them SKIPPED at creation.
4. Steps 2-3 repeat until nothing changes (a SKIPPED task lets the next one start at once).
5. When the root block is terminal, flow outputs are rendered and the execution ends.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from . import states
from .context import DYNAMIC_TYPES, base_context, index_of, taskrun_context
from .errors import CelestraError
from .model import Attempt, Execution, State, TaskRun
from .plugins import EXECUTABLE, EXECUTION_UPDATABLE, FLOWABLE, RUNNABLE
from .foreachitem import ITEMS as FOR_EACH_ITEM_ITEMS
from .references import referenced
from .truthy import is_truthy
from .timeutil import now as utcnow
from .timeutil import parse_duration

log = logging.getLogger("celestra.executor")

CORE = "io.kestra.plugin.core."


@dataclass
class WorkerJob:
    """A runnable task run to send to a worker."""

    execution_id: str
    taskrun_id: str
    task_id: str
    attempt: int
    worker_group: str | None
    context: dict[str, Any]
    namespace: str
    flow_id: str
    flow_revision: int

    def to_message(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class LogLine:
    level: str
    message: str
    task_id: str | None = None
    taskrun_id: str | None = None
    attempt_number: int | None = None
    timestamp: datetime = field(default_factory=utcnow)


@dataclass
class SubflowRequest:
    """A child execution to create for a Subflow task run (the shell creates it)."""

    taskrun_id: str
    task_id: str
    task_type: str
    namespace: str
    flow_id: str
    revision: Any
    inputs: dict[str, Any]
    labels: Any
    wait: bool
    transmit_failed: bool
    inherit_labels: bool
    schedule_date: Any = None


@dataclass
class Decision:
    new_runs: list[TaskRun] = field(default_factory=list)
    subflows: list[SubflowRequest] = field(default_factory=list)
    changed_runs: dict[str, TaskRun] = field(default_factory=dict)
    jobs: list[WorkerJob] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    execution_changed: bool = False
    ended: bool = False
    wake_at: datetime | None = None
    #: a flow retry with ``CREATE_NEW_EXECUTION``: the next attempt starts then
    retry_at: datetime | None = None

    def merge(self, later: "Decision") -> None:
        """Fold a later decision of the same step into this one."""
        known = {r.id for r in self.new_runs}
        self.new_runs.extend(later.new_runs)
        known.update(r.id for r in later.new_runs)
        for run_id, run in later.changed_runs.items():
            if run_id not in known:
                self.changed_runs[run_id] = run
        self.subflows = later.subflows
        self.jobs.extend(later.jobs)
        self.logs.extend(later.logs)
        self.execution_changed = self.execution_changed or later.execution_changed
        self.ended = self.ended or later.ended
        self.retry_at = self.retry_at or later.retry_at
        if later.wake_at is not None:
            self.wake(later.wake_at)

    def touch(self, run: TaskRun) -> None:
        """Record a changed run (a run created in the same step is written once, as new)."""
        self.changed_runs[run.id] = run

    def wake(self, at: datetime) -> None:
        if self.wake_at is None or at < self.wake_at:
            self.wake_at = at


@dataclass
class Environment:
    """What the executor needs from outside: a renderer and context extras (globals, envs...)."""

    render: Callable[[Any, dict[str, Any]], Any]
    extras: dict[str, Any] = field(default_factory=dict)
    is_truthy: Callable[[Any], bool] | None = None
    now: Callable[[], datetime] = utcnow


def as_text(value: Any) -> str:
    """A rendered value as Kestra compares it: strings as is, maps and lists as compact JSON,
    booleans ``true``/``false``, null empty."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, separators=(",", ":"))
    if value is None:
        return ""
    return "true" if value is True else "false" if value is False else str(value)


class _Step:
    """One executor step over one execution (see the module docstring)."""

    def __init__(self, flow: Any, execution: Execution, env: Environment):
        self.flow = flow
        self.execution = execution
        self.env = env
        self.now = env.now()
        self.decision = Decision()
        self.type_of = flow.task_types()
        self.index = index_of(execution, self.type_of)
        self.changed = False
        self._base: dict[str, Any] | None = None
        self._outputs: dict[str, Any] | None = None
        self._tasks: dict[str, Any] | None = None
        self._seq: int | None = None
        #: True while the execution is PAUSED: running work goes on, nothing new starts
        self.frozen = False
        self.resumed = False
        self.cancel = False
        self.exit_state: str | None = None

    # --- context ---------------------------------------------------------------------------
    def base(self) -> dict[str, Any]:
        if self._base is None:
            self._base = base_context(self.flow, self.execution, self.env.extras)
        return self._base

    def context_for(self, run: TaskRun, task: Any = None) -> dict[str, Any]:
        """The run's expression context; ``outputs``/``tasks`` hold what the task's expressions read."""
        wanted = referenced(task) if task is not None else {"outputs": None, "tasks": None}
        if wanted["outputs"] is None or wanted["tasks"] is None:
            if self._outputs is None:
                self._outputs = self.index.outputs_map()
                self._tasks = self.index.tasks_map()
        outputs = self._outputs if wanted["outputs"] is None else self.index.outputs_map(wanted["outputs"])
        tasks = self._tasks if wanted["tasks"] is None else self.index.tasks_map(wanted["tasks"])
        return taskrun_context(self.base(), self.index, run, self.type_of.get(run.task_id, ""), outputs, tasks)

    def invalidate_outputs(self) -> None:
        self._outputs = None
        self._tasks = None

    def render(self, value: Any, run: TaskRun) -> Any:
        return self.env.render(value, self.context_for(run, self.task_of(run)))

    def task_of(self, run: TaskRun) -> Any:
        return self.flow.find_task(run.task_id)

    def is_truthy(self, value: Any) -> bool:
        return (self.env.is_truthy or is_truthy)(value)

    # --- task run bookkeeping ----------------------------------------------------------------
    def transition(self, run: TaskRun, new_state: str) -> None:
        if run.state.current != new_state:
            run.state = run.state.with_state(new_state, self.now)
            self.decision.touch(run)
            self.changed = True
            self.invalidate_outputs()

    def log(self, level: str, message: str, run: TaskRun | None = None) -> None:
        self.decision.logs.append(LogLine(level, message, run.task_id if run else None, run.id if run else None,
                                          len(run.attempts) if run else None, self.now))

    def children(self, parent: TaskRun | None, tasks: list[Any], value: str | None = None,
                 by_value: bool = False, iteration: int | None = None) -> dict[str, TaskRun]:
        """The latest run of each task of ``tasks`` under ``parent`` (and loop value or iteration)."""
        ids = {t.id for t in tasks}
        out: dict[str, TaskRun] = {}
        parent_id = parent.id if parent else None
        candidates = self.index.by_parent_value.get((parent_id, value), ()) if by_value \
            else self.index.children.get(parent_id, ())
        for run in candidates:
            if run.task_id in ids and (iteration is None or run.iteration == iteration):
                out[run.task_id] = run
        return out

    def create(self, task: Any, parent: TaskRun | None, value: str | None = None,
               iteration: int | None = None) -> TaskRun:
        run = TaskRun.create(self.execution, task.id, parent, value, iteration)
        run.state = State.new(states.CREATED, self.now)
        run.seq = self._next_seq()
        if task.type in DYNAMIC_TYPES:
            run.dynamic = True
        self.execution.task_runs.append(run)
        self.index.add(run)
        self.decision.new_runs.append(run)
        self.changed = True
        self.invalidate_outputs()
        self.start(task, run)
        return run

    def _next_seq(self) -> int:
        return self.index.max_seq + 1

    def start(self, task: Any, run: TaskRun) -> None:
        """A new task run: evaluate runIf, then run it by kind."""
        if task.run_if is not None and task.run_if != "true":
            try:
                condition = self.render(task.run_if, run)
            except CelestraError as exc:
                self.fail(run, f"Unable to evaluate runIf: {exc}")
                return
            if not self.is_truthy(condition):
                self.transition(run, states.SKIPPED)
                return
        kind = task.kind
        if kind == FLOWABLE:
            self.transition(run, states.RUNNING)
        elif task.type == CORE + "execution.Exit":
            self.transition(run, states.RUNNING)
            self.exit_execution(task, run)
        elif kind == EXECUTION_UPDATABLE:
            self.transition(run, states.RUNNING)
            self.update_execution(task, run)
        elif kind == RUNNABLE:
            self.dispatch(task, run)
        elif kind == EXECUTABLE:
            self.start_subflow(task, run)
        else:
            self.fail(run, f"Task type {task.type} cannot run as a task")

    def dispatch(self, task: Any, run: TaskRun) -> None:
        attempt = len(run.attempts) + 1
        # a WorkingDirectory's children may read anything: its job carries the whole context
        context = self.context_for(run, None if task.type == CORE + "flow.WorkingDirectory" else task)
        self.decision.jobs.append(WorkerJob(
            execution_id=self.execution.id, taskrun_id=run.id, task_id=task.id, attempt=attempt,
            worker_group=task.worker_group, context=context, namespace=self.execution.namespace,
            flow_id=self.execution.flow_id, flow_revision=self.execution.flow_revision,
        ))

    def fail(self, run: TaskRun, message: str) -> None:
        self.log("ERROR", message, run)
        self.transition(run, states.FAILED)

    def terminate(self, task: Any, run: TaskRun, state: str) -> None:
        """End a flowable run; children still running are forced to the same terminal state."""
        state = states.apply_failure_policy(state, task.allow_failure, task.allow_warning)
        stack = list(self.index.children.get(run.id, ()))
        while stack:
            child = stack.pop()
            if not child.state.is_terminated():
                self.transition(child, state if state in states.TERMINATED else states.KILLED)
            stack.extend(self.index.children.get(child.id, ()))
        self.transition(run, state)

    # --- execution-updatable tasks ----------------------------------------------------------
    def update_execution(self, task: Any, run: TaskRun) -> None:
        try:
            if task.type == CORE + "execution.Labels":
                labels = self.render(task.props.get("labels"), run)
                if isinstance(labels, str):
                    import json
                    labels = json.loads(labels)
                pairs = labels.items() if isinstance(labels, dict) else [(l["key"], l["value"]) for l in labels]
                current = [dict(l) for l in self.execution.labels]
                for key, value in pairs:
                    key = str(key)
                    if key.startswith("system."):
                        raise CelestraError(f"System labels can only be set by Kestra itself, offending label: {key}={value}")
                    value = value if isinstance(value, str) else ("true" if value is True else "false" if value is False else str(value))
                    current = [l for l in current if l["key"] != key] + [{"key": key, "value": value}]
                self.execution.labels = current
            elif task.type == CORE + "execution.SetVariables":
                values = self.render(task.props.get("variables") or {}, run)
                variables = dict(self.execution.variables or {})
                overwrite = task.props.get("overwrite", True)
                for key, value in values.items():
                    if not overwrite and key in variables:
                        raise CelestraError(f"Variable {key} already exists")
                    if isinstance(value, dict) and isinstance(variables.get(key), dict):
                        value = {**variables[key], **value}
                    variables[key] = value
                self.execution.variables = variables
            elif task.type == CORE + "execution.UnsetVariables":
                variables = dict(self.execution.variables or {})
                for path in self.render(task.props.get("variables") or [], run):
                    node = variables
                    parts = str(path).split(".")
                    for part in parts[:-1]:
                        node = node.get(part, {}) if isinstance(node, dict) else {}
                    if isinstance(node, dict):
                        node.pop(parts[-1], None)
                self.execution.variables = variables
            else:
                raise CelestraError(f"{task.type} is not supported yet")
        except CelestraError as exc:
            self.fail(run, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a bad value must fail the task, not the executor
            self.fail(run, f"{type(exc).__name__}: {exc}")
            return
        self._base = None
        self.decision.execution_changed = True
        self.transition(run, states.SUCCESS)

    # --- strategies ---------------------------------------------------------------------------
    def visit(self, task: Any, run: TaskRun) -> str:
        """Drive a run if it is a running flowable; return its current state."""
        if run.state.current == states.RESTARTED:
            self.restart_run(task, run)
        if run.state.current == states.PAUSED and task.type == CORE + "flow.Pause":
            self.check_pause(task, run)
        if task.kind == FLOWABLE and run.state.current == states.RUNNING:
            self.drive_flowable(task, run)
        elif run.state.current == states.RETRYING:
            due = run.internal.get("retryAt")
            if due is not None and datetime.fromisoformat(due) <= self.now:
                run.internal.pop("retryAt", None)
                self.decision.touch(run)
                self.dispatch(task, run)
            elif due is not None:
                self.decision.wake(datetime.fromisoformat(due))
        return run.state.current

    def restart_run(self, task: Any, run: TaskRun) -> None:
        """A run set RESTARTED by a restart (spec §8.8): a flowable is driven again, a runnable
        gets a new attempt, a Subflow creates its child again."""
        if task.kind == FLOWABLE:
            for key in ("groupState", "dispatched", "paused", "nextAt"):
                run.internal.pop(key, None)
            self.index.memo.pop(run.id, None)
            self.transition(run, states.RUNNING)
        elif run.internal.get("restartDispatched"):
            return
        elif task.kind == RUNNABLE:
            run.internal["restartDispatched"] = True
            self.decision.touch(run)
            self.dispatch(task, run)
        elif task.kind == EXECUTABLE:
            run.internal["restartDispatched"] = True
            self.start_subflow(task, run)
        elif task.kind == EXECUTION_UPDATABLE:
            self.transition(run, states.RUNNING)
            self.update_execution(task, run)

    def sequential(self, parent: TaskRun | None, tasks: list[Any], value: str | None = None,
                   iteration: int | None = None, by_value: bool = False, by_iteration: bool = False) -> str | None:
        """Run ``tasks`` one after another; None while not finished, else the block state."""
        runs = self.children(parent, tasks, value, by_value, iteration if by_iteration else None)
        seen: list[str] = []
        for task in tasks:
            if task.disabled:
                continue
            run = runs.get(task.id)
            if run is None:
                if self.frozen:
                    return None
                run = self.create(task, parent, value, iteration)
            current = self.visit(task, run)
            seen.append(current)
            if current not in states.TERMINATED:
                return None
            if current in states.FAILED_LIKE:
                break
        return states.guess_final_state(seen)

    def parallel(self, parent: TaskRun, tasks: list[Any], concurrent: int) -> str | None:
        runs = self.children(parent, tasks)
        enabled = [t for t in tasks if not t.disabled]
        failed = any(r.state.current in states.FAILED_LIKE for r in runs.values())
        running = sum(1 for r in runs.values() if not r.state.is_terminated())
        for task in enabled:
            run = runs.get(task.id)
            if run is None:
                if failed or self.frozen or (concurrent and running >= concurrent):
                    continue
                run = self.create(task, parent)
                runs[task.id] = run
                if not run.state.is_terminated():
                    running += 1
            else:
                was_running = not run.state.is_terminated()
                self.visit(task, run)
                if was_running and run.state.is_terminated():
                    running -= 1
            failed = failed or run.state.current in states.FAILED_LIKE
        if any(not r.state.is_terminated() for r in runs.values()):
            return None
        if not failed and len(runs) < len(enabled):
            return None
        return states.guess_final_state([r.state.current for r in runs.values()])

    def each(self, task: Any, run: TaskRun, values: list[str], tasks: list[Any], limit: int) -> str | None:
        """ForEach: the ``tasks`` run sequentially per value; up to ``limit`` values at once (0: all).

        Progress is kept in the index's memo (values done with their state, values in flight, the
        next value to start), so a step visits the values in flight only, not every value.
        """
        memo = self.index.memo.get(run.id)
        if memo is None:
            ids = {t.id for t in tasks}
            started = {r.value for r in self.index.children.get(run.id, ()) if r.task_id in ids}
            order = {value: i for i, value in enumerate(values)}
            memo = {"done": {}, "active": sorted(started, key=lambda v: order.get(v, 0)), "failed": False,
                    "next": 0, "order": order}
            # the next value never started: after the started ones (values start in order)
            memo["next"] = max((order[v] + 1 for v in started if v in order), default=0)
            self.index.memo[run.id] = memo
        done: dict[str, str] = memo["done"]
        order = memo["order"]
        still_active = []
        for value in memo["active"]:
            block = self.sequential(run, tasks, value, order.get(value), by_value=True)
            if block is None:
                still_active.append(value)
            else:
                done[value] = block
                memo["failed"] = memo["failed"] or block in states.FAILED_LIKE
        position = memo["next"]
        # with no limit every value starts in one pass, as Kestra resolves them all at once: a failure
        # seen during that pass does not hold back the values after it
        failed_before = memo["failed"]
        while position < len(values) and not (memo["failed"] if limit else failed_before) and not self.frozen and (
                not limit or len(still_active) < limit):
            value = values[position]
            position += 1
            block = self.sequential(run, tasks, value, position - 1, by_value=True)
            if block is None:
                still_active.append(value)
            else:
                done[value] = block
                memo["failed"] = memo["failed"] or block in states.FAILED_LIKE
        memo["next"] = position
        memo["active"] = still_active
        if still_active or (position < len(values) and not memo["failed"]):
            return None
        return states.guess_final_state(set(done.values()))

    def dag(self, parent: TaskRun, entries: list[dict[str, Any]], concurrent: int) -> str | None:
        tasks = [e["task"] for e in entries]
        runs = self.children(parent, tasks)
        failed = any(r.state.current in states.FAILED_LIKE for r in runs.values())
        running = sum(1 for r in runs.values() if not r.state.is_terminated())
        for entry in entries:
            task = entry["task"]
            if task.disabled:
                continue
            run = runs.get(task.id)
            if run is not None:
                self.visit(task, run)
                failed = failed or run.state.current in states.FAILED_LIKE
                continue
            deps = entry.get("dependsOn") or []
            if failed or not all(d in runs and runs[d].state.is_terminated() for d in deps):
                continue
            if self.frozen or (concurrent and running >= concurrent):
                continue
            runs[task.id] = self.create(task, parent)
            running += 0 if runs[task.id].state.is_terminated() else 1
        enabled = [e["task"] for e in entries if not e["task"].disabled]
        if any(not r.state.is_terminated() for r in runs.values()):
            return None
        if not failed and len(runs) < len(enabled):
            return None
        return states.guess_final_state([r.state.current for r in runs.values()])

    def block(self, parent: TaskRun | None, main: Callable[[], str | None], errors: list[Any],
              finally_: list[Any]) -> str | None:
        """Main strategy, then ``errors`` when it failed, then ``finally``; the main state wins."""
        state = main()
        if state is None:
            return None
        if state == states.FAILED and errors:
            if self.sequential(parent, errors) is None:
                return None
        if finally_:
            if self.sequential(parent, finally_) is None:
                return None
        return state

    def drive_flowable(self, task: Any, run: TaskRun) -> None:
        props = task.props
        kind = task.type
        try:
            if kind in (CORE + "flow.Sequential", CORE + "flow.AllowFailure"):
                main = lambda: self.sequential(run, props.get("tasks") or [])  # noqa: E731
            elif kind == CORE + "flow.Parallel":
                concurrent = int(self.render(props.get("concurrent", 0), run) or 0)
                main = lambda: self.parallel(run, props.get("tasks") or [], concurrent)  # noqa: E731
            elif kind in DYNAMIC_TYPES:
                values = self.each_values(task, run)
                if kind == CORE + "flow.ForEach":
                    limit = int(self.render(props.get("concurrencyLimit", 1), run))
                elif kind == CORE + "flow.EachSequential":
                    limit = 1
                else:
                    limit = int(self.render(props.get("concurrent", 0), run) or 0)
                main = lambda: self.each(task, run, values, props.get("tasks") or [], limit)  # noqa: E731
            elif kind == CORE + "flow.If":
                branch = self.if_branch(task, run)
                main = lambda: self.sequential(run, branch) if branch else states.SUCCESS  # noqa: E731
            elif kind == CORE + "flow.Switch":
                branch = self.switch_branch(task, run)
                if not branch:
                    self.fail(run, f"No task found for value '{run.outputs['value']}' in cases "
                                   f"{sorted(str(k) for k in (props.get('cases') or {}))} and no defaults")
                    return
                main = lambda: self.sequential(run, branch)  # noqa: E731
            elif kind == CORE + "flow.Pause":
                self.drive_pause(task, run)
                return
            elif kind == CORE + "flow.ForEachItem":
                internal_tasks = props.get("_internal") or []
                main = lambda: self.sequential(run, internal_tasks)  # noqa: E731
            elif kind == CORE + "flow.WorkingDirectory":
                main = lambda: self.working_directory(task, run)  # noqa: E731
            elif kind == CORE + "flow.LoopUntil":
                main = lambda: self.loop_until(task, run)  # noqa: E731
            elif kind == CORE + "flow.Dag":
                concurrent = int(self.render(props.get("concurrent", 0), run) or 0)
                main = lambda: self.dag(run, props.get("tasks") or [], concurrent)  # noqa: E731
            else:
                self.fail(run, f"{task.type} is not supported yet")
                return
        except CelestraError as exc:
            self.fail(run, str(exc))
            return
        except (ValueError, TypeError) as exc:
            self.fail(run, f"{type(exc).__name__}: {exc}")
            return
        state = self.block(run, main, task.errors, task.finally_)
        if state is None:
            return
        if kind == CORE + "flow.AllowFailure" and state == states.FAILED:
            state = states.WARNING
        self.terminate(task, run, state)

    # --- WorkingDirectory (spec §4.2) -----------------------------------------------------------
    def working_directory(self, task: Any, run: TaskRun) -> str | None:
        """The whole group goes to one worker as one job; its children come back in the result."""
        internal = run.internal
        if "groupState" in internal:
            return internal["groupState"]
        if not internal.get("dispatched"):
            internal["dispatched"] = True
            self.decision.touch(run)
            self.dispatch(task, run)
        return None

    # --- LoopUntil (spec §4.2) -------------------------------------------------------------------
    def loop_until(self, task: Any, run: TaskRun) -> str | None:
        """One pass: drive the current iteration; when it ended well, check the condition and
        either end, or wait ``checkFrequency.interval`` and start the next iteration."""
        props = task.props
        if not run.outputs or "iterationCount" not in run.outputs:
            run.outputs = {"iterationCount": 1}
            self.decision.touch(run)
            self.invalidate_outputs()
        internal = run.internal
        frequency = props.get("checkFrequency") or {}
        if internal.get("nextAt"):
            due = datetime.fromisoformat(internal["nextAt"])
            if due > self.now:
                self.decision.wake(due)
                return None
            del internal["nextAt"]
            run.outputs = {"iterationCount": run.outputs["iterationCount"] + 1}
            self.decision.touch(run)
            self.invalidate_outputs()
        count = run.outputs["iterationCount"]
        state = self.sequential(run, props.get("tasks") or [], iteration=count, by_iteration=True)
        if state is None or state in states.FAILED_LIKE:
            return state
        if self.is_truthy(self.render(props.get("condition"), run)):
            return state
        max_iterations = frequency.get("maxIterations")
        max_duration = frequency.get("maxDuration")
        reached = None
        if max_iterations is not None and count >= int(self.render(max_iterations, run)):
            reached = "Max iterations reached"
        elif max_duration is not None and run.state.start_date is not None and (
                self.now - run.state.start_date > parse_duration(str(self.render(max_duration, run)))):
            reached = "Max duration reached"
        if reached:
            self.log("WARN", reached, run)
            return states.FAILED if self.is_truthy(self.render(props.get("failOnMaxReached", False), run)) \
                else state
        interval = parse_duration(str(self.render(frequency.get("interval") or "PT1M", run)))
        due = self.now + interval
        internal["nextAt"] = due.isoformat()
        self.decision.touch(run)
        self.decision.wake(due)
        return None

    # --- Pause (spec §4.2, §8.7) ---------------------------------------------------------------
    def drive_pause(self, task: Any, run: TaskRun) -> None:
        """A RUNNING Pause run: pause it the first time; after a resume, run its (deprecated) tasks."""
        internal = run.internal
        if not internal.get("paused"):
            internal["paused"] = True
            duration = task.props.get("pauseDuration", task.props.get("delay"))
            try:
                if duration is not None:
                    internal["resumeAt"] = (self.now + parse_duration(str(self.render(duration, run)))).isoformat()
                elif task.timeout:
                    internal["timeoutAt"] = (self.now + parse_duration(str(self.render(task.timeout, run)))).isoformat()
            except (CelestraError, ValueError) as exc:
                self.fail(run, f"Invalid pause duration: {exc}")
                return
            self.transition(run, states.PAUSED)
            self.pause_execution()
            due = internal.get("resumeAt") or internal.get("timeoutAt")
            if due:
                self.decision.wake(datetime.fromisoformat(due))
            return
        tasks = task.props.get("tasks") or []
        state = self.block(run, (lambda: self.sequential(run, tasks)) if tasks else (lambda: states.SUCCESS),
                           task.errors, task.finally_)
        if state is not None:
            self.terminate(task, run, internal.pop("endState", None) or state)

    def pause_execution(self) -> None:
        if self.execution.state.current != states.PAUSED:
            self.execution.state = self.execution.state.with_state(states.PAUSED, self.now)
            self.decision.execution_changed = True
        self.frozen = True

    def check_pause(self, task: Any, run: TaskRun) -> None:
        """A PAUSED Pause run whose delay or timeout is due resumes per ``behavior`` (or fails)."""
        internal = run.internal
        due_text = internal.get("resumeAt") or internal.get("timeoutAt")
        if not due_text:
            return
        due = datetime.fromisoformat(due_text)
        if due > self.now:
            self.decision.wake(due)
            return
        self.resumed = True
        if internal.pop("timeoutAt", None):  # straight from PAUSED to FAILED
            self.log("WARN", "Pause timed out", run)
            self.terminate(task, run, states.FAILED)
            return
        self.transition(run, states.RUNNING)
        internal.pop("resumeAt", None)
        behavior = str(task.props.get("behavior") or "RESUME").upper()
        if behavior == "WARN":
            internal["endState"] = states.WARNING
        elif behavior == "FAIL":
            self.terminate(task, run, states.FAILED)
        elif behavior == "CANCEL":
            self.terminate(task, run, states.KILLED)
            internal["cancelExecution"] = True
            self.cancel = True

    # --- Subflow (spec §4.2) ---------------------------------------------------------------------
    def start_subflow(self, task: Any, run: TaskRun) -> None:
        """Ask the shell to create the child execution; the run waits RUNNING (or ends if wait: false)."""
        if task.type == FOR_EACH_ITEM_ITEMS:
            self.start_items(task, run)
            return
        try:
            request = self.subflow_request(task, run, task.props, self.context_for(run, task))
        except CelestraError as exc:
            self.fail(run, str(exc))
            return
        run.internal["transmitFailed"] = request.transmit_failed
        self.transition(run, states.RUNNING)
        self.decision.subflows.append(request)

    def subflow_request(self, task: Any, run: TaskRun, props: dict[str, Any],
                        context: dict[str, Any]) -> SubflowRequest:
        """The child execution a Subflow (or one ForEachItem batch) asks for, rendered in ``context``."""
        def render(name: str, default: Any = None) -> Any:
            return self.env.render(props.get(name, default), context)

        from .namespaces import check_start

        namespace = str(render("namespace"))
        check_start(self.execution.namespace, namespace)
        return SubflowRequest(
            taskrun_id=run.id, task_id=task.id, task_type=task.type,
            namespace=namespace, flow_id=str(render("flowId")), revision=render("revision"),
            inputs=render("inputs") or {}, labels=render("labels") or {}, wait=bool(render("wait", True)),
            transmit_failed=bool(render("transmitFailed", True)),
            inherit_labels=bool(render("inheritLabels", False)), schedule_date=render("scheduleDate"))

    def start_items(self, task: Any, run: TaskRun) -> None:
        """ForEachItem's ``_items``: one child execution per batch written by ``_split``."""
        parent_task = task.props["forEachItem"]
        props = parent_task.props
        split_runs = [r for r in self.index.by_task.get(parent_task.id + "_split", ())
                      if r.parent_task_run_id == run.parent_task_run_id]
        uris = (split_runs[-1].outputs or {}).get("uris") or [] if split_runs else []
        try:
            requests = []
            for iteration, uri in enumerate(uris, start=1):
                context = self.context_for(run, task)
                context["taskrun"] = {**context["taskrun"], "items": uri, "iteration": iteration}
                requests.append(self.subflow_request(task, run, props, context))
        except CelestraError as exc:
            self.fail(run, str(exc))
            return
        wait = requests[0].wait if requests else True
        transmit = requests[0].transmit_failed if requests else True
        run.internal.update({"transmitFailed": transmit, "wait": wait, "children": {}, "total": len(uris)})
        self.transition(run, states.RUNNING)
        if not uris:
            self.transition(run, states.SUCCESS)
            return
        run.outputs = {"numberOfBatches": len(uris), "iterations": {states.CREATED: 0, states.RUNNING: 0,
                                                                     states.SUCCESS: 0}}
        self.decision.subflows.extend(requests)

    # --- execution.Exit ---------------------------------------------------------------------------
    def exit_execution(self, task: Any, run: TaskRun) -> None:
        state = str(self.render(task.props.get("state") or "SUCCESS", run)).upper()
        state = {"CANCELED": states.CANCELLED}.get(state, state)
        self.transition(run, states.SUCCESS if state != states.KILLED else states.KILLED)
        for other in self.execution.task_runs:
            if other is not run and not other.state.is_terminated() and other.state.current != states.RUNNING:
                self.transition(other, states.KILLED)
        for ancestor in self.index.ancestors(run):
            self.transition(ancestor, state if state != states.CANCELLED else states.SUCCESS)
        self.exit_state = state
        self.frozen = True  # nothing else starts

    def each_values(self, task: Any, run: TaskRun) -> list[str]:
        internal = run.internal
        if "values" in internal:
            return internal["values"]
        raw = task.props.get("values") if task.type == CORE + "flow.ForEach" else task.props.get("value")
        values = self.render(raw, run)
        if isinstance(values, str):
            import json
            try:
                values = json.loads(values)
            except ValueError:
                raise CelestraError(f"Invalid JSON array for values: {values}") from None
        if not isinstance(values, list):
            values = [values]
        nulls = sum(1 for v in values if v is None)
        if nulls:
            from .inputs import java_str

            raise CelestraError(f"Found '{nulls}' null values on Each, with values={java_str(values)}")
        import json
        out: list[str] = []
        for item in values:
            text = as_text(item)
            if text not in out:
                out.append(text)
        internal["values"] = out
        self.decision.touch(run)
        return out

    def if_branch(self, task: Any, run: TaskRun) -> list[Any]:
        outputs = run.outputs or {}
        if "evaluationResult" not in outputs:
            result = self.is_truthy(self.render(task.props.get("condition"), run))
            run.outputs = {"evaluationResult": result}
            self.decision.touch(run)
            self.invalidate_outputs()
            outputs = run.outputs
        return (task.props.get("then") or []) if outputs["evaluationResult"] else (task.props.get("else") or [])

    def switch_branch(self, task: Any, run: TaskRun) -> list[Any]:
        if run.outputs is None or "value" not in run.outputs:
            value = self.render(task.props.get("value"), run)
            text = as_text(value)
            cases = task.props.get("cases") or {}
            run.outputs = {"value": text, "defaults": text not in {str(k) for k in cases}}
            self.decision.touch(run)
            self.invalidate_outputs()
        cases = {str(k): v for k, v in (task.props.get("cases") or {}).items()}
        if run.outputs["defaults"]:
            return task.props.get("defaults") or []
        return cases.get(run.outputs["value"], [])

    # --- the step ----------------------------------------------------------------------------
    def run(self) -> Decision:
        execution = self.execution
        if execution.state.is_terminated():
            self.post_phase()
            return self.decision
        if execution.state.current in (states.CREATED, states.RESTARTED, states.QUEUED):
            if execution.state.current != states.RESTARTED:
                self.log("INFO", "Flow started")
            execution.state = execution.state.with_state(states.RUNNING, self.now)
            self.decision.execution_changed = True
        if execution.state.current not in (states.RUNNING, states.PAUSED):
            return self.decision
        final = None
        for _ in range(10_000):
            self.changed = False
            self.frozen = execution.state.current == states.PAUSED
            final = self.block(None, lambda: self.sequential(None, self.flow.tasks),
                               self.flow.errors, self.flow.finally_)
            if self.exit_state or self.cancel:
                break
            if execution.state.current == states.PAUSED and self.resumed and not any(
                    r.state.current == states.PAUSED for r in execution.task_runs):
                # the last Pause ended by itself: the execution goes on
                execution.state = execution.state.with_state(states.RUNNING, self.now)
                self.decision.execution_changed = True
                self.resumed = False
                self.changed = True
                continue
            if final is not None or not self.changed:
                break
        if self.exit_state:
            self.end(self.exit_state, render_outputs=self.exit_state in (states.SUCCESS, states.WARNING))
        elif self.cancel:
            self.end(states.CANCELLED, render_outputs=False)
        elif final is not None:
            self.end(final)
        if execution.state.is_terminated():
            self.post_phase()
        return self.decision

    def post_phase(self) -> None:
        """Deprecated ``listeners`` then ``afterExecution`` run once the state is final (§8.4 step 5);
        their outcome never changes it."""
        if not (self.flow.listeners or self.flow.after_execution):
            return
        self._base = None  # the context now shows the final state
        for _ in range(10_000):
            self.changed = False
            self.frozen = False
            pending = False
            for listener in self.flow.listeners:
                if not self.listener_applies(listener):
                    continue
                if self.sequential(None, listener.get("tasks") or []) is None:
                    pending = True
                    break
            if not pending and self.flow.after_execution:
                self.sequential(None, self.flow.after_execution)
            if not self.changed:
                break

    def listener_applies(self, listener: dict[str, Any]) -> bool:
        conditions = listener.get("conditions") or []
        if not conditions:
            return True
        from .conditions import ConditionContext, all_valid

        context = ConditionContext(
            execution=self.execution.to_json(), flow={"namespace": self.flow.namespace, "id": self.flow.id},
            variables=self.base(), now=self.now, render=self.env.render, is_truthy=self.is_truthy)
        return all_valid(conditions, context)

    def end(self, final: str, render_outputs: bool = True) -> None:
        execution = self.execution
        if self.flow.outputs and render_outputs:
            try:
                from .inputs import render_flow_outputs

                context = dict(self.base())
                context["outputs"] = self.index.outputs_map()
                context["tasks"] = self.index.tasks_map()
                execution.outputs = render_flow_outputs(self.flow.outputs, self.env.render, context)
            except CelestraError as exc:
                self.log("ERROR", f"Failed to render output values: {exc}")
                final = states.FAILED
        if final == states.FAILED:
            final = self.retry_as_new_execution(final)
        execution.state = execution.state.with_state(final, self.now)
        self.log("INFO" if final != states.FAILED else "ERROR", f"Flow completed with state {final}")
        self.decision.execution_changed = True
        self.decision.ended = True

    def retry_as_new_execution(self, final: str) -> str:
        """A task failed under a retry with ``behavior: CREATE_NEW_EXECUTION`` (spec §2.3): while the
        policy allows another attempt, this execution and the failed run become RETRIED and the shell
        creates the next attempt (a new execution) after the delay."""
        failed = [r for r in self.execution.task_runs
                  if r.internal.get("retryNewExecution") and r.state.current == states.FAILED]
        if not failed:
            return final
        policy = retry_policy(self.flow, failed[0].task_id)
        attempt = int(self.execution.metadata.get("attemptNumber", 1))
        max_attempts = policy.get("maxAttempts", policy.get("maxAttempt"))
        if max_attempts is not None and attempt >= int(max_attempts):
            return final
        delay = retry_delay(policy, attempt)
        if policy.get("maxDuration"):
            from .timeutil import parse_iso

            started = parse_iso(self.execution.metadata.get("originalCreatedDate")) or self.now
            if self.now + delay - started > parse_duration(policy["maxDuration"]):
                return final
        for run in failed:
            self.transition(run, states.RETRIED)
        self.decision.retry_at = self.now + delay
        return states.RETRIED


def decide(flow: Any, execution: Execution, env: Environment) -> Decision:
    """One executor step; see the module docstring."""
    return _Step(flow, execution, env).run()


# --- worker results ----------------------------------------------------------------------------

def retry_policy(flow: Any, task_id: str) -> dict[str, Any] | None:
    """Own retry, else the nearest ancestor flowable's, else the flow's (spec §2.3)."""
    task = flow.find_task(task_id)
    if task.retry:
        return task.retry
    parent = flow.parent_of(task_id)
    while parent is not None:
        if parent.retry:
            return parent.retry
        parent = flow.parent_of(parent.id)
    return getattr(flow, "retry", None) or None


def creates_new_execution(policy: dict[str, Any] | None) -> bool:
    return bool(policy) and policy.get("behavior") == "CREATE_NEW_EXECUTION"


def retry_delay(policy: dict[str, Any], attempt: int) -> timedelta:
    kind = policy.get("type", "constant")
    if kind == "random":
        low = parse_duration(policy["minInterval"]).total_seconds()
        high = parse_duration(policy["maxInterval"]).total_seconds()
        return timedelta(seconds=random.uniform(low, high))
    interval = parse_duration(policy["interval"]) if policy.get("interval") else timedelta(0)
    if kind == "exponential":
        factor = float(policy.get("delayFactor") or 2)
        delay = interval * (factor * max(attempt - 1, 1)) if attempt > 1 else interval
        if policy.get("maxInterval"):
            delay = min(delay, parse_duration(policy["maxInterval"]))
        return delay
    return interval


def apply_result(flow: Any, execution: Execution, result: dict[str, Any], now: datetime | None = None) -> TaskRun | None:
    """Fold a worker result into the execution; return the changed run, or None for a stale result.

    A result names its task run and attempt number. It is applied only if that run is not
    terminated and the attempt is the one in flight, so a duplicate delivery changes nothing.
    """
    moment = now or utcnow()
    run = find_run(execution, result["taskrun_id"])
    if run is None or run.state.is_terminated():
        return None
    if result["attempt"] != len(run.attempts) + 1:
        return None
    task = flow.find_task(run.task_id)
    run.internal.pop("restartDispatched", None)
    if "children" in result:
        return _apply_group_result(execution, run, result, moment)
    started = datetime.fromisoformat(result["started"]) if result.get("started") else moment
    ended = datetime.fromisoformat(result["ended"]) if result.get("ended") else moment
    state = result["state"]
    attempt_state = State(states.RUNNING, [(states.CREATED, started), (states.RUNNING, started)]) \
        .with_state(state, ended)
    attempt_state = State(attempt_state.current, attempt_state.histories[1:])
    run.attempts.append(Attempt(attempt_state, result.get("worker_id"), log_file=result.get("log_file")))
    run.state = run.state.with_state(states.RUNNING, started)
    if result.get("outputs") is not None:
        run.outputs = result["outputs"]
    if state == states.FAILED:
        policy = retry_policy(flow, run.task_id)
        if creates_new_execution(policy):
            run.internal["retryNewExecution"] = True  # decided when the execution ends
        elif policy and _may_retry(policy, run, moment):
            run.state = run.state.with_state(states.FAILED, ended).with_state(states.RETRYING, ended)
            run.internal["retryAt"] = (moment + retry_delay(policy, len(run.attempts))).isoformat()
            return run
        state = states.apply_failure_policy(state, task.allow_failure, task.allow_warning)
    elif state == states.SUCCESS and len(run.attempts) > 1:
        policy = retry_policy(flow, run.task_id)
        if policy and policy.get("warningOnRetry"):
            state = states.WARNING
    if state == states.WARNING:
        state = states.apply_failure_policy(state, False, task.allow_warning)
    run.state = run.state.with_state(state, ended)
    return run


def find_run(execution: Execution, taskrun_id: str) -> TaskRun | None:
    index = getattr(execution, "_index", None)
    if index is not None and index.runs is execution.task_runs:
        return index.by_id.get(taskrun_id)
    return next((r for r in execution.task_runs if r.id == taskrun_id), None)


def _apply_group_result(execution: Execution, run: TaskRun, result: dict[str, Any], moment: datetime) -> TaskRun:
    """Record the children a WorkingDirectory ran on its worker; the executor then ends the group."""
    if "groupState" in run.internal:
        return run
    index = getattr(execution, "_index", None)
    seq = (index.max_seq if index is not None else max((r.seq for r in execution.task_runs), default=-1)) + 1
    child_states = []
    for child in result["children"]:
        started = datetime.fromisoformat(child["started"])
        ended = datetime.fromisoformat(child["ended"])
        child_run = TaskRun(id=child["id"], execution_id=execution.id, namespace=execution.namespace,
                            flow_id=execution.flow_id, task_id=child["task_id"], parent_task_run_id=run.id,
                            state=State(states.CREATED, [(states.CREATED, started)]), seq=seq,
                            outputs=child.get("outputs"))
        seq += 1
        if child["state"] != states.SKIPPED:
            child_run.state = child_run.state.with_state(states.RUNNING, started)
            child_run.attempts.append(Attempt(State(states.RUNNING, [(states.RUNNING, started)])
                                              .with_state(child["state"], ended), result.get("worker_id")))
        child_run.state = child_run.state.with_state(child["state"], ended)
        execution.task_runs.append(child_run)
        execution.recorded_runs.append(child_run)
        child_states.append(child["state"])
    if result.get("outputs"):
        run.outputs = result["outputs"]
    run.internal["groupState"] = states.guess_final_state(child_states)
    return run


def apply_subflow_result(flow: Any, execution: Execution, result: dict[str, Any],
                         now: datetime | None = None) -> TaskRun | None:
    """A child execution created by a Subflow task run ended (or could not be created).

    ``result``: ``{"subflow_taskrun_id", "execution_id", "state", "outputs", "error"}``. The task
    run takes the child's state when ``transmitFailed`` (FAILED/KILLED/WARNING/PAUSED), else SUCCESS.
    """
    moment = now or utcnow()
    run = find_run(execution, result["subflow_taskrun_id"])
    if run is None:
        return None
    task = flow.find_task(run.task_id)
    if task.type == FOR_EACH_ITEM_ITEMS and not result.get("error"):
        # counters keep following the children even once a ``wait: false`` run has ended
        return _apply_items_result(task, run, result, moment)
    if run.state.is_terminated():
        return None
    if result.get("error"):
        run.state = run.state.with_state(
            states.apply_failure_policy(states.FAILED, task.allow_failure, task.allow_warning), moment)
        return run
    outputs = {"executionId": result["execution_id"]}
    if result.get("state") is None:  # created, not waited for
        run.outputs = outputs
        if not result.get("wait", True):
            run.state = run.state.with_state(states.SUCCESS, moment)
        return run
    child_state = result["state"]
    outputs["state"] = child_state
    if result.get("outputs") is not None:
        outputs["outputs"] = result["outputs"]
    run.outputs = outputs
    state = states.SUCCESS
    transmit = run.internal.get("transmitFailed", True)
    if transmit and child_state in (states.FAILED, states.KILLED, states.WARNING, states.PAUSED):
        state = child_state
    state = states.apply_failure_policy(state, task.allow_failure, task.allow_warning)
    run.attempts.append(Attempt(State(states.RUNNING, [(states.RUNNING, run.state.start_date or moment)])
                                .with_state(state, moment)))
    run.state = run.state.with_state(state, moment)
    return run


def _apply_items_result(task: Any, run: TaskRun, result: dict[str, Any], moment: datetime) -> TaskRun:
    """One child of ForEachItem's ``_items`` was created or ended: update the counters; the run
    ends when every child is created (``wait: false``) or terminated."""
    internal = run.internal
    children = internal.setdefault("children", {})
    previous = children.get(result["execution_id"])
    if previous is not None and previous in states.TERMINATED:
        return run
    children[result["execution_id"]] = result.get("state") or states.CREATED
    wait = internal.get("wait", True)
    counts = {states.CREATED: 0, states.RUNNING: 0, states.SUCCESS: 0} if wait else {states.RUNNING: 0,
                                                                                     states.SUCCESS: 0}
    for child_state in children.values():
        if wait or child_state != states.CREATED:
            counts[child_state] = counts.get(child_state, 0) + 1
    run.outputs = {**(run.outputs or {}), "iterations": counts}
    total = internal.get("total", 0)
    if len(children) < total or run.state.is_terminated():
        return run
    if not wait:
        final = states.SUCCESS
    elif all(s in states.TERMINATED for s in children.values()):
        final = states.SUCCESS
        if internal.get("transmitFailed", True):
            final = states.guess_final_state([s for s in children.values() if s in (states.FAILED, states.KILLED,
                                                                                     states.WARNING)] or [final])
    else:
        return run
    final = states.apply_failure_policy(final, task.allow_failure, task.allow_warning)
    run.attempts.append(Attempt(State(states.RUNNING, [(states.RUNNING, run.state.start_date or moment)])
                                .with_state(final, moment)))
    run.state = run.state.with_state(final, moment)
    return run


def _may_retry(policy: dict[str, Any], run: TaskRun, moment: datetime) -> bool:
    max_attempts = policy.get("maxAttempts", policy.get("maxAttempt"))
    if max_attempts is not None and len(run.attempts) >= int(max_attempts):
        return False
    if policy.get("maxDuration"):
        first = run.attempts[0].state.start_date or moment
        if moment + retry_delay(policy, len(run.attempts)) - first > parse_duration(policy["maxDuration"]):
            return False
    return True  # neither maxAttempts nor maxDuration: Kestra retries indefinitely
