"""``GET /logs/{executionId}/follow``: the execution's logs as server-sent events, while it runs.

As Kestra: a first empty event (``id: start``) so that a client sees the stream open, then every
log entry (``id: progress``), the stored ones first, then new ones as they are written. Kestra keeps
the stream open until the client leaves; here it also ends once the execution is terminated and its
last entries are sent (a worker's final lines are written with its result), or after the wait limit.
"""
from __future__ import annotations

import json
import time
from typing import Iterator

from django.db import close_old_connections
from django.http import StreamingHttpResponse
from rest_framework.utils.encoders import JSONEncoder

from orchestrator.engine import states

from ... import models
from .common import ApiView
from .executions import _execution_or_404, _levels_from, wait_timeout


def _event(event_id: str, data: dict) -> str:
    return f"id: {event_id}\ndata: {json.dumps(data, cls=JSONEncoder)}\n\n"


def follow_logs(execution_id: str, levels: list[str], poll: float = 0.25) -> Iterator[str]:
    deadline = time.monotonic() + wait_timeout()
    last_id = 0
    try:
        yield _event("start", {})
        while True:
            ended = not models.Execution.objects.filter(pk=execution_id).exclude(
                state__in=list(states.TERMINATED)).exists()
            batch = list(models.LogEntry.objects.filter(execution_id=execution_id, level__in=levels,
                                                        id__gt=last_id).order_by("id")[:500])
            for entry in batch:
                last_id = entry.id
                yield _event("progress", entry.to_json())
            if len(batch) == 500:
                continue
            if ended or time.monotonic() >= deadline:
                return
            time.sleep(poll)
    finally:
        close_old_connections()


class LogsFollowView(ApiView):
    def get(self, request, execution_id):
        _execution_or_404(execution_id)
        levels = _levels_from(request.query_params.get("minLevel"))
        response = StreamingHttpResponse(follow_logs(execution_id, levels), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
