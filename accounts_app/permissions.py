"""Who may do what on which namespace: the one permission module of the API, the admin and the CLI.

A user holds roles (:data:`accounts_app.models.ROLES`) granted on a namespace and everything below
it, directly or through a group; superusers pass every check. An *action* is ``family.verb``
(``flow.read``, ``execution.run``…); :data:`ACTIONS` names the weakest role that may do it.

* :func:`user_can` answers one question (the admin and CLI call it);
* :func:`namespace_q` filters a queryset down to the namespaces a user may act on (search views);
* :class:`NamespacePermission`, DRF's default permission class, finds the action and the
  namespace of each API request in :data:`RULES` (keyed by view class) and refuses the rest:
  a view without a rule is closed to everyone but superusers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from django.db.models import Q
from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from .models import ADMIN, EDITOR, OPERATOR, ROLE_LEVEL, VIEWER, NamespaceRole

#: action → the weakest role allowed to do it
ACTIONS: dict[str, str] = {
    "flow.read": VIEWER, "flow.edit": EDITOR, "flow.validate": VIEWER,
    "execution.read": VIEWER, "execution.run": OPERATOR, "execution.delete": EDITOR,
    "log.read": VIEWER, "log.delete": EDITOR,
    "trigger.read": VIEWER, "trigger.run": OPERATOR, "trigger.edit": EDITOR,
    "kv.read": VIEWER, "kv.edit": EDITOR,
    "file.read": VIEWER, "file.edit": EDITOR,
    "secret.read": ADMIN, "secret.edit": ADMIN,
    "plugin.read": VIEWER,
    "namespace.read": VIEWER,
    "role.manage": ADMIN, "audit.read": ADMIN,
}


def in_namespace(namespace: str, grant: str) -> bool:
    """True when ``namespace`` is ``grant`` or below it (by dot segments); ``""`` grants everything."""
    return not grant or namespace == grant or namespace.startswith(grant + ".")


def grants(user: Any) -> list[tuple[str, int]]:
    """(namespace, role level) of every role the user holds, directly or through a group; cached on
    the user object, which lives for one request."""
    cached = getattr(user, "_celestra_grants", None)
    if cached is not None:
        return cached
    rows = NamespaceRole.objects.filter(Q(user=user) | Q(group__in=user.groups.all())).values_list("namespace", "role")
    cached = [(namespace, ROLE_LEVEL[role]) for namespace, role in rows]
    user._celestra_grants = cached
    return cached


def _level(action: str) -> int:
    try:
        return ROLE_LEVEL[ACTIONS[action]]
    except KeyError:
        raise ValueError(f"Unknown action '{action}'") from None


def user_can(user: Any, action: str, namespace: str | None) -> bool:
    """May ``user`` do ``action`` on ``namespace``? ``namespace=None``: on at least one namespace."""
    level = _level(action)
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    for grant, held in grants(user):
        if held >= level and (namespace is None or in_namespace(namespace, grant)):
            return True
    return False


def namespace_q(user: Any, action: str, field: str = "namespace") -> Q:
    """A filter keeping the rows whose ``field`` is a namespace where ``user`` may do ``action``."""
    if user is not None and getattr(user, "is_superuser", False):
        return Q()
    level = _level(action)
    q = Q(pk__in=[])
    for grant, held in grants(user) if user is not None and user.is_authenticated else []:
        if held < level:
            continue
        if not grant:
            return Q()
        q |= Q(**{field: grant}) | Q(**{f"{field}__startswith": grant + "."})
    return q


def permitted(user: Any, action: str, rows: Iterable[Any], field: str = "namespace") -> list[Any]:
    """The rows (objects with a namespace attribute) on which ``user`` may do ``action``."""
    return [row for row in rows if user_can(user, action, getattr(row, field))]


def require(user: Any, action: str, namespace: str | None) -> None:
    """Raise DRF's PermissionDenied (403) unless :func:`user_can`."""
    if not user_can(user, action, namespace):
        where = f"namespace '{namespace}'" if namespace is not None else "any namespace"
        raise exceptions.PermissionDenied(
            f"Forbidden: user '{getattr(user, 'username', '?')}' may not {action} on {where}")


