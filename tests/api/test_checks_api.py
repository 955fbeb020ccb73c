"""Flow ``checks`` through the API: block (422, nothing kept), fail (created FAILED, logged), create."""
from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from flows_app import models
from flows_app.services import deploy_flow, wait_for
from orchestrator.engine import states

BASE = "/api/v1/main"


def flow(behavior: str) -> str:
    flow_id = f"checks-{behavior.lower()}-{uuid.uuid4().hex[:6]}"
    deploy_flow(f"""id: {flow_id}
namespace: company.checks
inputs:
  - id: n
    type: INT
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "ran with {{{{ inputs.n }}}}"
checks:
  - condition: "{{{{ inputs.n > 3 }}}}"
    message: n must exceed 3
    style: ERROR
    behavior: {behavior}
""")
    return flow_id


def create(flow_id: str, n: int):
    return APIClient().post(f"{BASE}/executions/company.checks/{flow_id}", {"n": str(n)}, format="multipart")


@pytest.mark.django_db(transaction=True)
def test_a_blocking_check_refuses_the_creation_with_its_message(runtime):
    flow_id = flow("BLOCK_EXECUTION")

    response = create(flow_id, 1)

    assert response.status_code == 422, response.content
    assert response.json()["message"] == ("Illegal argument: Flow execution blocked: one or more condition checks "
                                          "evaluated to false.\nFailed checks: n must exceed 3")
    assert not models.Execution.objects.filter(flow_id=flow_id).exists()
    # a passing check lets it run
    ok = create(flow_id, 5)
    assert ok.status_code == 200, ok.content
    assert wait_for(ok.json()["id"]).state.current == states.SUCCESS


@pytest.mark.django_db(transaction=True)
def test_a_failing_check_creates_the_execution_failed_and_logs_why(runtime):
    flow_id = flow("FAIL_EXECUTION")

    response = create(flow_id, 1)

    assert response.status_code == 200, response.content
    assert response.json()["state"]["current"] == states.FAILED
    execution = wait_for(response.json()["id"])
    assert execution.state.current == states.FAILED
    assert execution.task_runs == []
    lines = [(e.level, e.message) for e in models.LogEntry.objects.filter(execution_id=execution.id)]
    assert ("WARN", "Flow execution failed because one or more condition checks evaluated to false.") in lines
    assert ("ERROR", "n must exceed 3") in lines


@pytest.mark.django_db(transaction=True)
def test_a_create_check_only_informs(runtime):
    flow_id = flow("CREATE_EXECUTION")

    response = create(flow_id, 1)

    assert response.status_code == 200, response.content
    assert wait_for(response.json()["id"]).state.current == states.SUCCESS
    validate = APIClient().post(f"{BASE}/executions/company.checks/{flow_id}/validate", {"n": "1"},
                                format="multipart")
    assert validate.json()["checks"] == [{"message": "n must exceed 3", "style": "ERROR",
                                          "behavior": "CREATE_EXECUTION"}]
