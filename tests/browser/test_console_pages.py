"""The console's pages and actions through Django's test client, on real executions."""
from __future__ import annotations

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
    html = page.content.decode()
    assert "boom at the end" in html  # the failed task run's error
    assert "more iterations collapsed" in html  # 60 iterations are collapsed
    assert 'data-task="hello"' in html
    assert html.count('data-task="hello"') < 60
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