# --- API rules ---------------------------------------------------------------------------------------

@dataclass
class Need:
    """What a request needs: an action on a namespace (``None``: on some namespace, the view then
    filters), and what it touches (for the audit trail)."""

    action: str
    namespace: str | None
    target: str = ""
    #: family and key used to snapshot the touched object before and after a change
    family: str = ""
    key: tuple = ()
    #: further namespaces the request touches (multi-document bodies)
    also: tuple[str, ...] = ()


Rule = Callable[[Any, dict[str, Any]], "Need | None"]


def _execution_namespace(execution_id: str) -> str | None:
    from flows_app.models import Execution

    return Execution.objects.filter(pk=execution_id).values_list("namespace", flat=True).first()


def _on_execution(action: str, execution_id: str) -> Need:
    namespace = _execution_namespace(execution_id)
    # an unknown execution: let the view answer 404 to anyone who may read executions somewhere
    return Need(action, namespace, f"execution {execution_id}", "execution", (execution_id,))


def _method(mapping: dict[str, str]) -> Callable[[Any], str]:
    def pick(request: Any) -> str:
        return mapping.get(request.method, mapping.get("*", ""))
    return pick


def _ns_rule(family: str, read: str, write: str, target: Callable[[dict[str, Any]], str] | None = None,
             key: Callable[[dict[str, Any]], tuple] | None = None) -> Rule:
    def rule(request: Any, kw: dict[str, Any]) -> Need:
        action = read if request.method in ("GET", "HEAD", "OPTIONS") else write
        return Need(action, kw["namespace"], target(kw) if target else kw["namespace"], family,
                    key(kw) if key else ())
    return rule


def _anywhere(read: str, write: str | None = None) -> Rule:
    def rule(request: Any, kw: dict[str, Any]) -> Need:
        action = read if write is None or request.method in ("GET", "HEAD", "OPTIONS") else write
        return Need(action, None)
    return rule


def yaml_flows(source: str) -> list[tuple[str, str]]:
    """(namespace, id) of each YAML document of a flow source; invalid YAML gives none (the flow
    parser then reports it with its own limits and messages)."""
    import yaml

    try:
        docs = list(yaml.safe_load_all(source))
    except (yaml.YAMLError, RecursionError):
        return []
    return [(str(d["namespace"]), str(d.get("id", ""))) for d in docs
            if isinstance(d, dict) and isinstance(d.get("namespace"), str)]


def _yaml_flows(request: Any) -> list[tuple[str, str]]:
    try:
        return yaml_flows(request.body.decode("utf-8"))
    except UnicodeDecodeError:
        return []


def _yaml_namespaces(request: Any) -> list[str]:
    return [namespace for namespace, _ in _yaml_flows(request)]


def _flow_create(request: Any, kw: dict[str, Any]) -> Need:
    flows = _yaml_flows(request)
    if not flows:
        # an invalid body: the view rejects it with the parser's message, for anyone who may edit somewhere
        return Need("flow.edit", None)
    namespace, flow_id = flows[0]
    return Need("flow.edit", namespace, f"flow {namespace}.{flow_id}", "flow", (namespace, flow_id),
                tuple(ns for ns, _ in flows[1:]))


def _flow_bulk(request: Any, kw: dict[str, Any]) -> Need:
    namespaces = _yaml_namespaces(request)
    param = request.GET.get("namespace")
    if param:
        namespaces.append(param)
    if not namespaces:
        return Need("flow.edit", None)
    return Need("flow.edit", namespaces[0], "flows " + ",".join(sorted(set(namespaces))), also=tuple(namespaces[1:]))


def _namespace_flows(request: Any, kw: dict[str, Any]) -> Need:
    if request.method == "GET":
        return Need("flow.read", kw["namespace"])
    # the namespace's flows are replaced by the body's (which must be in that namespace)
    return Need("flow.edit", kw["namespace"], f"namespace {kw['namespace']}", also=tuple(_yaml_namespaces(request)))


