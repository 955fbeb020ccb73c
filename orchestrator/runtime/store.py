"""Load and store engine executions in the database (the thin shell around the engine)."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Iterable

from django.db import connection, transaction

from flows_app import models
from orchestrator.engine.executor import Decision, LogLine
from orchestrator.engine.model import Attempt, Execution, State, TaskRun


def execution_from_row(row: models.Execution, runs: Iterable[models.TaskRun]) -> Execution:
    execution = Execution(
        id=row.id, namespace=row.namespace, flow_id=row.flow_id, flow_revision=row.flow_revision,
        state=State.from_json(row.state_json), inputs=row.inputs or {}, outputs=row.outputs,
        variables=row.variables, labels=list(row.labels or []), parent_id=row.parent_id,
        original_id=row.original_id, trigger=row.trigger, metadata=dict(row.metadata or {}),
        schedule_date=row.schedule_date, deleted=row.deleted,
    )
    execution.task_runs = [taskrun_from_row(r, execution) for r in runs]
    return execution


def taskrun_from_row(row: models.TaskRun, execution: Execution) -> TaskRun:
    return TaskRun(
        id=row.id, execution_id=execution.id, namespace=execution.namespace, flow_id=execution.flow_id,
        task_id=row.task_id, parent_task_run_id=row.parent_task_run_id, value=row.value,
        iteration=row.iteration, state=State.from_json(row.state_json),
        attempts=[Attempt.from_json(a) for a in row.attempts or []], outputs=row.outputs,
        dynamic=row.dynamic, seq=row.seq, internal=dict(row.internal or {}),
    )


UPDATED_TASKRUN_FIELDS = ["state", "state_json", "attempts", "outputs", "internal", "value", "iteration"]
TASKRUN_FIELDS = ["task_id", "parent_task_run_id", "value", "iteration", "state", "state_json", "attempts", "outputs",
                  "dynamic", "seq", "internal"]


def taskrun_fields(run: TaskRun) -> dict:
    return {
        "task_id": run.task_id, "parent_task_run_id": run.parent_task_run_id, "value": run.value,
        "iteration": run.iteration, "state": run.state.current, "state_json": run.state.to_json(),
        "attempts": [a.to_json() for a in run.attempts], "outputs": run.outputs, "dynamic": run.dynamic,
        "seq": run.seq, "internal": run.internal,
    }


def execution_fields(execution: Execution) -> dict:
    return {
        "namespace": execution.namespace, "flow_id": execution.flow_id, "flow_revision": execution.flow_revision,
        "state": execution.state.current, "state_json": execution.state.to_json(), "inputs": execution.inputs,
        "outputs": execution.outputs, "variables": execution.variables, "labels": execution.labels,
        "parent_id": execution.parent_id, "original_id": execution.original_id, "trigger": execution.trigger,
        "metadata": execution.metadata, "schedule_date": execution.schedule_date, "deleted": execution.deleted,
        "start_date": execution.state.start_date, "end_date": execution.state.end_date,
    }


def insert_execution(execution: Execution, internal: dict | None = None, wake_at=None) -> models.Execution:
    """Insert a new execution; ``wake_at``: when the reconciler should step it if no step has by then
    (the row is the record that the execution must start; the message is a wake-up)."""
    row = models.Execution(id=execution.id, created=execution.state.start_date, internal=internal or {},
                           wake_at=wake_at, **execution_fields(execution))
    row.save(force_insert=True)
    return row


class _ExecutionCache:
    """Executions this process wrote last, by id, with the row version they were written at.

    The step locks the row; when its version is the one this process wrote, the in-memory
    execution (and its task run index) is still exact and the task runs are not read again.
    An entry is taken out while a step works on it and put back only after that step commits,
    so a rolled-back step never leaves a changed object behind.
    """

    def __init__(self, size: int = 512):
        self.size = size
        self.entries: OrderedDict[str, tuple[int, Execution]] = OrderedDict()
        self.lock = threading.Lock()

    def take(self, execution_id: str, version: int) -> Execution | None:
        with self.lock:
            entry = self.entries.pop(execution_id, None)
        if entry is not None and entry[0] == version:
            return entry[1]
        return None

    def put(self, execution_id: str, version: int, execution: Execution) -> None:
        with self.lock:
            self.entries[execution_id] = (version, execution)
            self.entries.move_to_end(execution_id)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


CACHE = _ExecutionCache()


def lock_execution(execution_id: str, nowait: bool = False) -> tuple[models.Execution, Execution] | None:
    """Inside a transaction: lock the execution row and load it with its task runs.

    One query when this process wrote the execution last (see :class:`_ExecutionCache`), two
    otherwise. With ``nowait``, a row locked by another step raises ``OperationalError``.
    """
    row = models.Execution.objects.select_for_update(nowait=nowait).filter(pk=execution_id).first()
    if row is None:
        return None
    cached = CACHE.take(execution_id, row.version)
    if cached is not None:
        return row, cached
    runs = models.TaskRun.objects.filter(execution_id=execution_id).order_by("seq")
    return row, execution_from_row(row, runs)


def save_decision(row: models.Execution, execution: Execution, decision: Decision, extra_runs: Iterable[TaskRun] = (),
                  metrics: Iterable[dict] = (), jobs: Iterable[dict] = (),
                  done_jobs: Iterable[tuple[str, int]] = ()) -> None:
    """Write what a step changed: new task runs, changed ones, the execution, logs and metrics,
    the worker jobs it dispatches (``jobs``: messages with their ``queue``) and the jobs whose
    result it took (``done_jobs``: (task run id, attempt)).

    On PostgreSQL every write of the step goes in one round trip (see :func:`_write_postgres`);
    elsewhere through the ORM.
    """
    jobs = list(jobs)
    done_jobs = list(done_jobs)
    new_ids = {r.id for r in decision.new_runs}
    changed = {r.id: r for r in extra_runs if r.id not in new_ids}
    changed.update({k: v for k, v in decision.changed_runs.items() if k not in new_ids})
    fields = execution_fields(execution)
    fields["wake_at"] = decision.wake_at
    for key, value in fields.items():
        setattr(row, key, value)
    metrics = list(metrics)
    if connection.vendor == "postgresql":
        row.version = (row.version or 0) + 1
        _write_postgres(row, execution, fields, decision.new_runs, list(changed.values()), decision.logs, metrics,
                        jobs, done_jobs)
    else:
        if decision.new_runs:
            models.TaskRun.objects.bulk_create(
                [models.TaskRun(id=r.id, execution_id=execution.id, **taskrun_fields(r)) for r in decision.new_runs])
        if len(changed) == 1:  # one plain UPDATE, cheaper than bulk_update's CASE form
            run = next(iter(changed.values()))
            values = taskrun_fields(run)
            models.TaskRun.objects.filter(pk=run.id).update(**{k: values[k] for k in UPDATED_TASKRUN_FIELDS})
        elif changed:
            models.TaskRun.objects.bulk_update(
                [models.TaskRun(id=r.id, execution_id=execution.id, **taskrun_fields(r)) for r in changed.values()],
                UPDATED_TASKRUN_FIELDS)
        row.save(update_fields=[*fields.keys(), "updated", "version"])
        if decision.logs:
            insert_logs(execution, decision.logs)
        if metrics:
            models.MetricEntry.objects.bulk_create([models.MetricEntry(**m) for m in metrics])
        if done_jobs:
            delete_jobs(done_jobs)
        if jobs:
            insert_jobs(jobs)
    version = row.version
    transaction.on_commit(lambda: CACHE.put(execution.id, version, execution))


def put_back(row: models.Execution, execution: Execution) -> None:
    """A step that changed nothing: the in-memory execution is still the row's version."""
    CACHE.put(execution.id, row.version, execution)


