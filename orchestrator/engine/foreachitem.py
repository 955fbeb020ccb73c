"""ForEachItem's internal tasks (spec §4.2).

A ForEachItem task ``each`` runs three internal children one after another, as Kestra does:

* ``each_split`` (runnable, on a worker): splits the ``items`` file into batch files;
* ``each_items`` (executable, by the executor): one subflow execution per batch, with
  ``taskrun.items`` (the batch URI) and ``taskrun.iteration`` (1-based) in its ``inputs``;
* ``each_merge`` (runnable, on a worker): the children's flow outputs, one JSON line each.

:func:`expand` adds the three tasks to a parsed flow's index so that the executor, the workers
and retries find them like any other task. Their types are not registered: a flow cannot name them.
"""
from __future__ import annotations

from typing import Any

from .plugins import EXECUTABLE, RUNNABLE, Plugin

FOR_EACH_ITEM = "io.kestra.plugin.core.flow.ForEachItem"
SPLIT = FOR_EACH_ITEM + "$ForEachItemSplit"
ITEMS = FOR_EACH_ITEM + "$ForEachItemExecutable"
MERGE = FOR_EACH_ITEM + "$ForEachItemMergeOutputs"


class ForEachItemSplit(Plugin):
    type = SPLIT
    kind = RUNNABLE

    def run(self, ctx: Any) -> dict[str, Any]:
        from orchestrator.runtime.foreachitem import split

        return split(self.task, ctx)


class ForEachItemExecutable(Plugin):
    type = ITEMS
    kind = EXECUTABLE


class ForEachItemMerge(Plugin):
    type = MERGE
    kind = RUNNABLE

    def run(self, ctx: Any) -> dict[str, Any]:
        from orchestrator.runtime.foreachitem import merge

        return merge(self.task, ctx)


def expand(flow: Any) -> Any:
    """Give every ForEachItem of ``flow`` its three internal tasks (idempotent)."""
    from .flow import Task

    for task in list(flow.all_tasks()):
        if task.type != FOR_EACH_ITEM or "_internal" in task.props:
            continue
        internal = []
        for suffix, plugin in (("_split", ForEachItemSplit), ("_items", ForEachItemExecutable),
                               ("_merge", ForEachItemMerge)):
            child = Task(id=task.id + suffix, type=plugin.type, raw_type=plugin.type, plugin=plugin,
                         # the parent's expressions are copied so that job contexts carry what they read
                         props={"forEachItem": task, **{k: task.props[k] for k in ("items", "batch", "inputs",
                                                                                  "labels") if k in task.props}},
                         path=f"{task.path}.{suffix[1:]}", line=task.line,
                         worker_group=task.worker_group, retry=None)
            internal.append(child)
            flow._index.setdefault(child.id, child)
            flow._parents.setdefault(child.id, task)
        task.props["_internal"] = internal
    return flow