EXECUTION_READS = {"flow": "execution.read", "file": "execution.read", "follow": "execution.read",
                   "logs": "log.read"}


def _execution_action(request: Any, kw: dict[str, Any]) -> Need:
    from flows_app.api.views.executions import ExecutionActionView

    a, b = kw["a"], kw["b"]
    if request.method == "GET":
        return _on_execution(EXECUTION_READS.get(b, "execution.read"), a)
    if request.method == "DELETE":
        return _on_execution("execution.run", a)  # kill
    if b == "labels" or b in ExecutionActionView.actions:
        need = _on_execution("execution.run", a)
        need.target = f"execution {a} {b}"
        return need
    # POST /executions/{namespace}/{flowId}: a new execution
    return Need("execution.run", a, f"flow {a}.{b}", "", ())


def _execution(request: Any, kw: dict[str, Any]) -> Need:
    action = "execution.read" if request.method == "GET" else "execution.delete"
    return _on_execution(action, kw["execution_id"])


def _logs(request: Any, kw: dict[str, Any]) -> Need:
    return _on_execution("log.read" if request.method == "GET" else "log.delete", kw["execution_id"])


def _trigger_body(request: Any, kw: dict[str, Any]) -> Need:
    body = request.data
    if isinstance(body, dict) and isinstance(body.get("namespace"), str):
        ns, flow_id, trigger_id = body["namespace"], str(body.get("flowId")), str(body.get("triggerId"))
        return Need("trigger.run", ns, f"trigger {ns}.{flow_id}.{trigger_id}", "trigger", (ns, flow_id, trigger_id))
    return Need("trigger.run", None)


def _trigger(request: Any, kw: dict[str, Any]) -> Need:
    ns, flow_id, trigger_id = kw["namespace"], kw["flow_id"], kw.get("trigger_id", "")
    if request.method == "GET":
        return Need("trigger.read", ns)
    return Need("trigger.run", ns, f"trigger {ns}.{flow_id}.{trigger_id}", "trigger", (ns, flow_id, trigger_id))


def _path(kw: dict[str, Any], request: Any) -> str:
    return request.GET.get("path") or request.GET.get("from") or ""


def _files(request: Any, kw: dict[str, Any]) -> Need:
    ns = kw["namespace"]
    path = request.GET.get("path") or ""
    if request.method == "GET":
        return Need("file.read", ns)
    if request.method == "PUT":
        path = f"{request.GET.get('from', '')} -> {request.GET.get('to', '')}"
    return Need("file.edit", ns, f"file {ns}:{path}", "file", (ns, request.GET.get("path") or ""))


def _public(request: Any, kw: dict[str, Any]) -> None:
    return None


