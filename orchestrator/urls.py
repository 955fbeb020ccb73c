"""URLs: Kestra's REST paths under /api/v1, the admin, webhooks."""
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("flows_app.api.urls")),
]
