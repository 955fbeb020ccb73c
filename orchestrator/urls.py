"""URLs: Kestra's REST paths under /api/v1, the admin, webhooks, health and the audit trail."""
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from accounts_app.api import AuditLogSearchView, HealthView

urlpatterns = [
    path("admin/", admin.site.urls),
    # before the API's catch-all route
    path("api/v1/health", HealthView.as_view()),
    path("api/v1/main/audit-logs", AuditLogSearchView.as_view()),
    path("api/v1/audit-logs", AuditLogSearchView.as_view()),
    path("api/openapi.yaml", SpectacularAPIView.as_view(), name="openapi"),
    path("api/v1/", include("flows_app.api.urls")),
]
