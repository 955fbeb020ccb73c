"""Worker side: run one runnable task run and report its result to the executor."""
from __future__ import annotations

import logging
import socket
import threading
import time
import traceback
from datetime import datetime
from typing import Any

from orchestrator.engine import expressions, states
from orchestrator.engine.errors import CelestraError, TaskFailure, TaskKilled
from orchestrator.engine.timeutil import now, parse_duration

from .environment import static_extras
from .flows import get_flow
from .services import Services

log = logging.getLogger("celestra.worker")
WORKER_ID = f"{socket.gethostname()}"
LEVELS = ("ERROR", "WARN", "INFO", "DEBUG", "TRACE")


class WorkerRunContext:
    """The RunContext of orchestrator.engine.plugins, for one attempt of one task run."""

    def __init__(self, job: dict[str, Any], deadline: float | None):
        self.job = job
        self.task_id = job["task_id"]
        self.execution_id = job["execution_id"]
        self.namespace = job["namespace"]
        self.flow_id = job["flow_id"]
        self.variables = {**job["context"], **static_extras(),
                          "__services__": Services(self.namespace, self.execution_id)}
        self.deadline = deadline
        self.logs: list[dict[str, Any]] = []
        self.metrics: list[dict[str, Any]] = []
        self.killed = threading.Event()

    def render(self, value: Any) -> Any:
        return expressions.render(value, self.variables)

    def render_string(self, value: Any) -> str:
        return expressions.render_string(value, self.variables)

    def log(self, level: str, message: str) -> None:
        level = "WARN" if level == "WARNING" else level.upper()
        self.logs.append({"level": level if level in LEVELS else "INFO", "message": str(message),
                          "timestamp": now().isoformat()})

    def metric(self, kind: str, name: str, value: float, tags: dict[str, str] | None = None) -> None:
        self.metrics.append({"type": kind, "name": name, "value": float(value), "tags": tags or {},
                             "timestamp": now().isoformat()})

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


def run_job(job: dict[str, Any], worker_id: str | None = None) -> dict[str, Any]:
    """Run the job's task and return the result message for the executor (never raises)."""
    started = now()
    flow = get_flow(job["namespace"], job["flow_id"], job["flow_revision"])
    task = flow.find_task(job["task_id"])
    deadline = None
    ctx: WorkerRunContext | None = None
    outputs = None
    try:
        ctx = WorkerRunContext(job, None)
        if task.timeout:
            timeout = ctx.render(task.timeout)
            deadline = time.monotonic() + parse_duration(str(timeout)).total_seconds()
            ctx.deadline = deadline
        plugin = task.plugin(task)
        outputs = plugin.run(ctx)
        state = states.SUCCESS
        if deadline is not None and time.monotonic() > deadline:
            raise TaskKilled("Timeout")
    except TaskFailure as exc:
        state = states.FAILED
        ctx.log("ERROR", str(exc))
    except TaskKilled as exc:
        state = states.FAILED
        ctx.log("ERROR", f"Task attempt killed: {exc}" if str(exc) != "Timeout"
                else f"Timeout after {task.timeout}")
    except CelestraError as exc:
        state = states.FAILED
        if ctx is None:
            ctx = WorkerRunContext(job, None)
        ctx.log("ERROR", str(exc))
    except Exception as exc:  # noqa: BLE001 - a crashing plugin fails its task run, with the traceback
        state = states.FAILED
        if ctx is None:
            ctx = WorkerRunContext(job, None)
        ctx.log("ERROR", f"{type(exc).__name__}: {exc}")
        ctx.log("DEBUG", traceback.format_exc())
    if ctx is not None and getattr(ctx, "warning", False) and state == states.SUCCESS:
        state = states.WARNING
    return {
        "taskrun_id": job["taskrun_id"],
        "attempt": job["attempt"],
        "state": state,
        "outputs": outputs if outputs else None,
        "started": started.isoformat(),
        "ended": now().isoformat(),
        "worker_id": worker_id or WORKER_ID,
        "logs": ctx.logs if ctx else [],
        "metrics": ctx.metrics if ctx else [],
    }


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text)
