"""The execution page and its actions.

The page is server-rendered; a fragment of it (state, "why isn't it running?", the task run tree
and timeline, outputs) is fetched again every second until the execution is terminated, and logs
are appended as they arrive (``logs.json?after=<id>``). Actions are POSTs to
``<id>/action/<name>/`` that call the same services as the REST API (:mod:`flows_app.services_admin`),
each one checked by :func:`~flows_app.admin.permissions.require` first.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Callable

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from orchestrator.engine import states
from orchestrator.engine.errors import CelestraError

from .. import models, services_admin
from . import console
from .permissions import allowed, console_can, require, visible

log = logging.getLogger(__name__)

LEVELS = ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
#: log lines sent per poll; the page asks again for the rest
LOG_PAGE = 1000


def _flow_of(row: models.Execution) -> Any:
    from orchestrator.runtime.flows import get_flow

    try:
        return get_flow(row.namespace, row.flow_id, row.flow_revision)
    except CelestraError:
        return None


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, ensure_ascii=False) if value not in (None, {}, []) else ""


def _engine_execution(row: models.Execution) -> Any:
    from orchestrator.runtime import store

    return store.execution_from_row(row, row.task_runs.order_by("seq"))


def evaluate(row: models.Execution, expression: str, taskrun_id: str | None = None) -> Any:
    """Render ``expression`` with the execution's context, as a task of it would see it (with the
    task run's own variables when ``taskrun_id`` is given): Kestra's debug console."""
    from orchestrator.engine import expressions
    from orchestrator.engine.context import RunIndex, base_context, taskrun_context
    from orchestrator.runtime.environment import extras

    flow = _flow_of(row)
    if flow is None:
        raise CelestraError(f"The flow revision {row.flow_revision} of this execution cannot be loaded")
    execution = _engine_execution(row)
    index = RunIndex(execution, flow.task_types())
    from orchestrator.runtime.services import Services

    class NoSecrets(Services):
        # the console's secrets are write-only: the evaluator must not be a way to read them
        def secret(self, key: str, namespace: str | None = None, subkey: str | None = None) -> Any:
            raise CelestraError("The expression evaluator does not reveal secrets")

    base = base_context(flow, execution, {**extras(execution.namespace),
                                          "__services__": NoSecrets(execution.namespace, execution.id)})
    if taskrun_id:
        run = index.by_id.get(taskrun_id)
        if run is None:
            raise CelestraError(f"Unknown task run '{taskrun_id}'")
        context = taskrun_context(base, index, run, flow.task_types().get(run.task_id, ""))
    else:
        context = {**base, "outputs": index.outputs_map(), "tasks": index.tasks_map()}
    return expressions.render(expression, context)


def _labels_from_text(text: str) -> list[dict[str, str]]:
    labels = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if "=" not in line and ":" not in line:
            raise CelestraError(f"labels, line {number}: expected key=value, got '{line}'")
        sep = "=" if "=" in line else ":"
        key, value = line.split(sep, 1)
        if not key.strip():
            raise CelestraError(f"labels, line {number}: the key is empty")
        labels.append({"key": key.strip(), "value": value.strip()})
    return labels


class ExecutionAdmin(admin.ModelAdmin):
    # few, narrow columns: the list stays readable at 1,000 px with the filters beside it
    list_display = ["id_link", "flow", "state_badge", "created_exact", "duration"]
    list_display_links = None
    list_filter = ["state", "namespace", "deleted"]
    search_fields = ["id", "flow_id", "namespace"]
    date_hierarchy = "created"
    list_per_page = 50
    actions = ["bulk_kill", "bulk_restart", "bulk_resume", "bulk_force_run", "bulk_delete"]
    change_form_template = "admin/console/execution.html"

    class Media:
        css = {"all": ["console/console.css"]}
        js = ["console/console.js"]

    # --- list ---------------------------------------------------------------------------------------

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        # soft-deleted executions are out of the default list (the API hides them too); the
        # "deleted" filter shows them on request
        if "deleted__exact" not in request.GET:
            queryset = queryset.filter(deleted=False)
        return visible(request, queryset)

    @admin.display(description="Execution", ordering="id")
    def id_link(self, obj: models.Execution) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:flows_app_execution_change", args=[obj.pk]), obj.pk)

    @admin.display(description="Flow", ordering="flow_id")
    def flow(self, obj: models.Execution) -> str:
        labels = self.labels_text(obj)
        return format_html('{}.{}<br><small class="muted">rev {}{}{}</small>', obj.namespace, obj.flow_id,
                           obj.flow_revision, " · " if labels else "", labels)

    @admin.display(description="State", ordering="state")
    def state_badge(self, obj: models.Execution) -> str:
        return format_html('<span class="state {}">{}</span>', console.state_class(obj.state), obj.state)

    @admin.display(description="Created (UTC)", ordering="created")
    def created_exact(self, obj: models.Execution) -> str:
        return console.exact(obj.created).replace("T", " ").rstrip("Z")

    @admin.display(description="Duration")
    def duration(self, obj: models.Execution) -> str:
        from orchestrator.engine.timeutil import format_duration, now

        start = obj.start_date or obj.created
        return format_duration((obj.end_date or now()) - start) if start else ""

    @admin.display(description="Labels")
    def labels_text(self, obj: models.Execution) -> str:
        return ", ".join(f"{l.get('key')}:{l.get('value')}" for l in obj.labels or []
                         if not str(l.get("key", "")).startswith("system."))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # no model form: the page and its actions are the console's

    def has_view_permission(self, request, obj=None) -> bool:
        return console_can(request.user, "view", obj.namespace if obj else None)

    def has_module_permission(self, request) -> bool:
        return console_can(request.user, "view")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # Django's delete is a hard delete; the console's soft-deletes

    def get_actions(self, request):
        actions = super().get_actions(request)
        names = {"bulk_kill": "kill", "bulk_restart": "restart", "bulk_resume": "resume",
                 "bulk_force_run": "force_run", "bulk_delete": "delete"}
        return {k: v for k, v in actions.items() if k not in names or console_can(request.user, names[k])}

    def _bulk(self, request, queryset, action: str, call: Callable[[str], Any], verb: str) -> None:
        done, failed = 0, []
        for row in queryset:
            try:
                require(request, action, row.namespace)
                call(row.pk)
                done += 1
            except (CelestraError, PermissionDenied) as exc:
                failed.append(f"{row.pk}: {exc}")
        if done:
            self.message_user(request, f"{done} execution(s) {verb}.", messages.SUCCESS)
        for message in failed:
            self.message_user(request, message, messages.ERROR)

    @admin.action(description="Kill selected executions")
    def bulk_kill(self, request, queryset) -> None:
        self._bulk(request, queryset, "kill", services_admin.kill_execution, "killed")

    @admin.action(description="Restart selected executions")
    def bulk_restart(self, request, queryset) -> None:
        self._bulk(request, queryset, "restart", services_admin.restart_execution, "restarted")

    @admin.action(description="Resume selected paused executions (no inputs)")
    def bulk_resume(self, request, queryset) -> None:
        self._bulk(request, queryset, "resume", services_admin.resume_execution, "resumed")

    @admin.action(description="Force run selected executions")
    def bulk_force_run(self, request, queryset) -> None:
        self._bulk(request, queryset, "force_run", services_admin.force_run, "forced to run")

    @admin.action(description="Delete selected executions (soft, with their logs and metrics)")
    def bulk_delete(self, request, queryset) -> None:
        self._bulk(request, queryset, "delete", services_admin.delete_execution, "deleted")

    # --- the page -----------------------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<str:execution_id>/fragment/", wrap(self.fragment_view), name="flows_app_execution_fragment"),
            path("<str:execution_id>/logs.json", wrap(self.logs_view), name="flows_app_execution_logs"),
            path("<str:execution_id>/eval/", wrap(self.eval_view), name="flows_app_execution_eval"),
            path("<str:execution_id>/action/<str:action>/", wrap(self.action_view),
                 name="flows_app_execution_action"),
            *super().get_urls(),
        ]

    def _row(self, request, execution_id: str) -> models.Execution:
        row = models.Execution.objects.filter(pk=execution_id).first()
        if row is None:
            raise Http404(f"Unable to find execution '{execution_id}'")
        require(request, "view", row.namespace)
        return row

    def _live_context(self, request, row: models.Execution) -> dict[str, Any]:
        flow = _flow_of(row)
        type_of = flow.task_types() if flow is not None else {}
        rows, total = console.run_rows(row, type_of, expand=request.GET.getlist("expand"))
        if row.state not in states.TERMINATED:
            console.mark_running(rows)
        start = row.start_date or row.created
        from orchestrator.engine.timeutil import format_duration, now

        return {
            "execution": row, "rows": rows, "total_runs": total, "flow_obj": flow,
            "terminated": row.state in states.TERMINATED,
            "why": console.why_not_running(row, flow, rows),
            "duration": format_duration((row.end_date or now()) - start) if start else "",
            "histories": [(h["state"], h["date"]) for h in (row.state_json or {}).get("histories", [])],
            "outputs_json": _pretty(row.outputs),
            "state_css": console.state_class(row.state),
            "created_exact": console.exact(row.created),
        }

    def change_view(self, request, object_id, form_url="", extra_context=None):
        row = self._row(request, object_id)
        context = {**self.admin_site.each_context(request), **self._live_context(request, row)}
        flow = context["flow_obj"]
        metrics = list(models.MetricEntry.objects.filter(execution_id=row.pk).order_by("timestamp", "id")[:500])
        resume_fields = []
        if row.state == states.PAUSED and flow is not None:
            from orchestrator.engine import operations

            resume_fields = console.input_fields(operations.resume_definitions(flow, _engine_execution(row)))
        revisions = list(models.FlowRevision.objects.filter(flow__namespace=row.namespace, flow__flow_id=row.flow_id)
                         .order_by("-revision").values_list("revision", flat=True)[:50])
        flow_row = models.Flow.objects.filter(namespace=row.namespace, flow_id=row.flow_id).first()
        context.update({
            "title": f"Execution {row.pk}",
            "flow_label": f"{row.namespace}.{row.flow_id}",
            "opts": self.model._meta,
            "can": allowed(request.user, row.namespace),
            "metrics": metrics,
            "inputs_json": _pretty(row.inputs),
            "variables_json": _pretty(row.variables),
            "trigger_json": _pretty(row.trigger),
            "labels_text": "\n".join(f"{l.get('key')}={l.get('value')}" for l in row.labels or []
                                     if not str(l.get("key", "")).startswith("system.")),
            "resume_fields": resume_fields,
            "revisions": revisions,
            "flow_row": flow_row,
            "task_ids": sorted({r.task_id for r in context["rows"] if r.task_id}),
            "levels": LEVELS,
            "all_states": ["SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED"],
            "has_view_permission": True,
        })
        return TemplateResponse(request, self.change_form_template, context)

    def fragment_view(self, request, execution_id: str):
        row = self._row(request, execution_id)
        response = TemplateResponse(request, "admin/console/_execution_live.html", self._live_context(request, row))
        response["X-Execution-State"] = row.state
        response["X-Execution-Terminated"] = "1" if row.state in states.TERMINATED else "0"
        return response

    def logs_view(self, request, execution_id: str):
        row = self._row(request, execution_id)
        queryset = models.LogEntry.objects.filter(execution_id=row.pk)
        level = (request.GET.get("level") or "").upper()
        if level:
            if level not in LEVELS:
                return JsonResponse({"error": f"level: unknown level '{level}'"}, status=400)
            queryset = queryset.filter(level__in=LEVELS[:LEVELS.index(level) + 1])
        if request.GET.get("task"):
            queryset = queryset.filter(task_id=request.GET["task"])
        if request.GET.get("taskrun"):
            queryset = queryset.filter(taskrun_id=request.GET["taskrun"])
        try:
            after = int(request.GET.get("after") or 0)
        except ValueError:
            return JsonResponse({"error": "after: an integer is expected"}, status=400)
        entries = list(queryset.filter(id__gt=after).order_by("id")[:LOG_PAGE]
                       .values("id", "timestamp", "level", "task_id", "taskrun_id", "attempt_number", "message"))
        return JsonResponse({
            "logs": [{"id": e["id"], "timestamp": console.exact(e["timestamp"]), "level": e["level"],
                      "taskId": e["task_id"], "taskRunId": e["taskrun_id"], "attempt": e["attempt_number"],
                      "message": e["message"]} for e in entries],
            "more": len(entries) == LOG_PAGE,
            "state": row.state, "terminated": row.state in states.TERMINATED,
        })

    def eval_view(self, request, execution_id: str):
        if request.method != "POST":
            return JsonResponse({"error": "POST an expression"}, status=405)
        row = self._row(request, execution_id)
        expression = request.POST.get("expression", "")
        try:
            value = evaluate(row, expression, request.POST.get("taskrun") or None)
        except Exception as exc:  # noqa: BLE001 - any expression error is the answer, not a 500
            return JsonResponse({"error": str(exc) or exc.__class__.__name__})
        return JsonResponse({"result": value if isinstance(value, str) else
                             json.dumps(value, indent=2, default=str, ensure_ascii=False)})

    # --- actions ------------------------------------------------------------------------------------

    def action_view(self, request, execution_id: str, action: str):
        if request.method != "POST":
            return JsonResponse({"error": "Actions are POSTs"}, status=405)
        row = models.Execution.objects.filter(pk=execution_id, deleted=False).first()
        if row is None:
            raise Http404(f"Unable to find execution '{execution_id}'")
        handler = ACTIONS.get(action)
        if handler is None:
            raise Http404(f"Unknown action '{action}'")
        permission, call = handler
        require(request, permission, row.namespace)
        page = reverse("admin:flows_app_execution_change", args=[row.pk])
        try:
            target, message = call(self, request, row)
        except CelestraError as exc:
            self.message_user(request, f"{action}: {exc}", messages.ERROR)
            return HttpResponseRedirect(page)
        if action in AUDITED:
            audit(row, request, AUDITED[action])
        self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(target or page)

    def _kill(self, request, row):
        services_admin.kill_execution(row.pk, cascade=request.POST.get("cascade", "true") != "false")
        return None, "Execution killed."

    def _restart(self, request, row):
        revision = _int(request.POST.get("revision"))
        restarted = services_admin.restart_execution(row.pk, revision=revision)
        target = reverse("admin:flows_app_execution_change", args=[restarted.id])
        return target, f"Execution restarted ({restarted.id})."

    def _replay(self, request, row):
        replayed = services_admin.replay_execution(row.pk, request.POST.get("taskrun") or None,
                                                   revision=_int(request.POST.get("revision")))
        return (reverse("admin:flows_app_execution_change", args=[replayed.id]),
                f"Replayed as a new execution {replayed.id}.")

    def _resume(self, request, row):
        from orchestrator.engine import operations

        flow = _flow_of(row)
        definitions = operations.resume_definitions(flow, _engine_execution(row)) if flow is not None else []
        services_admin.resume_execution(row.pk, console.submitted_inputs(request, definitions))
        return None, "Execution resumed."

    def _pause(self, request, row):
        services_admin.pause_execution(row.pk)
        return None, "Execution paused."

    def _set_state(self, request, row):
        taskrun, state = request.POST.get("taskrun"), (request.POST.get("state") or "").upper()
        if not taskrun or state not in states.ALL_STATES:
            raise CelestraError("A task run and a state are required")
        services_admin.mark_as(row.pk, taskrun, state)
        return None, f"Task run set to {state}."

    def _change_status(self, request, row):
        state = (request.POST.get("state") or "").upper()
        services_admin.change_status(row.pk, state)
        return None, f"Execution set to {state}."

    def _labels(self, request, row):
        services_admin.set_execution_labels(row.pk, _labels_from_text(request.POST.get("labels", "")))
        return None, "Labels saved."

    def _force_run(self, request, row):
        services_admin.force_run(row.pk)
        return None, "Execution forced to run."

    def _unqueue(self, request, row):
        services_admin.unqueue(row.pk, request.POST.get("state") or None)
        return None, "Execution taken out of the queue."

    def _delete(self, request, row):
        services_admin.delete_execution(row.pk)
        return reverse("admin:flows_app_execution_changelist"), f"Execution {row.pk} deleted."


#: actions written in the execution's logs with the user who did them (who paused it, who killed it)
AUDITED = {"kill": "Killed", "pause": "Paused", "resume": "Resumed", "restart": "Restarted",
           "set-state": "Task run state changed", "change-status": "State changed", "force-run": "Forced to run",
           "unqueue": "Taken out of the queue", "labels": "Labels set"}
AUDIT_THREAD = "console"


def audit(row: models.Execution, request: Any, what: str) -> None:
    from orchestrator.engine.timeutil import now

    models.LogEntry.objects.create(
        execution_id=row.pk, namespace=row.namespace, flow_id=row.flow_id, timestamp=now(), level="INFO",
        thread=AUDIT_THREAD, message=f"{what} from the console by {request.user.get_username()}")


def _int(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise CelestraError(f"revision: an integer is expected, got '{value}'") from None


#: action name → (permission, handler)
ACTIONS: dict[str, tuple[str, Callable[..., tuple[str | None, str]]]] = {
    "kill": ("kill", ExecutionAdmin._kill),
    "restart": ("restart", ExecutionAdmin._restart),
    "replay": ("replay", ExecutionAdmin._replay),
    "resume": ("resume", ExecutionAdmin._resume),
    "pause": ("pause", ExecutionAdmin._pause),
    "set-state": ("set_state", ExecutionAdmin._set_state),
    "change-status": ("change_status", ExecutionAdmin._change_status),
    "labels": ("set_labels", ExecutionAdmin._labels),
    "force-run": ("force_run", ExecutionAdmin._force_run),
    "unqueue": ("unqueue", ExecutionAdmin._unqueue),
    "delete": ("delete", ExecutionAdmin._delete),
}
