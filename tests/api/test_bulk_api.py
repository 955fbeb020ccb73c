"""Kestra's bulk execution actions: ``/executions/{action}/by-ids`` and ``/executions/{action}/by-query``."""
from __future__ import annotations

import json

import pytest

from flows_app import models
from flows_app.services import create_execution, deploy_flow, wait_for
from orchestrator.runtime.flows import clear_cache

BASE = "/api/v1/main/executions"

FAILING = """id: failing
namespace: company.bulk
tasks:
  - id: ko
    type: io.kestra.plugin.core.execution.Fail
"""

SLEEP = """id: sleeping
namespace: company.bulk
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT30S
"""


def run(source: str, wait: bool = True) -> str:
    clear_cache()
    deployed = deploy_flow(source)
    execution = create_execution(deployed.parsed.namespace, deployed.parsed.id, {})
    if wait:
        wait_for(execution.id, timeout=30)
    return execution.id


def send(client, method: str, path: str, body=None):
    call = getattr(client, method)
    return call(f"{BASE}/{path}", data=json.dumps(body) if body is not None else None,
                content_type="application/json")


def state_of(execution_id: str) -> str:
    return models.Execution.objects.get(pk=execution_id).state


@pytest.mark.django_db(transaction=True)
def test_restart_by_ids_restarts_every_execution(client, runtime):
    ids = [run(FAILING), run(FAILING)]
    assert {state_of(i) for i in ids} == {"FAILED"}
    answer = send(client, "post", "restart/by-ids", ids)
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"count": 2}
    for execution_id in ids:
        restarted = wait_for(execution_id, timeout=30)
        assert restarted.state.current == "FAILED"
        assert len(restarted.state.histories) > 3  # FAILED -> RESTARTED -> RUNNING -> FAILED again
    # the literal route wins: no execution of a flow "by-ids" in a namespace "restart"
    assert not models.Execution.objects.filter(namespace="restart").exists()


@pytest.mark.django_db(transaction=True)
def test_one_refused_execution_refuses_the_whole_bulk(client, runtime):
    done = run(FAILING)
    runs_before = models.TaskRun.objects.filter(execution_id=done).count()
    answer = send(client, "post", "restart/by-ids", [done, "nope"])
    assert answer.status_code == 400
    body = answer.json()
    assert body["message"] == "invalid bulk restart"
    assert body["invalids"] == [{"message": "execution not found", "invalidValue": "nope", "propertyPath": "execution"}]
    assert state_of(done) == "FAILED"
    assert models.TaskRun.objects.filter(execution_id=done).count() == runs_before
    assert send(client, "post", "restart/by-ids", {"not": "a list"}).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_kill_by_query_kills_the_running_executions_of_a_flow(client, runtime):
    finished = run(FAILING)  # first: the sleeping tasks may hold every worker slot
    running = [run(SLEEP, wait=False), run(SLEEP, wait=False)]
    answer = client.delete(f"{BASE}/kill/by-query?filters[flowId][EQUALS]=sleeping")
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"count": 2}
    for execution_id in running:
        assert wait_for(execution_id, timeout=30).state.current == "KILLED"
    refused = send(client, "delete", "kill/by-ids", [finished])
    assert refused.status_code == 400
    assert refused.json()["invalids"][0]["message"] == "execution already finished"


@pytest.mark.django_db(transaction=True)
def test_delete_by_ids_soft_deletes_terminated_executions_only(client, runtime):
    done = run(FAILING)
    running = run(SLEEP, wait=False)
    refused = send(client, "delete", "by-ids", [done, running])
    assert refused.status_code == 400
    assert refused.json()["message"] == "invalid bulk delete"
    assert not models.Execution.objects.get(pk=done).deleted
    answer = send(client, "delete", "by-ids", [done])
    assert answer.json() == {"count": 1}
    assert models.Execution.objects.get(pk=done).deleted
    assert client.get(f"{BASE}/{done}").status_code == 404
    send(client, "delete", "kill/by-ids", [running])
    wait_for(running, timeout=30)


@pytest.mark.django_db(transaction=True)
def test_labels_by_ids_merge_with_the_existing_labels(client, runtime):
    done = run(FAILING)
    answer = send(client, "post", "labels/by-ids",
                  {"executionsId": [done], "executionLabels": [{"key": "team", "value": "data"}]})
    assert answer.status_code == 200, answer.content
    labels = {label["key"]: label["value"] for label in client.get(f"{BASE}/{done}").json()["labels"]}
    assert labels["team"] == "data"


@pytest.mark.django_db(transaction=True)
def test_change_status_by_ids_needs_a_terminal_status(client, runtime):
    done = run(FAILING)
    assert send(client, "post", "change-status/by-ids?newStatus=RUNNING", [done]).status_code == 400
    assert send(client, "post", "change-status/by-ids", [done]).status_code == 400
    answer = send(client, "post", "change-status/by-ids?newStatus=SUCCESS", [done])
    assert answer.json() == {"count": 1}
    assert state_of(done) == "SUCCESS"
