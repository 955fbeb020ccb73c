"""Triggers in the console: one page per trigger with its next fire times (in the trigger's time
zone), last fire, enable/disable, unlock and backfills, through the same schedule functions as
the API (:mod:`orchestrator.runtime.schedules`).

django-celery-beat's models are internal (the timer sweep is one of its periodic tasks): they are
taken off the admin so that an operator cannot edit or delete them by mistake.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from orchestrator.engine.errors import CelestraError

from .. import models
from . import console
from .permissions import allowed, console_can, require, visible

#: how many next fire times the page lists
NEXT_DATES = 10


def _trigger_of(row: models.TriggerState) -> Any:
    from orchestrator.runtime.flows import get_flow

    flow = models.Flow.objects.filter(namespace=row.namespace, flow_id=row.flow_id, deleted=False).first()
    if flow is None:
        return None, None
    try:
        parsed = get_flow(row.namespace, row.flow_id, flow.revision)
    except CelestraError:
        return None, None
    return parsed, parsed.find_trigger(row.trigger_id)


def next_fire_times(trigger: Any, count: int = NEXT_DATES, after: datetime | None = None) -> list[datetime]:
    """The next ``count`` dates of a Schedule or ScheduleOnDates trigger, in its time zone."""
    from orchestrator.engine.timeutil import now
    from orchestrator.runtime.schedules import SCHEDULE_TYPES, next_date

    if trigger is None or trigger.type not in SCHEDULE_TYPES:
        return []
    out: list[datetime] = []
    moment = after or now()
    while len(out) < count:
        found = next_date(trigger, moment)
        if found is None:
            break
        out.append(found)
        moment = found
    return out


def backfill_progress(backfill: dict[str, Any] | None) -> int | None:
    """Percent of the backfill's span already fired (its ``currentDate`` between start and end)."""
    from orchestrator.engine.timeutil import parse_iso

    if not backfill:
        return None
    try:
        start, end = parse_iso(backfill["start"]), parse_iso(backfill["end"])
        current = parse_iso(backfill.get("currentDate") or backfill["start"])
    except (KeyError, TypeError, ValueError):
        return None
    span = (end - start).total_seconds()
    if span <= 0:
        return 100
    return max(0, min(100, round((current - start).total_seconds() / span * 100)))


