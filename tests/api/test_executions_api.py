"""Executions API: creation with multipart inputs, validation, reads, search, kill, labels, delete,
logs and webhooks (spec §5.4-5.5, §7.5, §8.10, §11.3-11.4)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from flows_app import models
from flows_app.services import deploy_flow

BASE = "/api/v1/main"

INPUTS = """id: inputs
namespace: company.team
labels:
  flow-label-1: flow-label-1
  flow-label-2: flow-label-2
inputs:
  - id: name
    type: STRING
  - id: count
    type: INT
    defaults: 3
  - id: ratio
    type: FLOAT
    required: false
  - id: file
    type: FILE
    required: false
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.name }}"
"""

WEBHOOK = """id: webhook
namespace: company.team
labels:
  flow-label-1: flow-label-1
tasks:
  - id: out
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger | json }}"
triggers:
  - id: webhook
    type: io.kestra.plugin.core.trigger.Webhook
    key: a-secret-key
  - id: off
    type: io.kestra.plugin.core.trigger.Webhook
    key: disabled-key
    disabled: true
  - id: by-flow-id
    type: io.kestra.plugin.core.trigger.Webhook
    key: "{{ flow.id }}-key"
"""

WEBHOOK_CONDITION = """id: webhook-with-condition
namespace: company.team
tasks:
  - id: out
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger | json }}"
triggers:
  - id: webhook
    type: io.kestra.plugin.core.trigger.Webhook
    key: webhookKey
    conditions:
      - type: io.kestra.plugin.core.condition.ExpressionCondition
        expression: "{{ trigger.body.hello == 'world' }}"
"""

WEBHOOK_SECRET = """id: webhook-secret-key
namespace: company.team
inputs:
  - id: name
    type: STRING
tasks:
  - id: out
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.name }}"
triggers:
  - id: webhook
    type: io.kestra.plugin.core.trigger.Webhook
    key: "{{ secret('WEBHOOK_KEY') }}"
    inputs:
      name: "{{ trigger.body.who }}"
    labels:
      source: webhook
"""

SLEEP = """id: sleep
namespace: company.team
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT30S
"""

RETURN = """id: return
namespace: company.team
inputs:
  - id: name
    type: STRING
    defaults: world
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: "hello {{ inputs.name }}"
outputs:
  - id: greeting
    type: STRING
    value: "{{ outputs.hello.value }}"
