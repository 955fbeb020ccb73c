"""Kestra's REST paths under ``/api/v1/main/…`` (tenant ``main``) and the tenant-less ``/api/v1/…`` form.

Order matters where Kestra's router prefers a literal segment over a variable one:
``/flows/search`` before ``/flows/{namespace}``, ``/executions/search`` before ``/executions/{id}``.
"""
from __future__ import annotations

from django.urls import include, path, re_path

from secrets_app import api as secrets_api
from storage_app import api as storage_api
from storage_app import api_listings

from .triggers_api import routes as trigger_routes
from .views import bulk, executions, flows, flows_bulk, logs_follow, misc

ns = "<str:namespace>"
SELECTORS = ("by-ids", "by-query")
EXECUTION_ACTIONS = ("kill", "labels", "logs", "flow", "file", "follow", *executions.ExecutionActionView.actions)

routes = [
    # flows
    path("flows", flows.FlowCreateView.as_view()),
    path("flows/search", flows.FlowSearchView.as_view()),
    path("flows/validate", flows.FlowValidateView.as_view()),
    path("flows/bulk", flows.FlowBulkView.as_view()),
    path("flows/distinct-namespaces", flows.DistinctNamespacesView.as_view()),
    path("flows/import", flows_bulk.FlowImportView.as_view()),
    *[path(f"flows/export/{selector}", flows_bulk.FlowExportView.as_view(), {"selector": selector})
      for selector in SELECTORS],
    *[path(f"flows/{action}/{selector}", flows_bulk.FlowBulkChangeView.as_view(),
           {"action": action, "selector": selector})
      for action in ("delete", "disable", "enable") for selector in SELECTORS],
    path(f"flows/{ns}", flows.NamespaceFlowsView.as_view()),
    path(f"flows/{ns}/<str:flow_id>", flows.FlowView.as_view()),
    path(f"flows/{ns}/<str:flow_id>/revisions", flows.FlowRevisionsView.as_view()),
    # executions
    path("executions", executions.ExecutionSearchView.as_view()),
    path("executions/search", executions.ExecutionSearchView.as_view()),
    *[path(f"executions/{selector}", bulk.ExecutionDeleteBulkView.as_view(), {"selector": selector})
      for selector in SELECTORS],
    *[path(f"executions/{action}/{selector}", bulk.ExecutionBulkView.as_view(),
           {"action": action, "selector": selector})
      for action in bulk.ACTIONS for selector in SELECTORS],
    path(f"executions/webhook/{ns}/<str:flow_id>/<str:key>", executions.WebhookView.as_view()),
    path(f"executions/webhook/{ns}/<str:flow_id>/<str:key>/<path:path>", executions.WebhookView.as_view()),
    path(f"executions/trigger/{ns}/<str:flow_id>", executions.ExecutionCreateView.as_view()),
    path("executions/<str:execution_id>/resume/validate", executions.ResumeValidateView.as_view()),
    path(f"executions/{ns}/<str:flow_id>/validate", executions.ExecutionValidateView.as_view()),
    path("executions/<str:execution_id>", executions.ExecutionView.as_view()),
    # each action on one execution has its own literal route; what is left is the creation of an execution
    *[path(f"executions/<str:a>/{action}", executions.ExecutionActionView.as_view(), {"b": action})
      for action in EXECUTION_ACTIONS],
    path("executions/<str:a>/<str:b>", executions.ExecutionActionView.as_view()),
    # logs and metrics
    path("logs/search", executions.LogSearchView.as_view()),
    path("logs/<str:execution_id>", executions.LogsView.as_view()),
    path("logs/<str:execution_id>/download", executions.LogsDownloadView.as_view()),
    path("logs/<str:execution_id>/follow", logs_follow.LogsFollowView.as_view()),
    path("metrics/<str:execution_id>", executions.MetricsView.as_view()),
    # namespaces: KV, secrets, files
    path("namespaces/search", flows.NamespaceSearchView.as_view()),
    path(f"namespaces/{ns}", flows.NamespaceView.as_view()),
    path("kv", api_listings.AllKVView.as_view()),
    path(f"namespaces/{ns}/kv", storage_api.KVListView.as_view()),
    path(f"namespaces/{ns}/kv/inheritance", api_listings.InheritedKVView.as_view()),
    path(f"namespaces/{ns}/inherited-secrets", api_listings.InheritedSecretsView.as_view()),
    path(f"namespaces/{ns}/files/export", api_listings.NamespaceFilesExportView.as_view()),
    path(f"namespaces/{ns}/kv/<str:key>", storage_api.KVView.as_view()),
    path(f"namespaces/{ns}/secrets", secrets_api.SecretsView.as_view()),
    path(f"namespaces/{ns}/secrets/<str:key>", secrets_api.SecretView.as_view()),
    path(f"namespaces/{ns}/files", storage_api.NamespaceFilesView.as_view()),
    path(f"namespaces/{ns}/files/directory", storage_api.NamespaceDirectoryView.as_view()),
    path(f"namespaces/{ns}/files/stats", storage_api.NamespaceFileStatsView.as_view()),
    path(f"namespaces/{ns}/files/search", storage_api.NamespaceFileSearchView.as_view()),
    *trigger_routes,
    # misc
    path("configs", misc.ConfigsView.as_view()),
    path("plugins", misc.PluginsView.as_view()),
    path("plugins/schemas/<str:kind>", misc.PluginSchemaView.as_view()),
]

urlpatterns = [
    path("main/", include(routes)),
    *routes,
    re_path(r"^.*$", misc.UnknownRouteView.as_view()),
]
