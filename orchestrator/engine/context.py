"""The expression context of a task run (spec §9.2), built from plain data."""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .plugins import UnknownPluginType, lookup
from .timeutil import iso

if TYPE_CHECKING:  # pragma: no cover
    from .model import Execution, TaskRun


@functools.lru_cache(maxsize=None)
def is_dynamic(type_name: str) -> bool:
    """Whether a task type runs its children once per value (its class says: ``Plugin.dynamic``)."""
    try:
        return lookup(type_name).dynamic
    except UnknownPluginType:  # internal types (ForEachItem's) are not registered, and not loops
        return False


class RunIndex:
    """Indexes over an execution's task runs: by id, parent, parent and value, task id.

    An index is kept with its execution between executor steps (see :func:`index_of`), so it is
    built once per load and then only grows: a step costs what it changes, not the size of the
    execution. ``memo`` holds derived state of flowables (ForEach progress) for the same reason.
    """

    def __init__(self, execution: "Execution", type_of: "dict[str, str] | None" = None):
        self.execution = execution
        self.type_of = type_of or {}
        self.by_id: dict[str, TaskRun] = {}
        self.children: dict[str | None, list[TaskRun]] = {}
        self.by_parent_value: dict[tuple[str | None, str | None], list[TaskRun]] = {}
        self.by_task: dict[str, list[TaskRun]] = {}
        self.max_seq = -1
        self.memo: dict[str, dict[str, Any]] = {}
        self.runs = execution.task_runs
        for run in sorted(execution.task_runs, key=lambda r: r.seq):
            self.add(run)

    def add(self, run: "TaskRun") -> None:
        self.by_id[run.id] = run
        self.children.setdefault(run.parent_task_run_id, []).append(run)
        self.by_parent_value.setdefault((run.parent_task_run_id, run.value), []).append(run)
        self.by_task.setdefault(run.task_id, []).append(run)
        if run.seq > self.max_seq:
            self.max_seq = run.seq

    def parent(self, run: "TaskRun") -> "TaskRun | None":
        return self.by_id.get(run.parent_task_run_id) if run.parent_task_run_id else None

    def ancestors(self, run: "TaskRun") -> list["TaskRun"]:
        """Nearest first."""
        out = []
        current = self.parent(run)
        while current is not None:
            out.append(current)
            current = self.parent(current)
        return out

    def value_path(self, run: "TaskRun") -> list[str]:
        """Loop values under which this run's outputs are keyed (outermost first)."""
        path: list[str] = []
        current: TaskRun | None = run
        while current is not None:
            parent = self.parent(current)
            if parent is not None and is_dynamic(self.type_of.get(parent.task_id, "")) and current.value is not None:
                path.append(current.value)
            current = parent
        path.reverse()
        return path

    def _keyed(self, runs: "Iterable[TaskRun]", leaf: "Callable[[TaskRun], Any]") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for run in runs:
            value = leaf(run)
            if value is None:
                continue
            path = self.value_path(run)
            if not path:
                out[run.task_id] = value
                continue
            node = out.setdefault(run.task_id, {})
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value
        return out

    def _runs_of(self, task_ids: "set[str] | None") -> "Iterable[TaskRun]":
        if task_ids is None:
            return self.by_id.values()
        return [run for task_id in task_ids for run in self.by_task.get(task_id, ())]

    def outputs_map(self, task_ids: "set[str] | None" = None) -> dict[str, Any]:
        """``outputs`` as expressions see it, for the given task ids (None: every task)."""
        return self._keyed(self._runs_of(task_ids), lambda run: run.outputs)

    def tasks_map(self, task_ids: "set[str] | None" = None) -> dict[str, Any]:
        return self._keyed(self._runs_of(task_ids), lambda run: {"state": run.state.current})


def index_of(execution: "Execution", type_of: dict[str, str]) -> RunIndex:
    """The execution's index, reused while it is in step with the execution's task runs."""
    index = getattr(execution, "_index", None)
    runs = execution.task_runs
    if index is None or index.runs is not runs or len(index.by_id) != len(runs) or (
            runs and runs[-1].id not in index.by_id):
        index = RunIndex(execution, type_of)
        execution._index = index  # type: ignore[attr-defined]
    index.type_of = type_of
    return index


def labels_map(labels: Iterable[dict[str, str]]) -> dict[str, Any]:
    """Labels as a map; ``system.x`` nested as ``system: {x: ...}``; first occurrence wins."""
    out: dict[str, Any] = {}
    for label in labels:
        key, value = label["key"], label["value"]
        if key.startswith("system."):
            out.setdefault("system", {}).setdefault(key[len("system."):], value)
        else:
            out.setdefault(key, value)
    return out


def base_context(flow: Any, execution: "Execution", extras: dict[str, Any] | None = None) -> dict[str, Any]:
    """Variables shared by every task run of an execution."""
    context: dict[str, Any] = {
        "flow": {"id": execution.flow_id, "namespace": execution.namespace,
                 "revision": execution.flow_revision, "tenantId": "main"},
        "execution": {"id": execution.id, "startDate": iso(execution.state.start_date),
                      "originalId": execution.original_id, "state": execution.state.current},
        "labels": labels_map(execution.labels),
    }
    if execution.inputs or getattr(flow, "inputs", None):
        # like Kestra, a flow that declares no inputs has no ``inputs`` variable at all
        context["inputs"] = execution.inputs or {}
    variables = dict(getattr(flow, "variables", None) or {})
    if execution.variables:
        variables.update(execution.variables)
    context["vars"] = variables
    if execution.trigger:
        context["trigger"] = execution.trigger.get("variables") or {}
    if extras:
        context.update(extras)
    return context


def taskrun_context(base: dict[str, Any], index: RunIndex, run: "TaskRun", task_type: str,
                    outputs: dict[str, Any] | None = None, tasks: dict[str, Any] | None = None) -> dict[str, Any]:
    context = dict(base)
    context["outputs"] = outputs if outputs is not None else index.outputs_map()
    context["tasks"] = tasks if tasks is not None else index.tasks_map()
    context["task"] = {"id": run.task_id, "type": task_type}
    taskrun: dict[str, Any] = {"id": run.id, "startDate": iso(run.state.start_date),
                               "attemptsCount": len(run.attempts), "parentId": run.parent_task_run_id}
    if run.value is not None:
        taskrun["value"] = run.value
    if run.iteration is not None:
        taskrun["iteration"] = run.iteration
    context["taskrun"] = taskrun
    parents = []
    for ancestor in index.ancestors(run):
        entry: dict[str, Any] = {}
        if ancestor.value is not None:
            entry["taskrun"] = {"value": ancestor.value}
        if ancestor.outputs:
            entry["outputs"] = ancestor.outputs
        if entry:
            parents.append(entry)
    if parents:
        context["parents"] = parents
        context["parent"] = parents[0]
    return context
