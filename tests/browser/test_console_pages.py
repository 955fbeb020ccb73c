"""The console's pages and actions through Django's test client, on real executions."""
from __future__ import annotations

import html
import re

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

LOOP = """
id: loop
namespace: console.test
inputs:
  - id: name
    type: STRING
    defaults: world
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{ range(1, 60) }}"
    tasks:
      - id: hello
        type: io.kestra.plugin.core.log.Log
        message: "hello {{ inputs.name }} {{ taskrun.value }}"
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: "boom at the end"
"""


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_user("op", password="pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def test_execution_page_shows_tree_error_logs_and_history(run_flow, client, staff):
    execution = run_flow(LOOP)
    assert execution.state.current == "FAILED"
    page = client.get(f"/admin/flows_app/execution/{execution.id}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "boom at the end" in text  # the failed task run's error
    assert "more iterations collapsed" in text  # 60 iterations are collapsed
    assert 'data-task="hello"' in text
    assert text.count('data-task="hello"') < 60
    full = client.get(f"/admin/flows_app/execution/{execution.id}/change/?expand="
                      + next(r.id for r in execution.task_runs if r.task_id == "each")).content.decode()
    assert full.count('data-task="hello"') == 60
    logs = client.get(f"/admin/flows_app/execution/{execution.id}/logs.json?task=hello").json()
    assert len(logs["logs"]) == 60 and logs["terminated"]
    assert logs["logs"][0]["message"].startswith("hello world")
    errors = client.get(f"/admin/flows_app/execution/{execution.id}/logs.json?level=ERROR").json()["logs"]
    assert errors and all(e["level"] == "ERROR" for e in errors)
    result = client.post(f"/admin/flows_app/execution/{execution.id}/eval/",
                         {"expression": "{{ inputs.name ~ '!' }}"}).json()
    assert result == {"result": "world!"}
    bad = client.post(f"/admin/flows_app/execution/{execution.id}/eval/", {"expression": "{{ nope( }}"}).json()
    assert "error" in bad


PAUSE = """
id: waits
namespace: console.test
tasks:
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: reason
        type: STRING
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "approved because {{ outputs.approve.onResume.reason }}"
"""


def _wait(execution_id: str, until, timeout: float = 30):
    import time

    from flows_app.models import Execution

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = Execution.objects.get(pk=execution_id)
        if until(row):
            return row
        time.sleep(0.1)
    raise AssertionError(f"execution {execution_id} is still {row.state}")


def test_actions_resume_with_inputs_and_refuse_non_staff(runtime, client, staff, django_user_model):
    from flows_app.services import create_execution, deploy_flow

    deploy_flow(PAUSE)
    execution = create_execution("console.test", "waits", {})
    _wait(execution.id, lambda r: r.state == "PAUSED")
    page = html.unescape(client.get(f"/admin/flows_app/execution/{execution.id}/change/").content.decode())
    assert "Paused by its Pause task 'approve'" in page  # "why isn't it running?"
    assert 'name="input-reason"' in page  # the onResume form
    # a user who may not act is refused by the server, whatever the page shows
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=False)
    other = type(client)()
    other.force_login(viewer)
    refused = other.post(f"/admin/flows_app/execution/{execution.id}/action/resume/", {"input-reason": "x"})
    assert refused.status_code in (302, 403)
    assert _wait(execution.id, lambda r: True).state == "PAUSED"
    done = client.post(f"/admin/flows_app/execution/{execution.id}/action/resume/", {"input-reason": "looks good"})
    assert done.status_code == 302
    row = _wait(execution.id, lambda r: r.state in ("SUCCESS", "FAILED"))
    assert row.state == "SUCCESS"
    from flows_app.models import LogEntry

    assert LogEntry.objects.filter(execution_id=execution.id, message="approved because looks good").exists()
    # soft delete: out of the default list, kept as a row
    client.post(f"/admin/flows_app/execution/{execution.id}/action/delete/")
    row.refresh_from_db()
    assert row.deleted
    listing = client.get("/admin/flows_app/execution/").content.decode()
    assert f"/admin/flows_app/execution/{execution.id}/change/" not in listing


def _staff_with_role(django_user_model, name: str, role: str | None, namespace: str = "console", **extra):
    from accounts_app.models import NamespaceRole

    user = django_user_model.objects.create_user(name, password="pw", is_staff=extra.pop("is_staff", True), **extra)
    if role:
        NamespaceRole.objects.create(namespace=namespace, role=role, user=user)
    return user


@pytest.mark.django_db
def test_console_permissions_follow_namespace_roles(django_user_model):
    from types import SimpleNamespace

    from django.core.exceptions import PermissionDenied

    from flows_app.admin.permissions import console_can, require

    viewer = _staff_with_role(django_user_model, "v", "viewer")
    operator = _staff_with_role(django_user_model, "o", "operator")
    editor = _staff_with_role(django_user_model, "e", "editor")
    outsider = _staff_with_role(django_user_model, "x", "admin", namespace="elsewhere")
    not_staff = _staff_with_role(django_user_model, "n", "admin", is_staff=False)
    gone = _staff_with_role(django_user_model, "g", "admin", is_active=False)

    assert console_can(viewer, "view", "console.test") and not console_can(viewer, "kill", "console.test")
    assert console_can(operator, "kill", "console.test") and not console_can(operator, "flow_edit", "console.test")
    assert console_can(editor, "flow_edit", "console.test") and not console_can(editor, "secret_edit", "console")
    assert not console_can(outsider, "view", "console.test")
    assert console_can(outsider, "view")  # somewhere: the console opens, showing only its namespaces
    assert not console_can(not_staff, "view", "console") and not console_can(gone, "view")
    with pytest.raises(ValueError):
        console_can(operator, "launch-missiles")
    with pytest.raises(PermissionDenied, match="kill"):
        require(SimpleNamespace(user=viewer), "kill", "console.test")
    require(SimpleNamespace(user=operator), "kill", "console.test")


def test_a_viewer_sees_no_action_and_the_server_refuses_it(runtime, client, staff, django_user_model):
    from flows_app.services import create_execution, deploy_flow

    deploy_flow(PAUSE)
    execution = create_execution("console.test", "waits", {})
    _wait(execution.id, lambda r: r.state == "PAUSED")
    viewer = type(client)()
    viewer.force_login(_staff_with_role(django_user_model, "viewer2", "viewer"))
    page = html.unescape(viewer.get(f"/admin/flows_app/execution/{execution.id}/change/").content.decode())
    assert "Paused by its Pause task 'approve'" in page
    assert "/action/kill/" not in page and "/action/resume/" not in page
    refused = viewer.post(f"/admin/flows_app/execution/{execution.id}/action/kill/")
    assert refused.status_code == 403
    assert _wait(execution.id, lambda r: True).state == "PAUSED"
    outsider = type(client)()
    outsider.force_login(_staff_with_role(django_user_model, "outsider", "admin", namespace="elsewhere"))
    assert f"/admin/flows_app/execution/{execution.id}/change/" not in outsider.get(
        "/admin/flows_app/execution/").content.decode()
    client.post(f"/admin/flows_app/execution/{execution.id}/action/kill/")


def test_flow_validate_reports_lines_and_restore_revision(client, staff):
    from flows_app.models import Flow
    from flows_app.services import deploy_flow

    bad = "id: x\nnamespace: console.test\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    mesage: hi\n"
    report = client.post("/admin/flows_app/flow/validate/", bad, content_type="application/x-yaml").json()
    assert not report["valid"]
    assert any(e["line"] == 6 and "mesage" in e["message"] + e["path"] for e in report["errors"]), report
    one = "id: x\nnamespace: console.test\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: one\n"
    deploy_flow(one)
    deploy_flow(one.replace("one", "two"))
    flow = Flow.objects.get(namespace="console.test", flow_id="x")
    diff = client.get(f"/admin/flows_app/flow/{flow.pk}/revisions/?left=1&right=2").content.decode()
    assert "diff_chg" in diff or "diff_sub" in diff
    client.post(f"/admin/flows_app/flow/{flow.pk}/restore/1/")
    flow.refresh_from_db()
    assert flow.revision == 3 and "message: one" in flow.source


def test_kv_string_is_text_and_pages_have_clean_titles(client, staff):
    from storage_app.models import KVEntry

    response = client.post("/admin/storage_app/kventry/add/", {"namespace": "console.test", "key": "greeting",
                                                                "type": "STRING", "value": "hello world",
                                                                "description": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = KVEntry.objects.get(key="greeting")
    assert (entry.type, entry.value) == ("STRING", "hello world")
    client.post("/admin/storage_app/kventry/add/", {"namespace": "console.test", "key": "n", "type": "AUTO",
                                                     "value": "42", "description": ""})
    assert KVEntry.objects.get(key="n").type == "NUMBER"
    home = client.get("/admin/").content.decode()
    assert 'id="dashboard"' in home
    assert "Log entries" in home and "Log entrys" not in home
    assert "View site" not in home
    assert "Periodic tasks" not in home


def test_dashboard_counts_failures_with_their_error(run_flow, client, staff):
    execution = run_flow(LOOP)
    home = client.get("/admin/").content.decode()
    assert 'class="seg st-failed"' in home  # this hour's column of the chart
    assert "boom at the end" in home  # recent failures show their error
    assert f"/admin/flows_app/execution/{execution.id}/change/" in home


def test_why_a_queued_execution_waits_for_a_slot(runtime, client, staff):
    from flows_app.services import create_execution, deploy_flow

    deploy_flow("""
id: one-at-a-time
namespace: console.test
concurrency:
  limit: 1
tasks:
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
""")
    first = create_execution("console.test", "one-at-a-time", {})
    _wait(first.id, lambda r: r.state == "PAUSED")
    second = create_execution("console.test", "one-at-a-time", {})
    _wait(second.id, lambda r: r.state == "QUEUED")
    page = html.unescape(client.get(f"/admin/flows_app/execution/{second.id}/change/").content.decode())
    assert "Waiting for a concurrency slot" in page
    assert first.id in page.split("Waiting for a concurrency slot", 1)[1][:400]
    client.post(f"/admin/flows_app/execution/{first.id}/action/kill/")
    client.post(f"/admin/flows_app/execution/{second.id}/action/kill/")


def test_why_a_task_waits_for_a_worker_group_without_workers(runtime, client, staff):
    import time

    from flows_app.services import create_execution, deploy_flow

    deploy_flow("""
id: nowhere
namespace: console.test
tasks:
  - id: stuck
    type: io.kestra.plugin.core.log.Log
    message: never
    workerGroup:
      key: nowhere
""")
    execution = create_execution("console.test", "nowhere", {})
    deadline = time.monotonic() + 30
    page = ""
    while "no live worker consumes worker.nowhere" not in page:
        assert time.monotonic() < deadline, page[-3000:]
        time.sleep(0.5)
        page = html.unescape(client.get(f"/admin/flows_app/execution/{execution.id}/fragment/").content.decode())
    assert "worker group 'nowhere'" in page
    client.post(f"/admin/flows_app/execution/{execution.id}/action/kill/")


def test_execute_form_uploads_files_and_masks_secrets(runtime, client, staff):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from flows_app.models import Execution, Flow
    from flows_app.services import deploy_flow

    deploy_flow("""
id: with-file
namespace: console.test
inputs:
  - id: data
    type: FILE
  - id: token
    type: SECRET
    required: false
  - id: mode
    type: SELECT
    values: [fast, slow]
    defaults: fast
tasks:
  - id: size
    type: io.kestra.plugin.core.log.Log
    message: "{{ read(inputs.data) }} {{ inputs.mode }}"
""")
    flow = Flow.objects.get(flow_id="with-file")
    form = client.get(f"/admin/flows_app/flow/{flow.pk}/execute/").content.decode()
    assert 'type="file" id="input-data"' in form
    assert 'type="password" id="input-token"' in form
    assert "<option >slow</option>" in form or "<option>slow</option>" in form
    missing = html.unescape(client.post(f"/admin/flows_app/flow/{flow.pk}/execute/", {}).content.decode())
    assert "input-error" in missing and "data" in missing  # the engine's message at the FILE field
    response = client.post(f"/admin/flows_app/flow/{flow.pk}/execute/", {
        "input-data": SimpleUploadedFile("in.txt", b"file body")})
    assert response.status_code == 302, re.findall(r'class="[^"]*(?:errornote|input-error)[^"]*">([^<]*)<', response.content.decode())
    execution_id = response["Location"].rstrip("/").split("/")[-2]
    row = _wait(execution_id, lambda r: r.state in ("SUCCESS", "FAILED"))
    assert row.state == "SUCCESS"
    assert str(row.inputs["data"]).startswith("kestra://")
    from flows_app.models import LogEntry

    assert LogEntry.objects.filter(execution_id=execution_id, message="file body fast").exists()
    assert Execution.objects.filter(pk=execution_id).exists()


def test_the_evaluator_does_not_reveal_secrets(run_flow, client, staff):
    from secrets_app.store import set_secret

    execution = run_flow(LOOP)
    try:
        set_secret("console.test", "TOKEN", "very-secret", "")
    except Exception as exc:  # noqa: BLE001 - no encryption key configured: nothing to reveal then
        pytest.fail(f"cannot store a secret for the test: {exc}")
    result = client.post(f"/admin/flows_app/execution/{execution.id}/eval/",
                         {"expression": "{{ secret('TOKEN') }}"}).json()
    assert "very-secret" not in str(result)
    assert "does not reveal secrets" in result.get("error", "")


def test_every_console_page_opens_with_a_clean_title(run_flow, client, staff):
    import re as _re

    from django.contrib import admin

    from flows_app.models import Flow
    from storage_app.models import KVEntry, NamespaceFile

    run_flow(LOOP)
    KVEntry.objects.create(namespace="console.test", key="k", type="STRING", value="v")
    NamespaceFile.objects.create(namespace="console.test", path="/a.txt", content=b"text")
    from flows_app.services import deploy_flow

    deploy_flow(LOOP.replace("id: loop", "id: scheduled") + """triggers:
  - id: daily
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 9 * * *"
    timezone: Europe/Paris
""")
    opened = 0
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        base = f"/admin/{meta.app_label}/{meta.model_name}/"
        listing = client.get(base)
        assert listing.status_code == 200, base
        if meta.model_name == "logentry":
            assert "Log entrys" not in listing.content.decode()
        obj = model_admin.get_queryset(type("R", (), {"GET": {}, "user": staff})()).first()
        if obj is None:
            continue
        page = client.get(f"{base}{obj.pk}/change/")
        assert page.status_code == 200, f"{base}{obj.pk}/change/"
        title = _re.search(r"<title>(.*?)</title>", page.content.decode(), _re.S).group(1)
        assert " object (" not in title, (base, title)
        opened += 1
    assert opened >= 8
    from flows_app.models import TriggerState

    assert "daily" in client.get("/admin/flows_app/triggerstate/").content.decode()
    state = TriggerState.objects.get(trigger_id="daily", condition_id="")
    page = client.get(f"/admin/flows_app/triggerstate/{state.pk}/change/").content.decode()
    dates = _re.findall(r"<li>(\d{4}-\d\d-\d\dT[^<]+)</li>", page)
    assert len(dates) == 10 and all(d[11:19] == "09:00:00" and d[19:] in ("+01:00", "+02:00") for d in dates), dates
    flow = Flow.objects.get(flow_id="scheduled")
    assert client.get(f"/admin/flows_app/flow/{flow.pk}/change/").status_code == 200


def test_change_a_task_run_state_and_set_labels(run_flow, client, staff):
    from flows_app.models import TaskRun

    execution = run_flow("""
id: mark
namespace: console.test
tasks:
  - id: broken
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: nope
  - id: next
    type: io.kestra.plugin.core.log.Log
    message: went on
""")
    assert execution.state.current == "FAILED"
    broken = TaskRun.objects.get(execution_id=execution.id, task_id="broken")
    client.post(f"/admin/flows_app/execution/{execution.id}/action/set-state/",
                {"taskrun": broken.id, "state": "SUCCESS"})
    row = _wait(execution.id, lambda r: r.state == "SUCCESS")
    assert TaskRun.objects.filter(execution_id=row.id, task_id="next", state="SUCCESS").exists()
    bad = client.post(f"/admin/flows_app/execution/{execution.id}/action/labels/", {"labels": "no separator"},
                      follow=True).content.decode()
    assert "labels, line 1: expected key=value" in html.unescape(bad)
    client.post(f"/admin/flows_app/execution/{execution.id}/action/labels/", {"labels": "team=ops\nenv = prod"})
    row.refresh_from_db()
    labels = {l["key"]: l["value"] for l in row.labels}
    assert labels["team"] == "ops" and labels["env"] == "prod"
    assert any(k.startswith("system.") for k in labels)  # system labels are kept


def test_bulk_kill_from_the_list(runtime, client, staff):
    from flows_app.services import create_execution, deploy_flow

    deploy_flow(PAUSE)
    ids = [create_execution("console.test", "waits", {}).id for _ in range(2)]
    for execution_id in ids:
        _wait(execution_id, lambda r: r.state == "PAUSED")
    response = client.post("/admin/flows_app/execution/", {"action": "bulk_kill", "_selected_action": ids,
                                                            "index": 0}, follow=True)
    assert "2 execution(s) killed." in response.content.decode()
    for execution_id in ids:
        assert _wait(execution_id, lambda r: r.state == "KILLED").state == "KILLED"
    # a second kill reports each execution's own error
    again = html.unescape(client.post("/admin/flows_app/execution/", {"action": "bulk_kill", "_selected_action": ids,
                                                                      "index": 0}, follow=True).content.decode())
    assert "already finished" in again


def test_who_paused_it(runtime, client, staff):
    from flows_app.services import create_execution, deploy_flow

    deploy_flow("""
id: pausable
namespace: console.test
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT2S
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: after
""")
    execution = create_execution("console.test", "pausable", {})
    _wait(execution.id, lambda r: r.state == "RUNNING")
    client.post(f"/admin/flows_app/execution/{execution.id}/action/pause/")
    _wait(execution.id, lambda r: r.state == "PAUSED")
    page = html.unescape(client.get(f"/admin/flows_app/execution/{execution.id}/fragment/").content.decode())
    assert "Paused from the console by op at " in page
    client.post(f"/admin/flows_app/execution/{execution.id}/action/resume/")
    assert _wait(execution.id, lambda r: r.state in ("SUCCESS", "FAILED")).state == "SUCCESS"
