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
from typing import Any, Callable, Mapping

from . import states
from .context import base_context, index_of, taskrun_context
from .errors import CelestraError
from .model import Attempt, Execution, State, TaskRun
from .plugins import EXECUTABLE, EXECUTION_UPDATABLE, FLOWABLE, RUNNABLE
from .references import referenced
from .text import as_text
from .truthy import is_truthy
from .timeutil import now as utcnow
from .timeutil import parse_duration

log = logging.getLogger("celestra.executor")


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
    #: the parent follows every child's end even when it does not wait (ForEachItem's counters)
    follow_children: bool = False


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

    render: Callable[[Any, Mapping[str, Any]], Any]
    extras: dict[str, Any] = field(default_factory=dict)
    is_truthy: Callable[[Any], bool] | None = None
    now: Callable[[], datetime] = utcnow


class Step:
    """One executor step over one execution (see the module docstring).

    Flowable plugins drive their children through its primitives (:meth:`sequential`,
    :meth:`parallel`, :meth:`each`, :meth:`create`, :meth:`visit`, :meth:`render`, :meth:`fail`,
    :meth:`terminate`...); the step itself knows no task type.
    """

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
        if task.plugin.dynamic:
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
        task.plugin.start(self, task, run)

    def start_by_kind(self, task: Any, run: TaskRun) -> None:
        """What a new run does by its kind: flowables run, runnables go to a worker..."""
        kind = task.kind
        if kind == FLOWABLE:
            self.transition(run, states.RUNNING)
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
        context = self.context_for(run, None if task.plugin.whole_context_job else task)
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
        """Apply an execution-updating task (its update is on its class), then end it SUCCESS."""
        try:
            task.plugin.update_execution(self, task, run)
        except CelestraError as exc:
            self.fail(run, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a bad value must fail the task, not the executor
            self.fail(run, f"{type(exc).__name__}: {exc}")
            return
        self.execution_updated()
        self.transition(run, states.SUCCESS)

    def execution_updated(self) -> None:
        """The execution's labels or variables changed: contexts are built again."""
        self._base = None
        self.decision.execution_changed = True

    # --- strategies ---------------------------------------------------------------------------
    def visit(self, task: Any, run: TaskRun) -> str:
        """Drive a run if it is a running flowable; return its current state."""
        if run.state.current == states.RESTARTED:
            self.restart_run(task, run)
        if run.state.current == states.PAUSED:
            task.plugin.on_paused(self, task, run)
        if task.kind == FLOWABLE and run.state.current == states.RUNNING:
            task.plugin.drive(self, task, run)
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

    def drive_block(self, task: Any, run: TaskRun) -> None:
        """A RUNNING flowable run, one pass: its class resolves the main block, the block runs
        with the task's ``errors`` and ``finally``, and the run ends in the state its class gives."""
        plugin = task.plugin
        try:
            main = plugin.resolve(self, task, run)
        except CelestraError as exc:
            self.fail(run, str(exc))
            return
        except (ValueError, TypeError) as exc:
            self.fail(run, f"{type(exc).__name__}: {exc}")
            return
        if main is None:
            return
        state = self.block(run, main, task.errors, task.finally_)
        if state is None:
            return
        try:
            state = plugin.resolve_state(task, state)
        except Exception as exc:  # noqa: BLE001 - a class that cannot resolve its state fails its run, as in Kestra
            self.fail(run, str(exc) or type(exc).__name__)
            return
        self.terminate(task, run, state)

    def set_outputs(self, run: TaskRun, outputs: dict[str, Any]) -> None:
        """A flowable records what it decided (If's result, Switch's value...) as its run's outputs."""
        run.outputs = outputs
        self.decision.touch(run)
        self.invalidate_outputs()

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

    def pause_execution(self) -> None:
        if self.execution.state.current != states.PAUSED:
            self.execution.state = self.execution.state.with_state(states.PAUSED, self.now)
            self.decision.execution_changed = True
        self.frozen = True

    # --- Subflow (spec §4.2) ---------------------------------------------------------------------
    def start_subflow(self, task: Any, run: TaskRun) -> None:
        """Ask the shell to create the child execution; the run waits RUNNING (or ends if wait: false)."""
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

    def each_values(self, run: TaskRun, raw: Any) -> list[str]:
        """A loop's values (rendered once, deduplicated, as text), kept on the run."""
        internal = run.internal
        if "values" in internal:
            return list(internal["values"])
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
        out: list[str] = []
        for item in values:
            text = as_text(item)
            if text not in out:
                out.append(text)
        internal["values"] = out
        self.decision.touch(run)
        return out

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
        policy = retry_policy(self.flow, failed[0].task_id) or {}
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


_Step = Step  # the former name


def decide(flow: Any, execution: Execution, env: Environment) -> Decision:
    """One executor step; see the module docstring."""
    return Step(flow, execution, env).run()


# --- worker results ----------------------------------------------------------------------------

def retry_policy(flow: Any, task_id: str) -> dict[str, Any] | None:
    """Own retry, else the nearest ancestor flowable's, else the flow's (spec §2.3)."""
    task = flow.find_task(task_id)
    if task.retry:
        return dict(task.retry)
    parent = flow.parent_of(task_id)
    while parent is not None:
        if parent.retry:
            return dict(parent.retry)
        parent = flow.parent_of(parent.id)
    flow_retry = getattr(flow, "retry", None)
    return dict(flow_retry) if flow_retry else None


def creates_new_execution(policy: dict[str, Any] | None) -> bool:
    return policy is not None and policy.get("behavior") == "CREATE_NEW_EXECUTION"


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
    for dynamic in result.get("dynamic_task_runs") or ():
        _record_dynamic_run(execution, run, dynamic, started, ended, result.get("worker_id"))
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


def _record_dynamic_run(execution: Execution, parent: TaskRun, dynamic: dict[str, Any], started: datetime,
                        ended: datetime, worker_id: str | None) -> None:
    """A task run a plugin added beside its own: a terminated child of ``parent`` that the executor
    never drives (its task id is in no flow)."""
    if find_run(execution, dynamic["id"]) is not None:
        return
    index = getattr(execution, "_index", None)
    seq = (index.max_seq if index is not None else max((r.seq for r in execution.task_runs), default=-1)) + 1
    state = dynamic.get("state") or states.SUCCESS
    child = TaskRun(id=dynamic["id"], execution_id=execution.id, namespace=execution.namespace,
                    flow_id=execution.flow_id, task_id=dynamic["task_id"], parent_task_run_id=parent.id,
                    value=dynamic.get("value"), state=State(states.CREATED, [(states.CREATED, started)]), seq=seq,
                    outputs=dynamic.get("outputs"))
    child.state = child.state.with_state(states.RUNNING, started).with_state(state, ended)
    child.attempts.append(Attempt(State(states.RUNNING, [(states.RUNNING, started)]).with_state(state, ended),
                                  worker_id))
    execution.task_runs.append(child)
    execution.recorded_runs.append(child)


def find_run(execution: Execution, taskrun_id: str) -> TaskRun | None:
    index = getattr(execution, "_index", None)
    if index is not None and index.runs is execution.task_runs:
        found: TaskRun | None = index.by_id.get(taskrun_id)
        return found
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
    if task.plugin.follows_each_child and not result.get("error"):
        # counters keep following the children even once a ``wait: false`` run has ended
        updated: TaskRun = task.plugin.apply_child_result(task, run, result, moment)
        return updated
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
    hook = getattr(task.plugin, "subflow_execution_result", None)
    if hook is not None:  # an executable class that builds (or refuses) the result itself
        try:
            hook(task, result)
        except Exception:  # noqa: BLE001 - its refusal fails the task run
            run.outputs = outputs
            run.state = run.state.with_state(
                states.apply_failure_policy(states.FAILED, task.allow_failure, task.allow_warning), moment)
            return run
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


def _may_retry(policy: dict[str, Any], run: TaskRun, moment: datetime) -> bool:
    max_attempts = policy.get("maxAttempts", policy.get("maxAttempt"))
    if max_attempts is not None and len(run.attempts) >= int(max_attempts):
        return False
    if policy.get("maxDuration"):
        first = run.attempts[0].state.start_date or moment
        if moment + retry_delay(policy, len(run.attempts)) - first > parse_duration(policy["maxDuration"]):
            return False
    return True  # neither maxAttempts nor maxDuration: Kestra retries indefinitely
