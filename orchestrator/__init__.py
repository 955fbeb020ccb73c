"""Celestra: a Kestra-compatible workflow orchestrator on Django and Celery."""
from __future__ import annotations

try:  # The Celery app is importable only once Django settings exist.
    from .celery import app as celery_app  # noqa: F401
except Exception:  # pragma: no cover - engine used standalone
    celery_app = None
