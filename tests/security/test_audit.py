"""Every change through the API, the admin and the CLI is an audit row; secrets never in clear."""
from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from accounts_app.models import AuditLog

from .conftest import BASE, FLOW, NS, as_user

pytestmark = pytest.mark.django_db


def test_flow_update_keeps_who_where_before_after(users, world):
    editor = as_user(users["editor"])

    editor.put(f"{BASE}/flows/{NS}/hello", FLOW.replace("hi", "hello"), content_type="application/x-yaml",
               HTTP_USER_AGENT="pytest-agent", REMOTE_ADDR="10.1.2.3")

    row = AuditLog.objects.get(action="flow.edit")
    assert (row.actor_name, row.source, row.namespace, row.ip, row.user_agent) == (
        "u-editor", "api", NS, "10.1.2.3", "pytest-agent")
    assert row.target == f"flow {NS}.hello" and row.method == "PUT" and row.status == 200
    assert row.before["revision"] == 1 and "message: hi" in row.before["source"]
    assert row.after["revision"] == 2 and "message: hello" in row.after["source"]


def test_reads_and_refusals_write_nothing(users, world):
    as_user(users["viewer"]).get(f"{BASE}/flows/{NS}/hello")
    as_user(users["viewer"]).put(f"{BASE}/flows/{NS}/hello", FLOW, content_type="application/x-yaml")

    assert not AuditLog.objects.filter(source="api").exists()


def test_secret_changes_never_show_the_value(users, world):
    admin = as_user(users["admin"])

    admin.put(f"{BASE}/namespaces/{NS}/secrets", {"key": "API_KEY", "value": "brand-new-value"}, format="json")
    admin.delete(f"{BASE}/namespaces/{NS}/secrets/API_KEY")

    rows = list(AuditLog.objects.filter(action="secret.edit").order_by("id"))
    assert len(rows) == 2
    dump = json.dumps([r.to_json() for r in rows])
    assert "brand-new-value" not in dump and "s3cr3t-value" not in dump
    assert rows[0].before["value"] == "******" and rows[0].after["value"] == "******"
    assert rows[0].before["fingerprint"] != rows[0].after["fingerprint"]
    assert rows[1].after is None


def test_execution_operations_kv_files_and_triggers(users, world):
    admin = as_user(users["admin"])
    execution = world["execution"]

    admin.delete(f"{BASE}/executions/{execution}/kill")
    admin.put(f"{BASE}/namespaces/{NS}/kv/k", '"w"', content_type="application/json")
    admin.delete(f"{BASE}/namespaces/{NS}/files?path=/a.txt")
    admin.put(f"{BASE}/triggers", {"namespace": NS, "flowId": "hello", "triggerId": "daily", "disabled": True},
              format="json")

    rows = {r.action: r for r in AuditLog.objects.all()}
    assert rows["execution.run"].target == f"execution {execution}"
    assert rows["kv.edit"].before["value"] == "v" and rows["kv.edit"].after["value"] == "w"
    assert rows["file.edit"].before["path"] == "/a.txt" and rows["file.edit"].after is None
    assert rows["trigger.run"].before["disabled"] is False and rows["trigger.run"].after["disabled"] is True


def test_audit_api_is_for_admins_and_searchable(users, world):
    as_user(users["editor"]).put(f"{BASE}/namespaces/{NS}/kv/k", '"w"', content_type="application/json")
    as_user(users["editor"]).delete(f"{BASE}/namespaces/{NS}/kv/k")

    found = as_user(users["admin"]).get(f"{BASE}/audit-logs", {"user": "u-editor", "size": 1}).json()

    assert found["total"] == 2 and len(found["results"]) == 1
    assert found["results"][0]["action"] == "kv.edit" and found["results"][0]["method"] == "DELETE"
    assert as_user(users["editor"]).get(f"{BASE}/audit-logs").status_code == 403
    assert as_user(users["outsider"]).get(f"{BASE}/audit-logs").json()["total"] == 0


def test_admin_changes_are_audited(world, superuser):
    from django.test import Client

    browser = Client()
    browser.force_login(superuser)
    answer = browser.post("/admin/secrets_app/secret/add/", {"namespace": NS, "key": "DB", "value": "hunter22",
                                                            "description": ""}, REMOTE_ADDR="10.9.9.9")

    assert answer.status_code == 302, answer.content[:500]
    row = AuditLog.objects.get(source="admin")
    assert row.action == "secret.add" and row.actor_name == superuser.username and row.ip == "10.9.9.9"
    assert "hunter22" not in json.dumps(row.to_json())


def test_cli_changes_are_audited_with_the_user_given(django_user_model, db):
    django_user_model.objects.create_superuser("root", password=None)

    call_command("role", "grant", "editor", NS, "--to-group", "data", "--user", "root", stdout=io.StringIO())

    row = AuditLog.objects.get(action="role.grant")
    assert (row.source, row.actor_name, row.user_agent, row.namespace) == ("cli", "root", "cli", NS)


def test_flow_cli_deploys_are_audited_and_checked(django_user_model, db, tmp_path):
    from accounts_app.models import NamespaceRole

    (tmp_path / "hello.yaml").write_text(FLOW)
    viewer = django_user_model.objects.create_user("cli-viewer")
    NamespaceRole.objects.create(user=viewer, role="viewer", namespace=NS)

    with pytest.raises(Exception, match="may not flow.edit"):
        call_command("flow", "namespace", "update", NS, str(tmp_path), "--user", "cli-viewer", stdout=io.StringIO())
    call_command("flow", "namespace", "update", NS, str(tmp_path), stdout=io.StringIO())

    row = AuditLog.objects.get(action="flow.edit")
    assert (row.source, row.actor_name, row.target, row.after["revision"]) == ("cli", "system", f"flow {NS}.hello", 1)
