"""Every role against every endpoint family; anonymous callers get 401 everywhere but webhooks and health."""
from __future__ import annotations

import pytest

from .conftest import BASE, FLOW, NS, as_user

UPDATED = FLOW.replace("message: hi", "message: hello")

#: (family, method, path, body kwargs, weakest role allowed); ``{e}`` is the execution id
CASES = [
    ("flows", "get", f"/flows/{NS}/hello", {}, "viewer"),
    ("flows", "get", "/flows/search", {}, "viewer"),
    ("flows", "get", f"/flows/{NS}/hello/revisions", {}, "viewer"),
    ("flows", "post", "/flows/validate", {"data": FLOW, "content_type": "application/x-yaml"}, "viewer"),
    ("flows", "put", f"/flows/{NS}/hello", {"data": UPDATED, "content_type": "application/x-yaml"}, "editor"),
    ("flows", "post", "/flows", {"data": FLOW.replace("id: hello", "id: other"),
                                 "content_type": "application/x-yaml"}, "editor"),
    ("flows", "delete", f"/flows/{NS}/hello", {}, "editor"),
    ("namespaces", "get", "/namespaces/search", {}, "viewer"),
    ("namespaces", "get", f"/namespaces/{NS}", {}, "viewer"),
    ("executions", "get", "/executions/{e}", {}, "viewer"),
    ("executions", "get", "/executions/search", {}, "viewer"),
    ("executions", "get", "/executions/{e}/flow", {}, "viewer"),
    ("executions", "post", f"/executions/{NS}/hello", {}, "operator"),
    ("executions", "post", "/executions/{e}/force-run", {}, "operator"),
    ("executions", "post", "/executions/{e}/labels", {"data": [{"key": "a", "value": "b"}], "format": "json"},
     "operator"),
    ("executions", "delete", "/executions/{e}/kill", {}, "operator"),
    ("executions", "post", "/executions/{e}/restart", {}, "operator"),
    ("executions", "post", "/executions/{e}/resume", {}, "operator"),
    ("executions", "delete", "/executions/{e}", {}, "editor"),
    ("logs", "get", "/logs/{e}", {}, "viewer"),
    ("logs", "get", "/logs/search", {}, "viewer"),
    ("logs", "get", "/logs/{e}/download", {}, "viewer"),
    ("logs", "delete", "/logs/{e}", {}, "editor"),
    ("metrics", "get", "/metrics/{e}", {}, "viewer"),
    ("kv", "get", f"/namespaces/{NS}/kv", {}, "viewer"),
    ("kv", "get", f"/namespaces/{NS}/kv/k", {}, "viewer"),
    ("kv", "put", f"/namespaces/{NS}/kv/k", {"data": '"w"', "content_type": "application/json"}, "editor"),
    ("kv", "delete", f"/namespaces/{NS}/kv/k", {}, "editor"),
    ("files", "get", f"/namespaces/{NS}/files/directory", {}, "viewer"),
    ("files", "get", f"/namespaces/{NS}/files?path=/a.txt", {}, "viewer"),
    ("files", "delete", f"/namespaces/{NS}/files?path=/a.txt", {}, "editor"),
    ("secrets", "get", f"/namespaces/{NS}/secrets", {}, "admin"),
    ("secrets", "put", f"/namespaces/{NS}/secrets", {"data": {"key": "B", "value": "x"}, "format": "json"}, "admin"),
    ("secrets", "delete", f"/namespaces/{NS}/secrets/API_KEY", {}, "admin"),
    ("triggers", "get", "/triggers/search", {}, "viewer"),
    ("triggers", "get", f"/triggers/{NS}/hello", {}, "viewer"),
    ("triggers", "put", "/triggers", {"data": {"namespace": NS, "flowId": "hello", "triggerId": "daily",
                                               "disabled": True}, "format": "json"}, "operator"),
    ("triggers", "post", f"/triggers/{NS}/hello/daily/restart", {}, "operator"),
    ("plugins", "get", "/plugins", {}, "viewer"),
    ("audit", "get", "/audit-logs", {}, "admin"),
]

ORDER = ["viewer", "operator", "editor", "admin"]
#: endpoints that name no namespace: open to a role on any namespace, their answers filtered
SEARCHES = {"/flows/search", "/flows/validate", "/namespaces/search", "/executions/search", "/logs/search",
            "/triggers/search", "/plugins", "/audit-logs"}


def call(client, method, path, body, execution_id):
    return getattr(client, method)(BASE + path.format(e=execution_id), **body)


@pytest.mark.parametrize("family,method,path,body,weakest", CASES,
                         ids=[f"{c[0]}:{c[1]}:{c[2]}" for c in CASES])
