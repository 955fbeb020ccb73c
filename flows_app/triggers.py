"""Keeps the stored trigger states in sync with the triggers of deployed flows (spec §7.1, §7.2).

Called by ``services.deploy_flow`` / ``delete_flow`` inside their transaction. Schedule and
ScheduleOnDates triggers are fired by ``orchestrator.runtime.schedules.evaluate_schedules`` from the
timer sweep, which reads these states: Kestra's schedule semantics (the stored next date, the lock,
backfills, recovery of missed dates, ``withSeconds``, date lists) need a per-trigger clock that
django-celery-beat's crontab rows cannot hold, so no beat row is kept per trigger any more; rows left
by earlier versions are removed here.
"""
from __future__ import annotations

from typing import Any

from orchestrator.plugins.core.trigger import Schedule

from . import models

SCHEDULE = Schedule.type
_LEGACY_PREFIX = "celestra:"


def _legacy_prefix(flow: models.Flow) -> str:
    return f"{_LEGACY_PREFIX}{flow.namespace}:{flow.flow_id}:"


def _remove_legacy_rows(flow: models.Flow) -> None:
    """Per-trigger django-celery-beat rows written by earlier versions would fire a second time."""
    try:
        from django_celery_beat.models import PeriodicTask
    except ImportError:  # pragma: no cover - beat is an optional dependency of the web role
        return
    PeriodicTask.objects.filter(name__startswith=_legacy_prefix(flow)).delete()


def sync_schedules(flow: models.Flow, parsed: Any) -> None:
    """Create, reset or delete the trigger states of a flow that was just saved."""
    from orchestrator.runtime.schedules import sync_trigger_states

    _remove_legacy_rows(flow)
    sync_trigger_states(flow.namespace, flow.flow_id, parsed)


def remove_schedules(flow: models.Flow) -> None:
    """The flow was deleted: its trigger states (and MultipleCondition windows) go too."""
    from orchestrator.runtime.schedules import remove_trigger_states

    _remove_legacy_rows(flow)
    remove_trigger_states(flow.namespace, flow.flow_id)
