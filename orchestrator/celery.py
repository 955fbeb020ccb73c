"""The Celery application.

Queues: ``executor`` (the executor role: advances executions) and ``worker.<group>`` (the worker
role: runs runnable tasks; ``worker.default`` when a task has no ``workerGroup.key``).
"""
from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")

EXECUTOR_QUEUE = "executor"
DEFAULT_WORKER_GROUP = "default"


def worker_queue(group: str | None) -> str:
    return f"worker.{group or DEFAULT_WORKER_GROUP}"


app = Celery("celestra")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = {
    "orchestrator.advance_execution": {"queue": EXECUTOR_QUEUE},
    "orchestrator.sweep": {"queue": EXECUTOR_QUEUE},
}
app.autodiscover_tasks(["orchestrator.runtime"], related_name="tasks")
# The sweep wakes executions whose timer is due (retry waits...) and is run by the scheduler role.
app.conf.beat_schedule = {
    "celestra-sweep": {"task": "orchestrator.sweep", "schedule": 1.0, "options": {"queue": EXECUTOR_QUEUE}},
}

# Celery's Django fixup closes the database connection around every task unless told to reuse it:
# a new PostgreSQL connection per task run would cost more than the task. Connections are kept and
# recycled the Django way instead (CONN_MAX_AGE, and dropped after an error), before each task.
app.conf.CELERY_DB_REUSE_MAX = 1_000_000


@app.on_after_configure.connect
def _recycle_connections(sender, **kwargs):  # pragma: no cover - wiring
    from celery.signals import task_prerun
    from django.db import close_old_connections

    task_prerun.connect(lambda **_: close_old_connections(), weak=False)
