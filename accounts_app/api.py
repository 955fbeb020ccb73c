"""``/api/v1/health`` (public) and ``/api/v1/main/audit-logs`` (admins)."""
from __future__ import annotations

import logging

from django.db import connection
from rest_framework.response import Response

from flows_app.api.views.common import ApiView, date_q, page, parse_filters, text_q

from .models import AuditLog
from .permissions import namespace_q

log = logging.getLogger("celestra.api")


class HealthView(ApiView):
    """``GET /api/v1/health``: ``{"status": "UP"}`` (Micronaut's health shape), 503 when the database is
    unreachable. Public, so it says nothing else."""

    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception:
            log.exception("health: database unreachable")
            return Response({"status": "DOWN"}, status=503)
        return Response({"status": "UP"})


AUDIT_SORT = {"date": "created", "user": "actor_name", "action": "action", "namespace": "namespace"}


class AuditLogSearchView(ApiView):
    """``GET /api/v1/main/audit-logs``: paged rows, newest first; filters ``user``, ``action``,
    ``namespace`` (PREFIX), ``source``, ``q`` (target), ``startDate``, ``endDate`` (flat or ``filters[…]``).

    Superusers see every row; a namespace admin sees the rows of their namespaces.
    """

    legacy = {"q": "CONTAINS", "user": "EQUALS", "action": "STARTS_WITH", "namespace": "PREFIX",
              "source": "EQUALS", "startDate": "GREATER_THAN_OR_EQUAL_TO", "endDate": "LESS_THAN_OR_EQUAL_TO"}

    def get(self, request):
        queryset = AuditLog.objects.filter(namespace_q(request.user, "audit.read"))
        if not request.user.is_superuser:
            queryset = queryset.exclude(namespace="")
        columns = {"user": "actor_name", "action": "action", "namespace": "namespace", "source": "source",
                   "q": "target"}
        for f in parse_filters(request, self.legacy):
            if f.field in ("startDate", "endDate"):
                queryset = queryset.filter(date_q("created", f))
            elif f.field in columns:
                queryset = queryset.filter(text_q(columns[f.field], f))
        return Response(page(request, queryset, lambda rows: [r.to_json() for r in rows], AUDIT_SORT,
                             ["-created", "-id"]))

