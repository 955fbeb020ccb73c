"""Tasks the executor runs that a flow does not name (ForEachItem's split, batches and merge).

A task type lists them with ``Plugin.internal_tasks`` (Kestra's ``allChildTasks``); :func:`expand`
adds them to a parsed flow's index so that the executor, the workers and retries find them like
any other task. Every runner expands a flow before its first step (the database runtime when it
caches a revision, the in-memory runner when it starts).
"""
from __future__ import annotations

from typing import Any

__all__ = ["expand"]


def expand(flow: Any) -> Any:
    """Give every task of ``flow`` its internal tasks (idempotent); returns the flow."""
    for task in list(flow.all_tasks()):
        if "_internal" in task.props:
            continue
        internal = task.plugin.internal_tasks(task)
        if not internal:
            continue
        for child in internal:
            flow._index.setdefault(child.id, child)
            flow._parents.setdefault(child.id, task)
        task.props["_internal"] = internal
    return flow