@pytest.mark.parametrize("who", ORDER + ["nobody", "outsider"])
def test_role_against_endpoint(users, world, who, family, method, path, body, weakest):
    """A role at or above the weakest allowed one passes the permission check (any status but
    401/403); a weaker role and a user without roles get 403; an admin of another namespace gets 403
    on this namespace's objects (and searches, which list only its own namespace)."""
    response = call(as_user(users[who]), method, path, body, world["execution"])

    searching = path in SEARCHES
    if who == "outsider":
        allowed = searching
    else:
        allowed = who in ORDER and ORDER.index(who) >= ORDER.index(weakest)
    if allowed:
        assert response.status_code not in (401, 403), response.content[:300]
    else:
        assert response.status_code == 403, (response.status_code, response.content[:300])


@pytest.mark.parametrize("family,method,path,body,weakest", CASES,
                         ids=[f"{c[0]}:{c[1]}:{c[2]}" for c in CASES])
def test_anonymous_gets_401(world, anonymous_client, family, method, path, body, weakest):
    response = call(anonymous_client, method, path, body, world["execution"])

    assert response.status_code == 401, response.content[:300]
    assert response["WWW-Authenticate"].startswith("Basic")


def test_webhooks_and_health_need_no_login(world, anonymous_client):
    assert anonymous_client.get("/api/v1/health").json() == {"status": "UP"}
    # an unknown flow: the webhook answers (404), it does not ask who is calling
    assert anonymous_client.post(f"{BASE}/executions/webhook/{NS}/nope/key").status_code == 404


def test_a_superuser_passes_everywhere(world, api_client):
    for _family, method, path, body, _ in CASES:
        response = call(api_client, method, path, body, world["execution"])
        assert response.status_code not in (401, 403), (path, response.content[:300])


def test_search_shows_only_readable_namespaces(users, world, django_user_model):
    from flows_app.services import deploy_flow

    deploy_flow(FLOW.replace(f"namespace: {NS}", "namespace: company.other"))
    viewer = as_user(users["viewer"])

    flows = viewer.get(f"{BASE}/flows/search").json()
    executions = viewer.get(f"{BASE}/executions/search").json()

    assert {f["namespace"] for f in flows["results"]} == {NS}
    assert {e["namespace"] for e in executions["results"]} == {NS}
    assert {f["namespace"] for f in as_user(users["outsider"]).get(f"{BASE}/flows/search").json()["results"]} \
        == {"company.other"}


def test_a_role_covers_the_namespaces_below_only(users, world):
    from flows_app.services import deploy_flow

    deploy_flow(FLOW.replace(f"namespace: {NS}", f"namespace: {NS}.etl"))
    deploy_flow(FLOW.replace(f"namespace: {NS}", "namespace: company.teamwork"))
    viewer = as_user(users["viewer"])

    assert viewer.get(f"{BASE}/flows/{NS}.etl/hello").status_code == 200
    assert viewer.get(f"{BASE}/flows/company.teamwork/hello").status_code == 403
    assert viewer.get(f"{BASE}/flows/company/hello").status_code == 403


def test_group_roles_count(django_user_model, world):
    from django.contrib.auth.models import Group

    from accounts_app.models import NamespaceRole

    group = Group.objects.create(name="ops")
    NamespaceRole.objects.create(group=group, role="operator", namespace="company")
    user = django_user_model.objects.create_user("member")
    user.groups.add(group)

    assert as_user(user).post(f"{BASE}/executions/{NS}/hello").status_code == 200
    assert as_user(user).put(f"{BASE}/flows/{NS}/hello", UPDATED, content_type="application/x-yaml").status_code == 403


def test_bulk_trigger_changes_reach_permitted_namespaces_only(users, world):
    from flows_app.services import deploy_flow
    from flows_app.trigger_models import TriggerState

    deploy_flow(FLOW.replace(f"namespace: {NS}", "namespace: company.other"))
    from orchestrator.runtime.schedules import states_of

    list(states_of())  # trigger states exist once the flows are deployed
    operator = as_user(users["operator"])

    answer = operator.post(f"{BASE}/triggers/set-disabled/by-query?disabled=true")

    assert answer.status_code == 200
    disabled = set(TriggerState.objects.filter(disabled=True).values_list("namespace", flat=True))
    assert NS in disabled and "company.other" not in disabled


def test_an_endpoint_without_a_rule_is_closed(users, rf):
    """A view nobody wrote a rule for refuses every user but superusers."""
    from rest_framework.test import force_authenticate

    from flows_app.api.views.common import ApiView

    class Unruled(ApiView):
        def get(self, request):
            from rest_framework.response import Response

            return Response({"ok": True})

    request = rf.get("/x")
    force_authenticate(request, users["admin"])
    assert Unruled.as_view()(request).status_code == 403


def test_every_api_view_has_a_rule():
    """Each view routed under /api/v1 is named in the permission table (or is explicitly public)."""
    from django.urls import get_resolver

    from accounts_app.permissions import RULES

    def views(patterns):
        for p in patterns:
            if hasattr(p, "url_patterns"):
                yield from views(p.url_patterns)
            else:
                cls = getattr(p.callback, "view_class", None) or getattr(p.callback, "cls", None)
                if cls is not None:
                    yield cls

    api = {cls.__name__ for cls in views(get_resolver().url_patterns) if cls.__module__.split(".")[0] != "django"}
    assert api - set(RULES) == set()
