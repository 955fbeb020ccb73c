"""Server configuration and plugin listing (spec §11.7), and the JSON 404 of unknown API routes."""
from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from rest_framework.response import Response

from ..exceptions import NotFound
from .common import ApiView

#: plugin kind → the PluginGroup list it belongs to
KIND_FIELDS = {
    "runnable": "tasks", "flowable": "tasks", "executable": "tasks", "execution-updatable": "tasks",
    "trigger": "triggers", "condition": "conditions", "other": "others",
}


def version() -> str:
    from importlib import metadata

    try:
        return metadata.version("celestra")
    except metadata.PackageNotFoundError:
        return "0.1.0"


class ConfigsView(ApiView):
    """``GET /configs``."""

    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        conf = settings.CELESTRA
        environment = conf.get("ENVIRONMENT") or None
        return Response({
            # from the public URL: nothing derived from a key (which would tell whether a default is in use)
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, "celestra:" + str(conf.get("URL")))),
            "version": version(),
            "commitId": None,
            "isTaskRunEnabled": False,
            "isAnonymousUsageEnabled": False,
            "isTemplateEnabled": False,
            "isBasicAuthEnabled": True,
            "isBasicAuthInitialized": True,
            "url": conf.get("URL"),
            "environment": {"name": environment} if environment else None,
            "preview": {"initial": 100, "max": 5000},
            "systemNamespace": "system",
            "hiddenLabelsPrefixes": ["system.", "internal."],
            "isAiEnabled": False,
        })


class PluginsView(ApiView):
    """``GET /plugins``: plugin groups with their canonical type names per kind (aliases listed apart)."""

    def get(self, request):
        from orchestrator.engine.plugins import registered_types

        groups: dict[str, dict[str, Any]] = {}
        for name, cls in sorted(registered_types().items()):
            group_name = cls.type.rsplit(".", 1)[0]
            group = groups.setdefault(group_name, {
                "name": group_name, "title": group_name.rsplit(".", 1)[-1], "group": group_name,
                "subGroup": None, "tasks": [], "triggers": [], "conditions": [], "taskRunners": [],
                "others": [], "aliases": [],
            })
            if name != cls.type:
                group["aliases"].append(name)
                continue
            field = KIND_FIELDS.get(cls.kind, "others")
            if field == "others" and "runner" in cls.type.lower():
                field = "taskRunners"
            group[field].append(cls.type)
        return Response([groups[k] for k in sorted(groups)])


class PluginSchemaView(ApiView):
    """``GET /plugins/schemas/{type}``: the JSON Schema of a flow (or of a task, trigger, plugin default)."""

    def get(self, request, kind: str):
        from orchestrator.engine.flow_schema import schema_for

        try:
            return Response(schema_for(kind))
        except ValueError as exc:
            raise NotFound(str(exc)) from None


class UnknownRouteView(ApiView):
    schema = None  # not an endpoint: left out of the OpenAPI document

    """Every unknown path under ``/api/v1``: a JSON 404 like Kestra's."""

    authentication_classes: list = []
    permission_classes: list = []

    def _not_found(self, request, *args, **kwargs):
        raise NotFound("Page Not Found")

    get = post = put = patch = delete = _not_found
