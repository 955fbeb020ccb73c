"""One attempt of a runnable task on a run context, as every runner (worker, in-memory) runs it.

The plugin renders and runs; what it raises becomes the attempt's state and an ERROR log line. A
context tells the time budget apart in its own way (wall clock on a worker, simulated sleeps in
memory) through ``set_timeout(seconds)`` and ``timed_out()``.
"""
from __future__ import annotations

import traceback
from typing import Any, Callable

from . import states
from .errors import CelestraError, TaskFailure, TaskKilled
from .timeutil import parse_duration


def run_attempt(task: Any, ctx: Any, prepare: Callable[[], None] | None = None) -> tuple[str, Any]:
    """Run ``task``'s plugin once: ``(state, outputs)``. Never raises."""
    outputs = None
    try:
        if prepare is not None:
            prepare()
        if task.timeout:
            ctx.set_timeout(parse_duration(str(ctx.render(task.timeout))).total_seconds())
        outputs = task.plugin(task).run(ctx)
        state = states.SUCCESS
        if ctx.timed_out():
            raise TaskKilled("Timeout")
    except TaskFailure as exc:
        state = states.FAILED
        outputs = getattr(exc, "outputs", None)  # a failed script keeps exitCode, vars...
        ctx.log("ERROR", str(exc))
    except TaskKilled as exc:
        state = states.FAILED
        ctx.log("ERROR", f"Timeout after {task.timeout}" if str(exc) == "Timeout" else f"Task attempt killed: {exc}")
    except CelestraError as exc:
        state = states.FAILED
        ctx.log("ERROR", str(exc))
    except Exception as exc:  # noqa: BLE001 - a crashing plugin fails its task run, with the traceback
        state = states.FAILED
        ctx.log("ERROR", f"{type(exc).__name__}: {exc}")
        ctx.log("DEBUG", traceback.format_exc())
    if getattr(ctx, "warning", False) and state == states.SUCCESS:
        state = states.WARNING
    return state, outputs
