"""What the console's pages show, computed from the rows: task run trees, timelines, the reasons an
execution does not run, live workers, input forms. Views and templates only load and lay out.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from orchestrator.engine import states
from orchestrator.engine.timeutil import format_duration, iso, now, parse_iso

from .. import models

log = logging.getLogger(__name__)

#: a parent with more children than this shows the first and last ones and the failed ones, the
#: rest behind a "show all" link: a 1,000-iteration ForEach page stays small
COLLAPSE_OVER = 40
COLLAPSE_HEAD = 20
COLLAPSE_TAIL = 5


def exact(moment: datetime | None) -> str:
    """Times to the millisecond, UTC, as Kestra prints them."""
    return iso(moment) or ""


def state_class(state: str) -> str:
    return f"st-{(state or 'CREATED').lower()}"


# --- the task run tree and its timeline ---------------------------------------------------------------

@dataclass
class RunRow:
    id: str
    task_id: str
    depth: int
    state: str
    value: str | None
    iteration: int | None
    attempts: int
    worker: str | None
    start: datetime | None
    end: datetime | None
    histories: list[tuple[str, str]]
    outputs: Any
    type: str = ""
    error: str | None = None
    #: "N more" placeholder row (collapsed loop iterations) when set
    hidden: int = 0
    parent_id: str | None = None
    children_count: int = 0
    bar_left: float = 0.0
    bar_width: float = 0.0

    @property
    def css(self) -> str:
        return state_class(self.state)

    @property
    def duration(self) -> str:
        if self.start is None:
            return ""
        return format_duration((self.end or now()) - self.start)

    @property
    def terminated(self) -> bool:
        return self.state in states.TERMINATED

    @property
    def outputs_json(self) -> str:
        return json.dumps(self.outputs, indent=2, default=str, ensure_ascii=False) if self.outputs else ""

    @property
    def history_text(self) -> str:
        return " → ".join(f"{s} {d}" for s, d in self.histories)


def _times(state_json: dict[str, Any]) -> tuple[datetime | None, datetime | None, list[tuple[str, str]]]:
    histories = state_json.get("histories") or []
    start = parse_iso(histories[0]["date"]) if histories else None
    current = state_json.get("current")
    end = (parse_iso(histories[-1]["date"]) if histories and (current in states.TERMINATED
                                                              or current == states.PAUSED) else None)
    return start, end, [(h["state"], h["date"]) for h in histories]


def run_rows(execution: models.Execution, type_of: dict[str, str] | None = None,
             expand: Iterable[str] = ()) -> tuple[list[RunRow], int]:
    """The task runs of an execution in tree order (children under their parent, loop values in
    creation order), with a timeline bar each; returns the rows and the number of task runs.

    1. Load the task runs' columns in one query, the last ERROR log line of each failed one in another.
    2. Group children by parent, the task runs of one loop value together; walk depth first from the roots.
    3. Under a parent with more than :data:`COLLAPSE_OVER` children (loop iterations), keep the head,
       the tail and every failed or unfinished child, and put one "N more" row in place of the rest,
       unless the parent is in ``expand``.
    4. Place each bar on the execution's span (its start to its end, or now while it runs).
    """
    type_of = type_of or {}
    expand = set(expand)
    fields = ["id", "task_id", "parent_task_run_id", "value", "iteration", "state", "state_json", "attempts",
              "outputs", "seq"]
    raw = list(models.TaskRun.objects.filter(execution_id=execution.id).order_by("seq").values(*fields))
    # WARNING too: a task with allowFailure that failed ends WARNING, and its error is worth showing
    failed_ids = [r["id"] for r in raw if r["state"] in states.FAILED_LIKE or r["state"] == states.WARNING]
    errors: dict[str, str] = {}
    if failed_ids:
        for taskrun_id, message in (models.LogEntry.objects.filter(execution_id=execution.id, level="ERROR",
                                                                   taskrun_id__in=failed_ids)
                                    .order_by("timestamp", "id").values_list("taskrun_id", "message")):
            errors[taskrun_id] = message  # the last one wins: the attempt that decided the state
    children: dict[str | None, list[dict[str, Any]]] = {}
    known = {r["id"] for r in raw}
    for r in raw:
        parent = r["parent_task_run_id"] if r["parent_task_run_id"] in known else None
        children.setdefault(parent, []).append(r)

    # the children of one loop value together (each iteration's tasks in order), values in the
    # order they started, as Kestra's Gantt groups them
    for parent, kids in children.items():
        if parent is not None and any(k["value"] is not None for k in kids):
            first: dict[Any, int] = {}
            for index, kid in enumerate(kids):
                first.setdefault(kid["value"], index)
            kids.sort(key=lambda k: first[k["value"]])

    rows: list[RunRow] = []

    def make(r: dict[str, Any], depth: int) -> RunRow:
        start, end, histories = _times(r["state_json"] or {})
        attempts = r["attempts"] or []
        worker = next((a.get("workerId") for a in reversed(attempts) if a.get("workerId")), None)
        return RunRow(id=r["id"], task_id=r["task_id"], depth=depth, state=r["state"], value=r["value"],
                      iteration=r["iteration"], attempts=len(attempts), worker=worker, start=start, end=end,
                      histories=histories, outputs=r["outputs"], type=type_of.get(r["task_id"], ""),
                      error=errors.get(r["id"]), parent_id=r["parent_task_run_id"],
                      children_count=len(children.get(r["id"], ())))

    # an explicit stack, not recursion: deep nesting of loops must not hit the recursion limit
    stack: list[tuple[dict[str, Any] | RunRow, int]] = [(r, 0) for r in reversed(children.get(None, []))]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, RunRow):
            rows.append(item)
            continue
        rows.append(make(item, depth))
        kids = children.get(item["id"], [])
        if len(kids) > COLLAPSE_OVER and item["id"] not in expand:
            keep: list[dict[str, Any] | RunRow] = []
            hidden = 0
            for index, kid in enumerate(kids):
                notable = kid["state"] in states.FAILED_LIKE or kid["state"] not in states.TERMINATED
                if index < COLLAPSE_HEAD or index >= len(kids) - COLLAPSE_TAIL or notable:
                    if hidden:
                        keep.append(_more(item["id"], hidden, depth + 1))
                        hidden = 0
                    keep.append(kid)
                else:
                    hidden += 1
            if hidden:
                keep.append(_more(item["id"], hidden, depth + 1))
            kids_to_push = keep
        else:
            kids_to_push = list(kids)
        stack.extend((kid, depth + 1) for kid in reversed(kids_to_push))
    _place_bars(execution, rows)
    return rows, len(raw)


def _more(parent_id: str, hidden: int, depth: int) -> RunRow:
    return RunRow(id=f"more-{parent_id}-{hidden}", task_id="", depth=depth, state="", value=None, iteration=None,
                  attempts=0, worker=None, start=None, end=None, histories=[], outputs=None, hidden=hidden,
                  parent_id=parent_id)


def _place_bars(execution: models.Execution, rows: list[RunRow]) -> None:
    starts = [r.start for r in rows if r.start]
    if not starts:
        return
    origin = min([execution.created, *starts])
    finish = execution.end_date or now()
    finish = max([finish, *[r.end for r in rows if r.end]])
    span = max((finish - origin).total_seconds(), 0.001)
    for row in rows:
        if row.start is None:
            continue
        left = (row.start - origin).total_seconds() / span * 100
        width = ((row.end or finish) - row.start).total_seconds() / span * 100
        row.bar_left = round(max(0.0, min(left, 100.0)), 2)
        row.bar_width = round(max(0.4, min(width, 100.0 - row.bar_left)), 2)


# --- why is an execution not running? -----------------------------------------------------------------

#: a task run CREATED or SUBMITTED for longer than this while the execution runs is "stalled"
STALLED_AFTER = 5.0


def why_not_running(execution: models.Execution, flow: Any, rows: list[RunRow],
                    workers: "WorkerStatus | None" = None) -> list[str]:
    """Plain sentences saying what an execution waits for (empty when it is simply running)."""
    reasons: list[str] = []
    moment = now()
    state = execution.state
    if state in states.TERMINATED:
        return reasons
    if execution.schedule_date and execution.schedule_date > moment and state == states.CREATED:
        reasons.append(f"Scheduled: it starts at {exact(execution.schedule_date)}.")
    if state == states.QUEUED or (state == states.CREATED and getattr(flow, "concurrency", None)):
        concurrency = getattr(flow, "concurrency", None) or {}
        limit = concurrency.get("limit")
        if limit is not None:
            holders = list(models.Execution.objects.filter(
                namespace=execution.namespace, flow_id=execution.flow_id, deleted=False,
                created__lt=execution.created).exclude(pk=execution.pk).exclude(
                state__in=[*states.TERMINATED, states.QUEUED]).order_by("created").values_list("id", "state")[:20])
            if state == states.QUEUED or len(holders) >= int(limit):
                held = ", ".join(f"{pk} ({st})" for pk, st in holders) or "none now: it is released at the next step"
                reasons.append(f"Waiting for a concurrency slot: the flow allows {limit} at a time, "
                               f"held by {held}.")
    if state == states.PAUSED:
        paused = [r for r in rows if r.state == states.PAUSED]
        if paused:
            run = paused[0]
            since = run.histories[-1][1] if run.histories else ""
            reasons.append(f"Paused by its Pause task '{run.task_id}' since {since}: resume it to go on.")
        else:
            who = (models.LogEntry.objects.filter(execution_id=execution.pk, thread="console",
                                                  message__startswith="Paused from the console by ")
                   .order_by("-timestamp", "-id").values_list("message", "timestamp").first())
            if who:
                reasons.append(f"{who[0]} at {exact(who[1])}: resume it to go on.")
            else:
                reasons.append("Paused by an operator (the pause action): resume it to go on.")
    if execution.wake_at and execution.wake_at > moment:
        reasons.append(f"A timer is due at {exact(execution.wake_at)} (retry wait, pause or sleep).")
    if state in (states.RUNNING, states.CREATED, states.RESTARTED):
        waiting = [r for r in rows if r.state in (states.CREATED, states.SUBMITTED) and not r.children_count
                   and r.start and (moment - r.start).total_seconds() > STALLED_AFTER]
        if waiting and flow is not None:
            workers = workers or worker_status()
            for run in waiting[:5]:
                running_on = next((host for host, args in workers.active if run.id in args), None)
                if running_on:
                    continue  # a worker runs it: it is not waiting (its state is written at the end)
                group = _worker_group(flow, run.task_id)
                queue = f"worker.{group or 'default'}"
                if workers.error:
                    reasons.append(f"Task run '{run.task_id}' waits in {run.state} since {exact(run.start)}; "
                                   f"the workers could not be asked ({workers.error}).")
                elif not workers.consumers.get(queue):
                    reasons.append(f"Task run '{run.task_id}' waits in {run.state} since {exact(run.start)}: "
                                   f"no live worker consumes {queue} (worker group '{group or 'default'}').")
                else:
                    reasons.append(f"Task run '{run.task_id}' waits in {run.state} since {exact(run.start)}; "
                                   f"{len(workers.consumers[queue])} live worker(s) consume {queue}: they are busy.")
        if state == states.CREATED and not reasons and (moment - execution.created).total_seconds() > STALLED_AFTER:
            reasons.append("Created but not started by an executor yet: is an executor running?")
    return reasons


def mark_running(rows: list[RunRow]) -> None:
    """Name the worker running a task run whose attempt is not written yet (the worker writes the
    attempt with its result), when a live worker says it runs it."""
    pending = [r for r in rows if r.state in (states.CREATED, states.SUBMITTED, states.RUNNING)
               and not r.attempts and not r.children_count and r.task_id]
    if not pending:
        return
    status = worker_status()
    for run in pending:
        host = next((h for h, args in status.active if run.id in args), None)
        if host:
            run.worker = f"{host} (running)"


def _worker_group(flow: Any, task_id: str) -> str | None:
    try:
        task = flow.find_task(task_id)
    except Exception:  # noqa: BLE001 - a task of another revision
        return None
    if task.worker_group:
        return task.worker_group
    group = getattr(flow, "worker_group", None) or {}
    return group.get("key")


# --- live workers -------------------------------------------------------------------------------------

@dataclass
class WorkerStatus:
    #: queue name → worker host names consuming it
    consumers: dict[str, list[str]] = field(default_factory=dict)
    workers: list[str] = field(default_factory=list)
    #: (worker, text of the arguments) of each task a worker is running now
    active: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    at: float = 0.0

    @property
    def groups(self) -> list[tuple[str, list[str]]]:
        return sorted((q.removeprefix("worker."), hosts) for q, hosts in self.consumers.items()
                      if q.startswith("worker."))


_cache: dict[str, WorkerStatus] = {}
#: seconds a worker answer is reused: pages refresh every second, workers are asked far less often
WORKERS_TTL = 10.0


def worker_status(timeout: float = 0.3) -> WorkerStatus:
    """Which live Celery workers consume which queues, and what they run now (``inspect()``), cached."""
    cached = _cache.get("status")
    if cached is not None and time.monotonic() - cached.at < WORKERS_TTL:
        return cached
    status = WorkerStatus(at=time.monotonic())
    try:
        from orchestrator.celery import app

        inspect = app.control.inspect(timeout=timeout)
        for host, queues in (inspect.active_queues() or {}).items():
            status.workers.append(host)
            for queue in queues or []:
                status.consumers.setdefault(queue.get("name", ""), []).append(host)
        for host, tasks in (inspect.active() or {}).items():
            status.active += [(host, str(task.get("args", ""))) for task in tasks or []]
    except Exception as exc:  # noqa: BLE001 - a broker that is down is shown, not raised
        log.warning("Cannot ask the workers: %s", exc)
        status.error = str(exc) or exc.__class__.__name__
    _cache["status"] = status
    return status


# --- input forms generated from typed inputs ----------------------------------------------------------

@dataclass
class InputField:
    id: str
    type: str
    widget: str
    required: bool
    description: str
    default: str
    values: list[str] = field(default_factory=list)
    error: str | None = None
    submitted: str = ""


def _default_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def input_fields(definitions: list[dict[str, Any]] | None, errors: dict[str, str] | None = None,
                 submitted: dict[str, Any] | None = None) -> list[InputField]:
    """One form field per input definition, its widget chosen by the input's type."""
    errors = errors or {}
    submitted = submitted or {}
    out = []
    for definition in definitions or []:
        ident = str(definition.get("id") or definition.get("name") or "")
        kind = str(definition.get("type") or "STRING").upper()
        widget = {"FILE": "file", "SECRET": "password", "BOOLEAN": "boolean", "BOOL": "boolean",
                  "SELECT": "select", "ENUM": "select", "MULTISELECT": "multiselect", "JSON": "textarea",
                  "YAML": "textarea", "ARRAY": "textarea", "INT": "number", "FLOAT": "number",
                  "DATETIME": "text", "DATE": "date", "TIME": "text"}.get(kind, "text")
        values = [str(v) for v in (definition.get("values") or [])] if widget in ("select", "multiselect") else []
        value = submitted.get(ident)
        out.append(InputField(
            id=ident, type=kind, widget=widget, required=bool(definition.get("required", True))
            and definition.get("defaults") is None, description=str(definition.get("description") or ""),
            default=_default_text(definition.get("defaults")) if widget != "password" else "",
            values=values, error=errors.get(ident),
            submitted="" if value is None or widget in ("file", "password") else _default_text(value)))
    return out


def submitted_inputs(request: Any, definitions: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The form's values for the engine to type: a field left empty is not sent, so that its
    default applies; files become :class:`~orchestrator.engine.inputs.InputFile`."""
    from orchestrator.engine.inputs import InputFile

    out: dict[str, Any] = {}
    for definition in definitions or []:
        ident = str(definition.get("id") or definition.get("name") or "")
        kind = str(definition.get("type") or "STRING").upper()
        name = f"input-{ident}"
        if kind == "FILE":
            upload = request.FILES.get(name)
            if upload is not None:
                out[ident] = InputFile(filename=upload.name, content=upload.read())
            continue
        if kind == "MULTISELECT":
            values = request.POST.getlist(name)
            if values:
                out[ident] = values
            continue
        value = request.POST.get(name)
        if value is None or value == "":
            continue
        out[ident] = value
    return out


def input_errors(exc: Exception) -> dict[str, str]:
    """``{input id: message}`` of an :class:`InputValidationError` (its ``errors`` pairs)."""
    out: dict[str, str] = {}
    for item in getattr(exc, "errors", None) or []:
        if isinstance(item, (tuple, list)) and len(item) == 2:
            out[str(item[0])] = str(item[1])
    return out
