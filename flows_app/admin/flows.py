"""Flows in the console: the YAML editor (validated as you type), a topology of the tasks, the
Execute form generated from the flow's inputs, revisions with a side-by-side diff and restore.

Saving goes through :func:`flows_app.services.deploy_flow`, as the API does, so the console
creates revisions exactly like the API.
"""
from __future__ import annotations

import difflib
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from orchestrator.engine.errors import CelestraError, InputValidationError

from .. import models, services
from . import console
from .permissions import allowed, console_can, require, visible


def flow_errors(exc: Exception) -> list[dict[str, Any]]:
    """``[{line, path, message}]`` of a flow that does not parse or validate."""
    out = []
    for error in getattr(exc, "errors", None) or []:
        out.append({"line": getattr(error, "line", None), "path": str(getattr(error, "path", "") or ""),
                    "message": str(getattr(error, "message", None) or error)})
    return out or [{"line": getattr(exc, "line", None), "path": "", "message": str(exc)}]


def _error_text(error: dict[str, Any]) -> str:
    where = " ".join(p for p in (error["path"], f"(line {error['line']})" if error["line"] else "") if p)
    return f"{where}: {error['message']}" if where else error["message"]


class FlowForm(forms.ModelForm):
    source = forms.CharField(widget=forms.Textarea(attrs={"rows": 30, "spellcheck": "false", "class": "flow-source"}),
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
            raise forms.ValidationError([_error_text(e) for e in flow_errors(exc)]) from None
        instance = self.instance
        if instance.pk and (parsed.namespace, parsed.id) != (instance.namespace, instance.flow_id):
            what = "namespace" if parsed.namespace != instance.namespace else "flow id"
            raise forms.ValidationError(f"Illegal {what} update")
        if not instance.pk and models.Flow.objects.filter(namespace=parsed.namespace, flow_id=parsed.id,
                                                          deleted=False).exists():
            raise forms.ValidationError(f"Flow id already exists: {parsed.namespace}.{parsed.id}")
        return source


def topology(flow: Any) -> list[dict[str, Any]]:
    """The flow's tasks as nested nodes ``{id, type, flowable, children: [{label, nodes}]}``."""
    def node(task: Any) -> dict[str, Any]:
        groups = []
        for name, shape in task.plugin.task_fields.items():
            value = task.props.get(name)
            if not value:
                continue
            if shape == "map":
                groups += [{"label": f"{name}: {key}", "nodes": [node(t) for t in branch]}
                           for key, branch in value.items() if branch]
            elif shape == "dag":
                groups.append({"label": name, "nodes": [
                    {**node(entry["task"]), "depends": list(entry.get("dependsOn") or [])} for entry in value]})
            elif shape == "single":
                groups.append({"label": name, "nodes": [node(value)]})
            else:
                groups.append({"label": name, "nodes": [node(t) for t in value]})
        if task.errors:
            groups.append({"label": "errors", "nodes": [node(t) for t in task.errors]})
        if task.finally_:
            groups.append({"label": "finally", "nodes": [node(t) for t in task.finally_]})
        return {"id": task.id, "type": task.type.rsplit(".", 1)[-1], "full_type": task.type,
                "flowable": task.is_flowable, "children": groups, "depends": []}

    sections = [("tasks", flow.tasks), ("errors", flow.errors), ("finally", flow.finally_),
                ("afterExecution", flow.after_execution)]
    return [{"label": label, "nodes": [node(t) for t in tasks]} for label, tasks in sections if tasks]


def side_by_side(old: str, new: str, old_label: str, new_label: str) -> str:
    return difflib.HtmlDiff(wrapcolumn=70).make_table(old.splitlines(), new.splitlines(), old_label, new_label,
                                                      context=False)


class FlowRevisionInline(admin.TabularInline):
    model = models.FlowRevision
    fields = ["revision", "deleted", "created"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-revision"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class FlowAdmin(admin.ModelAdmin):
    form = FlowForm
    list_display = ["flow_id", "namespace", "revision", "disabled", "updated_exact", "execute_link"]
    list_filter = ["deleted", "disabled", "namespace"]
    search_fields = ["flow_id", "namespace", "description"]
    readonly_fields = ["namespace", "flow_id", "revision", "description", "labels", "disabled", "deleted",
                       "created", "updated"]
    actions = ["execute"]
    change_form_template = "admin/console/flow_change.html"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if "deleted__exact" not in request.GET:
            queryset = queryset.filter(deleted=False)  # deleted flows on request only
        return visible(request, queryset)

    @admin.display(description="Updated (UTC)", ordering="updated")
    def updated_exact(self, obj: models.Flow) -> str:
        return console.exact(obj.updated)

    @admin.display(description="")
    def execute_link(self, obj: models.Flow) -> str:
        return format_html('<a class="button" href="{}">Execute</a>',
                           reverse("admin:flows_app_flow_execute", args=[obj.pk]))

    def get_list_display(self, request):
        shown = list(super().get_list_display(request))
        return shown if console_can(request.user, "execute") else [f for f in shown if f != "execute_link"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not console_can(request.user, "execute"):
            actions.pop("execute", None)
        return actions

    def has_module_permission(self, request) -> bool:
        return console_can(request.user, "view")

    def has_view_permission(self, request, obj=None) -> bool:
        return console_can(request.user, "view", obj.namespace if obj else None)

    def get_fields(self, request, obj=None):
        return ["source"] if obj is None else ["source", "revision", "disabled", "updated"]

    def get_readonly_fields(self, request, obj=None):
        return ["revision", "disabled", "updated"] if obj is not None else []

    def has_change_permission(self, request, obj=None) -> bool:
        return console_can(request.user, "flow_edit", obj.namespace if obj else None)

    def has_add_permission(self, request) -> bool:
        return console_can(request.user, "flow_edit")

    def has_delete_permission(self, request, obj=None) -> bool:
        return console_can(request.user, "flow_edit", obj.namespace if obj else None)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.base_fields["source"].widget.attrs["data-validate"] = reverse("admin:flows_app_flow_validate")
        return form

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("validate/", wrap(self.validate_view), name="flows_app_flow_validate"),
            path("<int:pk>/execute/", wrap(self.execute_view), name="flows_app_flow_execute"),
            path("<int:pk>/revisions/", wrap(self.revisions_view), name="flows_app_flow_revisions"),
            path("<int:pk>/restore/<int:revision>/", wrap(self.restore_view), name="flows_app_flow_restore"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        flow = models.Flow.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        if flow is not None:
            from orchestrator.runtime.flows import get_flow

            try:
                extra["topology"] = topology(get_flow(flow.namespace, flow.flow_id, flow.revision))
            except CelestraError:
                extra["topology"] = []
            extra["revisions"] = list(flow.revisions.order_by("-revision").values("revision", "created", "deleted"))
            extra["can"] = allowed(request.user, flow.namespace)
            extra["recent"] = list(models.Execution.objects.filter(
                namespace=flow.namespace, flow_id=flow.flow_id, deleted=False).order_by("-created")
                .values("id", "state", "created")[:10])
        return super().change_view(request, object_id, form_url, extra)

    def save_model(self, request, obj, form, change) -> None:
        expect = (obj.namespace, obj.flow_id) if change else None
        try:
            deployed = services.deploy_flow(form.cleaned_data["source"], expect=expect)
        except CelestraError as exc:  # validated in the form already; a race is reported, not raised
            self.message_user(request, "; ".join(_error_text(e) for e in flow_errors(exc)), messages.ERROR)
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

    @admin.action(description="Execute selected flows (default inputs)")
    def execute(self, request, queryset) -> None:
        for flow in queryset.filter(deleted=False):
            try:
                require(request, "execute", flow.namespace)
                with transaction.atomic():
                    execution = services.create_execution(flow.namespace, flow.flow_id, {})
            except Exception as exc:  # noqa: BLE001 - each flow reports its own error, the others go on
                self.message_user(request, f"{flow}: {exc}", messages.ERROR)
            else:
                self.message_user(request, format_html('{}: execution <a href="{}">{}</a> created.', flow,
                                                       reverse("admin:flows_app_execution_change",
                                                               args=[execution.id]), execution.id),
                                  messages.SUCCESS)

    # --- views --------------------------------------------------------------------------------------

    def validate_view(self, request):
        """The source of the editor checked as the validate API checks it, errors with their lines."""
        from orchestrator.runtime.flows import parse

        if request.method != "POST":
            return JsonResponse({"error": "POST the YAML source"}, status=405)
        require(request, "view")
        source = request.body.decode("utf-8", errors="replace").replace("\r\n", "\n")
        try:
            parsed = parse(source)
        except CelestraError as exc:
            return JsonResponse({"valid": False, "errors": flow_errors(exc)})
        return JsonResponse({"valid": True, "errors": [],
                             "warnings": [str(w) for w in getattr(parsed, "warnings", None) or []]})

    def _flow(self, request, pk: int, action: str) -> models.Flow:
        flow = models.Flow.objects.filter(pk=pk, deleted=False).first()
        if flow is None:
            raise Http404(f"Unable to find flow {pk}")
        require(request, action, flow.namespace)
        return flow

    def execute_view(self, request, pk: int):
        """The Execute form: one field per typed input; the engine's messages by field on errors."""
        from orchestrator.runtime.flows import get_flow

        flow = self._flow(request, pk, "execute")
        parsed = get_flow(flow.namespace, flow.flow_id, flow.revision)
        errors: dict[str, str] = {}
        general: list[str] = []
        submitted: dict[str, Any] = {}
        if request.method == "POST":
            submitted = console.submitted_inputs(request, parsed.inputs)
            labels = []
            for line in (request.POST.get("labels") or "").splitlines():
                if "=" in line:
                    key, value = line.split("=", 1)
                    labels.append((key.strip(), value.strip()))
            try:
                execution = services.create_execution(flow.namespace, flow.flow_id, submitted, labels=labels or None)
            except InputValidationError as exc:
                errors = console.input_errors(exc)
                general = [str(exc)] if not errors else []
            except CelestraError as exc:
                general = [str(exc)]
            else:
                self.message_user(request, f"Execution {execution.id} created.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:flows_app_execution_change", args=[execution.id]))
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "flow": flow,
            "title": f"Execute {flow}", "fields": console.input_fields(parsed.inputs, errors, submitted),
            "errors": general, "labels": request.POST.get("labels", ""),
        }
        return TemplateResponse(request, "admin/console/flow_execute.html", context)

    def revisions_view(self, request, pk: int):
        flow = models.Flow.objects.filter(pk=pk).first()
        if flow is None:
            raise Http404(f"Unable to find flow {pk}")
        require(request, "view", flow.namespace)
        revisions = list(flow.revisions.order_by("-revision"))
        by_number = {r.revision: r for r in revisions}

        def pick(name: str, default: int) -> models.FlowRevision | None:
            try:
                return by_number.get(int(request.GET.get(name) or default))
            except ValueError:
                return None

        right = pick("right", flow.revision)
        left = pick("left", (right.revision - 1) if right else flow.revision)
        diff = side_by_side(left.source, right.source, f"revision {left.revision}",
                            f"revision {right.revision}") if left and right else ""
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "flow": flow,
            "title": f"Revisions of {flow}", "revisions": revisions, "left": left, "right": right, "diff": diff,
            "can": allowed(request.user, flow.namespace),
        }
        return TemplateResponse(request, "admin/console/flow_revisions.html", context)

    def restore_view(self, request, pk: int, revision: int):
        if request.method != "POST":
            return JsonResponse({"error": "POST to restore"}, status=405)
        flow = self._flow(request, pk, "flow_restore")
        old = flow.revisions.filter(revision=revision).first()
        if old is None:
            raise Http404(f"Unable to find revision {revision} of {flow}")
        try:
            deployed = services.deploy_flow(old.source, expect=(flow.namespace, flow.flow_id))
        except CelestraError as exc:
            self.message_user(request, f"Revision {revision} cannot be restored: {exc}", messages.ERROR)
        else:
            if deployed.changed:
                self.message_user(request, f"Revision {revision} restored as revision {deployed.flow.revision}.",
                                  messages.SUCCESS)
            else:
                self.message_user(request, "That revision is the current source: nothing to restore.", messages.INFO)
        return HttpResponseRedirect(reverse("admin:flows_app_flow_revisions", args=[flow.pk]))