"""


@pytest.fixture
def client(api_client) -> APIClient:
    return api_client


@pytest.fixture
def storage_dir(settings, tmp_path):
    """Internal storage in a temporary directory (the storage follows MEDIA_ROOT changes)."""
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def flow(source: str) -> None:
    from orchestrator.runtime.flows import clear_cache

    clear_cache()
    deploy_flow(source)


def execute(client: APIClient, flow_id: str, data: dict | None = None, query: str = ""):
    return client.post(f"{BASE}/executions/company.team/{flow_id}{query}", data=data or {}, format="multipart")


@pytest.mark.django_db
class TestCreate:
    def test_inputs_are_typed_and_labels_ordered(self, client):
        flow(INPUTS)

        response = execute(client, "inputs", {"name": "john", "ratio": "42.42"},
                           "?labels=a:label-1&labels=url:https:%2F%2Fsome-url.com")

        assert response.status_code == 200, response.content
        body = response.json()
        assert body["state"]["current"] == "CREATED"
        assert body["flowId"] == "inputs"
        assert body["inputs"]["name"] == "john"
        assert body["inputs"]["count"] == 3
        assert body["inputs"]["ratio"] == 42.42
        assert [(l["key"], l["value"]) for l in body["labels"]][:4] == [
            ("flow-label-1", "flow-label-1"), ("flow-label-2", "flow-label-2"), ("a", "label-1"),
            ("url", "https://some-url.com")]
        assert body["url"].endswith(f"/ui/main/executions/company.team/inputs/{body['id']}")
        stored = client.get(f"{BASE}/executions/{body['id']}").json()
        assert stored["id"] == body["id"] and stored["inputs"]["name"] == "john"

    def test_file_input_is_stored(self, client, storage_dir):
        flow(INPUTS)
        upload = SimpleUploadedFile("hello.txt", b"hello file")

        response = execute(client, "inputs", {"name": "john", "file": upload})

        assert response.status_code == 200, response.content
        uri = response.json()["inputs"]["file"]
        assert uri.startswith("kestra:///company/team/inputs/executions/")
        assert uri.endswith("/inputs/file/hello.txt")
        from storage_app import storage

        assert storage.get(uri) == b"hello file"

    def test_legacy_files_part_names_the_input_by_file_name(self, client, storage_dir):
        flow(INPUTS)

        response = execute(client, "inputs", {"name": "john", "files": SimpleUploadedFile("file", b"x")})

        assert response.status_code == 200, response.content
        assert response.json()["inputs"]["file"].startswith("kestra:///")

    def test_invalid_inputs_are_422_with_each_error(self, client):
        flow(INPUTS)

        response = execute(client, "inputs", {"count": "abc"})

        assert response.status_code == 422
        body = response.json()
        assert body["message"].startswith("Invalid entity: ")
        assert "Invalid input for `count`" in body["message"]
        paths = {e["path"] for e in body["_embedded"]["errors"]}
        assert paths == {"name", "count"}
        assert not models.Execution.objects.exists()

    def test_unknown_flow_is_404(self, client):
        response = client.post(f"{BASE}/executions/foo/bar", format="multipart")

        assert response.status_code == 404
        assert response.json()["message"].startswith("Not Found")

    def test_disabled_flow_is_409(self, client):
        flow(INPUTS + "disabled: true\n")

        response = execute(client, "inputs", {"name": "john"})

        assert response.status_code == 409

    def test_system_labels_are_refused(self, client):
        flow(INPUTS)

        response = execute(client, "inputs", {"name": "john"}, "?labels=system.foo:bar")

        assert response.status_code == 422
        assert "System labels can only be set by Kestra itself" in response.json()["message"]

    def test_correlation_id_may_be_given(self, client):
        flow(INPUTS)

        response = execute(client, "inputs", {"name": "john"}, "?labels=system.correlationId:abc")

        labels = {l["key"]: l["value"] for l in response.json()["labels"]}
        assert labels["system.correlationId"] == "abc"

    def test_malformed_label_is_400(self, client):
        flow(INPUTS)

        assert execute(client, "inputs", {"name": "john"}, "?labels=nocolon").status_code == 400

    def test_legacy_trigger_path(self, client):
        flow(INPUTS)

        response = client.post(f"{BASE}/executions/trigger/company.team/inputs", {"name": "x"}, format="multipart")

        assert response.status_code == 200

    def test_validate_reports_each_input_without_creating_anything(self, client):
        flow(INPUTS)

        response = client.post(f"{BASE}/executions/company.team/inputs/validate", {"count": "abc"},
                               format="multipart")

        assert response.status_code == 200
        by_id = {i["input"]["id"]: i for i in response.json()["inputs"]}
        assert by_id["name"]["errors"][0]["message"].startswith("Invalid input for `name`")
        assert by_id["count"]["errors"] and by_id["ratio"]["errors"] == []
        assert not models.Execution.objects.exists()


def _create(client, flow_id="inputs", **data):
    flow(INPUTS)
    return execute(client, flow_id, {"name": "john", **data}).json()["id"]


@pytest.mark.django_db
class TestReadSearch:
    def test_get_unknown_is_404(self, client):
        assert client.get(f"{BASE}/executions/unknown").status_code == 404

    def test_search_filters(self, client):
        first = _create(client)
        second = execute(client, "inputs", {"name": "x"}, "?labels=team:data").json()["id"]

        everything = client.get(f"{BASE}/executions/search?namespace=company").json()
        by_label = client.get(f"{BASE}/executions/search?labels=team:data").json()
        by_state = client.get(f"{BASE}/executions/search?state=SUCCESS").json()
        by_filter = client.get(f"{BASE}/executions/search?filters[flowId][EQUALS]=inputs&size=1").json()

        assert everything["total"] == 2
        assert {e["id"] for e in everything["results"]} == {first, second}
        assert [e["id"] for e in by_label["results"]] == [second]
        assert by_state["total"] == 0
        assert by_filter["total"] == 2 and len(by_filter["results"]) == 1

    def test_search_with_an_unknown_state_is_400(self, client):
        assert client.get(f"{BASE}/executions/search?state=NOPE").status_code == 400


@pytest.mark.django_db
class TestKillLabelsDelete:
    def test_kill_marks_the_execution_and_its_runs_killed(self, client):
        execution_id = _create(client)
        row = models.Execution.objects.get(pk=execution_id)
        models.TaskRun.objects.create(id="run1", execution=row, seq=0, task_id="log", state="RUNNING",
                                      state_json={"current": "RUNNING", "histories": [
                                          {"state": "RUNNING", "date": "2024-01-01T00:00:00Z"}]})

        response = client.delete(f"{BASE}/executions/{execution_id}/kill")

        assert response.status_code == 202
        body = client.get(f"{BASE}/executions/{execution_id}").json()
        assert body["state"]["current"] == "KILLED"
        assert [h["state"] for h in body["state"]["histories"]][-2:] == ["KILLING", "KILLED"]
        assert body["taskRunList"][0]["state"]["current"] == "KILLED"
        assert models.LogEntry.objects.filter(execution_id=execution_id, message__icontains="killed").exists()

    def test_kill_of_a_finished_execution_is_409(self, client):
        execution_id = _create(client)
        client.delete(f"{BASE}/executions/{execution_id}/kill")

        response = client.delete(f"{BASE}/executions/{execution_id}/kill")

        assert response.status_code == 409
        assert "Execution is already finished, can't kill it" in response.json()["message"]

    def test_kill_unknown_is_404(self, client):
        assert client.delete(f"{BASE}/executions/unknown/kill").status_code == 404

    def test_labels_only_on_terminated_executions(self, client):
        execution_id = _create(client)

        running = client.post(f"{BASE}/executions/{execution_id}/labels", [{"key": "k", "value": "v"}],
                              format="json")
        client.delete(f"{BASE}/executions/{execution_id}/kill")
        done = client.post(f"{BASE}/executions/{execution_id}/labels", [{"key": "k", "value": "v"}], format="json")

        assert running.status_code == 400
        assert done.status_code == 200
        labels = {l["key"]: l["value"] for l in done.json()["labels"]}
        assert labels == {"k": "v", "system.correlationId": execution_id}

    def test_labels_refuse_new_system_labels(self, client):
        execution_id = _create(client)
        client.delete(f"{BASE}/executions/{execution_id}/kill")

        response = client.post(f"{BASE}/executions/{execution_id}/labels",
                               [{"key": "system.x", "value": "v"}], format="json")

        assert response.status_code == 422

    def test_delete(self, client):
        execution_id = _create(client)
        models.LogEntry.objects.create(execution_id=execution_id, namespace="company.team", flow_id="inputs",
                                       timestamp=models.Execution.objects.get(pk=execution_id).created,
                                       level="INFO", message="x")

        response = client.delete(f"{BASE}/executions/{execution_id}")

        assert response.status_code == 204
        assert client.get(f"{BASE}/executions/{execution_id}").status_code == 404
        assert not models.LogEntry.objects.filter(execution_id=execution_id).exists()
        assert client.delete(f"{BASE}/executions/{execution_id}").status_code == 404


@pytest.mark.django_db
class TestExecutionResources:
    def test_follow_ends_with_the_terminated_execution(self, client):
        execution_id = _create(client)
        client.delete(f"{BASE}/executions/{execution_id}/kill")

        response = client.get(f"{BASE}/executions/{execution_id}/follow")

        assert response["Content-Type"] == "text/event-stream"
        text = b"".join(response.streaming_content).decode()
        assert text.startswith("id: end\ndata: {")
        assert '"KILLED"' in text

    def test_flow_of_an_execution(self, client):
        execution_id = _create(client)

        body = client.get(f"{BASE}/executions/{execution_id}/flow").json()

        assert body["id"] == "inputs" and body["revision"] == 1 and "source" not in body

    def test_file_download_is_limited_to_the_execution(self, client, storage_dir):
        flow(INPUTS)
        created = execute(client, "inputs", {"name": "j", "file": SimpleUploadedFile("a.txt", b"abc")}).json()

        ok = client.get(f"{BASE}/executions/{created['id']}/file?path={created['inputs']['file']}")
        other = client.get(f"{BASE}/executions/{created['id']}/file?path=kestra:///company/team/other/x.txt")

        assert ok.status_code == 200 and b"".join(ok) == b"abc"
        assert 'filename="a.txt"' in ok["Content-Disposition"]
        assert other.status_code == 422


@pytest.mark.django_db
class TestLogs:
    def test_logs_filtered_by_level_and_task_run(self, client):
        execution_id = _create(client)
        created = models.Execution.objects.get(pk=execution_id).created
        for offset, (level, run) in enumerate([("DEBUG", "r1"), ("INFO", "r1"), ("ERROR", "r2")]):
            models.LogEntry.objects.create(execution_id=execution_id, namespace="company.team", flow_id="inputs",
                                           taskrun_id=run, timestamp=created + timedelta(seconds=offset),
                                           level=level, message=f"{level} line")

        everything = client.get(f"{BASE}/logs/{execution_id}").json()
        info = client.get(f"{BASE}/logs/{execution_id}?minLevel=INFO").json()
        run = client.get(f"{BASE}/executions/{execution_id}/logs?taskRunId=r1").json()
        text = client.get(f"{BASE}/logs/{execution_id}/download?minLevel=ERROR").content.decode()

        assert [l["level"] for l in everything] == ["DEBUG", "INFO", "ERROR"]
        assert [l["level"] for l in info] == ["INFO", "ERROR"]
        assert [l["message"] for l in run] == ["DEBUG line", "INFO line"]
        assert text.strip().endswith("ERROR ERROR line")

    def test_logs_of_unknown_execution_is_404(self, client):
        assert client.get(f"{BASE}/logs/unknown").status_code == 404


@pytest.mark.django_db
class TestWebhook:
    url = f"{BASE}/executions/webhook/company.team/webhook"

    def test_json_body_and_parameters_become_trigger_variables(self, client):
        flow(WEBHOOK)

        response = client.post(f"{self.url}/a-secret-key?name=john&age=12&age=13", {"a": 1, "b": True},
                               format="json")

        assert response.status_code == 200, response.content
        body = response.json()
        variables = body["trigger"]["variables"]
        assert variables["body"] == {"a": 1, "b": True}
        assert variables["parameters"] == {"name": ["john"], "age": ["12", "13"]}
        assert variables["headers"]["content-type"][0].startswith("application/json")
        assert body["trigger"]["id"] == "webhook"
        assert body["trigger"]["type"] == "io.kestra.plugin.core.trigger.Webhook"
        assert body["labels"][0] == {"key": "flow-label-1", "value": "flow-label-1"}
        assert {"tenantId", "id", "namespace", "flowId", "flowRevision", "state", "url"} <= set(body)
        assert models.Execution.objects.filter(pk=body["id"]).exists()

    def test_list_body_text_body_and_no_body(self, client):
        flow(WEBHOOK)

        as_list = client.put(f"{self.url}/a-secret-key", [{"a": 1}], format="json").json()
        as_text = client.post(f"{self.url}/a-secret-key", "bla", content_type="text/plain").json()
        broken = client.post(f"{self.url}/a-secret-key", '{\\"a\\":\\"\\"}', content_type="application/json")
        empty = client.get(f"{self.url}/a-secret-key").json()

        assert as_list["trigger"]["variables"]["body"] == [{"a": 1}]
        assert as_text["trigger"]["variables"]["body"] == "bla"
        assert broken.json()["trigger"]["variables"]["body"] == '{\\"a\\":\\"\\"}'
        assert empty["trigger"]["variables"]["body"] is None

    def test_rendered_key(self, client):
        flow(WEBHOOK)

        assert client.get(f"{self.url}/webhook-key").status_code == 200

    def test_unknown_flow_key_or_disabled_trigger_is_404(self, client):
        flow(WEBHOOK)

        unknown_flow = client.get(f"{BASE}/executions/webhook/not-found/webhook/not-found")
        unknown_key = client.get(f"{self.url}/nope")
        disabled = client.get(f"{self.url}/disabled-key")

        assert unknown_flow.status_code == 404
        assert "Webhook not found" in unknown_flow.json()["message"]  # flows cannot be enumerated
        assert unknown_key.status_code == 404
        assert "Webhook not found" in unknown_key.json()["message"]
        assert disabled.status_code == 404

    def test_false_condition_is_204_without_execution(self, client):
        flow(WEBHOOK_CONDITION)
        url = f"{BASE}/executions/webhook/company.team/webhook-with-condition/webhookKey"

        accepted = client.post(url, {"hello": "world"}, format="json")
        refused = client.post(url, {"hello": "webhook"}, format="json")

        assert accepted.status_code == 200
        assert refused.status_code == 204
        assert models.Execution.objects.count() == 1

    def test_disabled_flow_is_409(self, client):
        flow(WEBHOOK + "disabled: true\n")

        assert client.get(f"{self.url}/a-secret-key").status_code == 409

    def test_key_from_a_secret_and_inputs_from_the_call(self, client, monkeypatch):
        import base64

        monkeypatch.setenv("SECRET_WEBHOOK_KEY", base64.b64encode(b"secretKey").decode())
        flow(WEBHOOK_SECRET)

        response = client.post(f"{BASE}/executions/webhook/company.team/webhook-secret-key/secretKey",
                               {"who": "ann"}, format="json")

        assert response.status_code == 200, response.content
        execution = models.Execution.objects.get(pk=response.json()["id"])
        assert execution.inputs == {"name": "ann"}
        labels = {l["key"]: l["value"] for l in execution.labels}
        assert labels["source"] == "webhook"

    def test_tenantless_path(self, client):
        flow(WEBHOOK)

        assert client.get("/api/v1/executions/webhook/company.team/webhook/a-secret-key").status_code == 200


# --- with a running executor and workers -------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_wait_returns_the_terminated_execution(client, runtime):
    flow(RETURN)

    response = execute(client, "return", {"name": "api"}, "?wait=true")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"]["current"] == "SUCCESS"
    assert body["outputs"] == {"greeting": "hello api"}
    assert body["url"].endswith(body["id"])


@pytest.mark.django_db(transaction=True)
def test_kill_a_running_execution(client, runtime):
    from flows_app.services import wait_for

    flow(SLEEP)
    execution_id = execute(client, "sleep").json()["id"]
    wait_for(execution_id, until={"RUNNING"}, timeout=30)
    for _ in range(200):  # the Sleep task run exists once the executor took its first step
        if models.TaskRun.objects.filter(execution_id=execution_id).exists():
            break
        import time

        time.sleep(0.05)

    response = client.delete(f"{BASE}/executions/{execution_id}/kill")

    assert response.status_code == 202
    final = wait_for(execution_id, timeout=30)
    assert final.state.current == "KILLED"
    assert [run.state.current for run in final.task_runs] == ["KILLED"]
