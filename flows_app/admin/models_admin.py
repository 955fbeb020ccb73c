"""Admin for namespaces, flows, executions, logs and metrics.

A flow is edited as its YAML source: the form validates it with the flow model (errors name the
path and the line) and saving goes through :func:`flows_app.services.deploy_flow`, so that the admin
creates revisions exactly like the API does. Executions are read-only.
"""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.utils.html import format_html

from orchestrator.engine.errors import CelestraError, InputValidationError

from .. import models, services

MONOSPACE = {"style": "font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; width: 95%;",
             "rows": 30, "spellcheck": "false"}


def _flow_errors(exc: Exception) -> list[str]:
    out = []
    for error in getattr(exc, "errors", None) or []:
        path = getattr(error, "path", None)
        line = getattr(error, "line", None)
        message = getattr(error, "message", None) or str(error)
        where = " ".join(p for p in (str(path) if path else "", f"(line {line})" if line else "") if p)
        out.append(f"{where}: {message}" if where else message)
    return out or [str(exc)]


class FlowForm(forms.ModelForm):
    source = forms.CharField(widget=forms.Textarea(attrs=MONOSPACE),
                             help_text="The flow in YAML; id and namespace are read from it.")

    class Meta:
        model = models.Flow
        fields = ["source"]

    def clean_source(self) -> str:
        from orchestrator.runtime.flows import parse

        source = self.cleaned_data["source"].replace("\r\n", "\n")
        try:
            parsed = parse(source)
        except CelestraError as exc:
            raise forms.ValidationError(_flow_errors(exc)) from None
        instance = self.instance
        if instance.pk and (parsed.namespace, parsed.id) != (instance.namespace, instance.flow_id):
            what = "namespace" if parsed.namespace != instance.namespace else "flow id"
            raise forms.ValidationError(f"Illegal {what} update")
        if not instance.pk and models.Flow.objects.filter(namespace=parsed.namespace, flow_id=parsed.id,
                                                          deleted=False).exists():
            raise forms.ValidationError(f"Flow id already exists: {parsed.namespace}.{parsed.id}")
        return source


class FlowRevisionInline(admin.TabularInline):
    model = models.FlowRevision
    fields = ["revision", "deleted", "created"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["-revision"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.Flow)
class FlowAdmin(admin.ModelAdmin):
    form = FlowForm
    list_display = ["flow_id", "namespace", "revision", "disabled", "deleted", "updated"]
    list_filter = ["deleted", "disabled", "namespace"]
    search_fields = ["flow_id", "namespace", "description"]
    readonly_fields = ["namespace", "flow_id", "revision", "description", "labels", "disabled", "deleted",
                       "created", "updated"]
    inlines = [FlowRevisionInline]
    actions = ["execute"]

    def get_fields(self, request, obj=None):
        return ["source"] if obj is None else ["source", *self.readonly_fields]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change) -> None:
        expect = (obj.namespace, obj.flow_id) if change else None
        try:
            deployed = services.deploy_flow(form.cleaned_data["source"], expect=expect)
        except CelestraError as exc:  # validated in the form already; a race is reported, not raised
            self.message_user(request, "; ".join(_flow_errors(exc)), messages.ERROR)
            return
        saved = deployed.flow
        obj.pk = saved.pk
        for field in saved._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        if not deployed.changed:
            self.message_user(request, "The source did not change: no new revision.", messages.INFO)

    def delete_model(self, request, obj) -> None:
        if not obj.deleted:
            services.delete_flow(obj.namespace, obj.flow_id)

    def delete_queryset(self, request, queryset) -> None:
        for flow in queryset.filter(deleted=False):
            services.delete_flow(flow.namespace, flow.flow_id)

    @admin.action(description="Execute (with default inputs)")
    def execute(self, request, queryset) -> None:
        for flow in queryset.filter(deleted=False):
            try:
                with transaction.atomic():
                    execution = services.create_execution(flow.namespace, flow.flow_id, {})
            except InputValidationError as exc:
                self.message_user(request, f"{flow}: {exc}", messages.ERROR)
            except CelestraError as exc:
                self.message_user(request, f"{flow}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{flow}: execution {execution.id} created.", messages.SUCCESS)


@admin.register(models.FlowRevision)
class FlowRevisionAdmin(admin.ModelAdmin):
    list_display = ["flow", "revision", "deleted", "created"]
    list_filter = ["deleted", "flow__namespace"]
    search_fields = ["flow__flow_id", "flow__namespace"]
    readonly_fields = ["flow", "revision", "deleted", "created", "source_code"]
    fields = readonly_fields

    @admin.display(description="Source")
    def source_code(self, obj) -> str:
        return format_html('<pre style="font-family: monospace; white-space: pre-wrap;">{}</pre>', obj.source)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.Namespace)
class NamespaceAdmin(admin.ModelAdmin):
    list_display = ["name", "parent", "created"]
    search_fields = ["name"]
    readonly_fields = ["created"]


@admin.register(models.FlowLabel)
class FlowLabelAdmin(admin.ModelAdmin):
    list_display = ["flow", "key", "value"]
    list_filter = ["key"]
    search_fields = ["key", "value", "flow__flow_id"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.TaskRun)
class TaskRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "execution", "task_id", "value", "state"]
    list_filter = ["state"]
    search_fields = ["id", "task_id", "execution__id"]
    list_select_related = ["execution"]


@admin.register(models.LogEntry)
class LogEntryAdmin(ReadOnlyAdmin):
    list_display = ["timestamp", "level", "namespace", "flow_id", "task_id", "execution_id", "short_message"]
    list_filter = ["level", "namespace"]
    search_fields = ["message", "execution_id", "flow_id", "task_id"]
    date_hierarchy = "timestamp"

    @admin.display(description="Message")
    def short_message(self, obj) -> str:
        return obj.message if len(obj.message) <= 120 else obj.message[:117] + "..."


@admin.register(models.MetricEntry)
class MetricEntryAdmin(ReadOnlyAdmin):
    list_display = ["timestamp", "namespace", "flow_id", "task_id", "type", "name", "value"]
    list_filter = ["type", "namespace"]
    search_fields = ["name", "execution_id", "flow_id", "task_id"]
