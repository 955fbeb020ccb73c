"""``io.kestra.plugin.core.flow.Loop`` (Kestra 2.0): run ``tasks`` once per item of ``values``.

2.0 replaces ForEach by Loop. Differences the class carries:

* ``values`` is a list, a JSON array string, or a map (one iteration per entry, ``item.key`` set);
  values are not deduplicated: iterations are keyed by their zero-based index, not by value;
* inside an iteration the ``item`` variable holds ``index``, ``value`` (text; objects as JSON),
  ``key`` (maps), ``parent`` and ``parents`` (enclosing loops, innermost first), and ``outputs.x``
  reads the output of task ``x`` of the same iteration (the context builder flattens it);
* ``errors`` runs inside the failing iteration; ``transmitFailed: false`` lets the next iterations
  run after a failure; ``finally`` runs once after every iteration;
* outputs: ``iterationCount``, ``runningIterations``, ``terminatedIterations`` and, when the task
  declares ``outputs``, ``outputs`` (one ``{item, outputs}`` entry per ended iteration).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal, Optional

from pydantic import Field

from orchestrator.engine import states
from orchestrator.engine.errors import CelestraError
from orchestrator.engine.plugins import FLOWABLE, register
from orchestrator.engine.text import as_text

from ._common import CorePlugin, Props

if TYPE_CHECKING:  # pragma: no cover
    from orchestrator.engine.executor import Step
    from orchestrator.engine.model import TaskRun


class _LoopOutput(Props):
    id: str
    type: str = "STRING"
    value: Any = None
    description: Optional[str] = None
    required: bool = True


@register
class Loop(CorePlugin):
    """Run ``tasks`` once per item of ``values``, ``concurrencyLimit`` iterations at once (0 = all)."""

    type = "io.kestra.plugin.core.flow.Loop"
    kind = FLOWABLE
    task_fields = {"tasks": "list", "errors": "list", "finally": "list"}
    required_task_fields = frozenset({"tasks"})

    dynamic = True
    #: the context builder gives the direct children of a run of this type the ``item`` variable
    binds_item = True

    class Props(Props):
        values: Any
        concurrencyLimit: int = Field(1, ge=0)
        transmitFailed: bool = True
        fetchType: Literal["FETCH", "STORE", "AUTO"] = "AUTO"
        outputs: Optional[list[_LoopOutput]] = None

    @staticmethod
    def items(step: Step, task: Any, run: TaskRun) -> list[dict[str, Any]]:
        """The iterations' items, rendered once and kept on the run."""
        internal = run.internal
        if "items" in internal:
            return list(internal["items"])
        values = step.render(task.props.get("values"), run)
        if isinstance(values, str):
            try:
                values = json.loads(values)
            except ValueError:
                raise CelestraError(f"values: invalid JSON array or map: {values}") from None
        if isinstance(values, dict):
            items = [{"index": i, "key": str(k), "value": as_text(v)} for i, (k, v) in enumerate(values.items())]
        else:
            if not isinstance(values, list):
                values = [values]
            if any(v is None for v in values):
                raise CelestraError(f"values: found {sum(v is None for v in values)} null value(s)")
            items = [{"index": i, "value": as_text(v)} for i, v in enumerate(values)]
        internal["items"] = items
        step.decision.touch(run)
        return items

    @classmethod
    def drive(cls, step: Step, task: Any, run: TaskRun) -> None:
        """The task's ``errors`` run per iteration (in :meth:`iterate`), so the block gets none."""
        try:
            items = cls.items(step, task, run)
            limit = int(step.render(task.props.get("concurrencyLimit", 1), run) or 0)
            transmit = step.is_truthy(step.render(task.props.get("transmitFailed", True), run))
        except CelestraError as exc:
            step.fail(run, str(exc))
            return
        state = step.block(run, lambda: cls.iterate(step, task, run, items, limit, transmit), [], task.finally_)
        if state is not None:
            step.terminate(task, run, state)

    @classmethod
    def iterate(cls, step: Step, task: Any, run: TaskRun, items: list[dict[str, Any]], limit: int,
                transmit: bool) -> str | None:
        tasks = task.props.get("tasks") or []
        errors = task.errors
        done: dict[int, str] = {}
        active = 0
        failed = False
        for item in items:
            index = item["index"]
            key = str(index)
            started = bool(step.index.by_parent_value.get((run.id, key)))
            if not started:
                if (failed and transmit) or step.frozen or (limit and active >= limit):
                    continue
            state = cls.iteration(step, run, tasks, errors, key, index)
            if state is None:
                active += 1
                continue
            done[index] = state
            failed = failed or state in states.FAILED_LIKE
        cls.record(step, task, run, items, done, active)
        if active or (len(done) < len(items) and not (failed and transmit)):
            return None
        ended = list(done.values()) or [states.SUCCESS]
        if not transmit:
            ended = [states.SUCCESS if s in states.FAILED_LIKE else s for s in ended]
        return states.guess_final_state(ended)

    @staticmethod
    def iteration(step: Step, run: TaskRun, tasks: list[Any], errors: list[Any], key: str,
                  index: int) -> str | None:
        """One iteration: its tasks, then ``errors`` when they failed; the tasks' state wins."""
        state = step.sequential(run, tasks, key, index, by_value=True)
        if state == states.FAILED and errors:
            if step.sequential(run, errors, key, index, by_value=True) is None:
                return None
        return state

    @staticmethod
    def record(step: Step, task: Any, run: TaskRun, items: list[dict[str, Any]], done: dict[int, str],
               active: int) -> None:
        """The monitoring outputs, and the declared ``outputs`` of each iteration once it ended."""
        outputs = dict(run.outputs or {})
        declared = task.props.get("outputs") or []
        rendered: dict[str, Any] = run.internal.setdefault("iterationOutputs", {})
        for index in sorted(done):
            if not declared or str(index) in rendered:
                continue
            runs = step.index.by_parent_value.get((run.id, str(index))) or []
            anchor = max(runs, key=lambda r: r.seq)
            values: dict[str, Any] = {}
            for output in declared:
                try:
                    # the whole context: the declared values read the iteration's tasks
                    value = step.env.render(output.get("value"), step.context_for(anchor))
                    values[output["id"]] = _typed(str(output.get("type") or "STRING").upper(), value)
                except (CelestraError, ValueError) as exc:
                    if output.get("required", True):
                        step.log("WARN", f"outputs.{output['id']}: {exc}", run)
                    values[output["id"]] = None
            rendered[str(index)] = values
            step.decision.touch(run)
        wanted = {"iterationCount": len(items), "runningIterations": active, "terminatedIterations": len(done)}
        if declared:
            wanted["outputs"] = [{"item": {k: v for k, v in items[int(i)].items() if k != "index"}
                                  | {"iteration": int(i) + 1}, "outputs": rendered[i]}
                                 for i in sorted(rendered, key=int)]
        if any(outputs.get(k) != v for k, v in wanted.items()):
            step.set_outputs(run, {**outputs, **wanted})


def _typed(kind: str, value: Any) -> Any:
    """A declared output's value as its ``type`` says (the simple types; others stay as rendered)."""
    if value is None or not isinstance(value, str):
        return value
    if kind == "INT":
        return int(value)
    if kind == "FLOAT":
        return float(value)
    if kind == "BOOLEAN" or kind == "BOOL":
        return value.strip().lower() == "true"
    return value
