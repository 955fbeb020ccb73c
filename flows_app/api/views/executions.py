"""Executions: create (multipart inputs), validate inputs, read, search, kill, labels, delete, restart,
replay, pause, resume, task run state changes, concurrency queue (spec §11.3)."""
from __future__ import annotations

from typing import Any, Iterator

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.http import HttpResponse, StreamingHttpResponse
from rest_framework import status
from rest_framework.response import Response

from accounts_app.permissions import namespace_q
from orchestrator.engine import states

from ... import models, services, services_admin
from .. import serializers
from ..exceptions import ApiError, BadRequest, NotFound
from .common import (ApiView, bool_param, date_q, int_param, label_pairs, page, parse_filters, parse_labels,
                     text_q)

EXECUTION_SORT = {
    "id": "id", "namespace": "namespace", "flowId": "flow_id", "state.current": "state", "state": "state",
    "state.startDate": "created", "startDate": "created", "state.endDate": "end_date", "endDate": "end_date",
    "flowRevision": "flow_revision",
}


def wait_timeout() -> float:
    return float(settings.CELESTRA.get("API_WAIT_TIMEOUT", 3600))


def submitted_inputs(request) -> dict[str, Any]:
    """Multipart form fields and file parts as inputs (spec §5.5); a JSON object is taken as typed values.

    A file part is named by its input id; the legacy form is a part named ``files`` whose file name is
    the input id.
    """
    from orchestrator.engine.inputs import InputFile

    data = request.data
    if isinstance(data, dict) and not hasattr(data, "getlist"):
        return dict(data)
    if not hasattr(data, "getlist"):
        raise BadRequest("The inputs must be a JSON object or multipart form fields")
    inputs: dict[str, Any] = {}
    files = request.FILES
    for key in data.keys():
        if key in files:
            continue
        values = data.getlist(key)
        inputs[key] = values[0] if len(values) == 1 else values
    for key in files.keys():
        for upload in files.getlist(key):
            input_id = upload.name if key == "files" else key
            filename = upload.name if key != "files" else ""
            inputs[input_id] = InputFile(filename=filename, content=upload.read())
    return inputs


def execution_response(execution_id: str, *, wait: bool, initial: dict[str, Any] | None = None) -> dict[str, Any]:
    if wait:
        services.wait_for(execution_id, timeout=wait_timeout())
        return services.execution_json(execution_id)
    return initial if initial is not None else services.execution_json(execution_id)


def follow_events(execution_id: str, poll: float = 0.25) -> Iterator[str]:
    """Server-sent events of an execution: its JSON on every change (``id: progress``), then
    ``id: end`` once it is terminated (spec §11.3 ``/follow``)."""
    import json
    import time

    from django.db import close_old_connections
    from rest_framework.utils.encoders import JSONEncoder

    deadline = time.monotonic() + wait_timeout()
    last = None
    try:
        while time.monotonic() < deadline:
            row = models.Execution.objects.filter(pk=execution_id).values("updated", "state").first()
            if row is None:
                return
            if row["updated"] != last:
                last = row["updated"]
                ended = row["state"] in states.TERMINATED
                data = json.dumps(services.execution_json(execution_id), cls=JSONEncoder)
                yield f"id: {'end' if ended else 'progress'}\ndata: {data}\n\n"
                if ended:
                    return
            time.sleep(poll)
    finally:
        close_old_connections()


def _execution_or_404(execution_id: str) -> models.Execution:
    row = models.Execution.objects.filter(pk=execution_id, deleted=False).first()
    if row is None:
        raise NotFound(f"Unable to find execution '{execution_id}'")
    return row


class ExecutionCreateView(ApiView):
    """``POST /executions/{namespace}/{flowId}`` (and the 0.x ``/executions/trigger/{namespace}/{flowId}``)."""

    def post(self, request, namespace, flow_id):
        inputs = submitted_inputs(request)
        labels = parse_labels(request.query_params.getlist("labels"))
        schedule_date = request.query_params.get("scheduleDate")
        if schedule_date:
            from orchestrator.runtime.schedules import create_scheduled_execution

            from .common import date_param

            execution = create_scheduled_execution(namespace, flow_id, inputs,
                                                   date_param(schedule_date, "scheduleDate"),
                                                   labels=labels, revision=int_param(request, "revision"))
        else:
            execution = services.create_execution(namespace, flow_id, inputs, labels=labels,
                                                  revision=int_param(request, "revision"), checks=True)
        data = execution_response(execution.id, wait=bool_param(request, "wait"), initial=execution.to_json())
        return Response(serializers.with_url(data))


