"""Execution-level expectations of the manifest, checked against Kestra-shaped execution JSON.

:class:`ExecutionView` is plain data (the execution's JSON, its log entries as JSON, its child
executions); :func:`check_execution` walks an ``expect`` block and raises
:class:`~.matchers.Mismatch` at the first difference. Keys (manifest header):

=============================  ==================================================================
``state``                      ``state.current``
``taskRunCount[Min]``          size of ``taskRunList`` (``Min``: at least)
``taskRuns.<taskId>``          the FIRST task run of that task id (see :func:`check_task_run`)
``taskRunCounts.<taskId>``     number of task runs of that task id
``taskRunList``                ``[{index: i, ...}]``: the task run at index ``i`` (creation order)
``taskRunListLast``            the last task run
``taskRunsByValue``            ``[{taskId, values, ...}]``: Kestra's ``findTaskRunByTaskIdAndValue``
``taskOutputs[Exact]``         outputs of the first task run of each task id (``Exact``: equal maps)
``flowOutputs``                ``outputs`` (``null`` included); ``flowOutputCount``: its size
``labels``                     labels that must be present; ``labelsExactly``: the whole set;
                               ``labelCount``; ``labelsInOrder``: the first labels, in order
``logs``                       ``[{equals|contains|startsWith|endsWith|regex, level, taskId, taskRunIndex}]``:
                               each needs a matching log entry
``childExecutions.<flowId>``   the first descendant execution of that flow, checked recursively
``childExecutionCount``        number of direct child executions; ``lastChildExecution``: the last one
``executionInputs``/``inputs`` ``inputs`` (partial); ``inputsHasKey``: keys that must be present
``executionOutputsTree``       Kestra's ``Execution.outputs()`` (outputs keyed by task id, then values)
``trigger``, ``flowId``,       the corresponding fields
``parentId``, ``scheduleDate``
``stateHistoryCount``          size of the execution's state history; ``stateHistoryPrefix``: its start
``allTaskRunsState``           every task run is in that state
``attemptsByIndex``            number of attempts of each task run (``null`` = no attempt list)
``taskRunsInState<S>Min``      at least that many task runs in state ``S``
``failedTaskRunCountMin``      at least that many FAILED task runs
``paused`` / ``terminated``    whether the execution is PAUSED / in a terminal state
``sameId``/``sameExecutionId`` compared with the original execution of a scenario;
``newExecutionId``,            ``taskRunIdsRegenerated``: no task run id in common with it
=============================  ==================================================================

Nothing here imports Django.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from .matchers import MatchContext, Mismatch, check, describe

__all__ = [
    "EXECUTION_KEYS",
    "ExecutionView",
    "check_execution",
    "check_task_run",
    "check_logs",
    "outputs_tree",
    "reference_resolver",
]

TERMINATED = frozenset({"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED", "RESUBMITTED"})

EXECUTION_KEYS = frozenset({
    "state", "taskRunCount", "taskRunCountMin", "failedTaskRunCountMin", "taskRuns", "taskRunCounts",
    "taskRunList", "taskRunListLast", "taskRunsByValue", "taskOutputs", "taskOutputsExact", "flowOutputs",
    "flowOutputCount", "labels", "labelsExactly", "labelCount", "labelsInOrder", "logs", "childExecutions",
    "childExecutionCount", "lastChildExecution", "executionInputs", "inputs", "inputsHasKey",
    "executionOutputsTree", "trigger", "flowId", "parentId", "scheduleDate", "stateHistoryCount",
    "stateHistoryPrefix", "allTaskRunsState", "attemptsByIndex", "paused", "terminated", "sameId",
    "sameExecutionId", "newExecutionId", "taskRunIdsRegenerated", "namespace",
})
_IN_STATE_MIN = re.compile(r"^taskRunsInState([A-Z]+)Min$")

TASK_RUN_KEYS = frozenset({
    "index", "taskId", "values", "state", "attempts", "attemptNumber", "attemptState", "lastAttemptState",
    "outputs", "stateHistoryCounts", "stateHistoryCount", "value", "iteration", "attemptLogFile",
})


@dataclass
class ExecutionView:
    """An execution as Kestra JSON, with its logs and its child executions (creation order)."""

    data: dict[str, Any]
    logs: list[dict[str, Any]] = field(default_factory=list)
    children: list["ExecutionView"] = field(default_factory=list)

    @property
    def id(self) -> str | None:
        return self.data.get("id")

    @property
    def flow_id(self) -> str | None:
        return self.data.get("flowId")

    @property
    def state(self) -> str | None:
        return (self.data.get("state") or {}).get("current")

    @property
    def state_history(self) -> list[str]:
        return [h.get("state") for h in (self.data.get("state") or {}).get("histories") or []]

    @property
    def task_runs(self) -> list[dict[str, Any]]:
        return list(self.data.get("taskRunList") or [])

    @property
    def labels(self) -> list[dict[str, Any]]:
        return list(self.data.get("labels") or [])

    def runs_of(self, task_id: str) -> list[dict[str, Any]]:
        return [run for run in self.task_runs if run.get("taskId") == task_id]

    def first_run(self, task_id: str) -> dict[str, Any] | None:
        runs = self.runs_of(task_id)
        return runs[0] if runs else None

    def parents(self, run: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Ancestors of a task run, root first (Kestra's ``findParents``)."""
        by_id = {r.get("id"): r for r in self.task_runs}
        chain: list[dict[str, Any]] = []
        seen: set[str] = set()
        parent_id = run.get("parentTaskRunId")
        while parent_id and parent_id in by_id and parent_id not in seen:
            seen.add(parent_id)
            parent = by_id[parent_id]
            chain.append(parent)
            parent_id = parent.get("parentTaskRunId")
        return list(reversed(chain))

    def parent_values(self, run: Mapping[str, Any], with_current: bool = True) -> list[str]:
        """Kestra's ``findParentsValues``: the non-null ``value`` of the ancestors (and the run)."""
        chain = self.parents(run) + ([dict(run)] if with_current else [])
        return [r["value"] for r in chain if r.get("value") is not None]

    def descendants(self) -> Iterator["ExecutionView"]:
        """Child executions, breadth first."""
        queue = list(self.children)
        while queue:
            current = queue.pop(0)
            yield current
            queue.extend(current.children)


