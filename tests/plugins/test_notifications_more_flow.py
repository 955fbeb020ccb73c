"""Through the runtime: a failing flow alerts Sentry, Zenduty and LINE from its `errors` branch (secrets
pointing at an endpoint of the test's own), and the archives example flow packs and unpacks files."""
from __future__ import annotations

import json
from pathlib import Path

from .test_notifications_more import Endpoint, server  # noqa: F401 - the module's HTTP endpoint fixture

ROOT = Path(__file__).resolve().parents[2]

FLOW = """
id: nightly-load
namespace: company.team
tasks:
  - id: extract
    type: io.kestra.plugin.core.log.Log
    message: extracting
  - id: load
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: the warehouse is down
errors:
  - id: sentry
    type: io.kestra.plugin.sentry.SentryExecution
    dsn: "{{ secret('SENTRY_DSN') }}"
    transaction: /execution/id/{{ execution.id }}
  - id: zenduty
    type: io.kestra.plugin.zenduty.ZendutyExecution
    url: "{{ secret('ZENDUTY_URL') }}"
  - id: line
    type: io.kestra.plugin.line.LineExecution
    url: "{{ secret('LINE_URL') }}"
    channelAccessToken: "{{ secret('LINE_TOKEN') }}"
    customMessage: "{{ flow.id }} failed"
"""


def test_errors_branch_alerts_with_the_execution_summary(run_flow, server: Endpoint) -> None:  # noqa: F811
    from secrets_app.store import set_secret

    set_secret("company.team", "SENTRY_DSN", f"{server.url}/sentry/api/1/envelope/")
    set_secret("company.team", "ZENDUTY_URL", f"{server.url}/zenduty/api/events/KEY/")
    set_secret("company.team", "LINE_URL", f"{server.url}/line/v2/bot/message/broadcast")
    set_secret("company.team", "LINE_TOKEN", "line-token")
    before = len(server.requests)
    execution = run_flow(FLOW)
    assert execution.state.current == "FAILED"
    states = {r.task_id: r.state.current for r in execution.task_runs}
    assert states == {"extract": "SUCCESS", "load": "FAILED", "sentry": "SUCCESS", "zenduty": "SUCCESS",
                      "line": "SUCCESS"}
    posted = {r["path"].split("/")[1]: r for r in server.requests[before:]}
    _head, _item, event = posted["sentry"]["body"].split("\n", 2)
    event = json.loads(event)
    assert event["transaction"] == f"/execution/id/{execution.id}" and event["level"] == "error"
    assert event["extra"]["Execution ID"] == execution.id and event["extra"]["Flow ID"] == "nightly-load"
    zenduty = json.loads(posted["zenduty"]["body"])
    assert zenduty["entity_id"] == execution.id and zenduty["payload"]["Namespace"] == "company.team"
    assert posted["line"]["headers"]["Authorization"] == "Bearer line-token"
    text = json.loads(posted["line"]["body"])["messages"][0]["text"]
    assert text.startswith(f"Execution RUNNING\n\nDetails:\n- ID: {execution.id}\n- Namespace: company.team\n")
    assert "\n\nnightly-load failed\n\n" in text


def test_archives_example_flow(run_flow) -> None:
    execution = run_flow((ROOT / "flows" / "archives.yaml").read_text())
    assert execution.state.current == "SUCCESS", [(r.task_id, r.state.current) for r in execution.task_runs]
    outputs = {r.task_id: r.outputs for r in execution.task_runs}
    assert sorted(outputs["unpack"]["files"]) == ["README.txt", "data/orders.csv"]
    assert outputs["pack"]["uri"].startswith("kestra://")