def take_pending(execution_id: str) -> list[dict]:
    """Every result parked for the execution (the caller holds its lock), removed in one query."""
    if connection.vendor != "postgresql":
        parked = list(models.PendingResult.objects.filter(execution_id=execution_id).order_by("id"))
        if not parked:
            return []
        models.PendingResult.objects.filter(pk__in=[p.pk for p in parked]).delete()
        return [p.payload for p in parked]
    with connection.cursor() as cursor:
        cursor.execute(f'DELETE FROM "{models.PendingResult._meta.db_table}" WHERE execution_id = %s '
                       "RETURNING id, payload", [execution_id])
        rows = cursor.fetchall()
    import json

    return [payload if isinstance(payload, dict) else json.loads(payload) for _, payload in sorted(rows)]


def _columns(model, names: Iterable[str]) -> list[str]:
    return [model._meta.get_field(name).column for name in names]


def _write_postgres(row, execution: Execution, fields: dict, new_runs, changed_runs, logs, metrics,
                    jobs=(), done_jobs=()) -> None:
    """Every write of a step as one multi-statement query: one round trip instead of five.

    psycopg's client-side binding cursor accepts several statements in one ``execute``. The
    statements are plain INSERTs and UPDATEs of the step's own rows, inside the step's transaction.
    """
    from django.utils import timezone
    from psycopg import ClientCursor
    from psycopg.types.json import Jsonb

    def value(v):
        return Jsonb(v) if isinstance(v, (dict, list)) else v

    statements: list[str] = []
    params: list = []

    def insert(model, names: list[str], rows: list[list]) -> None:
        if not rows:
            return
        placeholders = "(" + ", ".join(["%s"] * len(names)) + ")"
        statements.append(f'INSERT INTO "{model._meta.db_table}" ({", ".join(_columns(model, names))}) VALUES '
                          + ", ".join([placeholders] * len(rows)))
        for item in rows:
            params.extend(value(v) for v in item)

    def update(model, pk: str, values: dict) -> None:
        columns = _columns(model, values)
        statements.append(f'UPDATE "{model._meta.db_table}" SET ' + ", ".join(f"{c} = %s" for c in columns)
                          + f' WHERE "{model._meta.pk.column}" = %s')
        params.extend(value(v) for v in values.values())
        params.append(pk)

    names = ["id", "execution", *TASKRUN_FIELDS]
    new_rows = []
    for run in new_runs:
        values = taskrun_fields(run)
        new_rows.append([run.id, execution.id, *(values[k] for k in TASKRUN_FIELDS)])
    insert(models.TaskRun, names, new_rows)
    for run in changed_runs:
        values = taskrun_fields(run)
        update(models.TaskRun, run.id, {k: values[k] for k in UPDATED_TASKRUN_FIELDS})
    update(models.Execution, execution.id, {**fields, "updated": timezone.now(), "version": row.version})
    log_names = ["execution_id", "namespace", "flow_id", "task_id", "taskrun_id", "attempt_number", "trigger_id",
                 "timestamp", "level", "thread", "message"]
    insert(models.LogEntry, log_names, [
        [execution.id, execution.namespace, execution.flow_id, line.task_id, line.taskrun_id, line.attempt_number,
         None, line.timestamp, line.level, "", line.message] for line in logs])
    metric_names = ["execution_id", "namespace", "flow_id", "task_id", "taskrun_id", "type", "name", "value", "tags",
                    "timestamp"]
    insert(models.MetricEntry, metric_names, [[m[k] for k in metric_names] for m in metrics])
    job_table = models.Job._meta.db_table
    for taskrun_id, attempt in done_jobs:
        statements.append(f'DELETE FROM "{job_table}" WHERE taskrun_id = %s AND attempt = %s')
        params.extend([taskrun_id, attempt])
    if jobs:
        moment = timezone.now()
        insert(models.Job, JOB_FIELDS, [_job_values(job, moment) for job in jobs])
        # a restart may dispatch an attempt number a killed job row still holds: it becomes the new job
        statements[-1] += (" ON CONFLICT (taskrun_id, attempt) DO UPDATE SET state = EXCLUDED.state, "
                           "payload = EXCLUDED.payload, queue = EXCLUDED.queue, worker_id = '', "
                           "published = EXCLUDED.published, claimed = NULL, heartbeat = NULL, deaths = EXCLUDED.deaths")
    connection.ensure_connection()
    with ClientCursor(connection.connection) as cursor:
        cursor.execute("; ".join(statements), params)


