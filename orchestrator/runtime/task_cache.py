"""``taskCache``: a runnable task's state and outputs reused for its ``ttl`` (Kestra's task cache).

Kestra's worker (``DefaultWorker``) hashes the task as rendered for the run (SHA-256 of its JSON,
with ``workingDir`` replaced by a fixed text so that the hash does not depend on the directory),
looks up a cache entry of the flow for that hash and the task run's ``value``, and when one exists
and is younger than the ttl, ends the task run from it without running the task. After a SUCCESS
or WARNING attempt it stores the outputs. A key that cannot be computed (a property that does not
render yet) disables the cache for that run, with an ERROR line; a failing lookup or store is
logged and the task runs (or ends) as without a cache.

Entries are rows of :class:`flows_app.models.TaskCacheEntry` (Kestra keeps a zip in internal
storage); only tasks with ``taskCache.enabled`` query them.
"""
from __future__ import annotations

import logging
from typing import Any

from orchestrator.engine.task_cache import CACHED_STATES, cache_key, enabled, ttl_of, value_key

__all__ = ["CACHED_STATES", "cache_key", "enabled", "lookup", "store"]

log = logging.getLogger("celestra.task_cache")

def lookup(job: dict[str, Any], task: Any, key: str, ctx: Any) -> tuple[str, Any] | None:
    """``(state, outputs)`` of a live entry, else None; an expired entry is deleted."""
    from django.utils import timezone

    from flows_app.models import TaskCacheEntry

    try:
        ttl = ttl_of(task, ctx)
        entry = TaskCacheEntry.objects.filter(namespace=job["namespace"], flow_id=job["flow_id"], cache_key=key,
                                              value_key=value_key(job)).first()
        if entry is None:
            return None
        if ttl is not None and timezone.now() > entry.created + ttl:
            log.debug("cache entry %s of %s.%s expired (ttl %s)", key, job["flow_id"], task.id, ttl)
            entry.delete()
            return None
    except Exception as exc:  # noqa: BLE001 - a broken cache never fails the task
        ctx.log("ERROR", f"Unexpected exception while loading the cache for task '{task.id}', "
                         f"the task will be executed instead: {exc}")
        return None
    ctx.log("INFO", f"Skipping task execution for task '{task.id}' as there is an existing cache entry for it")
    return entry.state, entry.outputs


def store(job: dict[str, Any], task: Any, key: str, state: str, outputs: Any, ctx: Any) -> None:
    from django.utils import timezone

    from flows_app.models import TaskCacheEntry

    ctx.log("INFO", f"Uploading a cache entry for task '{task.id}'")
    try:
        TaskCacheEntry.objects.update_or_create(
            namespace=job["namespace"], flow_id=job["flow_id"], cache_key=key, value_key=value_key(job),
            defaults={"task_id": task.id, "state": state, "outputs": outputs or None,
                      "execution_id": job["execution_id"], "created": timezone.now()})
    except Exception as exc:  # noqa: BLE001 - the task's result stands without its cache entry
        ctx.log("ERROR", f"Unexpected exception while uploading the cache entry for task '{task.id}', "
                         f"the task will not be cached: {exc}")
