"""Label filters in the form Kestra's UI and SDK send: ``filters[labels][OP][key]=value``."""
from __future__ import annotations

import pytest

from flows_app.services import create_execution, deploy_flow

BASE = "/api/v1/main"

FLOW = """id: labelled
namespace: company.labels
labels:
  team: data
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
"""
OTHER = FLOW.replace("id: labelled", "id: other").replace("team: data", "team: web")


@pytest.mark.django_db
def test_executions_are_filtered_by_a_keyed_label(client):
    deploy_flow(FLOW)
    wanted = create_execution("company.labels", "labelled", {}, labels=[("env", "prod")])
    create_execution("company.labels", "labelled", {}, labels=[("env", "dev")])

    prod = client.get(f"{BASE}/executions/search?filters[labels][EQUALS][env]=prod").json()
    not_prod = client.get(f"{BASE}/executions/search?filters[labels][NOT_EQUALS][env]=prod").json()

    assert [e["id"] for e in prod["results"]] == [wanted.id]
    assert prod["total"] == 1
    assert wanted.id not in {e["id"] for e in not_prod["results"]}
    assert not_prod["total"] == 1


@pytest.mark.django_db
def test_flows_are_filtered_by_a_keyed_label(client):
    deploy_flow(FLOW)
    deploy_flow(OTHER)

    body = client.get(f"{BASE}/flows/search?filters[labels][EQUALS][team]=web").json()

    assert [f["id"] for f in body["results"]] == ["other"]


@pytest.mark.django_db
def test_a_key_on_another_field_is_refused(client):
    answer = client.get(f"{BASE}/executions/search?filters[namespace][EQUALS][x]=y")
    assert answer.status_code == 400
    assert "only labels take a key" in answer.json()["message"]