JOB_FIELDS = ["execution_id", "taskrun_id", "attempt", "queue", "payload", "state", "worker_id", "published", "deaths"]


def _job_values(job: dict, moment) -> list:
    return [job["execution_id"], job["taskrun_id"], job["attempt"], job["queue"], job, models.Job.PENDING, "",
            moment, job.get("deaths", 0)]


def insert_jobs(jobs: Iterable[dict]) -> None:
    """The worker jobs of a step, as rows (the ORM path; PostgreSQL writes them with the step)."""
    from django.utils import timezone

    jobs = list(jobs)
    moment = timezone.now()
    models.Job.objects.filter(_job_keys([(j["taskrun_id"], j["attempt"]) for j in jobs])).delete()
    models.Job.objects.bulk_create([models.Job(**dict(zip(JOB_FIELDS, _job_values(job, moment)))) for job in jobs])


def delete_jobs(keys: Iterable[tuple[str, int]]) -> None:
    keys = list(keys)
    if keys:
        models.Job.objects.filter(_job_keys(keys)).delete()


def _job_keys(keys: list[tuple[str, int]]):
    from django.db.models import Q

    query = Q(pk__in=[])
    for taskrun_id, attempt in keys:
        query |= Q(taskrun_id=taskrun_id, attempt=attempt)
    return query


def insert_logs(execution: Execution, lines: Iterable[LogLine]) -> None:
    models.LogEntry.objects.bulk_create([
        models.LogEntry(execution_id=execution.id, namespace=execution.namespace, flow_id=execution.flow_id,
                        task_id=line.task_id, taskrun_id=line.taskrun_id, attempt_number=line.attempt_number,
                        timestamp=line.timestamp, level=line.level, message=line.message)
        for line in lines
    ])


def atomic():
    return transaction.atomic()
