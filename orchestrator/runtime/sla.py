"""Flow SLAs (spec §10.11), applied in the executor step (``hooks.after_decision``).

* ``MAX_DURATION``: the deadline is the execution's start plus ``duration``. While the execution runs,
  the step asks the sweep to wake it at the deadline (``decision.wake``); a step at or after the
  deadline of a still running execution is a violation. It is reported once.
* ``EXECUTION_ASSERTION``: ``assert`` is rendered on each step of an execution that was running when
  the step began (Kestra evaluates it before processing each change, so the step that ends the
  execution counts too); a falsy or unrenderable result is a violation.

A violation logs ``SLA '<id>' violated: <reason>`` (WARN) and appends the SLA labels not already
present. ``FAIL``/``CANCEL`` set the last non-terminated task run and the execution FAILED/CANCELLED
(other unfinished task runs are KILLED: Kestra kills the execution). When several SLAs are violated in
one step each is logged, but only the first changes the execution (state and labels), as in Kestra. The step must never fail because of an SLA: errors are
logged and the SLA ignored, as Kestra does.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from orchestrator.engine import states
from orchestrator.engine.timeutil import format_duration, now as utcnow
from orchestrator.engine.timeutil import parse_duration

log = logging.getLogger("celestra.sla")

BEHAVIOR_STATES = {"FAIL": states.FAILED, "CANCEL": states.CANCELLED}


def check_sla(flow: Any, execution: Any, decision: Any) -> None:
    """Apply the flow's SLAs to the execution; see the module docstring."""
    slas = getattr(flow, "sla", None) or []
    if not slas:
        return
    try:
        _check(flow, execution, decision, slas, utcnow())
    except Exception:
        log.exception("SLA evaluation failed for execution %s", execution.id)


def _check(flow: Any, execution: Any, decision: Any, slas: list[dict[str, Any]], moment: datetime) -> None:
    from orchestrator.engine.executor import LogLine

    if execution.state.is_terminated() and not _was_running(execution.id):
        return  # a step after the end (afterExecution, listeners): SLAs are over
    violations: list[tuple[dict[str, Any], str]] = []
    for sla in slas:
        try:
            reason = _violation(flow, execution, sla, moment, decision)
        except Exception as exc:  # noqa: BLE001 - Kestra ignores an SLA it cannot evaluate
            decision.logs.append(LogLine("ERROR", f"Ignoring SLA '{sla.get('id')}' because of the error: {exc}",
                                         timestamp=moment))
            continue
        if reason is not None:
            violations.append((sla, reason))
    changed = False
    for sla, reason in violations:
        decision.logs.append(LogLine("WARN", f"SLA '{sla.get('id')}' violated: {reason}", timestamp=moment))
    if violations:
        sla, reason = violations[0]
        target = BEHAVIOR_STATES.get(str(sla.get("behavior")))
        if target is not None:
            if target == states.FAILED:
                decision.logs.append(LogLine("ERROR", f"Execution failed due to SLA '{sla.get('id')}' violated: "
                                                      f"{reason}", timestamp=moment))
            _mark_as(execution, decision, target, moment)
            changed = True
        if _add_labels(execution, sla.get("labels") or {}):
            changed = True
    if changed:
        decision.execution_changed = True


def _violation(flow: Any, execution: Any, sla: dict[str, Any], moment: datetime, decision: Any) -> str | None:
    kind = sla.get("type")
    if kind == "MAX_DURATION":
        if execution.state.is_terminated():
            return None  # ended by this very step: in time
        duration = parse_duration(str(sla.get("duration")))
        start = execution.state.start_date or moment
        deadline = start + duration
        if moment < deadline:
            decision.wake(deadline)
            return None
        if _already_reported(execution.id, sla):
            return None
        elapsed = moment - start
        return (f"execution duration of {format_duration(timedelta(milliseconds=int(elapsed.total_seconds() * 1000)))}"
                f" exceed the maximum duration of {format_duration(duration)}.")
    if kind == "EXECUTION_ASSERTION":
        expression = sla.get("assert")
        try:
            result = _render(flow, execution, expression)
        except Exception as exc:  # noqa: BLE001 - an assertion that cannot be evaluated is violated
            return f"assertion could not be evaluated: {expression}: {exc}."
        from orchestrator.engine import expressions

        if not expressions.is_truthy(result):
            return f"assertion is false: {expression}."
        return None
    return None


def _render(flow: Any, execution: Any, expression: Any) -> Any:
    """Render an assertion with the execution context (inputs, outputs, labels, trigger...)."""
    from orchestrator.engine import expressions
    from orchestrator.engine.context import RunIndex, base_context

    from .environment import extras

    type_of = {task.id: task.type for task in flow.all_tasks()} if hasattr(flow, "all_tasks") else {}
    context = base_context(flow, execution, extras(execution.namespace))
    index = RunIndex(execution, type_of)
    context["outputs"] = index.outputs_map()
    context["tasks"] = index.tasks_map()
    return expressions.render(expression, context)


def _was_running(execution_id: str) -> bool:
    """True when the stored execution (the state before this step) is not terminated."""
    from flows_app.models import Execution

    stored = Execution.objects.filter(pk=execution_id).values_list("state", flat=True).first()
    return stored is not None and stored not in states.TERMINATED


def _already_reported(execution_id: str, sla: dict[str, Any]) -> bool:
    """A MAX_DURATION monitor fires once: its WARN line is in the execution's logs after the first time."""
    from flows_app.models import LogEntry

    return LogEntry.objects.filter(execution_id=execution_id, level="WARN",
                                   message__startswith=f"SLA '{sla.get('id')}' violated: execution duration").exists()


def _mark_as(execution: Any, decision: Any, target: str, moment: datetime) -> None:
    """Kestra's ``markAs``: the last non-terminated task run and the execution take ``target``."""
    from orchestrator.engine.model import State

    unfinished = [run for run in sorted(execution.task_runs, key=lambda r: r.seq) if not run.state.is_terminated()]
    for index, run in enumerate(unfinished):
        run.state = run.state.with_state(target if index == len(unfinished) - 1 else states.KILLED, moment)
        decision.touch(run)
    if getattr(decision, "ended", False) and execution.state.is_terminated():
        # ended by this very step: the SLA decides the end state instead
        previous = execution.state.current
        history = list(execution.state.histories[:-1]) + [(target, execution.state.histories[-1][1])]
        execution.state = State(target, history)
        for line in decision.logs:
            if line.message == f"Flow completed with state {previous}":
                line.message = f"Flow completed with state {target}"
                line.level = "INFO" if target != states.FAILED else "ERROR"
    else:
        execution.state = execution.state.with_state(target, moment)
    decision.ended = True
    decision.execution_changed = True


def _add_labels(execution: Any, labels: Any) -> bool:
    """Append the SLA labels unless they are all present already (Kestra's ``containsAll``)."""
    if isinstance(labels, list):
        wanted = [(str(item.get("key")), str(item.get("value"))) for item in labels if isinstance(item, dict)]
    else:
        wanted = [(str(k), str(v)) for k, v in dict(labels).items()]
    if not wanted:
        return False
    present = {(label["key"], label["value"]) for label in execution.labels}
    if all(item in present for item in wanted):
        return False
    execution.labels = [*execution.labels, *({"key": k, "value": v} for k, v in wanted)]
    return True
