"""Executions API operations: restart, replay, task run state, change-status, pause/resume, unqueue,
force-run (spec §8.6-§8.11, §11.3), through a running executor and workers."""
from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from flows_app import models
from flows_app.services import deploy_flow, wait_for

BASE = "/api/v1/main"
PAUSED_OR_ENDED = {"PAUSED", "SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED"}

LAST_FAILED = """id: last-failed
namespace: company.team
tasks:
  - id: a
    type: io.kestra.plugin.core.debug.Return
    format: a
  - id: b
    type: io.kestra.plugin.core.log.Log
    message: "{{ taskrun.attemptsCount == 1 ? 'ok' : ko }}"
  - id: c
    type: io.kestra.plugin.core.debug.Return
    format: c
"""

FAILING = """id: failing
namespace: company.team
tasks:
  - id: ko
    type: io.kestra.plugin.core.execution.Fail
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: after
"""

INPUTS = """id: with-inputs
namespace: company.team
inputs:
  - id: name
    type: STRING
tasks:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.name }}"
  - id: second
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.first.value }}!"
"""

PAUSE = """id: pause-on-resume
namespace: company.team
tasks:
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: asked
        type: STRING
      - id: data
        type: FILE
        required: false
  - id: last
    type: io.kestra.plugin.core.output.OutputValues
    values:
      asked: "{{ outputs.pause.onResume.asked }}"
      data: "{{ outputs.pause.onResume.data ?? 'none' }}"
"""

SLEEP = """id: sleep
namespace: company.team
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1S
"""

QUEUED = """id: one-at-a-time
namespace: company.team
concurrency:
  limit: 1
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT2S
"""


@pytest.fixture
def client(api_client) -> APIClient:
    return api_client


@pytest.fixture
def storage_dir(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def flow(source: str) -> None:
    from orchestrator.runtime.flows import clear_cache

    clear_cache()
    deploy_flow(source)


def start(client: APIClient, flow_id: str, data: dict | None = None) -> str:
    response = client.post(f"{BASE}/executions/company.team/{flow_id}", data=data or {}, format="multipart")
    assert response.status_code == 200, response.content
    return response.json()["id"]


def run_to_end(client: APIClient, flow_id: str, data: dict | None = None):
    return wait_for(start(client, flow_id, data), timeout=30)


def post(client: APIClient, path: str, data=None, fmt: str | None = None):
    return client.post(f"{BASE}/executions/{path}", data=data, format=fmt)


def wait_for_runs(execution_id: str, count: int = 1) -> None:
    """Until the executor created the execution's first task runs."""
    for _ in range(400):
        if models.TaskRun.objects.filter(execution_id=execution_id).count() >= count:
            return
        time.sleep(0.02)


def labels(body: dict) -> dict[str, str]:
    return {label["key"]: label["value"] for label in body["labels"]}


# --- restart -------------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_restart_reruns_the_failed_task_in_the_same_execution(client, runtime):
    flow(LAST_FAILED)
    failed = run_to_end(client, "last-failed")
    assert failed.state.current == "FAILED"

    response = post(client, f"{failed.id}/restart")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == failed.id
    assert body["state"]["current"] == "RESTARTED"
    assert [(r["taskId"], r["state"]["current"]) for r in body["taskRunList"]] == [("a", "SUCCESS"),
                                                                                 ("b", "RESTARTED")]
    assert labels(body)["system.restarted"] == "true"
    assert body["metadata"]["attemptNumber"] == 2
    final = wait_for(failed.id, timeout=30)
    assert final.state.current == "SUCCESS"
    assert [len(r.attempts) for r in final.task_runs] == [1, 2, 1]


@pytest.mark.django_db(transaction=True)
def test_restart_errors(client, runtime):
    flow(INPUTS)
    done = run_to_end(client, "with-inputs", {"name": "x"})

    nothing_failed = post(client, f"{done.id}/restart")
    unknown = post(client, "unknownExecutionId/restart")
    bad_revision = post(client, f"{done.id}/restart?revision=42")

    assert nothing_failed.status_code == 422
    assert "No task found to restart execution from!" in nothing_failed.json()["message"]
    assert unknown.status_code == 404
    assert bad_revision.status_code == 404
    assert "Unable to find revision 42" in bad_revision.json()["message"]


@pytest.mark.django_db(transaction=True)
def test_restart_of_a_running_execution_is_409(client, runtime):
    flow(SLEEP)
    execution_id = start(client, "sleep")
    wait_for(execution_id, until={"RUNNING"}, timeout=30)

    response = post(client, f"{execution_id}/restart")

    assert response.status_code == 409
    assert "Execution must be terminated to be restarted" in response.json()["message"]
    wait_for(execution_id, timeout=30)


# --- replay --------------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_replay_from_a_task_run_is_a_new_execution(client, runtime):
    flow(INPUTS)
    original = run_to_end(client, "with-inputs", {"name": "x"})
    second = next(r for r in original.task_runs if r.task_id == "second")

    response = post(client, f"{original.id}/replay?taskRunId={second.id}")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] != original.id
    assert body["parentId"] == original.id
    assert body["originalId"] == original.id
    assert body["state"]["current"] == "RESTARTED"
    assert [(r["taskId"], r["state"]["current"]) for r in body["taskRunList"]] == [("first", "SUCCESS"),
                                                                                 ("second", "RESTARTED")]
    assert labels(body)["system.replay"] == "true"
    assert body["inputs"] == {"name": "x"}
    final = wait_for(body["id"], timeout=30)
    assert final.state.current == "SUCCESS"
    assert [r.outputs for r in final.task_runs] == [{"value": "x"}, {"value": "x!"}]
    replayed = client.get(f"{BASE}/executions/{original.id}").json()
    assert labels(replayed)["system.replayed"] == "true"