#: view class name → rule; a rule returning None marks a public view
RULES: dict[str, Rule] = {
    # flows
    "FlowCreateView": _flow_create,
    "FlowSearchView": _anywhere("flow.read"),
    "FlowValidateView": _anywhere("flow.validate"),
    "FlowBulkView": _flow_bulk,
    "DistinctNamespacesView": _anywhere("flow.read"),
    "NamespaceFlowsView": _namespace_flows,
    "FlowView": _ns_rule("flow", "flow.read", "flow.edit", lambda kw: f"flow {kw['namespace']}.{kw['flow_id']}",
                         lambda kw: (kw["namespace"], kw["flow_id"])),
    "FlowRevisionsView": _ns_rule("flow", "flow.read", "flow.edit"),
    "NamespaceSearchView": _anywhere("namespace.read"),
    "NamespaceView": _ns_rule("", "namespace.read", "flow.edit"),
    # executions, logs, metrics
    "ExecutionSearchView": _anywhere("execution.read"),
    "ExecutionCreateView": _ns_rule("", "execution.run", "execution.run", lambda kw: f"flow {kw['namespace']}.{kw['flow_id']}"),
    "ExecutionValidateView": _ns_rule("", "execution.run", "execution.run"),
    "ExecutionView": _execution,
    "ExecutionActionView": _execution_action,
    "ResumeValidateView": lambda request, kw: _on_execution("execution.run", kw["execution_id"]),
    "LogSearchView": _anywhere("log.read"),
    "LogsView": _logs,
    "LogsDownloadView": lambda request, kw: _on_execution("log.read", kw["execution_id"]),
    "MetricsView": lambda request, kw: _on_execution("execution.read", kw["execution_id"]),
    "WebhookView": _public,
    # KV, files, secrets
    "KVListView": _ns_rule("kv", "kv.read", "kv.edit", lambda kw: f"kv {kw['namespace']}"),
    "KVView": _ns_rule("kv", "kv.read", "kv.edit", lambda kw: f"kv {kw['namespace']}:{kw['key']}",
                       lambda kw: (kw["namespace"], kw["key"])),
    "NamespaceFilesView": _files,
    "NamespaceDirectoryView": _files,
    "NamespaceFileStatsView": _files,
    "NamespaceFileSearchView": _files,
    "SecretsView": lambda request, kw: (
        Need("secret.read", kw["namespace"]) if request.method == "GET" else
        Need("secret.edit", kw["namespace"], f"secret {kw['namespace']}:{_body_key(request)}", "secret",
             (kw["namespace"], _body_key(request)))),
    "SecretView": _ns_rule("secret", "secret.read", "secret.edit", lambda kw: f"secret {kw['namespace']}:{kw['key']}",
                           lambda kw: (kw["namespace"], kw["key"])),
    # triggers
    "TriggerSearchView": _anywhere("trigger.read"),
    "TriggerUpdateView": _trigger_body,
    "FlowTriggersView": _trigger,
    "TriggerView": _trigger,
    "TriggerUnlockView": _trigger,
    "TriggerRestartView": _trigger,
    "BackfillView": _trigger_body,
    "BackfillBulkView": _anywhere("trigger.run"),
    "SetDisabledBulkView": _anywhere("trigger.run"),
    "UnlockBulkView": _anywhere("trigger.run"),
    "DeleteBulkView": _anywhere("trigger.run"),
    # bulk routes: ids in the body are checked one namespace at a time by the view, queries are filtered
    "ExecutionBulkView": _anywhere("execution.run"),
    "ExecutionDeleteBulkView": _anywhere("execution.delete"),
    "FlowExportView": _anywhere("flow.read"),
    "FlowBulkChangeView": _anywhere("flow.edit"),
    "FlowImportView": _anywhere("flow.edit"),
    "LogsFollowView": lambda request, kw: _on_execution("log.read", kw["execution_id"]),
    "AllKVView": _anywhere("kv.read"),
    "InheritedKVView": _ns_rule("kv", "kv.read", "kv.edit"),
    "InheritedSecretsView": _ns_rule("secret", "secret.read", "secret.edit"),
    "NamespaceFilesExportView": _ns_rule("file", "file.read", "file.edit"),
    # misc
    "PluginsView": _anywhere("plugin.read"),
    "PluginSchemaView": _anywhere("plugin.read"),
    "SpectacularAPIView": _anywhere("plugin.read"),
    "ConfigsView": _public,
    "UnknownRouteView": _public,
    "HealthView": _public,
    "AuditLogSearchView": _anywhere("audit.read"),
}


def _body_key(request: Any) -> str:
    data = request.data
    return str(data.get("key", "")) if isinstance(data, dict) else ""


class NamespacePermission(BasePermission):
    """DRF's default permission: an authenticated user holding the request's action (see :data:`RULES`)."""

    def has_permission(self, request: Any, view: Any) -> bool:
        rule = RULES.get(type(view).__name__)
        if rule is not None:
            need = rule(request, view.kwargs)
            if need is None:
                return True
        else:
            need = None
        user = request.user
        if user is None or not user.is_authenticated:
            raise exceptions.NotAuthenticated()
        if need is None:
            # a view nobody wrote a rule for: closed by default
            if user.is_superuser:
                return True
            raise exceptions.PermissionDenied("Forbidden: no permission rule for this endpoint")
        require(user, need.action, need.namespace)
        for other in need.also:
            require(user, need.action, other)
        from .audit import remember_need

        remember_need(request, need)
        return True