# ---------------------------------------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------------------------------------

def reference_resolver(root: ExecutionView, original: ExecutionView | None = None,
                       extra: Mapping[str, Any] | None = None):
    """Resolve ``<descriptions>`` naming ids of the execution under test.

    * ``task run id of task X`` → id of the first task run of ``X``;
    * anything mentioning ``original`` → the id of the scenario's original execution;
    * ``execution id``, ``parent execution id``, ``parent id``, ``top-level parent (...) execution id``,
      ``<flow> execution id`` → the id of the execution under test (the root of the checked tree).
    """

    def resolve(description: str) -> tuple[bool, Any]:
        text = description.strip()
        if extra and text in extra:
            return True, extra[text]
        lowered = text.lower()
        match = re.match(r"^task run id of task (\S+)$", text)
        if match:
            run = root.first_run(match.group(1))
            return (True, run.get("id")) if run else (False, None)
        if "original" in lowered and lowered.endswith("id"):
            return (True, original.id) if original is not None else (False, None)
        if lowered in ("execution id", "parent id") or re.match(r"^[\w\-() .]*execution id$", lowered):
            return True, root.id
        return False, None

    return resolve


# ---------------------------------------------------------------------------------------------------------
# Task runs
# ---------------------------------------------------------------------------------------------------------

