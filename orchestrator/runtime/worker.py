"""Worker side: run one runnable task run (or a WorkingDirectory group) and build the result
message for the executor."""
from __future__ import annotations

import glob
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from datetime import datetime
from typing import Any

from orchestrator.engine import expressions, states
from orchestrator.engine.attempt import run_attempt
from orchestrator.engine.errors import CelestraError, TaskKilled
from orchestrator.engine.ids import new_id
from orchestrator.engine.timeutil import iso, now
from orchestrator.plugins.core.flow import WorkingDirectory

from .environment import static_extras
from .flows import get_flow
from .platform import attempt_log_file, mask, prepare_run_context
from .services import Services

log = logging.getLogger("celestra.worker")
WORKER_ID = f"{socket.gethostname()}"
LEVELS = ("ERROR", "WARN", "INFO", "DEBUG", "TRACE")
WORKING_DIRECTORY = WorkingDirectory.type


class WorkerRunContext:
    """The RunContext of orchestrator.engine.plugins, for one attempt of one task run."""

    def __init__(self, job: dict[str, Any], deadline: float | None, working_dir: str | None = None):
        self.job = job
        self.task_id = job["task_id"]
        self.taskrun_id = job["taskrun_id"]
        self.execution_id = job["execution_id"]
        self.namespace = job["namespace"]
        self.flow_id = job["flow_id"]
        self.variables = {**job["context"], **static_extras(),
                          "__services__": Services(self.namespace, self.execution_id)}
        self.deadline = deadline
        self.logs: list[dict[str, Any]] = []
        self.metrics: list[dict[str, Any]] = []
        from .durable import HEARTBEAT

        # set by the heartbeat when the job is killed (a fresh event when not run under a lease)
        self.killed = HEARTBEAT.event((self.taskrun_id, job["attempt"])) or threading.Event()
        self.warning = False
        #: "Timeout" or "Killed" when the supervisor interrupted the attempt
        self.stopped: str | None = None
        self._working_dir = working_dir
        self._owns_working_dir = False
        if working_dir:
            self.variables["workingDir"] = working_dir

    @property
    def working_dir(self) -> str:
        """The task's working directory (created on first use; shared inside a WorkingDirectory)."""
        if self._working_dir is None:
            self._working_dir = tempfile.mkdtemp(prefix="celestra-")
            self._owns_working_dir = True
            self.variables["workingDir"] = self._working_dir
        return self._working_dir

    def cleanup(self) -> None:
        if self._owns_working_dir and self._working_dir:
            shutil.rmtree(self._working_dir, ignore_errors=True)

    def render(self, value: Any) -> Any:
        # The expression budget never outlasts the task's own timeout.
        return expressions.render(value, self.variables, self.deadline)

    def render_string(self, value: Any) -> str:
        return expressions.render_string(value, self.variables, self.deadline)

    def log(self, level: str, message: str) -> None:
        level = "WARN" if level == "WARNING" else level.upper()
        self.logs.append({"level": level if level in LEVELS else "INFO", "message": mask(self, message),
                          "timestamp": now().isoformat()})

    def metric(self, kind: str, name: str, value: float, tags: dict[str, str] | None = None) -> None:
        self.metrics.append({"type": kind, "name": name, "value": float(value), "tags": tags or {},
                             "timestamp": now().isoformat()})

    def set_timeout(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        _SUPERVISOR.arm_deadline(self, seconds)

    def timed_out(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def cancelled(self) -> bool:
        """True once the attempt is killed (``killed``, set by the heartbeat) or past its timeout:
        long-running plugins (script tasks) poll it."""
        return self.killed.is_set() or self.timed_out()

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + max(seconds, 0)
        while True:
            remaining = end - time.monotonic()
            if self.deadline is not None:
                if time.monotonic() >= self.deadline:
                    raise TaskKilled("Timeout")
                remaining = min(remaining, self.deadline - time.monotonic())
            if remaining <= 0:
                return
            if self.killed.wait(min(remaining, 0.5)):
                raise TaskKilled("Killed")

    # --- for script tasks (orchestrator.plugins.scripts): the kill check and live logs -----------

    def publish_logs(self) -> None:
        """Write the log lines gathered so far to the database now, so that the API shows a long
        task's lines while it runs; the written lines leave ``logs`` (the result carries the rest).
        A failed write keeps them for the result."""
        count = len(self.logs)
        if not count:
            return
        from flows_app.models import LogEntry

        batch = self.logs[:count]
        try:
            LogEntry.objects.bulk_create([
                LogEntry(execution_id=self.execution_id, namespace=self.namespace, flow_id=self.flow_id,
                         task_id=self.task_id, taskrun_id=self.taskrun_id, attempt_number=self.job.get("attempt"),
                         timestamp=parse_ts(line["timestamp"]), level=line["level"], message=line["message"])
                for line in batch])
        except Exception:
            log.warning("live logs of %s could not be written; they go with the result", self.taskrun_id,
                        exc_info=True)
            return
        del self.logs[:count]


class _Supervisor:
    """Stops a task blocked in the main thread (prefork and solo pools): at its timeout (an
    interval timer) or when the heartbeat finds it killed (a signal sent to the main thread),
    ``SIGALRM``'s handler raises ``TaskKilled`` in that thread, which interrupts a blocking socket
    read or sleep. Threads (local mode's pool) cannot be interrupted: there the attempt's kill
    event and deadline are read by ``ctx.sleep`` and by plugins polling ``cancelled()``.
    """

    def __init__(self) -> None:
        self.ctx: WorkerRunContext | None = None
        self.installed_pid = -1

    def usable(self) -> bool:
        return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()

    def start(self, ctx: WorkerRunContext) -> None:
        if not self.usable():
            return
        if self.installed_pid != os.getpid():
            signal.signal(signal.SIGALRM, self._fire)
            self.installed_pid = os.getpid()
        self.ctx = ctx

    def arm_deadline(self, ctx: WorkerRunContext, seconds: float) -> None:
        if self.ctx is ctx:
            signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))

    def stop(self, ctx: WorkerRunContext) -> None:
        if self.ctx is ctx:
            self.ctx = None
            signal.setitimer(signal.ITIMER_REAL, 0)

    def _fire(self, signum, frame) -> None:
        ctx = self.ctx
        if ctx is None:
            return  # the attempt ended meanwhile
        reason = "Killed" if ctx.killed.is_set() else (
            "Timeout" if ctx.deadline is not None and time.monotonic() >= ctx.deadline - 0.001 else None)
        if reason is None:
            return
        self.ctx = None
        ctx.stopped = reason
        _stop_started_processes(ctx)
        raise TaskKilled(reason)


