"""Everything in one process: a Celery worker in a thread consuming the executor and worker
queues through the in-process broker, the timer sweep, and (optionally) beat.

Used by ``manage.py server local``, the test suite and the conformance runner. Celery really runs
the work: messages go through the broker and tasks run on the worker's thread pool.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Iterator

from celery.contrib.testing.worker import TestWorkController, setup_app_for_worker

from orchestrator.celery import EXECUTOR_QUEUE, app, worker_queue

log = logging.getLogger("celestra.local")


class LocalRuntime:
    def __init__(self, groups: list[str] | None = None, concurrency: int = 8, beat: bool = False,
                 sweep_interval: float = 1.0):
        self.queues = [EXECUTOR_QUEUE, worker_queue(None), *[worker_queue(g) for g in groups or []]]
        self.concurrency = concurrency
        self.beat = beat
        self.sweep_interval = sweep_interval
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.worker: TestWorkController | None = None
        self._beat_service = None

    def start(self) -> "LocalRuntime":
        import orchestrator.runtime.tasks  # noqa: F401 - registers the tasks

        setup_app_for_worker(app, "WARNING", None)
        self.worker = TestWorkController(
            app=app, concurrency=self.concurrency, pool="threads", queues=self.queues, loglevel="WARNING",
            logfile=None, ready_callback=None, without_heartbeat=True, without_mingle=True, without_gossip=True,
            hostname=f"celestra-local@{threading.get_ident()}",
        )
        thread = threading.Thread(target=self.worker.start, name="celestra-worker", daemon=True)
        thread.start()
        self.worker.ensure_started()
        self._threads.append(thread)
        sweeper = threading.Thread(target=self._sweep_loop, name="celestra-sweep", daemon=True)
        sweeper.start()
        self._threads.append(sweeper)
        if self.beat:
            from celery.beat import EmbeddedService

            self._beat_service = EmbeddedService(
                app, thread=True, scheduler_cls="django_celery_beat.schedulers:DatabaseScheduler")
            self._beat_service.start()
        return self

    def _sweep_loop(self) -> None:
        from django.db import close_old_connections

        import time

        from django.conf import settings

        from .durable import reconcile
        from .tasks import sweep

        next_reconcile = 0.0
        while not self._stop.wait(self.sweep_interval):
            try:
                sweep()
                if time.monotonic() >= next_reconcile:
                    next_reconcile = time.monotonic() + settings.DURABILITY["RECONCILE_INTERVAL"]
                    reconcile()
            except Exception:  # the loop must survive a database hiccup
                log.exception("sweep failed")
            finally:
                close_old_connections()

    def stop(self) -> None:
        self._stop.set()
        if self._beat_service is not None:
            self._beat_service.stop()
        if self.worker is not None:
            from celery.worker import state

            state.should_terminate = 0
            for thread in self._threads:
                thread.join(10)
            state.should_terminate = None


@contextmanager
def local_runtime(**kwargs) -> Iterator[LocalRuntime]:
    runtime = LocalRuntime(**kwargs).start()
    try:
        yield runtime
    finally:
        runtime.stop()
