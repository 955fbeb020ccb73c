"""``io.kestra.plugin.core.flow``: the flowable tasks (plus Sleep, Subflow, ForEachItem, Template).

Each flowable carries its strategy, as Kestra's ``FlowableTask`` does: ``resolve`` returns the
block of children a RUNNING run drives in one executor pass (built from the primitives of
:class:`orchestrator.engine.executor.Step`), ``resolve_state`` the run's state once that block
ended. Sleep is the one runnable of this group.
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Optional

from pydantic import Field

from orchestrator.engine import states
from orchestrator.engine.errors import CelestraError, TaskFailure
from orchestrator.engine.plugins import EXECUTABLE, FLOWABLE, RUNNABLE, RunContext, register
from orchestrator.engine.text import as_text
from orchestrator.engine.timeutil import parse_duration

from ._common import CorePlugin, Duration, Labels, Props, Text, child_tasks

if TYPE_CHECKING:  # pragma: no cover
    from orchestrator.engine.executor import Step
    from orchestrator.engine.model import TaskRun

Block = Optional[Callable[[], Optional[str]]]

_LOCAL_HANDLERS = {"errors": "list", "finally": "list"}
_PREFIX = "io.kestra.core.tasks.flows."


@register
class Sequential(CorePlugin):
    """Run ``tasks`` one after the other."""

    type = "io.kestra.plugin.core.flow.Sequential"
    aliases = (_PREFIX + "Sequential",)
    kind = FLOWABLE
    task_fields = {"tasks": "list", **_LOCAL_HANDLERS}
    required_task_fields = frozenset({"tasks"})

    class Props(Props):
        pass

    @classmethod
    def resolve(cls, step: Step, task: Any, run: TaskRun) -> Block:
        tasks = task.props.get("tasks") or []
        return lambda: step.sequential(run, tasks)


@register
class Parallel(CorePlugin):
    """Run ``tasks`` at the same time, at most ``concurrent`` at once (0 = no limit)."""

    type = "io.kestra.plugin.core.flow.Parallel"
    aliases = (_PREFIX + "Parallel",)
    kind = FLOWABLE
    task_fields = {"tasks": "list", **_LOCAL_HANDLERS}
    required_task_fields = frozenset({"tasks"})
    runs_children_in_parallel = True

    class Props(Props):
        concurrent: int = Field(0, ge=0)

    @classmethod
    def resolve(cls, step: Step, task: Any, run: TaskRun) -> Block:
        concurrent = int(step.render(task.props.get("concurrent", 0), run) or 0)
        tasks = task.props.get("tasks") or []
        return lambda: step.parallel(run, tasks, concurrent)


@register
class If(CorePlugin):
    """Run ``then`` when the rendered ``condition`` is truthy, ``else`` otherwise."""

    type = "io.kestra.plugin.core.flow.If"
    aliases = (_PREFIX + "If",)
    kind = FLOWABLE
    task_fields = {"then": "list", "else": "list", **_LOCAL_HANDLERS}
    required_task_fields = frozenset({"then"})

    class Props(Props):
        condition: Text

    @classmethod
    def resolve(cls, step: Step, task: Any, run: TaskRun) -> Block:
        outputs = run.outputs or {}
        if "evaluationResult" not in outputs:
            outputs = {"evaluationResult": step.is_truthy(step.render(task.props.get("condition"), run))}
            step.set_outputs(run, outputs)
        branch = (task.props.get("then") or []) if outputs["evaluationResult"] else (task.props.get("else") or [])
        return (lambda: step.sequential(run, branch)) if branch else (lambda: states.SUCCESS)


@register
class Switch(CorePlugin):
    """Run the case whose key equals the rendered ``value`` (``defaults`` otherwise)."""

    type = "io.kestra.plugin.core.flow.Switch"
    aliases = (_PREFIX + "Switch",)
    kind = FLOWABLE
    task_fields = {"cases": "map", "defaults": "list", **_LOCAL_HANDLERS}

    class Props(Props):
        value: Text

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        cases = node.props.get("cases") or {}
        if not any(cases.values()) and not node.props.get("defaults"):
            return [("", "No task defined, neither cases or default have any tasks")]
        return []

    @classmethod
    def resolve(cls, step: Step, task: Any, run: TaskRun) -> Block:
        cases = {str(k): v for k, v in (task.props.get("cases") or {}).items()}
        if run.outputs is None or "value" not in run.outputs:
            text = as_text(step.render(task.props.get("value"), run))
            step.set_outputs(run, {"value": text, "defaults": text not in cases})
        outputs = run.outputs or {}
        branch = (task.props.get("defaults") or []) if outputs["defaults"] else cases.get(outputs["value"], [])
        if not branch:
            step.fail(run, f"No task found for value '{outputs['value']}' in cases {sorted(cases)} and no defaults")
            return None
        return lambda: step.sequential(run, branch)


@register
class ForEach(CorePlugin):
    """Run ``tasks`` once per value (deduplicated), ``concurrencyLimit`` value groups at once."""

    type = "io.kestra.plugin.core.flow.ForEach"
    kind = FLOWABLE
    task_fields = {"tasks": "list", **_LOCAL_HANDLERS}
    required_task_fields = frozenset({"tasks"})

    dynamic = True

    class Props(Props):
        values: Any
        concurrencyLimit: int = Field(1, ge=0)

    @classmethod
    def resolve(cls, step: Step, task: Any, run: TaskRun) -> Block:
        values = step.each_values(run, task.props.get("values"))
        limit = int(step.render(task.props.get("concurrencyLimit", 1), run))
        tasks = task.props.get("tasks") or []
        return lambda: step.each(task, run, values, tasks, limit)


@register
class EachSequential(CorePlugin):
    """Deprecated: ForEach with ``concurrencyLimit: 1`` (``value`` holds the values)."""

    type = "io.kestra.plugin.core.flow.EachSequential"
    aliases = (_PREFIX + "EachSequential",)
    kind = FLOWABLE
    deprecated = True
    task_fields = {"tasks": "list", **_LOCAL_HANDLERS}
    required_task_fields = frozenset({"tasks"})

    dynamic = True

    class Props(Props):
        value: Any

    @classmethod
    def resolve(cls, step: Step, task: Any, run: TaskRun) -> Block:
        values = step.each_values(run, task.props.get("value"))
        tasks = task.props.get("tasks") or []
        return lambda: step.each(task, run, values, tasks, 1)


@register
class EachParallel(CorePlugin):
    """Deprecated: ForEach running every value at once, at most ``concurrent`` (0 = no limit)."""

    type = "io.kestra.plugin.core.flow.EachParallel"
    aliases = (_PREFIX + "EachParallel",)
    kind = FLOWABLE
    deprecated = True
    task_fields = {"tasks": "list", **_LOCAL_HANDLERS}
    required_task_fields = frozenset({"tasks"})

    dynamic = True
    runs_children_in_parallel = True

    class Props(Props):
        value: Any
        concurrent: int = Field(0, ge=0)

    @classmethod
    def resolve(cls, step: Step, task: Any, run: TaskRun) -> Block:
        values = step.each_values(run, task.props.get("value"))
        limit = int(step.render(task.props.get("concurrent", 0), run) or 0)
        tasks = task.props.get("tasks") or []
        return lambda: step.each(task, run, values, tasks, limit)


@register
class AllowFailure(CorePlugin):
    """Run ``tasks`` sequentially; a failure ends this task WARNING and the flow continues."""

    type = "io.kestra.plugin.core.flow.AllowFailure"
    aliases = (_PREFIX + "AllowFailure",)
    kind = FLOWABLE
    task_fields = {"tasks": "list", **_LOCAL_HANDLERS}
    required_task_fields = frozenset({"tasks"})

    class Props(Props):
        pass

    @classmethod
    def resolve(cls, step: Step, task: Any, run: TaskRun) -> Block:
        tasks = task.props.get("tasks") or []
        return lambda: step.sequential(run, tasks)

    @classmethod
    def resolve_state(cls, task: Any, state: str) -> str:
        return states.WARNING if state == states.FAILED else state


@register
class Dag(CorePlugin):
    """Run tasks as soon as their ``dependsOn`` tasks are terminated."""

    type = "io.kestra.plugin.core.flow.Dag"
    aliases = (_PREFIX + "Dag",)
    kind = FLOWABLE
    task_fields = {"tasks": "dag", **_LOCAL_HANDLERS}
    required_task_fields = frozenset({"tasks"})

    class Props(Props):
        concurrent: int = Field(0, ge=0)

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        entries = node.props.get("tasks") or []
        graph = {entry["task"].id: list(entry.get("dependsOn") or []) for entry in entries}
        missing: list[str] = []
        for dependencies in graph.values():
            missing.extend(dep for dep in dependencies if dep not in graph and dep not in missing)
        if missing:
            return [("", "Not existing task id in dependency: " + ", ".join(missing))]
        cyclic = [task_id for task_id in graph if _reaches(graph, task_id, task_id)]
        if cyclic:
            return [("", "Cyclic dependency detected: " + ", ".join(cyclic))]
        return []

    @classmethod
    def resolve(cls, step: Step, task: Any, run: TaskRun) -> Block:
        concurrent = int(step.render(task.props.get("concurrent", 0), run) or 0)
        entries = task.props.get("tasks") or []
        return lambda: cls.drive_entries(step, run, entries, concurrent)

    @staticmethod
    def drive_entries(step: Step, parent: TaskRun, entries: list[dict[str, Any]], concurrent: int) -> str | None:
        """Start each task whose ``dependsOn`` tasks are terminated (at most ``concurrent`` running)."""
        runs = step.children(parent, [e["task"] for e in entries])
        failed = any(r.state.current in states.FAILED_LIKE for r in runs.values())
        running = sum(1 for r in runs.values() if not r.state.is_terminated())
        for entry in entries:
            task = entry["task"]
            if task.disabled:
                continue
            run = runs.get(task.id)
            if run is not None:
                step.visit(task, run)
                failed = failed or run.state.current in states.FAILED_LIKE
                continue
            deps = entry.get("dependsOn") or []
            if failed or not all(d in runs and runs[d].state.is_terminated() for d in deps):
                continue
            if step.frozen or (concurrent and running >= concurrent):
                continue
            runs[task.id] = step.create(task, parent)
            running += 0 if runs[task.id].state.is_terminated() else 1
        enabled = [e["task"] for e in entries if not e["task"].disabled]
        if any(not r.state.is_terminated() for r in runs.values()):
            return None
        if not failed and len(runs) < len(enabled):
            return None
        return states.guess_final_state([r.state.current for r in runs.values()])


def _reaches(graph: dict[str, list[str]], start: str, target: str) -> bool:
    """Whether ``target`` is reachable from ``start`` through at least one dependency edge."""
    seen: set[str] = set()
    stack = list(graph.get(start, ()))
    while stack:
        current = stack.pop()
        if current == target:
            return True
        if current not in seen:
            seen.add(current)
            stack.extend(graph.get(current, ()))
    return False


class _CheckFrequency(Props):
    interval: Duration = "PT1M"
    maxIterations: Optional[int] = Field(None, ge=1)
    maxDuration: Optional[Duration] = None


@register
class LoopUntil(CorePlugin):
    """Run ``tasks`` again every ``checkFrequency.interval`` until ``condition`` is truthy."""

    type = "io.kestra.plugin.core.flow.LoopUntil"
    aliases = ("io.kestra.plugin.core.flow.WaitFor",)
    kind = FLOWABLE
    task_fields = {"tasks": "list", **_LOCAL_HANDLERS}
    required_task_fields = frozenset({"tasks"})

    class Props(Props):
        condition: Text
        checkFrequency: Optional[_CheckFrequency] = None
        failOnMaxReached: bool = False

    @classmethod
    def resolve(cls, step: Step, task: Any, run: TaskRun) -> Block:
        return lambda: cls.iterate(step, task, run)

    @staticmethod
    def iterate(step: Step, task: Any, run: TaskRun) -> str | None:
        """One pass: drive the current iteration; when it ended well, check the condition and
        either end, or wait ``checkFrequency.interval`` and start the next iteration."""
        props = task.props
        if not run.outputs or "iterationCount" not in run.outputs:
            step.set_outputs(run, {"iterationCount": 1})
        internal = run.internal
        frequency = props.get("checkFrequency") or {}
        if internal.get("nextAt"):
            due = datetime.fromisoformat(internal["nextAt"])
            if due > step.now:
                step.decision.wake(due)
                return None
            del internal["nextAt"]
            step.set_outputs(run, {"iterationCount": (run.outputs or {})["iterationCount"] + 1})
        count = (run.outputs or {})["iterationCount"]
        state = step.sequential(run, props.get("tasks") or [], iteration=count, by_iteration=True)
        if state is None or state in states.FAILED_LIKE:
            return state
        if step.is_truthy(step.render(props.get("condition"), run)):
            return state
        max_iterations = frequency.get("maxIterations")
        max_duration = frequency.get("maxDuration")
        reached = None
        if max_iterations is not None and count >= int(step.render(max_iterations, run)):
            reached = "Max iterations reached"
        elif max_duration is not None and run.state.start_date is not None and (
                step.now - run.state.start_date > parse_duration(str(step.render(max_duration, run)))):
            reached = "Max duration reached"
        if reached:
            step.log("WARN", reached, run)
            return states.FAILED if step.is_truthy(step.render(props.get("failOnMaxReached", False), run)) \
                else state
        interval = parse_duration(str(step.render(frequency.get("interval") or "PT1M", run)))
        due = step.now + interval
        internal["nextAt"] = due.isoformat()
        step.decision.touch(run)
        step.decision.wake(due)
        return None


@register
class Pause(CorePlugin):
    """Pause the execution until resumed, or until ``pauseDuration`` (then act per ``behavior``)."""

    type = "io.kestra.plugin.core.flow.Pause"
    aliases = (_PREFIX + "Pause",)
    kind = FLOWABLE
    task_fields = {"tasks": "list", "onPause": "single", **_LOCAL_HANDLERS}
    renamed_props = {"delay": "pauseDuration"}
    input_fields = frozenset({"onResume"})

    pauses = True

    class Props(Props):
        pauseDuration: Optional[Duration] = None
        behavior: Literal["RESUME", "WARN", "FAIL", "CANCEL"] = "RESUME"
        onResume: Optional[list[dict[str, Any]]] = None

    @classmethod
    def drive(cls, step: Step, task: Any, run: TaskRun) -> None:
        """A RUNNING Pause run: pause it the first time; after a resume, run its (deprecated) tasks."""
        internal = run.internal
        if not internal.get("paused"):
            internal["paused"] = True
            duration = task.props.get("pauseDuration", task.props.get("delay"))
            try:
                if duration is not None:
                    internal["resumeAt"] = (step.now + parse_duration(str(step.render(duration, run)))).isoformat()
                elif task.timeout:
                    internal["timeoutAt"] = (step.now + parse_duration(str(step.render(task.timeout, run)))).isoformat()
            except (CelestraError, ValueError) as exc:
                step.fail(run, f"Invalid pause duration: {exc}")
                return
            step.transition(run, states.PAUSED)
            step.pause_execution()
            due = internal.get("resumeAt") or internal.get("timeoutAt")
            if due:
                step.decision.wake(datetime.fromisoformat(due))
            return
        tasks = task.props.get("tasks") or []
        state = step.block(run, (lambda: step.sequential(run, tasks)) if tasks else (lambda: states.SUCCESS),
                           task.errors, task.finally_)
        if state is not None:
            step.terminate(task, run, internal.pop("endState", None) or state)

    @classmethod
    def on_paused(cls, step: Step, task: Any, run: TaskRun) -> None:
        """A PAUSED Pause run whose delay or timeout is due resumes per ``behavior`` (or fails)."""
        internal = run.internal
        due_text = internal.get("resumeAt") or internal.get("timeoutAt")
        if not due_text:
            return
        due = datetime.fromisoformat(due_text)
        if due > step.now:
            step.decision.wake(due)
            return
        step.resumed = True
        if internal.pop("timeoutAt", None):  # straight from PAUSED to FAILED
            step.log("WARN", "Pause timed out", run)
            step.terminate(task, run, states.FAILED)
            return
        step.transition(run, states.RUNNING)
        internal.pop("resumeAt", None)
        behavior = str(task.props.get("behavior") or "RESUME").upper()
        if behavior == "WARN":
            internal["endState"] = states.WARNING
        elif behavior == "FAIL":
            step.terminate(task, run, states.FAILED)
        elif behavior == "CANCEL":
            step.terminate(task, run, states.KILLED)
            internal["cancelExecution"] = True
            step.cancel = True


@register
class Sleep(CorePlugin):
    """Wait for ``duration`` on a worker (runnable, despite its group)."""

    type = "io.kestra.plugin.core.flow.Sleep"
    kind = RUNNABLE

    class Props(Props):
        duration: Duration

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        value = ctx.render(self.task.props.get("duration"))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        else:
            try:
                seconds = parse_duration(str(value)).total_seconds()
            except ValueError as exc:
                raise TaskFailure(f"Invalid duration '{value}': {exc}") from None
        ctx.sleep(max(seconds, 0.0))
        return None


class _SubflowProps(Props):
    namespace: Text
    flowId: Text
    revision: Optional[int] = Field(None, ge=1)
    inputs: Optional[dict[str, Any]] = None
    labels: Optional[Labels] = None
    wait: bool = True
    transmitFailed: bool = True
    inheritLabels: bool = False
    scheduleDate: Optional[Text] = None
    restartBehavior: Literal["RETRY_FAILED", "NEW_EXECUTION"] = "RETRY_FAILED"


@register
class Subflow(CorePlugin):
    """Create an execution of another flow, and by default wait for it."""

    type = "io.kestra.plugin.core.flow.Subflow"
    aliases = (_PREFIX + "Subflow", _PREFIX + "Flow")
    kind = EXECUTABLE
    calls_subflow = True

    class Props(_SubflowProps):
        outputs: Optional[dict[str, Any]] = None  # deprecated since 0.15, still honoured


class _Batch(Props):
    rows: Optional[int] = Field(None, ge=1)
    bytes: Optional[Text] = None
    partitions: Optional[int] = Field(None, ge=1)
    separator: Text = "\n"


@register
class ForEachItem(CorePlugin):
    """Split a file into batches and run one subflow execution per batch.

    Flowable: the executor expands it into the internal children ``<id>_split``, ``<id>_items``
    and ``<id>_merge``.
    """

    type = "io.kestra.plugin.core.flow.ForEachItem"
    aliases = (_PREFIX + "ForEachItem",)
    kind = FLOWABLE
    task_fields = dict(_LOCAL_HANDLERS)
    calls_subflow = True

    class Props(_SubflowProps):
        items: Text
        batch: Optional[_Batch] = None

    @classmethod
    def resolve(cls, step: Step, task: Any, run: TaskRun) -> Block:
        internal_tasks = task.props.get("_internal") or []
        return lambda: step.sequential(run, internal_tasks)

    @classmethod
    def internal_tasks(cls, task: Any) -> list[Any]:
        """``<id>_split`` (a worker splits ``items`` into batch files), ``<id>_items`` (one subflow
        execution per batch, with ``taskrun.items`` and the 1-based ``taskrun.iteration``) and
        ``<id>_merge`` (the children's flow outputs, one JSON line each), run one after another."""
        children = []
        for suffix, plugin in (("_split", ForEachItemSplit), ("_items", ForEachItemExecutable),
                               ("_merge", ForEachItemMerge)):
            # the parent's expressions are copied so that job contexts carry what they read
            props = {"forEachItem": task, **{k: task.props[k] for k in ("items", "batch", "inputs", "labels")
                                            if k in task.props}}
            children.append(type(task)(id=task.id + suffix, type=plugin.type, raw_type=plugin.type, plugin=plugin,
                                       props=props, path=f"{task.path}.{suffix[1:]}", line=task.line,
                                       worker_group=task.worker_group, retry=None))
        return children


def _size(text: Any) -> int:
    """``10MB`` → bytes."""
    value = str(text).strip().upper()
    for unit, factor in (("KB", 1024), ("MB", 1024 ** 2), ("GB", 1024 ** 3), ("B", 1)):
        if value.endswith(unit):
            return int(float(value[: -len(unit)]) * factor)
    return int(value)


def _internal_prefix(ctx: RunContext, parent_id: str, step_name: str) -> str:
    taskrun_id = getattr(ctx, "taskrun_id", None) or (ctx.variables.get("taskrun") or {}).get("id")
    return (f"{ctx.namespace.replace('.', '/')}/{ctx.flow_id}/executions/{ctx.execution_id}/tasks/"
            f"{parent_id}-{step_name}/{taskrun_id}")


# ForEachItem's internal types are not registered: a flow cannot name them.
class ForEachItemSplit(CorePlugin):
    """Split the ``items`` file into batch files (by ``rows``, ``bytes`` or ``partitions``)."""

    type = "io.kestra.plugin.core.flow.ForEachItem$ForEachItemSplit"
    kind = RUNNABLE

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        from orchestrator.engine.memory_platform import platform_of

        platform = platform_of(ctx)
        parent = self.task.props["forEachItem"]
        items = ctx.render(parent.props.get("items"))
        if not isinstance(items, str) or not items.startswith("kestra://"):
            raise CelestraError(f"Unable to split the items from {items}, this is not an internal storage URI!")
        batch = parent.props.get("batch") or {}
        separator = str(ctx.render(batch.get("separator") or "\n"))
        content = platform.read_file(items).decode("utf-8")
        lines = [line + separator for line in content.split(separator)]
        if lines and lines[-1] == separator:
            lines.pop()  # the file ended with a separator
        groups: list[list[str]] = []
        if batch.get("partitions") is not None:
            count = max(int(ctx.render(batch["partitions"])), 1)
            size = -(-len(lines) // count) if lines else 0
            groups = [lines[i:i + size] for i in range(0, len(lines), size)] if size else []
        elif batch.get("bytes") is not None:
            limit = _size(ctx.render(batch["bytes"]))
            current: list[str] = []
            for line in lines:
                if current and sum(len(x.encode()) for x in current) + len(line.encode()) > limit:
                    groups.append(current)
                    current = []
                current.append(line)
            if current:
                groups.append(current)
        else:
            rows = max(int(ctx.render(batch.get("rows", 1)) or 1), 1)
            groups = [lines[i:i + rows] for i in range(0, len(lines), rows)]
        base = _internal_prefix(ctx, parent.id, "split")
        uris = [platform.put_at(platform.uri(f"{base}/{index}.txt"), "".join(group).encode())
                for index, group in enumerate(groups)]
        listing = platform.put_at(platform.uri(f"{base}/splits.txt"), "\n".join(uris).encode())
        return {"splits": listing, "uris": uris}


class ForEachItemExecutable(CorePlugin):
    """One subflow execution per batch written by ``_split``; follows every child's end."""

    type = "io.kestra.plugin.core.flow.ForEachItem$ForEachItemExecutable"
    kind = EXECUTABLE
    follows_each_child = True

    @classmethod
    def start(cls, step: Step, task: Any, run: TaskRun) -> None:
        parent_task = task.props["forEachItem"]
        split_runs = [r for r in step.index.by_task.get(parent_task.id + "_split", ())
                      if r.parent_task_run_id == run.parent_task_run_id]
        uris = (split_runs[-1].outputs or {}).get("uris") or [] if split_runs else []
        try:
            requests = []
            for iteration, uri in enumerate(uris, start=1):
                context = step.context_for(run, task)
                context["taskrun"] = {**context["taskrun"], "items": uri, "iteration": iteration}
                request = step.subflow_request(task, run, parent_task.props, context)
                request.follow_children = True
                requests.append(request)
        except CelestraError as exc:
            step.fail(run, str(exc))
            return
        wait = requests[0].wait if requests else True
        transmit = requests[0].transmit_failed if requests else True
        run.internal.update({"transmitFailed": transmit, "wait": wait, "children": {}, "total": len(uris)})
        step.transition(run, states.RUNNING)
        if not uris:
            step.transition(run, states.SUCCESS)
            return
        run.outputs = {"numberOfBatches": len(uris), "iterations": {states.CREATED: 0, states.RUNNING: 0,
                                                                     states.SUCCESS: 0}}
        step.decision.subflows.extend(requests)

    @classmethod
    def apply_child_result(cls, task: Any, run: TaskRun, result: Mapping[str, Any], moment: Any) -> TaskRun:
        """Update the counters; the run ends when every child is created (``wait: false``) or terminated."""
        from orchestrator.engine.model import Attempt, State

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
                final = states.guess_final_state([s for s in children.values()
                                                  if s in (states.FAILED, states.KILLED, states.WARNING)] or [final])
        else:
            return run
        final = states.apply_failure_policy(final, task.allow_failure, task.allow_warning)
        run.attempts.append(Attempt(State(states.RUNNING, [(states.RUNNING, run.state.start_date or moment)])
                                    .with_state(final, moment)))
        run.state = run.state.with_state(final, moment)
        return run


class ForEachItemMerge(CorePlugin):
    """The flow outputs of every child execution of the ForEachItem, one JSON line per child."""

    type = "io.kestra.plugin.core.flow.ForEachItem$ForEachItemMergeOutputs"
    kind = RUNNABLE

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        import json

        from orchestrator.engine.memory_platform import platform_of

        platform = platform_of(ctx)
        parent = self.task.props["forEachItem"]
        outputs = platform.child_outputs(parent.id + "_items")
        lines = [json.dumps(item or {}, separators=(",", ":")) for item in outputs]
        uri = platform.uri(f"{_internal_prefix(ctx, parent.id, 'merge')}/outputs.jsonl")
        return {"subflowOutputs": platform.put_at(uri, ("\n".join(lines) + ("\n" if lines else "")).encode())}


class _Cache(Props):
    patterns: list[Text]
    ttl: Optional[Duration] = None


class NamespaceFiles(Props):
    enabled: bool = True
    include: Optional[list[Text]] = None
    exclude: Optional[list[Text]] = None
    namespaces: Optional[list[Text]] = None
    ifExists: Literal["OVERWRITE", "FAIL", "WARN", "IGNORE"] = "OVERWRITE"
    folderPerNamespace: bool = False


@register
class WorkingDirectory(CorePlugin):
    """Run runnable ``tasks`` sequentially on one worker, in one temporary directory."""

    type = "io.kestra.plugin.core.flow.WorkingDirectory"
    aliases = (_PREFIX + "WorkingDirectory", _PREFIX + "Worker")
    kind = FLOWABLE
    task_fields = {"tasks": "list", **_LOCAL_HANDLERS}
    whole_context_job = True
    restarts_as_a_whole = True

    class Props(Props):
        cache: Optional[_Cache] = None
        namespaceFiles: Optional[NamespaceFiles] = None
        inputFiles: Optional[dict[str, Any] | str] = None
        outputFiles: Optional[list[Text]] = None

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        children = child_tasks(node, "tasks")
        if not children:
            return [("", "The 'tasks' property cannot be empty")]
        problems: list[tuple[str, str]] = []
        if any(child.kind != RUNNABLE for child in children):
            problems.append(("", "Only runnable tasks are allowed as children of a WorkingDirectory task"))
        if any(child.worker_group for child in children):
            problems.append(("", "Cannot set a Worker Group in any WorkingDirectory sub-tasks, "
                                 "it is only supported at the WorkingDirectory level"))
        return problems

    @classmethod
    def resolve(cls, step: Step, task: Any, run: TaskRun) -> Block:
        return lambda: cls.on_one_worker(step, task, run)

    @staticmethod
    def on_one_worker(step: Step, task: Any, run: TaskRun) -> str | None:
        """The whole group goes to one worker as one job; its children come back in the result."""
        internal = run.internal
        if "groupState" in internal:
            return str(internal["groupState"])
        if not internal.get("dispatched"):
            internal["dispatched"] = True
            step.decision.touch(run)
            step.dispatch(task, run)
        return None


@register
class Template(CorePlugin):
    """Deprecated: inline the tasks of a stored template (``kestra.templates.enabled``)."""

    type = "io.kestra.plugin.core.flow.Template"
    aliases = (_PREFIX + "Template",)
    kind = FLOWABLE
    deprecated = True
    task_fields = dict(_LOCAL_HANDLERS)

    class Props(Props):
        namespace: Text
        templateId: Text
        tenantId: Optional[Text] = None
        args: Optional[dict[str, Text]] = None