class ExecutionValidateView(ApiView):
    """``POST /executions/{namespace}/{flowId}/validate``: the inputs as they would be, nothing created."""

    def post(self, request, namespace, flow_id):
        parse_labels(request.query_params.getlist("labels"))
        return Response(services_admin.validate_execution_inputs(
            namespace, flow_id, submitted_inputs(request), revision=int_param(request, "revision")))


class ExecutionView(ApiView):
    """``GET|DELETE /executions/{executionId}``."""

    def get(self, request, execution_id):
        _execution_or_404(execution_id)
        return Response(services.execution_json(execution_id))

    def delete(self, request, execution_id):
        services_admin.delete_execution(execution_id, delete_logs=bool_param(request, "deleteLogs", True),
                                        delete_metrics=bool_param(request, "deleteMetrics", True),
                                        delete_storage=bool_param(request, "deleteStorage", True))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExecutionActionView(ApiView):
    """Routes of the shape ``/executions/{a}/{b}``: an action on execution ``a`` when ``b`` names one
    (``kill``, ``labels``, ``logs``, ``flow``, ``file``, ``follow``, and :attr:`actions`), else the creation of an execution of flow
    ``b`` in namespace ``a`` — the literal segment wins, as in Kestra's router."""

    def get(self, request, a, b):
        if b == "logs":
            return LogsView().list(request, a)
        if b == "flow":
            return self._flow(a)
        if b == "file":
            return self._file(request, a)
        if b == "follow":
            _execution_or_404(a)
            response = StreamingHttpResponse(follow_events(a), content_type="text/event-stream")
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"
            return response
        raise NotFound()

    def post(self, request, a, b):
        if b == "labels":
            return self._labels(request, a)
        action = self.actions.get(b)
        if action is not None:
            return getattr(self, action)(request, a)
        return ExecutionCreateView().post(request, a, b)

    #: ``POST /executions/{executionId}/{action}`` (spec §8.6-§8.11)
    actions = {
        "restart": "_restart", "replay": "_replay", "replay-with-inputs": "_replay_with_inputs",
        "state": "_state", "change-status": "_change_status", "resume": "_resume", "pause": "_pause",
        "unqueue": "_unqueue", "force-run": "_force_run",
    }

    def _restart(self, request, execution_id):
        _execution_or_404(execution_id)
        execution = services_admin.restart_execution(execution_id, revision=int_param(request, "revision"))
        return Response(execution.to_json())

    def _replay(self, request, execution_id):
        _execution_or_404(execution_id)
        execution = services_admin.replay_execution(execution_id, request.query_params.get("taskRunId") or None,
                                                    revision=int_param(request, "revision"))
        return Response(execution.to_json())

    def _replay_with_inputs(self, request, execution_id):
        _execution_or_404(execution_id)
        execution = services_admin.replay_execution(execution_id, request.query_params.get("taskRunId") or None,
                                                    revision=int_param(request, "revision"),
                                                    inputs=submitted_inputs(request))
        return Response(execution.to_json())

    def _state(self, request, execution_id):
        _execution_or_404(execution_id)
        body = request.data if isinstance(request.data, dict) else {}
        taskrun_id, state = body.get("taskRunId"), body.get("state")
        if not taskrun_id or not state:
            raise BadRequest("A body {taskRunId, state} is expected")
        execution = services_admin.mark_as(execution_id, str(taskrun_id), str(state))
        return Response(execution.to_json())

    def _change_status(self, request, execution_id):
        _execution_or_404(execution_id)
        status_param = request.query_params.get("status")
        if not status_param:
            raise BadRequest("Required QueryValue [status] not specified")
        if status_param.upper() not in states.ALL_STATES:
            raise BadRequest(f"Failed to convert argument [status] for value [{status_param}]")
        return Response(services_admin.change_status(execution_id, status_param).to_json())

    def _resume(self, request, execution_id):
        _execution_or_404(execution_id)
        services_admin.resume_execution(execution_id, submitted_inputs(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _pause(self, request, execution_id):
        _execution_or_404(execution_id)
        services_admin.pause_execution(execution_id)
        return Response(status=status.HTTP_200_OK)

    def _unqueue(self, request, execution_id):
        _execution_or_404(execution_id)
        state = request.query_params.get("state")
        if state and state.upper() not in states.ALL_STATES:
            raise BadRequest(f"Failed to convert argument [state] for value [{state}]")
        return Response(services_admin.unqueue(execution_id, state).to_json())

    def _force_run(self, request, execution_id):
        _execution_or_404(execution_id)
        return Response(services_admin.force_run(execution_id).to_json())

    def delete(self, request, a, b):
        if b == "kill":
            services_admin.kill_execution(a, cascade=bool_param(request, "isOnKillCascade", True))
            return Response(status=status.HTTP_202_ACCEPTED)
        raise NotFound()

    def _labels(self, request, execution_id):
        body = request.data
        if not isinstance(body, list):
            raise BadRequest("A list of labels {key, value} is expected")
        serializer = serializers.LabelSerializer(data=body, many=True)
        serializer.is_valid(raise_exception=True)
        execution = services_admin.set_execution_labels(execution_id, list(serializer.validated_data))
        return Response(execution.to_json())

    def _flow(self, execution_id):
        row = _execution_or_404(execution_id)
        revision = models.FlowRevision.objects.filter(flow__namespace=row.namespace, flow__flow_id=row.flow_id,
                                                      revision=row.flow_revision).select_related("flow").first()
        if revision is None:
            raise NotFound(f"Unable to find flow for execution '{execution_id}'")
        return Response(serializers.revision_json(revision.flow, revision, with_source=False))

    def _file(self, request, execution_id):
        from storage_app import storage

        row = _execution_or_404(execution_id)
        path = request.query_params.get("path") or ""
        prefix = f"kestra:///{row.namespace.replace('.', '/')}/{row.flow_id}/executions/{row.id}/"
        if not path.startswith(prefix):
            raise ApiError("Invalid prefix path")
        content = storage.get(path)
        response = HttpResponse(content, content_type="application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="{path.rsplit("/", 1)[-1]}"'
        return response


class ResumeValidateView(ApiView):
    """``POST /executions/{executionId}/resume/validate``: the ``onResume`` inputs as they would be (409 if
    the execution is not paused)."""

    def post(self, request, execution_id):
        _execution_or_404(execution_id)
        return Response(services_admin.validate_resume(execution_id, submitted_inputs(request)))


class ExecutionSearchView(ApiView):
    """``GET /executions/search`` (and ``GET /executions?namespace=&flowId=``): paged executions."""

    legacy = {"q": "CONTAINS", "namespace": "PREFIX", "flowId": "EQUALS", "state": "IN", "labels": "EQUALS",
              "startDate": "GREATER_THAN_OR_EQUAL_TO", "endDate": "LESS_THAN_OR_EQUAL_TO", "timeRange": "EQUALS",
              "childFilter": "EQUALS", "triggerExecutionId": "EQUALS"}

    def get(self, request):
        return Response(page(request, self.filtered(request).prefetch_related("task_runs"), _executions_json,
                             EXECUTION_SORT, ["-created"]))

    @classmethod
    def filtered(cls, request):
        """The executions the request's filters select (the search, and the bulk ``by-query`` actions)."""
        # a search shows what the caller may read; a bulk action reaches what they may run (or delete)
        action = {"GET": "execution.read", "DELETE": "execution.delete"}.get(request.method, "execution.run")
        queryset = models.Execution.objects.filter(deleted=False).filter(namespace_q(request.user, action))
        label_filters = []
        for f in parse_filters(request, cls.legacy):
            if f.field == "q":
                queryset = queryset.filter(Q(id__icontains=f.value) | Q(flow_id__icontains=f.value)
                                           | Q(namespace__icontains=f.value))
            elif f.field == "namespace":
                queryset = queryset.filter(text_q("namespace", f))
            elif f.field == "flowId":
                queryset = queryset.filter(text_q("flow_id", f))
            elif f.field in ("id", "executionId"):
                queryset = queryset.filter(text_q("id", f))
            elif f.field == "state":
                values = [v.upper() for v in f.values]
                unknown = [v for v in values if v not in states.ALL_STATES]
                if unknown:
                    raise BadRequest(f"Invalid state {', '.join(unknown)}")
                queryset = (queryset.exclude(state__in=values) if f.op in ("NOT_IN", "NOT_EQUALS")
                            else queryset.filter(state__in=values))
            elif f.field == "startDate":
                queryset = queryset.filter(date_q("created", f))
            elif f.field == "endDate":
                f.op = "LESS_THAN_OR_EQUAL_TO" if f.op == "EQUALS" else f.op
                queryset = queryset.filter(date_q("created", f))
            elif f.field == "timeRange":
                from orchestrator.engine.timeutil import now, parse_duration

                try:
                    delta = parse_duration(f.value)
                except ValueError:
                    raise BadRequest(f"Failed to convert argument [timeRange] for value [{f.value}]") from None
                queryset = queryset.filter(created__gte=now() - abs(delta))
            elif f.field == "childFilter":
                queryset = queryset.filter(parent_id__isnull=f.value.upper() == "MAIN")
            elif f.field == "flowRevision":
                queryset = queryset.filter(flow_revision=int(f.value))
            elif f.field == "labels":
                label_filters.append(f)
        for f in label_filters:
            queryset = _filter_labels(queryset, f)
        return queryset


def _filter_labels(queryset, f):
    pairs = label_pairs(f)
    negate = f.op in ("NOT_EQUALS", "NOT_IN")
    if connection.vendor == "postgresql":
        q = Q()
        for key, value in pairs:
            q &= Q(labels__contains=[{"key": key, "value": value}])
        return queryset.exclude(q) if negate else queryset.filter(q)
    wanted = set(pairs)
    matching = [pk for pk, labels in queryset.values_list("id", "labels")
                if wanted <= {(str(l.get("key")), str(l.get("value"))) for l in labels or []}]
    return queryset.exclude(pk__in=matching) if negate else queryset.filter(pk__in=matching)


def _executions_json(rows: list[models.Execution]) -> list[dict[str, Any]]:
    from orchestrator.runtime import store

    return [store.execution_from_row(row, row.task_runs.all()).to_json() for row in rows]


# --- logs and metrics (spec §11.4) ---------------------------------------------------------------------

LEVELS = ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]


def _levels_from(min_level: str | None) -> list[str]:
    if not min_level:
        return LEVELS
    level = min_level.upper()
    level = "WARN" if level == "WARNING" else level
    if level not in LEVELS:
        raise BadRequest(f"Invalid level '{min_level}'")
    return LEVELS[:LEVELS.index(level) + 1]


class LogsView(ApiView):
    """``GET /logs/{executionId}`` (also ``/executions/{executionId}/logs``); ``DELETE`` removes them."""

    def get(self, request, execution_id):
        return self.list(request, execution_id)

    def list(self, request, execution_id):
        return Response([entry.to_json() for entry in self.entries(request, execution_id)])

    def delete(self, request, execution_id):
        self.entries(request, execution_id, check=False).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @staticmethod
    def entries(request, execution_id, check: bool = True):
        if check:
            _execution_or_404(execution_id)
        queryset = models.LogEntry.objects.filter(execution_id=execution_id,
                                                  level__in=_levels_from(request.query_params.get("minLevel")))
        if request.query_params.get("taskRunId"):
            queryset = queryset.filter(taskrun_id=request.query_params["taskRunId"])
        if request.query_params.get("taskId"):
            queryset = queryset.filter(task_id=request.query_params["taskId"])
        attempt = int_param(request, "attempt")
        if attempt is not None:
            queryset = queryset.filter(attempt_number=attempt)
        return queryset.order_by("timestamp", "id")


class LogsDownloadView(ApiView):
    """``GET /logs/{executionId}/download``: text, one ``<timestamp> <LEVEL> <message>`` line per entry."""

    def get(self, request, execution_id):
        from orchestrator.engine.timeutil import iso

        lines = [f"{iso(e.timestamp)} {e.level} {e.message}" for e in LogsView.entries(request, execution_id)]
        response = HttpResponse("\n".join(lines) + ("\n" if lines else ""), content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{execution_id}.log"'
        return response


class LogSearchView(ApiView):
    """``GET /logs/search``: paged log entries."""

    legacy = {"q": "CONTAINS", "namespace": "PREFIX", "flowId": "EQUALS", "triggerId": "EQUALS",
              "minLevel": "EQUALS", "startDate": "GREATER_THAN_OR_EQUAL_TO", "endDate": "LESS_THAN_OR_EQUAL_TO"}

    def get(self, request):
        queryset = models.LogEntry.objects.filter(namespace_q(request.user, "log.read"))
        for f in parse_filters(request, self.legacy):
            if f.field == "q":
                queryset = queryset.filter(message__icontains=f.value)
            elif f.field == "namespace":
                queryset = queryset.filter(text_q("namespace", f))
            elif f.field == "flowId":
                queryset = queryset.filter(text_q("flow_id", f))
            elif f.field == "triggerId":
                queryset = queryset.filter(text_q("trigger_id", f))
            elif f.field == "executionId":
                queryset = queryset.filter(text_q("execution_id", f))
            elif f.field in ("minLevel", "level"):
                queryset = queryset.filter(level__in=_levels_from(f.value))
            elif f.field == "startDate":
                queryset = queryset.filter(date_q("timestamp", f))
            elif f.field == "endDate":
                f.op = "LESS_THAN_OR_EQUAL_TO" if f.op == "EQUALS" else f.op
                queryset = queryset.filter(date_q("timestamp", f))
        return Response(page(request, queryset, lambda rows: [e.to_json() for e in rows],
                             {"timestamp": "timestamp", "level": "level"}, ["-timestamp", "-id"]))


class MetricsView(ApiView):
    """``GET /metrics/{executionId}?taskRunId=&taskId=``: paged metrics of an execution."""

    def get(self, request, execution_id):
        from orchestrator.engine.timeutil import iso

        queryset = models.MetricEntry.objects.filter(execution_id=execution_id)
        if request.query_params.get("taskRunId"):
            queryset = queryset.filter(taskrun_id=request.query_params["taskRunId"])
        if request.query_params.get("taskId"):
            queryset = queryset.filter(task_id=request.query_params["taskId"])

        def serialize(rows):
            return [{"namespace": m.namespace, "flowId": m.flow_id, "taskId": m.task_id, "executionId": m.execution_id,
                     "taskRunId": m.taskrun_id, "type": m.type, "name": m.name, "value": m.value,
                     "timestamp": iso(m.timestamp), "tags": m.tags, "tenantId": serializers.TENANT}
                    for m in rows]

        return Response(page(request, queryset, serialize, {"timestamp": "timestamp", "name": "name"},
                             ["timestamp", "id"]))


# --- webhooks (spec §7.5) ------------------------------------------------------------------------------

def webhook_rate_limited(namespace: str, flow_id: str, key: str) -> int | None:
    """Seconds to wait when the calls to this webhook key are over ``WEBHOOK_RATE_LIMIT`` in the window.

    A fixed-window counter in Django's cache (shared by every web process when the cache is Redis).
    Unknown keys are counted the same way, so the limit does not tell whether a key exists.
    """
    import hashlib
    import time

    from django.core.cache import cache

    limits = getattr(settings, "CELESTRA_LIMITS", {})
    limit = int(limits.get("WEBHOOK_RATE_LIMIT") or 0)
    if limit <= 0:
        return None
    window = max(int(limits.get("WEBHOOK_RATE_WINDOW") or 60), 1)
    now = time.time()
    digest = hashlib.sha256(f"{namespace}\x00{flow_id}\x00{key}".encode()).hexdigest()[:32]
    counter = f"celestra:webhook-rate:{digest}:{int(now // window)}"
    if cache.add(counter, 1, timeout=window + 1):
        count = 1
    else:
        try:
            count = cache.incr(counter)
        except ValueError:  # expired between add and incr
            cache.add(counter, 1, timeout=window + 1)
            count = 1
    if count <= limit:
        return None
    return max(1, int(window - now % window + 0.999))


class WebhookView(ApiView):
    """``GET|POST|PUT /executions/webhook/{namespace}/{flowId}/{key}[/{path}]``; no authentication."""

    authentication_classes: list = []
    permission_classes: list = []
    parser_classes: list = []

    def get(self, request, namespace, flow_id, key, path=None):
        return self._call(request, namespace, flow_id, key)

    def post(self, request, namespace, flow_id, key, path=None):
        return self._call(request, namespace, flow_id, key)

    def put(self, request, namespace, flow_id, key, path=None):
        return self._call(request, namespace, flow_id, key)

    def _call(self, request, namespace, flow_id, key):
        limited = webhook_rate_limited(namespace, flow_id, key)
        if limited is not None:
            response = Response({"message": "Too Many Requests: the webhook's rate limit is reached",
                                 "_links": {"self": {"href": request.get_full_path(), "templated": False}}},
                                status=status.HTTP_429_TOO_MANY_REQUESTS)
            response["Retry-After"] = str(limited)
            return response
        raw = request.body
        body = raw.decode("utf-8", errors="replace") if raw else None
        headers: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        parameters = {name: request.query_params.getlist(name) for name in request.query_params}
        call = services_admin.WebhookCall(body=body, headers=headers, parameters=parameters)
        execution, trigger = services_admin.trigger_webhook(namespace, flow_id, key, call)
        if execution is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        props = services_admin.trigger_props(trigger)
        wait = bool(props.get("wait"))
        data = execution_response(execution.id, wait=wait, initial=execution.to_json())
        if wait and props.get("returnOutputs"):
            return Response(data.get("outputs") or {})
        return Response(serializers.webhook_json(data, with_outputs=wait))
