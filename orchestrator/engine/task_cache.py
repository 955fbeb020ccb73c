"""The task cache's key (pure): what identifies a cached result of a task with ``taskCache``.

As Kestra's worker: the SHA-256 of the task rendered for the run (its id, type and properties;
``workingDir`` replaced by a fixed text so that the directory is not part of the key), next to the
hash of the task run's ``value``. The runtime (orchestrator/runtime/task_cache.py) stores entries.
"""
from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from . import states
from .timeutil import parse_duration

#: the states whose outputs are cached (a failed attempt, even with allowFailure, is not)
CACHED_STATES = (states.SUCCESS, states.WARNING)


def enabled(task: Any) -> bool:
    cache = task.task_cache
    return bool(cache and cache.get("enabled"))


def ttl_of(task: Any, ctx: Any) -> timedelta | None:
    ttl = (task.task_cache or {}).get("ttl")
    if ttl is None:
        return None
    return parse_duration(str(ctx.render(ttl)))


def cache_key(task: Any, ctx: Any) -> str | None:
    """The hash of the task rendered in ``ctx`` (None, with an ERROR line, when it does not render)."""
    variables = ctx.variables
    saved = variables.get("workingDir")
    variables["workingDir"] = "workingDir"  # as Kestra: the directory is not part of the key
    try:
        rendered = {"id": task.id, "type": task.type, "taskCache": task.task_cache,
                    "timeout": task.timeout, "props": ctx.render(task.props)}
        text = json.dumps(rendered, sort_keys=True, default=str, separators=(",", ":"))
    except Exception as exc:  # noqa: BLE001 - any render problem only disables the cache for this run
        ctx.log("ERROR", f"Unable to create the cache key for the task '{task.id}': {exc}")
        return None
    finally:
        if saved is None:
            variables.pop("workingDir", None)
        else:
            variables["workingDir"] = saved
    return hashlib.sha256(text.encode()).hexdigest()


def value_key(job: dict[str, Any]) -> str:
    value = ((job.get("context") or {}).get("taskrun") or {}).get("value")
    return "" if value is None else hashlib.sha256(str(value).encode()).hexdigest()


