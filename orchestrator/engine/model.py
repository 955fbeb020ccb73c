"""Executions and task runs as plain data, serialised to Kestra's JSON shape (spec §8.12)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import states
from .ids import new_id
from .timeutil import format_duration, iso, now, parse_iso

TENANT = "main"


@dataclass
class State:
    current: str = states.CREATED
    histories: list[tuple[str, datetime]] = field(default_factory=list)

    @classmethod
    def new(cls, current: str = states.CREATED, at: datetime | None = None) -> "State":
        return cls(current, [(current, at or now())])

    def with_state(self, new_state: str, at: datetime | None = None) -> "State":
        """Append a transition (a no-op when the state does not change)."""
        if new_state == self.current and self.histories:
            return self
        return State(new_state, [*self.histories, (new_state, at or now())])

    @property
    def start_date(self) -> datetime | None:
        return self.histories[0][1] if self.histories else None

    @property
    def end_date(self) -> datetime | None:
        if self.current in states.TERMINATED or self.current == states.PAUSED:
            return self.histories[-1][1] if self.histories else None
        return None

    def is_terminated(self) -> bool:
        return self.current in states.TERMINATED

    def to_json(self) -> dict[str, Any]:
        start, end = self.start_date, self.end_date
        duration = ((end or now()) - start) if start else None
        return {
            "current": self.current,
            "histories": [{"state": s, "date": iso(d)} for s, d in self.histories],
            "startDate": iso(start),
            "endDate": iso(end),
            "duration": format_duration(duration) if duration is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "State":
        if not data:
            return cls.new()
        return cls(data["current"], [(h["state"], _required_date(h["date"])) for h in data.get("histories", [])])


@dataclass
class Attempt:
    state: State
    worker_id: str | None = None
    log_file: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state.to_json(), "workerId": self.worker_id, "logFile": self.log_file}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Attempt":
        return cls(State.from_json(data.get("state")), data.get("workerId"), data.get("logFile"))


@dataclass
class TaskRun:
    id: str
    execution_id: str
    namespace: str
    flow_id: str
    task_id: str
    parent_task_run_id: str | None = None
    value: str | None = None
    iteration: int | None = None
    state: State = field(default_factory=State.new)
    attempts: list[Attempt] = field(default_factory=list)
    outputs: dict[str, Any] | None = None
    dynamic: bool | None = None
    #: creation order inside the execution (Kestra's taskRunList order)
    seq: int = 0
    #: engine bookkeeping, not part of Kestra's JSON (rendered loop values, retry date...)
    internal: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, execution: "Execution", task_id: str, parent: "TaskRun | None" = None,
               value: str | None = None, iteration: int | None = None) -> "TaskRun":
        return cls(id=new_id(), execution_id=execution.id, namespace=execution.namespace,
                   flow_id=execution.flow_id, task_id=task_id,
                   parent_task_run_id=parent.id if parent else None, value=value, iteration=iteration)

    @property
    def current(self) -> str:
        return self.state.current

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "executionId": self.execution_id,
            "namespace": self.namespace,
            "flowId": self.flow_id,
            "taskId": self.task_id,
            "tenantId": TENANT,
            "parentTaskRunId": self.parent_task_run_id,
            "value": self.value,
            "iteration": self.iteration,
            "attempts": [a.to_json() for a in self.attempts] or None,
            "outputs": self.outputs,
            "state": self.state.to_json(),
            "dynamic": self.dynamic,
            "forceExecution": None,
            "items": None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], seq: int = 0) -> "TaskRun":
        return cls(
            id=data["id"], execution_id=data["executionId"], namespace=data["namespace"],
            flow_id=data["flowId"], task_id=data["taskId"], parent_task_run_id=data.get("parentTaskRunId"),
            value=data.get("value"), iteration=data.get("iteration"), state=State.from_json(data.get("state")),
            attempts=[Attempt.from_json(a) for a in data.get("attempts") or []],
            outputs=data.get("outputs"), dynamic=data.get("dynamic"), seq=seq,
        )


@dataclass
class Execution:
    id: str
    namespace: str
    flow_id: str
    flow_revision: int
    state: State = field(default_factory=State.new)
    task_runs: list[TaskRun] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] | None = None
    variables: dict[str, Any] | None = None
    labels: list[dict[str, str]] = field(default_factory=list)
    parent_id: str | None = None
    original_id: str | None = None
    trigger: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    schedule_date: datetime | None = None
    deleted: bool = False
    #: task runs created from a worker result (a WorkingDirectory's children), still to be written
    recorded_runs: list[TaskRun] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def create(cls, namespace: str, flow_id: str, flow_revision: int, **kwargs: Any) -> "Execution":
        execution_id = kwargs.pop("id", None) or new_id()
        created = now()
        execution = cls(id=execution_id, namespace=namespace, flow_id=flow_id, flow_revision=flow_revision,
                        state=State.new(states.CREATED, created), **kwargs)
        execution.original_id = execution.original_id or execution_id
        execution.metadata = {"attemptNumber": 1, "originalCreatedDate": iso(created), **execution.metadata}
        return execution

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "namespace": self.namespace,
            "flowId": self.flow_id,
            "flowRevision": self.flow_revision,
            "tenantId": TENANT,
            "taskRunList": [t.to_json() for t in sorted(self.task_runs, key=lambda t: t.seq)] or None,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "variables": self.variables,
            "labels": self.labels,
            "state": self.state.to_json(),
            "parentId": self.parent_id,
            "originalId": self.original_id,
            "trigger": self.trigger,
            "deleted": self.deleted,
            "metadata": self.metadata,
            "scheduleDate": iso(self.schedule_date),
            "traceParent": None,
            "kind": None,
            "breakpoints": None,
            "fixtures": None,
        }

    def labels_map(self) -> dict[str, str]:
        """First occurrence of a key wins (spec §6.3)."""
        out: dict[str, str] = {}
        for label in self.labels:
            out.setdefault(label["key"], label["value"])
        return out


def _required_date(value: Any) -> datetime:
    moment = parse_iso(value)
    if moment is None:
        raise ValueError(f"a state history entry has no date: {value!r}")
    return moment