class TriggerStateAdmin(admin.ModelAdmin):
    list_display = ["trigger_id", "flow", "type_name", "next_date", "last_date", "enabled", "locked_by",
                    "backfill_text"]
    list_display_links = ["trigger_id"]
    list_filter = ["namespace", "disabled"]
    search_fields = ["trigger_id", "flow_id", "namespace"]
    change_form_template = "admin/console/trigger.html"

    def get_queryset(self, request):
        # the trigger contexts only; MultipleCondition windows are internal rows of the same table
        return visible(request, super().get_queryset(request).filter(condition_id=""))

    @admin.display(description="Flow", ordering="flow_id")
    def flow(self, obj: models.TriggerState) -> str:
        return f"{obj.namespace}.{obj.flow_id}"

    @admin.display(description="Type", ordering="type")
    def type_name(self, obj: models.TriggerState) -> str:
        return (obj.type or "").rsplit(".", 1)[-1]

    @admin.display(description="Next date", ordering="next_execution_date")
    def next_date(self, obj: models.TriggerState) -> str:
        return console.exact(obj.next_execution_date)

    @admin.display(description="Last date", ordering="date")
    def last_date(self, obj: models.TriggerState) -> str:
        return console.exact(obj.date)

    @admin.display(description="Enabled", boolean=True, ordering="disabled")
    def enabled(self, obj: models.TriggerState) -> bool:
        return not obj.disabled

    @admin.display(description="Locked by")
    def locked_by(self, obj: models.TriggerState) -> str:
        if not obj.execution_id:
            return ""
        return format_html('<a href="{}">{}</a>', reverse("admin:flows_app_execution_change", args=[obj.execution_id]),
                           obj.execution_id)

    @admin.display(description="Backfill")
    def backfill_text(self, obj: models.TriggerState) -> str:
        progress = backfill_progress(obj.backfill)
        if progress is None:
            return ""
        return f"{progress}%{' (paused)' if obj.backfill.get('paused') else ''}"

    def has_module_permission(self, request) -> bool:
        return console_can(request.user, "view")

    def has_view_permission(self, request, obj=None) -> bool:
        return console_can(request.user, "view", obj.namespace if obj else None)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # changed through the page's actions only

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [path("<int:pk>/action/<str:action>/", wrap(self.action_view), name="flows_app_triggerstate_action"),
                *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        row = models.TriggerState.objects.filter(pk=object_id, condition_id="").first()
        if row is None:
            raise Http404("Unable to find that trigger")
        require(request, "view", row.namespace)
        from orchestrator.runtime.schedules import format_date

        flow, trigger = _trigger_of(row)
        zone = None
        dates: list[datetime] = []
        error = None
        if trigger is not None:
            from orchestrator.runtime.schedules import _zone

            zone = str(_zone(trigger))
            try:
                dates = next_fire_times(trigger)
            except CelestraError as exc:
                error = str(exc)
        flow_row = models.Flow.objects.filter(namespace=row.namespace, flow_id=row.flow_id).first()
        # the executions this trigger created (scanned in Python: JSON lookups differ by database)
        fired = [e for e in models.Execution.objects.filter(
            namespace=row.namespace, flow_id=row.flow_id, deleted=False).order_by("-created")
            .values("id", "state", "created", "trigger")[:300]
            if (e["trigger"] or {}).get("id") == row.trigger_id][:20]
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": f"Trigger {row.trigger_id}",
            "row": row, "trigger": trigger, "zone": zone, "dates": [format_date(d) for d in dates], "error": error,
            "last_date": format_date(row.date), "next_date": format_date(row.next_execution_date),
            "definition": json.dumps({k: v for k, v in (trigger.props if trigger else {}).items() if v is not None},
                                     indent=2, default=str),
            "progress": backfill_progress(row.backfill), "can": allowed(request.user, row.namespace),
            "inputs": [f for f in console.input_fields(flow.inputs if flow is not None else []) if f.widget != "file"],
            "flow_row": flow_row, "fired": fired,
            "is_schedule": row.type.endswith("trigger.Schedule"),
        }
        return TemplateResponse(request, self.change_form_template, context)

    def action_view(self, request, pk: int, action: str):
        from orchestrator.runtime import schedules

        if request.method != "POST":
            return JsonResponse({"error": "Actions are POSTs"}, status=405)
        row = models.TriggerState.objects.filter(pk=pk, condition_id="").first()
        if row is None:
            raise Http404("Unable to find that trigger")
        require(request, "backfill" if action.startswith("backfill") else "trigger_edit", row.namespace)
        page = reverse("admin:flows_app_triggerstate_change", args=[row.pk])
        try:
            if action in ("enable", "disable"):
                schedules.set_trigger_disabled(row.namespace, row.flow_id, row.trigger_id, action == "disable")
                message = f"Trigger {action}d."
            elif action == "unlock":
                schedules.unlock(row.namespace, row.flow_id, row.trigger_id)
                message = "Trigger unlocked."
            elif action == "backfill":
                flow, _ = _trigger_of(row)
                inputs = console.submitted_inputs(request, flow.inputs if flow is not None else [])
                labels = [{"key": k.strip(), "value": v.strip()} for k, v in
                          (line.split("=", 1) for line in (request.POST.get("labels") or "").splitlines()
                           if "=" in line)]
                start = (request.POST.get("start") or "").strip()
                end = (request.POST.get("end") or "").strip()
                with transaction.atomic():
                    locked = schedules.get_state(row.namespace, row.flow_id, row.trigger_id, lock=True)
                    schedules.start_backfill(locked, {"start": _with_zone(start, "start"),
                                                      "end": _with_zone(end, "end") if end else None,
                                                      "inputs": inputs, "labels": labels})
                message = "Backfill started."
            elif action in ("backfill-pause", "backfill-resume", "backfill-delete"):
                with transaction.atomic():
                    locked = schedules.get_state(row.namespace, row.flow_id, row.trigger_id, lock=True)
                    if action == "backfill-delete":
                        schedules.delete_backfill(locked)
                    else:
                        schedules.set_backfill_paused(locked, action == "backfill-pause")
                message = {"backfill-pause": "Backfill paused.", "backfill-resume": "Backfill resumed.",
                           "backfill-delete": "Backfill deleted."}[action]
            else:
                raise Http404(f"Unknown action '{action}'")
        except CelestraError as exc:
            self.message_user(request, f"{action}: {exc}", messages.ERROR)
        else:
            self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(page)


def _with_zone(text: str, name: str) -> str:
    """A date from an ``<input type=datetime-local>`` (no offset) is taken as UTC."""
    if not text:
        raise CelestraError(f"backfill.{name}: must not be null")
    if len(text) == 16:  # YYYY-MM-DDTHH:MM
        text += ":00"
    if not (text.endswith("Z") or "+" in text[10:] or text[10:].count("-") > 0):
        text += "Z"
    return text


def hide_internal_beat_models(site: Any) -> None:
    """Take django-celery-beat's models off the admin: its periodic tasks are Celestra's internals."""
    try:
        from django_celery_beat import models as beat
    except ImportError:
        return
    for model in (beat.PeriodicTask, beat.IntervalSchedule, beat.CrontabSchedule, beat.SolarSchedule,
                  beat.ClockedSchedule):
        if site.is_registered(model):
            site.unregister(model)
