"""Admin for namespaces (their overview), flow revisions and labels, task runs, logs and metrics.

Flows are in :mod:`.flows`, executions in :mod:`.executions`, triggers in :mod:`.triggers`.
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.utils.html import format_html

from .. import models
from .permissions import ConsolePermissions


@admin.register(models.FlowRevision)
class FlowRevisionAdmin(ConsolePermissions, admin.ModelAdmin):
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

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.Namespace)
class NamespaceAdmin(ConsolePermissions, admin.ModelAdmin):
    """A namespace's overview: its flows, executions, KV entries, files and secrets."""

    edit_action = "flow_edit"

    list_display = ["name", "parent", "flow_count", "created"]
    search_fields = ["name"]
    readonly_fields = ["created"]
    change_form_template = "admin/console/namespace.html"

    @admin.display(description="Flows")
    def flow_count(self, obj) -> int:
        return models.Flow.objects.filter(namespace=obj.name, deleted=False).count()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        from secrets_app.models import Secret
        from storage_app.models import KVEntry, NamespaceFile

        from orchestrator.engine import states

        namespace = models.Namespace.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        extra = dict(extra_context or {})
        if namespace is not None:
            name = namespace.name
            executions = models.Execution.objects.filter(namespace=name, deleted=False)
            extra["overview"] = {
                "flows": list(models.Flow.objects.filter(namespace=name, deleted=False).order_by("flow_id")),
                "executions": executions.count(),
                "running": executions.exclude(state__in=states.TERMINATED).count(),
                "failed": executions.filter(state=states.FAILED).count(),
                "recent": list(executions.order_by("-created")[:10]),
                "kv": list(KVEntry.objects.filter(namespace=name).order_by("key")[:50]),
                "files": list(NamespaceFile.objects.filter(namespace=name).order_by("path")
                              .only("id", "path", "updated")[:100]),
                "secrets": list(Secret.objects.filter(namespace=name).order_by("key")
                                .values_list("key", flat=True)[:100]),
                "children": list(namespace.children.order_by("name")),
            }
        return super().change_view(request, object_id, form_url, extra)


@admin.register(models.FlowLabel)
class FlowLabelAdmin(ConsolePermissions, admin.ModelAdmin):
    list_display = ["flow", "key", "value"]
    list_filter = ["key"]
    search_fields = ["key", "value", "flow__flow_id"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(ConsolePermissions, admin.ModelAdmin):
    def has_add_permission(self, request, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the engine's records: removed with their execution, not one by one

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
