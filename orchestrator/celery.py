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
    "orchestrator.reconcile": {"queue": EXECUTOR_QUEUE},
}
app.autodiscover_tasks(["orchestrator.runtime"], related_name="tasks")


def _durability(name: str, default: float) -> float:
    from django.conf import settings

    try:
        return float(settings.DURABILITY[name])
    except Exception:  # noqa: BLE001 - settings not configured (a bare `celery` command): the default
        return default


# The scheduler role (beat) sends the sweep (timers due, starts and steps announced but not done)
# and the reconciler (lost job messages, expired leases, parked results, queued executions).
# Both are short, idempotent, and expire rather than pile up while no executor consumes them.
app.conf.beat_schedule = {
    "celestra-sweep": {"task": "orchestrator.sweep", "schedule": 1.0,
                       "options": {"queue": EXECUTOR_QUEUE, "expires": 10}},
    "celestra-reconcile": {"task": "orchestrator.reconcile", "schedule": _durability("RECONCILE_INTERVAL", 2.0),
                           "options": {"queue": EXECUTOR_QUEUE, "expires": 30}},
}
# Messages are wake-ups for rows: a worker acks a job only once it ran (a lost worker process has
# it redelivered, and the claim makes the redelivery harmless); the executor's steps ack late too.
app.conf.task_acks_late = True
app.conf.task_reject_on_worker_lost = True
# A publish that cannot reach the broker gives up after about a second: the work is a row already,
# and the reconciler publishes it again; an API request must not hang on a dead broker.
app.conf.task_publish_retry_policy = {"max_retries": 3, "interval_start": 0, "interval_step": 0.2,
                                      "interval_max": 0.5}
app.conf.broker_connection_timeout = 2

# Celery's Django fixup closes the database connection around every task unless told to reuse it:
# a new PostgreSQL connection per task run would cost more than the task. Connections are kept and
# recycled the Django way instead (CONN_MAX_AGE, and dropped after an error), before each task.
app.conf.CELERY_DB_REUSE_MAX = 1_000_000


@app.on_after_configure.connect
def _recycle_connections(sender, **kwargs):  # pragma: no cover - wiring
    from celery.signals import task_prerun
    from django.db import close_old_connections

    task_prerun.connect(lambda **_: close_old_connections(), weak=False)
