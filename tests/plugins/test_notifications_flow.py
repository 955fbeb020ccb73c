"""A SQL → notification flow through the runtime: PostgreSQL and DuckDB queries, then Slack messages
(one written, one summarising the execution) and an e-mail, to servers of the test's own."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .test_jdbc import pg_url  # noqa: F401 - the module's PostgreSQL database fixture
from .test_notifications import Receiver, receiver, smtp, wait_for  # noqa: F401 - fixtures

FLOW = """
id: orders-report
namespace: company.team
tasks:
  - id: seed
    type: io.kestra.plugin.jdbc.postgresql.Queries
    url: "{pg_url}"
    username: "{{{{ secret('PG_USER') }}}}"
    sql: |
      DROP TABLE IF EXISTS orders;
      CREATE TABLE orders (id int, amount numeric(8,2), placed date);
      INSERT INTO orders VALUES (1, 2.50, '2024-01-01'), (2, 4, '2024-01-02');
  - id: totals
    type: io.kestra.plugin.jdbc.postgresql.Query
    url: "{pg_url}"
    username: "{{{{ secret('PG_USER') }}}}"
    sql: SELECT count(*) AS n, sum(amount) AS total FROM orders WHERE placed >= :since
    parameters:
      since: "2024-01-01"
    fetchType: FETCH_ONE
  - id: export
    type: io.kestra.plugin.jdbc.postgresql.Query
    url: "{pg_url}"
    username: "{{{{ secret('PG_USER') }}}}"
    sql: SELECT id, amount FROM orders ORDER BY id
    fetchType: STORE
  - id: squares
    type: io.kestra.plugin.jdbc.duckdb.Query
    sql: SELECT i, i * i AS sq FROM range(3) t(i)
    fetchType: FETCH
  - id: message
    type: io.kestra.plugin.slack.notifications.SlackIncomingWebhook
    url: "{{{{ secret('SLACK_WEBHOOK') }}}}"
    messageText: "{{{{ outputs.totals.row.n }}}} orders for {{{{ outputs.totals.row.total }}}}, {{{{ outputs.export.size }}}} exported"
  - id: summary
    type: io.kestra.plugin.notifications.slack.SlackExecution
    url: "{{{{ secret('SLACK_WEBHOOK') }}}}"
    customMessage: "squares: {{{{ outputs.squares.rows | jq('.[].sq') }}}}"
  - id: mail
    type: io.kestra.plugin.email.MailSend
    host: 127.0.0.1
    port: {smtp_port}
    transportStrategy: SMTP
    from: celestra@example.com
    to: ops@example.com
    subject: "Orders of {{{{ execution.id }}}}"
    plainTextContent: "{{{{ outputs.totals.row.n }}}} orders"
    attachments:
      - name: orders.ion
        uri: "{{{{ outputs.export.uri }}}}"
"""


def test_sql_then_notifications_through_the_runtime(run_flow, settings, tmp_path: Path, pg_url: str,  # noqa: F811
                                                    receiver: Receiver, smtp: tuple[Any, int]) -> None:  # noqa: F811
    from secrets_app.store import set_secret

    settings.MEDIA_ROOT = str(tmp_path)
    box, port = smtp
    set_secret("company.team", "PG_USER", "postgres")
    set_secret("company.team", "SLACK_WEBHOOK", f"{receiver.url}/services/flow")
    before = len(receiver.requests)
    mails = len(box.messages)
    execution = run_flow(FLOW.format(pg_url=pg_url, smtp_port=port))
    assert execution.state.current == "SUCCESS", [(r.task_id, r.state.current) for r in execution.task_runs]
    outputs = {r.task_id: r.outputs for r in execution.task_runs}
    assert outputs["totals"] == {"row": {"n": 2, "total": 6.5}, "size": 1}
    assert outputs["export"]["size"] == 2 and outputs["export"]["uri"].endswith(".ion")
    assert outputs["squares"] == {"rows": [{"i": 0, "sq": 0}, {"i": 1, "sq": 1}, {"i": 2, "sq": 4}], "size": 3}
    posted = [r for r in receiver.requests[before:] if r["path"] == "/services/flow"]
    assert len(posted) == 2
    assert json.loads(posted[0]["body"]) == {"text": "2 orders for 6.5, 2 exported"}
    summary = json.loads(posted[1]["body"])
    base = str(settings.CELESTRA.get("URL") or "").rstrip("/")
    link = f"{base}/ui/main/executions/company.team/orders-report/{execution.id}"
    assert summary["text"].startswith(f"*<{link}|[company.team] orders-report ➛ RUNNING>*\n> Succeeded after ")
    assert summary["blocks"][0]["text"]["text"] == "squares: [0,1,4]"
    fields = {f["title"]: f["value"] for f in summary["attachments"][0]["fields"]}
    assert fields["Execution ID"] == execution.id and fields["Final task ID"] == "summary"
    wait_for(lambda: len(box.messages) > mails)
    message = box.messages[-1]["message"]
    assert message["Subject"] == f"Orders of {execution.id}"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content().decode() == "{id:1,amount:2.50}\n{id:2,amount:4.00}\n"