@pytest.mark.django_db(transaction=True)
def test_replay_from_the_start_and_with_new_inputs(client, runtime):
    flow(INPUTS)
    original = run_to_end(client, "with-inputs", {"name": "x"})

    again = post(client, f"{original.id}/replay")
    other = post(client, f"{original.id}/replay-with-inputs", {"name": "y"}, "multipart")
    invalid = post(client, f"{original.id}/replay-with-inputs", {}, "multipart")
    unknown_run = post(client, f"{original.id}/replay?taskRunId=unknownTaskId")

    assert again.status_code == 200, again.content
    assert again.json()["state"]["current"] == "CREATED"
    assert again.json()["taskRunList"] is None
    assert wait_for(again.json()["id"], timeout=30).state.current == "SUCCESS"
    assert other.status_code == 200, other.content
    final = wait_for(other.json()["id"], timeout=30)
    assert final.inputs == {"name": "y"}
    assert final.task_runs[-1].outputs == {"value": "y!"}
    assert invalid.status_code == 422
    assert unknown_run.status_code == 422
    assert "No task found" in unknown_run.json()["message"]


# --- task run state and execution status ---------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_marking_a_failed_task_success_continues_the_flow(client, runtime):
    flow(FAILING)
    failed = run_to_end(client, "failing")
    ko = failed.task_runs[0]

    response = post(client, f"{failed.id}/state", {"taskRunId": ko.id, "state": "SUCCESS"}, "json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"]["current"] == "RESTARTED"
    assert body["taskRunList"][0]["state"]["current"] == "SUCCESS"
    assert labels(body)["system.restarted"] == "true"
    final = wait_for(failed.id, timeout=30)
    assert final.state.current == "SUCCESS"
    assert [r.task_id for r in final.task_runs] == ["ko", "after"]
    assert post(client, f"{failed.id}/state", {"state": "SUCCESS"}, "json").status_code == 400


@pytest.mark.django_db(transaction=True)
def test_change_status_of_a_terminated_execution(client, runtime):
    flow(FAILING)
    failed = run_to_end(client, "failing")

    changed = post(client, f"{failed.id}/change-status?status=SUCCESS")
    not_terminal = post(client, f"{failed.id}/change-status?status=RUNNING")
    unknown_state = post(client, f"{failed.id}/change-status?status=NOPE")

    assert changed.status_code == 200, changed.content
    assert changed.json()["state"]["current"] == "SUCCESS"
    assert models.Execution.objects.get(pk=failed.id).state == "SUCCESS"
    assert not_terminal.status_code == 422
    assert "to a terminal state" in not_terminal.json()["message"]
    assert unknown_state.status_code == 400