def _attempts(run: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    attempts = run.get("attempts")
    return list(attempts) if attempts is not None else None


def _history(state: Mapping[str, Any] | None) -> list[str]:
    return [h.get("state") for h in (state or {}).get("histories") or []]


def check_task_run(spec: Mapping[str, Any], run: Mapping[str, Any], path: str, ctx: MatchContext) -> None:
    """Check one task run: ``state``, ``attempts`` (count or null), ``attemptNumber``, ``outputs``..."""
    if not isinstance(spec, Mapping):
        raise Mismatch(path, f"malformed task run expectation {describe(spec)}")
    for key, expected in spec.items():
        where = f"{path}.{key}"
        if key in ("index", "values"):
            continue  # selectors, used by the caller
        if key not in TASK_RUN_KEYS:
            raise Mismatch(where, "unsupported task run expectation")
        attempts = _attempts(run)
        if key == "taskId":
            check(expected, run.get("taskId"), where, ctx)
        elif key == "state":
            check(expected, (run.get("state") or {}).get("current"), where, ctx)
        elif key == "attempts":
            check(expected, None if attempts is None else len(attempts), where, ctx)
        elif key == "attemptNumber":
            check(expected, len(attempts or []), where, ctx)
        elif key in ("attemptState", "lastAttemptState"):
            if not attempts:
                raise Mismatch(where, f"expected {describe(expected)}, got no attempt")
            attempt = attempts[0] if key == "attemptState" else attempts[-1]
            check(expected, (attempt.get("state") or {}).get("current"), where, ctx)
        elif key == "outputs":
            check(expected, run.get("outputs"), where, ctx)
        elif key == "stateHistoryCounts":
            history = _history(run.get("state"))
            if not isinstance(expected, Mapping):
                raise Mismatch(where, f"malformed expectation {describe(expected)}")
            for state, count in expected.items():
                check(count, history.count(state), f"{where}.{state}", ctx)
        elif key == "stateHistoryCount":
            check(expected, len(_history(run.get("state"))), where, ctx)
        elif key in ("value", "iteration"):
            check(expected, run.get(key), where, ctx)
        elif key == "attemptLogFile":
            log_files = [a.get("logFile") for a in attempts or []]
            check(expected, log_files[0] if log_files else None, where, ctx)


def _select_by_index(view: ExecutionView, spec: Mapping[str, Any], path: str) -> dict[str, Any]:
    runs = view.task_runs
    index = spec.get("index")
    if not isinstance(index, int):
        raise Mismatch(path, f"malformed taskRunList entry (no index): {describe(spec)}")
    if index >= len(runs) or index < -len(runs):
        raise Mismatch(f"{path}[{index}]", f"no task run at index {index} (the execution has {len(runs)}: "
                                           f"{describe([r.get('taskId') for r in runs], 160)})")
    return runs[index]


# ---------------------------------------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------------------------------------

_LOG_MESSAGE_KEYS = ("equals", "contains", "startsWith", "endsWith", "regex")


def check_logs(specs: Any, view: ExecutionView, path: str, ctx: MatchContext) -> None:
    """Every spec must be satisfied by at least one log entry of the execution."""
    if not isinstance(specs, list):
        raise Mismatch(path, f"malformed logs expectation {describe(specs)}")
    runs = view.task_runs
    for number, spec in enumerate(specs):
        where = f"{path}[{number}]"
        if not isinstance(spec, Mapping):
            raise Mismatch(where, f"malformed log expectation {describe(spec)}")
        unknown = set(spec) - set(_LOG_MESSAGE_KEYS) - {"level", "taskId", "taskRunIndex"}
        if unknown:
            raise Mismatch(where, f"unsupported log expectation keys {sorted(unknown)}")
        message_matcher = {k: v for k, v in spec.items() if k in _LOG_MESSAGE_KEYS}
        taskrun_id = None
        if "taskRunIndex" in spec:
            index = spec["taskRunIndex"]
            if not isinstance(index, int) or index >= len(runs):
                raise Mismatch(where, f"no task run at index {index} for the log expectation")
            taskrun_id = runs[index].get("id")
        candidates = [
            entry for entry in view.logs
            if ("level" not in spec or entry.get("level") == spec["level"])
            and ("taskId" not in spec or entry.get("taskId") == spec["taskId"])
            and (taskrun_id is None or entry.get("taskRunId") == taskrun_id)
        ]
        for entry in candidates:
            try:
                check(message_matcher, entry.get("message"), where, ctx)
            except Mismatch:
                continue
            break
        else:
            scope = ", ".join(f"{k}={spec[k]}" for k in ("level", "taskId", "taskRunIndex") if k in spec)
            shown = [entry.get("message") for entry in candidates][-5:]
            raise Mismatch(where, f"no log entry{' (' + scope + ')' if scope else ''} matches "
                                  f"{describe(message_matcher)}; {len(candidates)} candidate(s), last ones: "
                                  f"{describe(shown, 300)}")


# ---------------------------------------------------------------------------------------------------------
# Outputs tree (Execution.outputs())
# ---------------------------------------------------------------------------------------------------------

def _merge(left: dict[str, Any], right: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(left)
    for key, value in right.items():
        if isinstance(out.get(key), dict) and isinstance(value, Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def outputs_tree(view: ExecutionView) -> dict[str, Any]:
    """Kestra's ``Execution.outputs()``: outputs by task id, nested under the loop values of the parents."""
    result: dict[str, Any] = {}
    for run in view.task_runs:
        outputs = run.get("outputs")
        if outputs is None:
            continue
        parents = [r for r in view.parents(run) if r.get("value") is not None]
        value = run.get("value")
        if not parents:
            entry: Any = outputs if value is None else {value: outputs}
        else:
            entry = {}
            current = entry
            for parent in parents:
                item: dict[str, Any] = {}
                current[parent["value"]] = item
                current = item
            if value is not None:
                current[value] = outputs
            else:
                current.update(outputs)
        result = _merge(result, {run["taskId"]: entry})
    return result


# ---------------------------------------------------------------------------------------------------------
# Execution
# ---------------------------------------------------------------------------------------------------------

def _why(view: ExecutionView) -> str:
    """Failed task runs and the first ERROR log line: what a reader needs next to a state mismatch."""
    failed = [r.get("taskId") for r in view.task_runs if (r.get("state") or {}).get("current") in ("FAILED", "KILLED")]
    errors = [e.get("message") for e in view.logs if e.get("level") == "ERROR"]
    parts = []
    if failed:
        parts.append(f"failed task runs: {', '.join(map(str, failed[:5]))}")
    if errors:
        parts.append(f"first error: {describe(errors[0], 200)}")
    return f" ({'; '.join(parts)})" if parts else ""


def _labels_as_pairs(expected: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": value} for key, value in expected.items()]


def _label_map(view: ExecutionView) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label in view.labels:
        out.setdefault(label.get("key"), label.get("value"))
    return out


def check_execution(expect: Mapping[str, Any] | None, view: ExecutionView, ctx: MatchContext, path: str = "",
                    original: ExecutionView | None = None) -> None:
    """Check every key of ``expect`` against ``view``; unknown keys are mismatches (never skipped)."""
    if expect is None:
        return
    if not isinstance(expect, Mapping):
        raise Mismatch(path, f"malformed expectation {describe(expect)}")
    runs = view.task_runs

    def at(key: str) -> str:
        return f"{path}.{key}" if path else key

    for key, expected in expect.items():
        where = at(key)
        in_state = _IN_STATE_MIN.match(key)
        if key not in EXECUTION_KEYS and not in_state:
            raise Mismatch(where, "unsupported expectation")
        if in_state:
            count = sum(1 for r in runs if (r.get("state") or {}).get("current") == in_state.group(1))
            if count < expected:
                raise Mismatch(where, f"expected at least {expected} task runs in {in_state.group(1)}, got {count}")
        elif key == "state":
            try:
                check(expected, view.state, where, ctx)
            except Mismatch as exc:
                raise Mismatch(exc.path, exc.message + _why(view)) from None
        elif key == "taskRunCount":
            if len(runs) != expected:
                raise Mismatch(where, f"expected {expected}, got {len(runs)} "
                                      f"{describe([r.get('taskId') for r in runs], 240)}")
        elif key == "taskRunCountMin":
            if len(runs) < expected:
                raise Mismatch(where, f"expected at least {expected}, got {len(runs)}")
        elif key == "failedTaskRunCountMin":
            count = sum(1 for r in runs if (r.get("state") or {}).get("current") == "FAILED")
            if count < expected:
                raise Mismatch(where, f"expected at least {expected} FAILED task runs, got {count}")
        elif key == "taskRuns":
            for task_id, spec in (expected or {}).items():
                run = view.first_run(task_id)
                if run is None:
                    raise Mismatch(f"{where}.{task_id}", f"no task run of task '{task_id}' (task runs: "
                                                         f"{describe([r.get('taskId') for r in runs], 240)})")
                check_task_run(spec, run, f"{where}.{task_id}", ctx)
        elif key == "taskRunCounts":
            for task_id, count in (expected or {}).items():
                check(count, len(view.runs_of(task_id)), f"{where}.{task_id}", ctx)
        elif key == "taskRunList":
            for spec in expected or []:
                run = _select_by_index(view, spec, where)
                check_task_run(spec, run, f"{where}[{spec['index']}]", ctx)
        elif key == "taskRunListLast":
            if not runs:
                raise Mismatch(where, "the execution has no task run")
            check_task_run(expected, runs[-1], where, ctx)
        elif key == "taskRunsByValue":
            for spec in expected or []:
                task_id, values = spec.get("taskId"), [str(v) for v in spec.get("values") or []]
                found = [r for r in view.runs_of(task_id) if view.parent_values(r) == values]
                sub = f"{where}[{task_id} {values}]"
                if not found:
                    seen = [view.parent_values(r) for r in view.runs_of(task_id)]
                    raise Mismatch(sub, f"no task run of '{task_id}' with values {values} (values seen: {seen})")
                check_task_run({k: v for k, v in spec.items() if k != "taskId"}, found[0], sub, ctx)
        elif key in ("taskOutputs", "taskOutputsExact"):
            for task_id, outputs in (expected or {}).items():
                run = view.first_run(task_id)
                sub = f"{where}.{task_id}"
                if run is None:
                    raise Mismatch(sub, f"no task run of task '{task_id}'")
                actual = run.get("outputs")
                if key == "taskOutputsExact":
                    if not isinstance(actual, Mapping) or set(actual) != set(outputs or {}):
                        raise Mismatch(sub, f"expected exactly {describe(outputs)}, got {describe(actual)}")
                    for name, value in (outputs or {}).items():
                        if isinstance(value, Mapping) and not value:
                            if actual.get(name) != {}:
                                raise Mismatch(f"{sub}.{name}", f"expected {{}}, got {describe(actual.get(name))}")
                check(outputs, actual, sub, ctx)
        elif key == "flowOutputs":
            check(expected, view.data.get("outputs"), where, ctx)
        elif key == "flowOutputCount":
            check(expected, len(view.data.get("outputs") or {}), where, ctx)
        elif key == "labels":
            labels = _label_map(view)
            for name, value in (expected or {}).items():
                if name not in labels:
                    raise Mismatch(f"{where}.{name}", f"label missing (labels: {describe(labels)})")
                check(value, labels[name], f"{where}.{name}", ctx)
        elif key == "labelsExactly":
            check({"containsInAnyOrder": _labels_as_pairs(expected or {})}, view.labels, where, ctx)
        elif key == "labelCount":
            check(expected, len(view.labels), where, ctx)
        elif key == "labelsInOrder":
            wanted = [{"key": k, "value": v} for item in expected or [] for k, v in item.items()]
            check(wanted, view.labels[:len(wanted)], where, ctx)
        elif key == "logs":
            check_logs(expected, view, where, ctx)
        elif key == "childExecutions":
            for flow_id, spec in (expected or {}).items():
                child = next((c for c in view.descendants() if c.flow_id == flow_id), None)
                if child is None:
                    seen = [c.flow_id for c in view.descendants()]
                    raise Mismatch(f"{where}.{flow_id}", f"no child execution of flow '{flow_id}' "
                                                         f"(children: {describe(seen)})")
                check_execution(spec, child, ctx, f"{where}.{flow_id}")
        elif key == "childExecutionCount":
            check(expected, len(view.children), where, ctx)
        elif key == "lastChildExecution":
            if not view.children:
                raise Mismatch(where, "no child execution")
            check_execution(expected, view.children[-1], ctx, where)
        elif key in ("executionInputs", "inputs"):
            check(expected, view.data.get("inputs"), where, ctx)
        elif key == "inputsHasKey":
            check({"hasKey": list(expected or [])}, view.data.get("inputs") or {}, where, ctx)
        elif key == "executionOutputsTree":
            check(expected, outputs_tree(view), where, ctx)
        elif key in ("trigger", "flowId", "parentId", "scheduleDate", "namespace"):
            check(expected, view.data.get(key), where, ctx)
        elif key == "stateHistoryCount":
            check(expected, len(view.state_history), where, ctx)
        elif key == "stateHistoryPrefix":
            wanted = list(expected or [])
            check(wanted, view.state_history[:len(wanted)], where, ctx)
        elif key == "allTaskRunsState":
            if not runs:
                raise Mismatch(where, "the execution has no task run")
            for index, run in enumerate(runs):
                check(expected, (run.get("state") or {}).get("current"), f"{where}[{index} {run.get('taskId')}]", ctx)
        elif key == "attemptsByIndex":
            actual = [None if _attempts(r) is None else len(_attempts(r) or []) for r in runs]
            check(list(expected or []), actual, where, ctx)
        elif key == "paused":
            check(expected, view.state == "PAUSED", where, ctx)
        elif key == "terminated":
            check(expected, view.state in TERMINATED, where, ctx)
        elif key in ("sameId", "sameExecutionId", "newExecutionId", "taskRunIdsRegenerated"):
            if original is None:
                raise Mismatch(where, "no original execution to compare with")
            if key == "taskRunIdsRegenerated":
                shared = {r.get("id") for r in runs} & {r.get("id") for r in original.task_runs}
                check(expected, not shared, where, ctx)
            else:
                same = view.id == original.id
                check(expected, same if key != "newExecutionId" else not same, where, ctx)
