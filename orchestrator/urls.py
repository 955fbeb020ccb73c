"""URLs: Kestra's REST paths under /api/v1, the admin, webhooks."""
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/openapi.yaml", SpectacularAPIView.as_view(), name="openapi"),
    path("api/v1/", include("flows_app.api.urls")),
]
