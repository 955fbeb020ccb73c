"""The admin's home page as a dashboard: executions by state over the last 24 hours, running and
queued counts, recent failures with their error, worker groups with their live workers."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count
from django.db.models.functions import TruncHour

from orchestrator.engine import states
from orchestrator.engine.timeutil import now

from .. import models
from . import console
from .permissions import console_can

#: the states drawn in the chart, bottom to top
CHART_STATES = ["SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RUNNING", "QUEUED", "CREATED", "PAUSED"]


def dashboard_context(request: Any, hours: int = 24) -> dict[str, Any]:
    if not console_can(request.user, "view"):
        return {}
    moment = now()
    since = (moment - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    live = models.Execution.objects.filter(deleted=False)
    counts = dict(live.exclude(state__in=states.TERMINATED).values_list("state").annotate(n=Count("id")))
    buckets: dict[Any, dict[str, int]] = {}
    for row in (live.filter(created__gte=since).annotate(hour=TruncHour("created"))
                .values("hour", "state").annotate(n=Count("id"))):
        buckets.setdefault(row["hour"], {})[row["state"]] = row["n"]
    columns = []
    peak = max([sum(b.values()) for b in buckets.values()] or [1])
    for index in range(hours):
        hour = since + timedelta(hours=index)
        by_state = next((v for k, v in buckets.items() if k is not None and k.replace(tzinfo=hour.tzinfo) == hour), {})
        total = sum(by_state.values())
        columns.append({
            "hour": hour.strftime("%H:00"), "total": total,
            "segments": [{"state": s, "count": by_state[s], "height": round(by_state[s] / peak * 100, 1),
                          "css": console.state_class(s)} for s in CHART_STATES if by_state.get(s)],
        })
    failures = list(live.filter(state=states.FAILED).order_by("-created")[:10])
    errors: dict[str, str] = {}
    if failures:
        # the first error of a task run says why; "Flow completed with state FAILED" does not
        for execution_id, message in (models.LogEntry.objects.filter(
                execution_id__in=[f.pk for f in failures], level="ERROR", taskrun_id__isnull=False)
                .order_by("-timestamp", "-id").values_list("execution_id", "message")):
            errors[execution_id] = message
    workers = console.worker_status()
    return {
        "dash": {
            "running": counts.get(states.RUNNING, 0) + counts.get(states.KILLING, 0),
            "queued": counts.get(states.QUEUED, 0), "created": counts.get(states.CREATED, 0),
            "paused": counts.get(states.PAUSED, 0),
            "columns": columns, "hours": hours, "states": [(s, console.state_class(s)) for s in CHART_STATES],
            "failures": [{"execution": f, "error": errors.get(f.pk, ""), "created": console.exact(f.created)}
                         for f in failures],
            "workers": workers,
            "flows": models.Flow.objects.filter(deleted=False).count(),
        }
    }