_SUPERVISOR = _Supervisor()


def main_thread_interruptible() -> bool:
    return _SUPERVISOR.usable()


def interrupt_main_thread() -> None:
    """Called by the heartbeat thread when the running job was killed."""
    if _SUPERVISOR.ctx is not None:
        signal.pthread_kill(threading.main_thread().ident, signal.SIGALRM)


def _stop_started_processes(ctx: WorkerRunContext) -> None:
    """Terminate the process groups the attempt started (script tasks). A pool process whose main
    thread runs the attempt runs nothing else, so its live groups are the attempt's."""
    from orchestrator.engine import supervision

    supervision.terminate_all()


def _attempt(job: dict[str, Any], task: Any, working_dir: str | None = None) -> tuple[str, Any, WorkerRunContext]:
    """Run the plugin once: (state, outputs, context). Never raises."""
    ctx = WorkerRunContext(job, None, working_dir)
    _SUPERVISOR.start(ctx)
    try:
        if ctx.killed.is_set():
            state, outputs = states.FAILED, None
            ctx.log("ERROR", "Task attempt killed: Killed")
        else:
            state, outputs = run_attempt(task, ctx, lambda: prepare_run_context(
                ctx, get_flow(job["namespace"], job["flow_id"], job["flow_revision"])))
    except TaskKilled as exc:  # raised by the supervisor between the plugin's end and the attempt's
        state, outputs = states.FAILED, None
        ctx.log("ERROR", f"Timeout after {task.timeout}" if str(exc) == "Timeout" else f"Task attempt killed: {exc}")
    finally:
        _SUPERVISOR.stop(ctx)
    if ctx.killed.is_set() and state == states.SUCCESS:
        state = states.FAILED
    if ctx.stopped == "Timeout" and not any(line["message"].startswith("Timeout after") for line in ctx.logs):
        # a plugin turned the interruption into an error of its own: the attempt still timed out
        state = states.FAILED
        ctx.log("ERROR", f"Timeout after {task.timeout}")
    return state, outputs, ctx


def run_job(job: dict[str, Any], worker_id: str | None = None) -> dict[str, Any]:
    """Run the job's task and return the result message for the executor (never raises)."""
    started = now()
    flow = get_flow(job["namespace"], job["flow_id"], job["flow_revision"])
    task = flow.find_task(job["task_id"])
    if task.type == WORKING_DIRECTORY:
        return run_group(job, task, flow, worker_id)
    state, outputs, ctx = _attempt(job, task)
    ctx.cleanup()
    log_file = attempt_log_file(ctx, job["attempt"]) if task.log_to_file else None
    return {
        "taskrun_id": job["taskrun_id"],
        "attempt": job["attempt"],
        "state": state,
        "outputs": outputs if outputs else None,
        "started": started.isoformat(),
        "ended": now().isoformat(),
        "worker_id": worker_id or WORKER_ID,
        "logs": [] if log_file else ctx.logs,
        "metrics": ctx.metrics,
        "log_file": log_file,
    }


