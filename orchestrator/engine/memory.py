"""An in-memory runner: the executor's decisions and the plugins, with no database and no broker.

It drives one execution to its end synchronously (jobs run in the calling thread, in order).
The engine's tests use it, and so does the executor benchmark; production never does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import expressions
from .attempt import run_attempt
from .executor import Environment, LogLine, SubflowRequest, WorkerJob, apply_result, apply_subflow_result, decide
from .flow import Flow, parse_flow
from .foreachitem import expand
from .inputs import resolve_inputs
from .memory_platform import MemoryPlatform
from .model import Execution
from .secrets_codec import SecretMasker, decrypt_secret_inputs
from .timeutil import now


class MemoryRunContext:
    def __init__(self, job: WorkerJob, platform: MemoryPlatform | None = None):
        self.task_id = job.task_id
        self.execution_id = job.execution_id
        self.namespace = job.namespace
        self.flow_id = job.flow_id
        self.variables = job.context
        self.platform = (platform or MemoryPlatform()).share(namespace=job.namespace, flow_id=job.flow_id,
                                                             execution_id=job.execution_id, task_id=job.task_id,
                                                             taskrun_id=job.taskrun_id)
        self.secret_masker = SecretMasker()
        self.logs: list[dict[str, Any]] = []
        self.metrics: list[dict[str, Any]] = []
        self.slept = 0.0
        self.limit: float | None = None

    def render(self, value: Any) -> Any:
        return expressions.render(value, self.variables)

    def render_string(self, value: Any) -> str:
        return str(expressions.render_string(value, self.variables))

    def log(self, level: str, message: str) -> None:
        self.logs.append({"level": "WARN" if level == "WARNING" else level,
                          "message": self.secret_masker.mask(message),
                          "timestamp": now().isoformat()})

    def metric(self, kind: str, name: str, value: float, tags: dict[str, str] | None = None) -> None:
        self.metrics.append({"type": kind, "name": name, "value": value, "tags": tags or {}})

    def sleep(self, seconds: float) -> None:
        self.slept += seconds  # simulated time: the runner does not wait

    def set_timeout(self, seconds: float) -> None:
        self.limit = seconds

    def timed_out(self) -> bool:
        return self.limit is not None and self.slept > self.limit

    def cancelled(self) -> bool:
        """Nothing kills an in-memory attempt (script tasks poll this while their process runs)."""
        return False


@dataclass
class MemoryRun:
    flow: Flow
    execution: Execution
    logs: list[LogLine] = field(default_factory=list)
    jobs: list[WorkerJob] = field(default_factory=list)
    steps: int = 0
    #: executions created by Subflow and ForEachItem tasks, in creation order
    children: list["MemoryRun"] = field(default_factory=list)
    #: the stores the run's tasks wrote to (files, KV...)
    platform: MemoryPlatform | None = None

    def runs(self, task_id: str) -> list[Any]:
        return [r for r in self.execution.task_runs if r.task_id == task_id]

    def run(self, task_id: str) -> Any:
        found = self.runs(task_id)
        return found[0] if found else None

    @property
    def state(self) -> str:
        return self.execution.state.current


def run_job(flow: Flow, job: WorkerJob,
            platform: MemoryPlatform | None = None) -> tuple[dict[str, Any], MemoryRunContext]:
    task = flow.find_task(job.task_id)
    ctx = MemoryRunContext(job, platform)
    ctx.variables = {**ctx.variables, "inputs": decrypt_secret_inputs(flow.inputs, ctx.variables.get("inputs"),
                                                                       ctx.secret_masker)}
    started = now()
    state, outputs = run_attempt(task, ctx)
    result = {"taskrun_id": job.taskrun_id, "attempt": job.attempt, "state": state, "outputs": outputs or None,
              "started": started.isoformat(), "ended": now().isoformat(), "worker_id": "memory",
              "logs": ctx.logs, "metrics": ctx.metrics}
    return result, ctx


def run(source: str | Flow, inputs: dict[str, Any] | None = None, *, extras: dict[str, Any] | None = None,
        labels: list[dict[str, str]] | None = None, max_steps: int = 100_000,
        results: list[dict[str, Any]] | None = None,
        flows: dict[tuple[str, str], str | Flow] | None = None,
        platform: MemoryPlatform | None = None) -> MemoryRun:
    """Parse (unless given a Flow), create the execution, and step until it ends.

    Retry waits are simulated: a step whose only pending work is a timer jumps the clock.
    Subflow and ForEachItem children are run to their end at once, from ``flows`` (keyed by
    namespace and flow id); a child flow missing there fails its task as a missing flow does in
    the database runtime. ``platform`` holds the stores (files, KV...) shared with the children.
    """
    flow = expand(source if isinstance(source, Flow) else parse_flow(source))
    execution = Execution.create(flow.namespace, flow.id, flow.revision or 1)
    execution.labels = list(labels or []) + [{"key": "system.correlationId", "value": execution.id}]
    context = {"flow": {"id": flow.id, "namespace": flow.namespace}, "execution": {"id": execution.id},
               **(extras or {})}
    execution.inputs = resolve_inputs(flow.inputs or [], inputs or {}, render=expressions.render, context=context,
                                      namespace=flow.namespace, flow_id=flow.id, execution_id=execution.id)
    clock = [now()]
    env = Environment(render=expressions.render, extras=dict(extras or {}), is_truthy=expressions.is_truthy,
                      now=lambda: clock[0])
    memory = MemoryRun(flow, execution)
    platform = (platform.share(namespace=flow.namespace, flow_id=flow.id, execution_id=execution.id)
                if platform is not None else MemoryPlatform(flow.namespace, flow.id, execution.id, None, None))
    memory.platform = platform
    pending: list[WorkerJob] = []
    while memory.steps < max_steps:
        memory.steps += 1
        decision = decide(flow, execution, env)
        memory.logs.extend(decision.logs)
        memory.jobs.extend(decision.jobs)
        pending.extend(decision.jobs)
        if decision.subflows:
            for request in decision.subflows:
                _run_subflow(memory, request, flows or {}, platform, extras, clock[0])
            continue
        if execution.state.is_terminated() and not pending:
            break
        if not pending:
            if decision.wake_at is None:
                break  # nothing to run and nothing to wait for: paused or stuck
            clock[0] = max(clock[0], decision.wake_at) + timedelta(microseconds=1)
            continue
        job = pending.pop(0)
        result, _ = run_job(flow, job, platform)
        if results is not None:
            results.append(result)
        run_ = apply_result(flow, execution, result, clock[0])
        execution.recorded_runs.clear()  # nothing to write in memory
        if run_ is not None:
            memory.logs.extend(LogLine(l["level"], l["message"], run_.task_id, run_.id) for l in result["logs"])
            if run_.internal.get("retryAt"):
                clock[0] = datetime.fromisoformat(run_.internal["retryAt"])
    return memory


def _run_subflow(parent: MemoryRun, request: SubflowRequest, flows: dict[tuple[str, str], str | Flow],
                 platform: MemoryPlatform, extras: dict[str, Any] | None, moment: datetime) -> None:
    """Create and run one child execution at once, then apply its end to the parent's task run."""
    source = flows.get((request.namespace, request.flow_id))
    if source is None:
        message = f"Unable to find flow '{request.namespace}'.'{request.flow_id}'"
        parent.logs.append(LogLine("ERROR", message, request.task_id, request.taskrun_id, 0))
        apply_subflow_result(parent.flow, parent.execution, {"subflow_taskrun_id": request.taskrun_id,
                                                             "error": message}, moment)
        return
    labels = request.labels
    if isinstance(labels, dict):
        labels = [{"key": str(k), "value": str(v)} for k, v in labels.items()]
    # the child reads the parent's files (ForEachItem's batches) and the merge reads its outputs
    shared = platform.share(related_executions=[*platform.related_executions, parent.execution.id])
    child = run(source, request.inputs or {}, extras=extras, labels=list(labels or []), flows=flows,
                platform=shared)
    parent.children.append(child)
    platform.executions.append({
        "id": child.execution.id, "namespace": child.execution.namespace, "flowId": child.execution.flow_id,
        "state": child.state, "parentId": parent.execution.id, "parentTaskId": request.task_id,
        "outputs": child.execution.outputs, "startDate": child.execution.state.start_date.isoformat()
        if child.execution.state.start_date else None})
    apply_subflow_result(parent.flow, parent.execution, {
        "subflow_taskrun_id": request.taskrun_id, "execution_id": child.execution.id, "state": child.state,
        "outputs": child.execution.outputs, "wait": request.wait}, moment)
