"""Listings across namespaces, as Kestra's UI and SDK read them: every KV key (``GET /kv``), the keys and
secrets a namespace inherits from its parents, and a namespace's files and flows as one ZIP."""
from __future__ import annotations

import io
import zipfile

from django.db.models import Q
from django.http import HttpResponse
from django.utils import timezone as djtz
from rest_framework.response import Response

from flows_app import models as flow_models
from flows_app.api.views.common import ApiView, page, parse_filters, text_q
from secrets_app.models import Secret

from .api import kv_meta
from .models import KVEntry, NamespaceFile

#: the folder of a namespace export that holds the namespace's flows (Kestra's ``_flows``)
FLOWS_FOLDER = "_flows"
KV_SORT = {"key": "key", "namespace": "namespace", "updateDate": "updated", "creationDate": "created",
           "expirationDate": "expires"}


def parents(namespace: str) -> list[str]:
    """``a.b.c`` → ``["a.b", "a"]``: the namespaces ``namespace`` inherits from, nearest first."""
    parts = namespace.split(".")
    return [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def _live():
    return KVEntry.objects.filter(Q(expires__isnull=True) | Q(expires__gt=djtz.now()))


class AllKVView(ApiView):
    """``GET /kv``: every live key of every namespace, paged, with ``filters[namespace|key|q][OP]``."""

    legacy = {"q": "CONTAINS", "namespace": "PREFIX"}

    def get(self, request):
        from accounts_app.permissions import namespace_q

        queryset = _live().filter(namespace_q(request.user, "kv.read"))
        for f in parse_filters(request, self.legacy):
            if f.field == "namespace":
                queryset = queryset.filter(text_q("namespace", f))
            elif f.field == "key":
                queryset = queryset.filter(text_q("key", f))
            elif f.field == "q":
                queryset = queryset.filter(Q(key__icontains=f.value) | Q(description__icontains=f.value))
        return Response(page(request, queryset, lambda rows: [kv_meta(e) for e in rows], KV_SORT,
                             ["namespace", "key"]))


class InheritedKVView(ApiView):
    """``GET /namespaces/{ns}/kv/inheritance``: the keys of the parent namespaces; the nearest wins."""

    def get(self, request, namespace):
        seen: set[str] = set()
        out = []
        for parent in parents(namespace):
            for entry in _live().filter(namespace=parent).order_by("key"):
                if entry.key not in seen:
                    seen.add(entry.key)
                    out.append(kv_meta(entry))
        return Response(out)


class InheritedSecretsView(ApiView):
    """``GET /namespaces/{ns}/inherited-secrets``: secret keys by namespace, the namespace's own and its
    parents' (values are never listed)."""

    def get(self, request, namespace):
        tree = [namespace, *parents(namespace)]
        out: dict[str, list[str]] = {}
        for ns, key in Secret.objects.filter(namespace__in=tree).order_by("key").values_list("namespace", "key"):
            out.setdefault(ns, []).append(key)
        return Response({ns: out[ns] for ns in tree if ns in out})


class NamespaceFilesExportView(ApiView):
    """``GET /namespaces/{ns}/files/export``: the namespace's files, and its flows under ``_flows/``, as a ZIP."""

    def get(self, request, namespace):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path, content in NamespaceFile.objects.filter(namespace=namespace).order_by("path").values_list(
                    "path", "content"):
                archive.writestr(path.lstrip("/"), bytes(content))
            for flow_id, source in flow_models.Flow.objects.filter(namespace=namespace, deleted=False).order_by(
                    "flow_id").values_list("flow_id", "source"):
                archive.writestr(f"{FLOWS_FOLDER}/{flow_id}.yml", source)
        response = HttpResponse(buffer.getvalue(), content_type="application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="{namespace}_files.zip"'
        return response
