"""Celestra: a Kestra-compatible workflow orchestrator on Django and Celery.

Importing the package loads nothing else: the engine (``orchestrator.engine``) is pure Python and
must stay importable without Django or Celery. The Celery app lives in ``orchestrator.celery`` and is
loaded by the processes that use it (``celery -A orchestrator`` finds it there, the runtime's tasks
import it); ``orchestrator.celery_app`` still resolves to it, on first access.
"""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "celery_app":
        from .celery import app

        return app
    raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
