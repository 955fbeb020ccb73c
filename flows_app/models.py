"""Namespaces, flows and their revisions, executions, task runs, logs and metrics.

The database is the source of truth. Executions and task runs keep their Kestra state object
(``state_json``: current state and history) next to an indexed ``state`` column for queries.
"""
from __future__ import annotations

from django.db import models


class Namespace(models.Model):
    """A dot-separated namespace; parents are created with their children (``a.b`` → ``a``)."""

    name = models.CharField(max_length=150, unique=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def ensure(cls, name: str) -> "Namespace":
        parent = None
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            parent, _ = cls.objects.get_or_create(name=".".join(parts[:depth]), defaults={"parent": parent})
        assert parent is not None
        return parent


class Flow(models.Model):
    """The latest revision of a flow; every revision is kept in :class:`FlowRevision`."""

    namespace = models.CharField(max_length=150, db_index=True)
    flow_id = models.CharField(max_length=100)
    namespace_ref = models.ForeignKey(Namespace, on_delete=models.PROTECT, related_name="flows")
    revision = models.PositiveIntegerField(default=1)
    source = models.TextField()
    description = models.TextField(blank=True, default="")
    labels = models.JSONField(default=dict, blank=True)
    disabled = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["namespace", "flow_id"]
        constraints = [models.UniqueConstraint(fields=["namespace", "flow_id"], name="unique_flow")]

    def __str__(self) -> str:
        return f"{self.namespace}.{self.flow_id}"


class FlowRevision(models.Model):
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="revisions")
    revision = models.PositiveIntegerField()
    source = models.TextField()
    deleted = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["flow", "revision"]
        constraints = [models.UniqueConstraint(fields=["flow", "revision"], name="unique_flow_revision")]

    def __str__(self) -> str:
        return f"{self.flow} rev {self.revision}"


