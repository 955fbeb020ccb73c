"""Kestra's bulk flow routes: export (ZIP), import (ZIP or multi-document YAML), delete, enable, disable,
each by ids (a body of ``[{namespace, id}]``) or by query (the search's filters)."""
from __future__ import annotations

import io
import re
import zipfile
from typing import Any

from django.db import transaction
from django.http import HttpResponse
from rest_framework.response import Response

from ... import models, services
from ..exceptions import BadRequest, NotFound
from .common import ApiView, bool_param
from .flows import FlowSearchView

_DISABLED = {True: re.compile(r"^disabled[ \t]*:[ \t]*false[ \t]*$", re.MULTILINE),
             False: re.compile(r"^disabled[ \t]*:[ \t]*true[ \t]*$", re.MULTILINE)}
_DOCUMENT_SEPARATOR = re.compile(r"(?m)^---\s*$")


def inject_disabled(source: str, disabled: bool) -> str:
    """The flow source with its top-level ``disabled`` set, as Kestra rewrites it (comments kept)."""
    pattern = _DISABLED[disabled]
    if pattern.search(source):
        return pattern.sub(f"disabled: {'true' if disabled else 'false'}", source)
    return source.rstrip("\n") + f"\ndisabled: {'true' if disabled else 'false'}\n"


def _ids(request) -> list[tuple[str, str]]:
    body = request.data
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise BadRequest("A JSON list of {namespace, id} is expected")
    out = []
    for item in body:
        namespace, flow_id = item.get("namespace"), item.get("id")
        if not isinstance(namespace, str) or not isinstance(flow_id, str):
            raise BadRequest("A JSON list of {namespace, id} is expected")
        out.append((namespace, flow_id))
    return out


def _by_ids(pairs: list[tuple[str, str]]) -> list[models.Flow]:
    """The flows named, in order; an unknown one is a 404, before anything changes."""
    flows = []
    for namespace, flow_id in pairs:
        flow = models.Flow.objects.filter(namespace=namespace, flow_id=flow_id, deleted=False).first()
        if flow is None:
            raise NotFound(f"Unable to find flow '{namespace}'.'{flow_id}'")
        flows.append(flow)
    return flows


def _selected(request, selector: str) -> list[models.Flow]:
    if selector == "by-ids":
        from accounts_app.permissions import require

        pairs = _ids(request)
        # ids given by the caller: each namespace must allow the action (a query is already filtered)
        for namespace in {ns for ns, _ in pairs}:
            require(request.user, "flow.read" if request.method == "GET" or "export" in request.path
                    else "flow.edit", namespace)
        return _by_ids(pairs)
    return list(FlowSearchView.filtered(request).order_by("namespace", "flow_id"))


def _zip(flows: list[models.Flow], name: Any) -> HttpResponse:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for flow in flows:
            archive.writestr(name(flow), flow.source)
    response = HttpResponse(buffer.getvalue(), content_type="application/octet-stream")
    response["Content-Disposition"] = 'attachment; filename="flows.zip"'
    return response


class FlowExportView(ApiView):
    """``POST /flows/export/by-ids`` and ``GET /flows/export/by-query``: a ZIP of the flows' sources."""

    def post(self, request, selector: str):
        if selector != "by-ids":
            raise BadRequest("Export by query is a GET")
        return _zip(_selected(request, selector), lambda f: f"{f.namespace}.{f.flow_id}.yaml")

    def get(self, request, selector: str):
        if selector != "by-query":
            raise BadRequest("Export by ids is a POST")
        return _zip(_selected(request, selector), lambda f: f"{f.namespace}-{f.flow_id}.yml")


class FlowBulkChangeView(ApiView):
    """``DELETE /flows/delete/by-…``, ``POST /flows/disable/by-…``, ``POST /flows/enable/by-…``: ``{count}``."""

    def delete(self, request, action: str, selector: str):
        if action != "delete":
            raise BadRequest(f"Unknown bulk action 'DELETE {action}/{selector}'")
        flows = _selected(request, selector)
        with transaction.atomic():
            for flow in flows:
                services.delete_flow(flow.namespace, flow.flow_id)
        return Response({"count": len(flows)})

    def post(self, request, action: str, selector: str):
        if action not in ("disable", "enable"):
            raise BadRequest(f"Unknown bulk action 'POST {action}/{selector}'")
        disabled = action == "disable"
        changed = [flow for flow in _selected(request, selector) if flow.disabled != disabled]
        with transaction.atomic():
            for flow in changed:
                services.deploy_flow(inject_disabled(flow.source, disabled), expect=(flow.namespace, flow.flow_id))
        return Response({"count": len(changed)})


def _sources(upload: Any) -> list[tuple[str, str]]:
    """``(name, source)`` of each flow in a ZIP of YAML files or in a multi-document YAML file."""
    name = (upload.name or "").lower()
    data = upload.read()
    if name.endswith((".yaml", ".yml")):
        text = data.decode("utf-8", errors="replace")
        return [(f"{name}(flow number: {i})", part) for i, part in enumerate(_DOCUMENT_SEPARATOR.split(text))
                if part.strip()]
    if name.endswith(".zip"):
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile:
            raise BadRequest("The uploaded file is not a valid ZIP archive") from None
        return [(entry.filename, archive.read(entry).decode("utf-8", errors="replace"))
                for entry in archive.infolist()
                if not entry.is_dir() and entry.filename.lower().endswith((".yaml", ".yml"))]
    suffix = name[name.rfind("."):] if "." in name else name
    raise BadRequest(f"Cannot import file of type {suffix}")


class FlowImportView(ApiView):
    """``POST /flows/import`` (multipart ``fileUpload``): the names of the files that could not be imported."""

    def post(self, request):
        upload = request.FILES.get("fileUpload")
        if upload is None:
            raise BadRequest("Required Part [fileUpload] not specified")
        wrong = []
        from accounts_app.permissions import user_can, yaml_flows

        for name, source in _sources(upload):
            # a flow of a namespace the caller may not edit is refused like an invalid one
            if not all(user_can(request.user, "flow.edit", ns) for ns, _ in yaml_flows(source)):
                wrong.append(name)
                continue
            try:
                services.deploy_flow(source)
            except Exception:  # noqa: BLE001 - any refusal of one flow is reported by its file name
                wrong.append(name)
        if wrong and bool_param(request, "failOnError", False):
            raise BadRequest("Following invalid flows were not imported: " + ", ".join(wrong))
        return Response(wrong)