def run_group(job: dict[str, Any], group: Any, flow: Any, worker_id: str | None) -> dict[str, Any]:
    """A WorkingDirectory: its tasks run here one after another in one temporary directory.

    Child task run ids are chosen here (the tasks may use ``taskrun.id``); the executor records
    the children from the result. The first failure stops the group.
    """
    started = now()
    directory = tempfile.mkdtemp(prefix="celestra-wd-")
    children: list[dict[str, Any]] = []
    group_logs: list[dict[str, Any]] = []
    outputs: dict[str, Any] | None = None
    context = job["context"]
    previous_outputs = dict(context.get("outputs") or {})
    try:
        props = group.props
        base = WorkerRunContext(job, None, directory)
        if props.get("inputFiles"):
            _write_input_files(base, directory, props["inputFiles"])
        iteration = 0
        for child in props.get("tasks") or []:
            if child.disabled:
                continue
            run_id = new_id()
            child_context = {
                **context, "outputs": previous_outputs, "task": {"id": child.id, "type": child.type},
                "taskrun": {"id": run_id, "startDate": iso(now()), "attemptsCount": 0,
                            "parentId": job["taskrun_id"]},
                "parent": {"taskrun": {"value": context["taskrun"].get("value")}} if context["taskrun"].get("value")
                else context.get("parent"),
                "workingDir": directory,
            }
            child_started = now()
            child_job = {**job, "task_id": child.id, "taskrun_id": run_id, "context": child_context}
            if child.run_if is not None and child.run_if != "true" and not expressions.is_truthy(
                    expressions.render(child.run_if, {**child_context, **static_extras()})):
                children.append({"id": run_id, "task_id": child.id, "state": states.SKIPPED, "outputs": None,
                                 "started": child_started.isoformat(), "ended": now().isoformat(), "logs": [],
                                 "metrics": []})
                continue
            state, child_outputs, ctx = _attempt(child_job, child, directory)
            state = states.apply_failure_policy(state, child.allow_failure, child.allow_warning)
            children.append({"id": run_id, "task_id": child.id, "state": state, "outputs": child_outputs or None,
                             "started": child_started.isoformat(), "ended": now().isoformat(),
                             "logs": ctx.logs, "metrics": ctx.metrics, "iteration": iteration})
            iteration += 1
            if child_outputs:
                previous_outputs = {**previous_outputs, child.id: child_outputs}
            if state in states.FAILED_LIKE:
                break
        if props.get("outputFiles") and not any(c["state"] in states.FAILED_LIKE for c in children):
            outputs = {"outputFiles": _upload_output_files(base, directory, base.render(props["outputFiles"]))}
        group_logs = base.logs
    except CelestraError as exc:
        group_logs.append({"level": "ERROR", "message": str(exc), "timestamp": now().isoformat()})
        children.append({"id": new_id(), "task_id": None, "state": states.FAILED})
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    failed = any(c["state"] in states.FAILED_LIKE for c in children)
    return {
        "taskrun_id": job["taskrun_id"], "attempt": job["attempt"],
        "state": states.FAILED if failed else states.SUCCESS, "outputs": outputs,
        "started": started.isoformat(), "ended": now().isoformat(), "worker_id": worker_id or WORKER_ID,
        "logs": group_logs, "metrics": [], "children": [c for c in children if c["task_id"]],
    }


def _write_input_files(ctx: WorkerRunContext, directory: str, files: Any) -> None:
    import json

    rendered = ctx.render(files)
    if isinstance(rendered, str):
        rendered = json.loads(rendered)
    for name, content in (rendered or {}).items():
        target = os.path.realpath(os.path.join(directory, name))
        if not target.startswith(os.path.realpath(directory) + os.sep):
            raise CelestraError(f"Invalid input file path: {name}")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        data: bytes
        if isinstance(content, str) and content.startswith("kestra://"):
            from storage_app.storage import get

            data = get(content)
        else:
            data = (content if isinstance(content, str) else json.dumps(content)).encode()
        with open(target, "wb") as handle:
            handle.write(data)


def _upload_output_files(ctx: WorkerRunContext, directory: str, patterns: Any) -> dict[str, str]:
    from storage_app.storage import put

    found: dict[str, str] = {}
    for pattern in patterns if isinstance(patterns, list) else [patterns]:
        for path in sorted(glob.glob(os.path.join(directory, str(pattern)), recursive=True)):
            if os.path.isfile(path):
                name = os.path.relpath(path, directory)
                with open(path, "rb") as handle:
                    found[name] = put(_task_storage_path(ctx, name), handle.read())
    return found


def _task_storage_path(ctx: WorkerRunContext, name: str) -> str:
    return (f"{ctx.namespace.replace('.', '/')}/{ctx.flow_id}/executions/{ctx.execution_id}/tasks/"
            f"{ctx.task_id}/{ctx.taskrun_id}/{name}")


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text)
