"""Namespace secrets over the API: keys and descriptions only, values are write-only (spec §10.5)."""
from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.response import Response

from flows_app.api.exceptions import NotFound
from flows_app.api.serializers import SecretSerializer
from flows_app.api.views.common import ApiView, page

from .models import Secret
from .store import set_secret


def secret_meta(secret: Secret) -> dict[str, Any]:
    return {"key": secret.key, "description": secret.description or None, "tags": []}


class SecretsView(ApiView):
    """``GET /namespaces/{ns}/secrets``: paged keys; ``PUT`` with ``{key, value, description}`` sets one."""

    def get(self, request, namespace):
        queryset = Secret.objects.filter(namespace=namespace)
        if request.query_params.get("q"):
            queryset = queryset.filter(key__icontains=request.query_params["q"])
        body = page(request, queryset, lambda rows: [secret_meta(s) for s in rows], {"key": "key"}, ["key"])
        return Response({"readOnly": False, **body})

    def put(self, request, namespace):
        serializer = SecretSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        secret = set_secret(namespace, data["key"], data["value"], data.get("description") or "")
        return Response([secret_meta(secret)])


class SecretView(ApiView):
    """``DELETE /namespaces/{ns}/secrets/{key}``."""

    def delete(self, request, namespace, key):
        deleted, _ = Secret.objects.filter(namespace=namespace, key=key).delete()
        if not deleted:
            raise NotFound(f"Secret '{key}' not found in namespace '{namespace}'")
        return Response(status=status.HTTP_204_NO_CONTENT)