class FlowLabel(models.Model):
    """Labels of the latest revision, one row per key, for filtering."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="label_rows")
    key = models.CharField(max_length=255)
    value = models.CharField(max_length=1024)

    class Meta:
        indexes = [models.Index(fields=["key", "value"])]


class Execution(models.Model):
    id = models.CharField(primary_key=True, max_length=32)
    namespace = models.CharField(max_length=150)
    flow_id = models.CharField(max_length=100)
    flow_revision = models.PositiveIntegerField()
    state = models.CharField(max_length=16, db_index=True)
    state_json = models.JSONField(default=dict)
    inputs = models.JSONField(default=dict, blank=True)
    outputs = models.JSONField(null=True, blank=True)
    variables = models.JSONField(null=True, blank=True)
    labels = models.JSONField(default=list, blank=True)
    parent_id = models.CharField(max_length=32, null=True, blank=True, db_index=True)
    original_id = models.CharField(max_length=32, null=True, blank=True)
    trigger = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    schedule_date = models.DateTimeField(null=True, blank=True)
    deleted = models.BooleanField(default=False)
    #: engine bookkeeping that is not part of Kestra's JSON (queue position, subflow links...)
    internal = models.JSONField(default=dict, blank=True)
    #: next task run sequence number (Kestra's taskRunList order)
    next_seq = models.PositiveIntegerField(default=0)
    #: incremented by every write of the executor step: an executor keeps the execution it last
    #: wrote in memory and reuses it when the locked row still has that version
    version = models.PositiveIntegerField(default=0)
    #: the executor must look at this execution again at this time (retry waits, pauses, timers)
    wake_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created = models.DateTimeField(db_index=True)
    start_date = models.DateTimeField(null=True, blank=True)
    end_date = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created"]
        indexes = [
            models.Index(fields=["namespace", "flow_id", "state"]),
            models.Index(fields=["namespace", "flow_id", "-created"]),
        ]

    def __str__(self) -> str:
        return f"{self.namespace}.{self.flow_id} {self.id} ({self.state})"

    def save(self, *args, **kwargs):
        """Every write bumps ``version``: executors trust their in-memory copy only at the version
        they wrote (orchestrator.runtime.store). Writers that use ``QuerySet.update`` must bump it too."""
        self.version = (self.version or 0) + 1
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "version" not in update_fields:
            kwargs["update_fields"] = [*update_fields, "version"]
        super().save(*args, **kwargs)


class TaskRun(models.Model):
    id = models.CharField(primary_key=True, max_length=32)
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="task_runs")
    seq = models.PositiveIntegerField()
    task_id = models.CharField(max_length=256)
    parent_task_run_id = models.CharField(max_length=32, null=True, blank=True)
    value = models.TextField(null=True, blank=True)
    iteration = models.IntegerField(null=True, blank=True)
    state = models.CharField(max_length=16)
    state_json = models.JSONField(default=dict)
    attempts = models.JSONField(default=list, blank=True)
    outputs = models.JSONField(null=True, blank=True)
    dynamic = models.BooleanField(null=True, blank=True)
    internal = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["execution", "seq"]
        indexes = [models.Index(fields=["execution", "seq"])]

    def __str__(self) -> str:
        return f"{self.task_id} ({self.state})"


class PendingResult(models.Model):
    """A worker result parked while another process held the execution's lock.

    The next executor step of that execution takes every parked result at once (one query), so
    that many results arriving together (a fan-in) cost a few steps, not one step each.
    """

    execution_id = models.CharField(max_length=32, db_index=True)
    payload = models.JSONField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class Job(models.Model):
    """A worker job (one attempt of one runnable task run): the record of work sent to a worker.

    Written in the executor step that dispatches the task run, before the message is published;
    the message is only a wake-up. A worker runs the job only after claiming it (compare-and-set
    from PENDING to RUNNING); while it runs, the worker renews ``heartbeat_at``. The row goes away
    when the attempt's result is applied. See orchestrator/runtime/durable.py.
    """

    PENDING = "PENDING"    # written, message published (or to be published again)
    RUNNING = "RUNNING"    # claimed by ``worker_id``, lease renewed by heartbeats
    FINISHED = "FINISHED"  # a lost attempt handed to the executor for resubmission
    KILLED = "KILLED"      # the execution was killed: a worker that sees it stops the attempt

    execution_id = models.CharField(max_length=32, db_index=True)
    taskrun_id = models.CharField(max_length=32)
    attempt = models.PositiveIntegerField()
    queue = models.CharField(max_length=150)
    payload = models.JSONField()
    state = models.CharField(max_length=10, default=PENDING)
    worker_id = models.CharField(max_length=255, blank=True, default="")
    #: last time the wake-up message was published
    published = models.DateTimeField()
    claimed = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    #: lease expiries of this task run so far (carried over to the resubmitted attempt)
    deaths = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["taskrun_id", "attempt"], name="unique_job_attempt")]
        indexes = [models.Index(fields=["state", "published"]), models.Index(fields=["state", "heartbeat"])]

    def __str__(self) -> str:
        return f"job {self.taskrun_id}#{self.attempt} ({self.state})"


class LogEntry(models.Model):
    LEVELS = ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]

    execution_id = models.CharField(max_length=32, db_index=True, null=True, blank=True)
    namespace = models.CharField(max_length=150)
    flow_id = models.CharField(max_length=100)
    task_id = models.CharField(max_length=256, null=True, blank=True)
    taskrun_id = models.CharField(max_length=32, null=True, blank=True)
    attempt_number = models.IntegerField(null=True, blank=True)
    trigger_id = models.CharField(max_length=256, null=True, blank=True)
    timestamp = models.DateTimeField(db_index=True)
    level = models.CharField(max_length=8)
    thread = models.CharField(max_length=128, blank=True, default="")
    message = models.TextField()

    class Meta:
        ordering = ["timestamp", "id"]

    def __str__(self) -> str:
        return f"{self.level} {self.task_id or self.flow_id} {self.message[:60]}"

    def to_json(self) -> dict:
        from orchestrator.engine.timeutil import iso

        return {
            "namespace": self.namespace, "flowId": self.flow_id, "taskId": self.task_id,
            "executionId": self.execution_id, "taskRunId": self.taskrun_id,
            "attemptNumber": self.attempt_number, "triggerId": self.trigger_id,
            "timestamp": iso(self.timestamp), "level": self.level, "thread": self.thread,
            "message": self.message, "tenantId": "main", "executionKind": None,
        }


class MetricEntry(models.Model):
    execution_id = models.CharField(max_length=32, db_index=True)
    namespace = models.CharField(max_length=150)
    flow_id = models.CharField(max_length=100)
    task_id = models.CharField(max_length=256, null=True, blank=True)
    taskrun_id = models.CharField(max_length=32, null=True, blank=True)
    type = models.CharField(max_length=16)
    name = models.CharField(max_length=256)
    value = models.FloatField()
    tags = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField()

    class Meta:
        ordering = ["timestamp", "id"]

    def __str__(self) -> str:
        return f"{self.name} = {self.value} ({self.task_id or self.flow_id})"


from .trigger_models import *  # noqa
