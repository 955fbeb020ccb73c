"""``GET /logs/{executionId}/follow``: log entries as server-sent events while the execution runs."""
from __future__ import annotations

import json

import pytest

from flows_app.services import create_execution, deploy_flow
from orchestrator.runtime.flows import clear_cache

FLOW = """id: chatty
namespace: company.follow
tasks:
  - id: first
    type: io.kestra.plugin.core.log.Log
    message: one
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1S
  - id: second
    type: io.kestra.plugin.core.log.Log
    message: two
    level: DEBUG
"""


def events(response) -> list[tuple[str, dict]]:
    text = b"".join(response.streaming_content).decode()
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["id"], json.loads(lines["data"])))
    return out


@pytest.mark.django_db(transaction=True)
def test_follow_streams_the_logs_until_the_execution_ends(client, runtime):
    clear_cache()
    deploy_flow(FLOW)
    execution = create_execution("company.follow", "chatty", {})

    response = client.get(f"/api/v1/main/logs/{execution.id}/follow")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    received = events(response)
    assert received[0] == ("start", {})
    assert {event_id for event_id, _ in received[1:]} == {"progress"}
    task_messages = [(data["taskId"], data["message"]) for _, data in received[1:] if data["taskId"]]
    assert task_messages == [("first", "one"), ("second", "two")]
    assert received[-1][1]["message"].endswith("SUCCESS")  # the execution's own last line, then the end


@pytest.mark.django_db(transaction=True)
def test_follow_filters_by_min_level(client, runtime):
    clear_cache()
    deploy_flow(FLOW)
    execution = create_execution("company.follow", "chatty", {})

    received = events(client.get(f"/api/v1/main/logs/{execution.id}/follow?minLevel=INFO"))

    assert [data["message"] for _, data in received[1:] if data["taskId"]] == ["one"]


@pytest.mark.django_db
def test_follow_of_an_unknown_execution_is_404(client):
    assert client.get("/api/v1/main/logs/nope/follow").status_code == 404