# --- pause / resume ------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_resume_a_paused_execution_with_inputs_and_a_file(client, runtime, storage_dir):
    flow(PAUSE)
    execution_id = start(client, "pause-on-resume")
    assert wait_for(execution_id, until=PAUSED_OR_ENDED, timeout=30).state.current == "PAUSED"

    validated = post(client, f"{execution_id}/resume/validate", {"asked": "yes"}, "multipart")
    missing = post(client, f"{execution_id}/resume", {}, "multipart")
    response = post(client, f"{execution_id}/resume",
                    {"asked": "yes", "data": SimpleUploadedFile("data.txt", b"content")}, "multipart")

    assert validated.status_code == 200, validated.content
    assert [(i["input"]["id"], i["value"]) for i in validated.json()["inputs"]] == [("asked", "yes"), ("data", None)]
    assert missing.status_code == 422
    assert "missing required input" in missing.json()["message"]
    assert response.status_code == 204, response.content
    final = wait_for(execution_id, timeout=30)
    assert final.state.current == "SUCCESS"
    pause = final.task_runs[0]
    assert pause.outputs["onResume"]["asked"] == "yes"
    assert pause.outputs["onResume"]["data"].startswith(f"kestra:///company/team/pause-on-resume/executions/"
                                                        f"{execution_id}/inputs/data/")
    assert final.task_runs[1].outputs["values"]["asked"] == "yes"
    assert post(client, f"{execution_id}/resume").status_code == 409
    assert post(client, f"{execution_id}/resume/validate").status_code == 409


@pytest.mark.django_db(transaction=True)
def test_pause_and_resume_a_running_execution(client, runtime):
    flow(SLEEP)
    execution_id = start(client, "sleep")
    wait_for(execution_id, until={"RUNNING"}, timeout=30)
    wait_for_runs(execution_id)

    paused = post(client, f"{execution_id}/pause")
    state_while_paused = models.Execution.objects.get(pk=execution_id).state
    resumed = post(client, f"{execution_id}/resume")

    assert paused.status_code == 200, paused.content
    assert state_while_paused == "PAUSED"
    assert resumed.status_code == 204, resumed.content
    assert wait_for(execution_id, timeout=30).state.current == "SUCCESS"
    not_running = post(client, f"{execution_id}/pause")
    assert not_running.status_code == 422
    assert "The execution is not running" in not_running.json()["message"]


@pytest.mark.django_db(transaction=True)
def test_kill_a_paused_execution(client, runtime):
    flow(PAUSE)
    execution_id = start(client, "pause-on-resume")
    wait_for(execution_id, until=PAUSED_OR_ENDED, timeout=30)

    response = client.delete(f"{BASE}/executions/{execution_id}/kill")

    assert response.status_code == 202
    final = wait_for(execution_id, timeout=30)
    assert final.state.current == "KILLED"
    assert [r.state.current for r in final.task_runs] == ["KILLED"]


# --- concurrency queue and force run -------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_unqueue_and_force_run_start_queued_executions_now(client, runtime):
    flow(QUEUED)
    first = start(client, "one-at-a-time")
    wait_for(first, until={"RUNNING"}, timeout=30)
    second = start(client, "one-at-a-time")
    third = start(client, "one-at-a-time")
    fourth = start(client, "one-at-a-time")
    for execution_id in (second, third, fourth):
        wait_for(execution_id, until={"QUEUED"}, timeout=30)

    unqueued = post(client, f"{second}/unqueue")
    forced = post(client, f"{third}/force-run")
    cancelled = post(client, f"{fourth}/unqueue?state=CANCELLED")
    not_queued = post(client, f"{first}/unqueue")

    assert unqueued.status_code == 200, unqueued.content
    assert unqueued.json()["state"]["current"] == "RUNNING"
    assert forced.status_code == 200, forced.content
    assert forced.json()["state"]["current"] == "RUNNING"
    assert cancelled.json()["state"]["current"] == "CANCELLED"
    assert not_queued.status_code == 422
    assert "Only QUEUED execution can be unqueued" in not_queued.json()["message"]
    for execution_id in (first, second, third):
        assert wait_for(execution_id, timeout=30).state.current == "SUCCESS"
    terminated = post(client, f"{first}/force-run")
    assert terminated.status_code == 422
    assert "Only non terminated executions can be forced run." in terminated.json()["message"]
