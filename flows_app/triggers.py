"""Keeps django-celery-beat's schedules in sync with the Schedule triggers of deployed flows."""
from __future__ import annotations

from typing import Any

from . import models

SCHEDULE = "io.kestra.plugin.core.trigger.Schedule"


def _name(flow: models.Flow, trigger_id: str) -> str:
    return f"celestra:{flow.namespace}:{flow.flow_id}:{trigger_id}"


def sync_schedules(flow: models.Flow, parsed: Any) -> None:
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    wanted = {}
    for trigger in getattr(parsed, "triggers", None) or []:
        if trigger.type != SCHEDULE or trigger.disabled or flow.disabled:
            continue
        cron = str(trigger.props.get("cron", "")).split()
        aliases = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                   "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *",
                   "@annually": "0 0 1 1 *"}
        if len(cron) == 1 and cron[0] in aliases:
            cron = aliases[cron[0]].split()
        if len(cron) == 6:  # withSeconds: the seconds field is dropped (beat ticks per minute)
            cron = cron[1:]
        if len(cron) != 5:
            continue
        minute, hour, day_of_month, month_of_year, day_of_week = cron
        schedule, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
            day_of_week=day_of_week, timezone=trigger.props.get("timezone") or "UTC")
        wanted[_name(flow, trigger.id)] = (schedule, trigger)
    existing = PeriodicTask.objects.filter(name__startswith=f"celestra:{flow.namespace}:{flow.flow_id}:")
    existing.exclude(name__in=list(wanted)).delete()
    import json

    for name, (schedule, trigger) in wanted.items():
        PeriodicTask.objects.update_or_create(name=name, defaults={
            "task": "orchestrator.fire_schedule", "crontab": schedule, "interval": None, "queue": "executor",
            "kwargs": json.dumps({"namespace": flow.namespace, "flow_id": flow.flow_id, "trigger_id": trigger.id}),
            "enabled": True,
        })


def remove_schedules(flow: models.Flow) -> None:
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.filter(name__startswith=f"celestra:{flow.namespace}:{flow.flow_id}:").delete()
