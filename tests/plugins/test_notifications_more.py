"""Sentry, LINE, Zenduty, Twilio, WhatsApp, SendGrid and Squadcast against an HTTP endpoint of the test's own.

Each test asserts the exact request Kestra's task would send (URL, headers, body); the endpoint answers
``/status/<code>`` with that status, and SendGrid's ``/v3/mail/send`` with 202 and a message id.
"""
from __future__ import annotations

import base64
import json
import re
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from orchestrator.engine.errors import TaskFailure
from orchestrator.plugins.notifications.sentry import endpoint

from .test_notifications import ctx_with_executions
from .test_storage_kv_plugins import Ctx, run

LINK = "http://celestra.example/ui/main/executions/prod.sales/nightly/exec-failed"
INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6})?Z$")


class Endpoint:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        endpoint_ = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
                endpoint_.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                match = re.match(r"^/status/(\d+)", self.path)
                code = int(match.group(1)) if match else 202 if self.path == "/v3/mail/send" else 200
                answer = b'{"errors": [{"message": "bad key"}]}' if code >= 400 else b""
                self.send_response(code)
                if self.path == "/v3/mail/send":
                    self.send_header("X-Message-Id", "msg-42")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def last(self) -> dict[str, Any]:
        return self.requests[-1]

    def last_json(self) -> Any:
        return json.loads(self.last["body"])


@pytest.fixture(scope="module")
def server() -> Iterator[Endpoint]:
    http = Endpoint()
    yield http
    http.httpd.shutdown()
    http.httpd.server_close()


def failed_ctx() -> Ctx:
    return ctx_with_executions(trigger={"executionId": "exec-failed", "state": "FAILED"})


# --- Sentry ---------------------------------------------------------------------------------------------

def test_sentry_dsn_gives_the_envelope_and_store_urls() -> None:
    dsn = "https://abc123@o4501.ingest.sentry.io/6789"
    assert endpoint(dsn, "ENVELOPE") == ("https://o4501.ingest.sentry.io/api/6789/envelope/?sentry_version=7"
                                         "&sentry_client=java&sentry_key=abc123")
    assert endpoint(dsn, "STORE") == ("https://o4501.ingest.sentry.io/api/6789/store/?sentry_version=7"
                                      "&sentry_client=java&sentry_key=abc123")
    assert endpoint("http://relay.local/api/1/envelope/", "STORE") == "http://relay.local/api/1/envelope/"


def test_sentry_alert_envelope_and_store(server: Endpoint) -> None:
    ctx = Ctx(execution={"id": "exec1", "startDate": "2024-03-01T10:00:00Z"})
    run(f"""    type: io.kestra.plugin.sentry.SentryAlert
    dsn: "{server.url}/api/1/envelope/"
""", ctx)
    request = server.last
    assert request["path"] == "/api/1/envelope/" and request["headers"]["Content-Type"] == "application/json"
    head, item, event = request["body"].split("\n", 2)
    assert event.endswith("\n")
    event = event[:-1]
    head = json.loads(head)
    assert re.fullmatch(r"[0-9a-f]{32}", head["event_id"]) and INSTANT.match(head["sent_at"])
    assert head["dsn"] == f"{server.url}/api/1/envelope/" and head["sdk"] == {"name": "java", "version": "7"}
    assert json.loads(item) == {"type": "event", "length": len(event.encode()), "content_type": "application/json",
                                "filename": "application.log"}
    assert json.loads(event) == {
        "timestamp": "2024-03-01T10:00:00Z", "platform": "java", "level": "error",
        "message": {"message": "Execution exec1 failed"},
        "extra": {"Namespace": "company.team", "Flow ID": "flow", "Execution ID": "exec1"}}
    # STORE: the event itself
    run(f"""    type: io.kestra.plugin.notifications.sentry.SentryAlert
    dsn: "{server.url}/api/1/store/"
    endpointType: STORE
    payload: '{{"message": "{{{{ flow.id }}}} broke", "level": "warning"}}'
""", ctx)
    assert server.last_json() == {"message": "flow broke", "level": "warning"}
    with pytest.raises(TaskFailure, match="Invalid property 'payload': not valid JSON"):
        run(f'    type: io.kestra.plugin.sentry.SentryAlert\n    dsn: "{server.url}/x"\n    payload: "{{oops"\n', ctx)


def test_sentry_envelope_refused_hints_at_store(server: Endpoint) -> None:
    ctx = Ctx(execution={"id": "exec1", "startDate": "2024-03-01T10:00:00Z"})
    with pytest.raises(TaskFailure, match="Sentry webhook request to http://127.0.0.1:\\d+ failed with status 401"):
        run(f'    type: io.kestra.plugin.sentry.SentryAlert\n    dsn: "{server.url}/status/401"\n', ctx)
    assert ("ERROR", "Envelope endpoint not supported; Please try to configure the store endpoint instead: "
                     "endpointType: store") in ctx.logs


def test_sentry_execution_event(server: Endpoint) -> None:
    event_id = uuid.uuid4().hex
    run(f"""    type: io.kestra.plugin.sentry.SentryExecution
    dsn: "{server.url}/api/2/envelope/"
    executionId: "{{{{ trigger.executionId }}}}"
    transaction: /execution/id/{{{{ trigger.executionId }}}}
    level: WARNING
    serverName: worker-1
    eventId: {event_id}
    extra:
      Team: data
    errors:
      load: the warehouse is down
""", failed_ctx())
    head, _item, event = server.last["body"].split("\n", 2)
    assert json.loads(head)["event_id"] == event_id
    event = json.loads(event)
    assert INSTANT.match(event.pop("timestamp"))
    assert event == {
        "exception": {"values": [{"type": "nightly ➛ FAILED", "value": "Failed on task `load` after 00:01:02.345",
                                  "module": "prod.sales", "stacktrace": {}}]},
        "extra": {"Namespace": "prod.sales", "Flow ID": "nightly", "Execution ID": "exec-failed",
                  "Execution Status": "FAILED", "Final task ID": "load", "Link": LINK, "Team": "data"},
        "event_id": event_id, "platform": "java", "level": "warning",
        "transaction": "/execution/id/exec-failed", "server_name": "worker-1",
        "errors": {"load": "the warehouse is down"}}
    with pytest.raises(TaskFailure, match="Invalid property 'level': 'LOUD' is not one of FATAL"):
        run(f'    type: io.kestra.plugin.sentry.SentryExecution\n    dsn: "{server.url}/x"\n    level: LOUD\n',
            failed_ctx())
    with pytest.raises(TaskFailure, match="Invalid property 'eventId'"):
        run(f'    type: io.kestra.plugin.sentry.SentryExecution\n    dsn: "{server.url}/x"\n    eventId: nope\n',
            failed_ctx())


# --- LINE -----------------------------------------------------------------------------------------------

def test_line_execution_broadcast(server: Endpoint) -> None:
    run(f"""    type: io.kestra.plugin.line.LineExecution
    url: "{server.url}/v2/bot/message/broadcast"
    channelAccessToken: tok-1
    executionId: "{{{{ trigger.executionId ?? execution.id }}}}"
    customMessage: "{{{{ trigger.executionId }}}} needs a look"
    customFields:
      Team: On-Call
      Severity: High
""", failed_ctx())
    assert server.last["path"] == "/v2/bot/message/broadcast"
    assert server.last["headers"]["Authorization"] == "Bearer tok-1"
    assert server.last_json() == {"messages": [{"type": "text", "text": (
        "Execution FAILED\n\nDetails:\n- ID: exec-failed\n- Namespace: prod.sales\n- Flow: nightly\n"
        "- Started: 2024-03-01T10:00:00Z\n- Duration: 00:01:02.345\n- Failed Task: load\n\n"
        "exec-failed needs a look\n\n- Team: On-Call\n- Severity: High\n\n"
        f"View Execution: {LINK}")}]}
    run(f"""    type: io.kestra.plugin.notifications.line.LineExecution
    url: "{server.url}/push"
    channelAccessToken: tok-2
    textBody: plain words
""", Ctx())
    assert server.last_json() == {"messages": [{"type": "text", "text": "plain words"}]}
    with pytest.raises(TaskFailure, match="Invalid property 'channelAccessToken'"):
        run(f'    type: io.kestra.plugin.line.LineExecution\n    url: "{server.url}/x"\n    channelAccessToken: " "\n'
            '    textBody: x\n', Ctx())


# --- Zenduty --------------------------------------------------------------------------------------------

def test_zenduty_alert_and_execution(server: Endpoint) -> None:
    run(f"""    type: io.kestra.plugin.zenduty.ZendutyAlert
    url: "{server.url}/api/events/KEY/"
    payload: |
      {{"alert_type": "info", "message": "from {{{{ flow.id }}}}", "entity_id": 12345}}
""", Ctx())
    assert server.last["path"] == "/api/events/KEY/"
    assert server.last_json() == {"alert_type": "info", "message": "from flow", "entity_id": 12345}
    run(f"""    type: io.kestra.plugin.zenduty.ZendutyExecution
    url: "{server.url}/api/events/KEY/"
    executionId: "{{{{ trigger.executionId }}}}"
    message: Nightly changed status to {{{{ trigger.state }}}}
""", failed_ctx())
    summary = ("Kestra workflow execution exec-failed of a flow nightly in the namespace prod.sales changed status "
               "to FAILED")
    assert server.last_json() == {
        "message": "Nightly changed status to FAILED", "alert_type": "error", "entity_id": "exec-failed",
        "urls": [{"link_url": LINK, "link_text": "Execution link"}],
        "payload": {"Namespace": "prod.sales", "Flow ID": "nightly", "Execution ID": "exec-failed",
                    "Execution Status": "FAILED", "Final task ID": "load", "Duration": "00:01:02.345"},
        "summary": summary}
    run(f"""    type: io.kestra.plugin.notifications.zenduty.ZendutyExecution
    url: "{server.url}/api/events/KEY/"
    executionId: exec-failed
    alertType: critical
    entityId: e-1
    urls: ["https://runbook.example/1"]
""", failed_ctx())
    event = server.last_json()
    assert (event["alert_type"], event["entity_id"], event["urls"]) == ("critical", "e-1", ["https://runbook.example/1"])
    with pytest.raises(TaskFailure, match="Invalid property 'alertType': 'LOUD' is not one of CRITICAL"):
        run(f'    type: io.kestra.plugin.zenduty.ZendutyExecution\n    url: "{server.url}/x"\n    alertType: LOUD\n'
            '    executionId: exec-failed\n', failed_ctx())


# --- Twilio ---------------------------------------------------------------------------------------------

def test_twilio_alert_and_execution_as_form_fields(server: Endpoint) -> None:
    run(f"""    type: io.kestra.plugin.twilio.notify.TwilioAlert
    url: "{server.url}/v1/Services/IS1/Notifications"
    accountSID: AC1
    authToken: t0k
    payload: '{{"Identity": "00001", "Body": "Hello from {{{{ flow.id }}}}"}}'
""", Ctx())
    request = server.last
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(b"AC1:t0k").decode()
    assert urllib.parse.parse_qs(request["body"]) == {"Identity": ["00001"], "Body": ["Hello from flow"]}
    run(f"""    type: io.kestra.plugin.twilio.notify.TwilioExecution
    url: "{server.url}/v1/Services/IS1/Notifications"
    accountSID: AC1
    authToken: t0k
    identity: "0000001"
    executionId: "{{{{ trigger.executionId }}}}"
    body: "Failure: {{{{ trigger.executionId }}}}"
""", failed_ctx())
    assert urllib.parse.parse_qs(server.last["body"]) == {
        "body": ["Namespace prod.sales, Flow ID nightly, Execution ID exec-failed, Execution Status FAILED, Final "
                 f"task ID load. *<{LINK}|[prod.sales] nightly ➛ FAILED>*\n> Failed on task `load` after "
                 "00:01:02.345"],
        "Body": ["Failure: exec-failed"], "Identity": ["0000001"]}
    with pytest.raises(TaskFailure, match="Twilio webhook request to http://127.0.0.1:\\d+ failed with status 400"):
        run(f'    type: io.kestra.plugin.notifications.twilio.TwilioAlert\n    url: "{server.url}/status/400"\n'
            '    accountSID: AC1\n    authToken: t\n    payload: "{}"\n', Ctx())


# --- WhatsApp -------------------------------------------------------------------------------------------

def test_whatsapp_webhook_and_execution(server: Endpoint) -> None:
    run(f"""    type: io.kestra.plugin.meta.whatsapp.WhatsAppIncomingWebhook
    url: "{server.url}/wa"
    payload: '{{"messages": [{{"text": {{"body": "hi {{{{ flow.id }}}}"}}, "type": "text"}}]}}'
""", Ctx())
    assert server.last_json() == {"messages": [{"text": {"body": "hi flow"}, "type": "text"}]}
    run(f"""    type: io.kestra.plugin.meta.whatsapp.WhatsAppExecution
    url: "{server.url}/wa"
    profileName: MyProfile
    from: "1234567890"
    whatsAppIds:
      - wa-1
      - wa-2
    executionId: "{{{{ trigger.executionId }}}}"
""", failed_ctx())
    assert server.last_json() == {
        "contacts": [{"profile": {"name": "MyProfile"}, "wa_id": "wa-1"},
                     {"profile": {"name": "MyProfile"}, "wa_id": "wa-2"}],
        "messages": [{"from": "1234567890", "type": "text", "text": {"body": [
            "Namespace prod.sales", "Flow ID nightly", "Execution ID exec-failed", "Execution Status FAILED",
            "Final task ID load", f"*<{LINK}|[prod.sales] nightly ➛ FAILED>*\n> Failed on task `load` after "
                                  "00:01:02.345"]}}]}
    run(f"""    type: io.kestra.plugin.notifications.whatsapp.WhatsAppExecution
    url: "{server.url}/wa"
    from: "1"
    messageId: m-1
    textBody: short
    recipientId: r-9
    executionId: exec-failed
""", failed_ctx())
    assert server.last_json() == {"contacts": [], "recipient_id": "r-9",
                                  "messages": [{"from": "1", "id": "m-1", "text": {"body": "short"}, "type": "text"}]}


# --- Squadcast ------------------------------------------------------------------------------------------

def test_squadcast_webhook_and_execution(server: Endpoint) -> None:
    run(f"""    type: io.kestra.plugin.squadcast.SquadcastIncomingWebhook
    url: "{server.url}/v2/incidents/api/KEY"
    payload: '{{"message": "disk full", "status": "trigger"}}'
""", Ctx())
    assert server.last_json() == {"message": "disk full", "status": "trigger"}
    run(f"""    type: io.kestra.plugin.notifications.squadcast.SquadcastExecution
    url: "{server.url}/v2/incidents/api/KEY"
    executionId: exec-failed
    message: Nightly failed
    priority: P1
    eventId: "6"
    status: trigger
    tags:
      severity: high
""", failed_ctx())
    assert server.last_json() == {
        "description": f"*<{LINK}|[prod.sales] nightly &rarr; FAILED>*\nFinal task ID: load\n"
                       "Status: Failed on task `load`\nDuration: 00:01:02.345",
        "message": "Nightly failed", "priority": "P1", "event_id": "6", "status": "trigger",
        "tags": {"severity": "high"}}


# --- SendGrid -------------------------------------------------------------------------------------------

def test_sendgrid_mail_send_with_attachment(server: Endpoint) -> None:
    ctx = Ctx()
    uri = ctx.platform.put_file(b"a,b\n1,2\n", "report.csv")
    outputs = run(f"""    type: io.kestra.plugin.twilio.sendgrid.SendGridMailSend
    endpointOverride: "{server.url}"
    sendgridApiKey: SG.key
    from: hello@kestra.io
    to: [ops@example.com]
    cc: [lead@example.com]
    subject: "Report of {{{{ flow.id }}}}"
    htmlContent: "<p>See attached</p>"
    textContent: See attached
    attachments:
      - name: report.csv
        uri: "{uri}"
        contentType: text/csv
""", ctx)
    request = server.last
    assert request["path"] == "/v3/mail/send" and request["headers"]["Authorization"] == "Bearer SG.key"
    assert server.last_json() == {
        "from": {"email": "hello@kestra.io"},
        "personalizations": [{"to": [{"email": "ops@example.com"}], "cc": [{"email": "lead@example.com"}],
                              "subject": "Report of flow"}],
        "content": [{"type": "text/plain", "value": "See attached"}, {"type": "text/html", "value": "<p>See attached</p>"}],
        "attachments": [{"content": base64.b64encode(b"a,b\n1,2\n").decode(), "type": "text/csv",
                         "filename": "report.csv", "disposition": "attachment"}]}
    assert outputs["statusCode"] == 202 and outputs["headers"]["X-Message-Id"] == "msg-42" and outputs["body"] == ""
    with pytest.raises(TaskFailure, match="SendGrid API failed with status code: 401 and body: .*bad key"):
        run(f"""    type: io.kestra.plugin.notifications.sendgrid.SendGridMailSend
    endpointOverride: "{server.url}/status/401"
    sendgridApiKey: SG.bad
    from: hello@kestra.io
    to: [ops@example.com]
""", ctx)
    with pytest.raises(TaskFailure, match="Invalid property 'to': 'nobody' is not an e-mail address"):
        run(f'    type: io.kestra.plugin.twilio.sendgrid.SendGridMailSend\n    endpointOverride: "{server.url}"\n'
            '    sendgridApiKey: k\n    from: a@b.c\n    to: [nobody]\n', ctx)


def test_sendgrid_mail_execution(server: Endpoint) -> None:
    outputs = run(f"""    type: io.kestra.plugin.twilio.sendgrid.SendGridMailExecution
    endpointOverride: "{server.url}"
    to: [hello@kestra.io]
    from: hello@kestra.io
    subject: "Kestra Workflow Failure: {{{{ trigger.executionId }}}}"
    sendgridApiKey: SG.key
    executionId: "{{{{ trigger.executionId }}}}"
    customMessage: Please look
""", failed_ctx())
    mail = server.last_json()
    assert mail["personalizations"] == [{"to": [{"email": "hello@kestra.io"}],
                                         "subject": "Kestra Workflow Failure: exec-failed"}]
    text, html = mail["content"]
    assert text == {"type": "text/plain", "value": "Please view this email in a modern email client"}
    assert html["type"] == "text/html"
    for fact in ("[prod.sales] nightly", "Failed on task <code>load</code>", "00:01:02.345", "Please look",
                 f'href="{LINK}"', "<strong>Final task ID :</strong> load"):
        assert fact in html["value"]
    assert outputs["statusCode"] == 202


# --- Tencent IM / QQ ------------------------------------------------------------------------------------

def test_qq_webhook_and_execution(server: Endpoint) -> None:
    run(f"""    type: io.kestra.plugin.tencent.qq.QQIncomingWebhook
    url: "{server.url}/v4/openim/sendmsg"
    token: qq-token
    payload: |
      {{"To_Account": ["100001"], "MsgType": "TIMTextElem", "MsgContent": {{"Text": {{{{ "Flow " ~ flow.id | toJson }}}}}}}}
""", Ctx())
    assert server.last["headers"]["Authorization"] == "Bearer qq-token"
    assert server.last_json() == {"To_Account": ["100001"], "MsgType": "TIMTextElem",
                                  "MsgContent": {"Text": "Flow flow"}}
    before = len(server.requests)
    run(f"""    type: io.kestra.plugin.tencent.qq.QQExecution
    url: "{server.url}/v4/openim/sendmsg"
    recipientIds: ["u1", "u2"]
    executionId: "{{{{ trigger.executionId }}}}"
    customMessage: Nightly failed
    customFields:
      Team: data
""", failed_ctx())
    sent = [json.loads(r["body"]) for r in server.requests[before:]]
    assert [m["To_Account"] for m in sent] == ["u1", "u2"]
    assert all(isinstance(m.pop("MsgRandom"), int) for m in sent)
    text = ("Namespace: prod.sales\nFlow: nightly\nExecution ID: exec-failed\n\nStatus: FAILED\n"
            "Started At: 2024-03-01T10:00:00Z\nDuration: 00:01:02.345\nFinal task ID: load\n\n"
            f"Failed Task: load\n\nView Execution: {LINK}\n\nMessage:\nNightly failed\n\n"
            "Additional Info:\n- Team: data\n")
    assert sent[0] == {"To_Account": "u1", "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]}
    with pytest.raises(TaskFailure, match="Invalid property 'recipientIds'"):
        run(f'    type: io.kestra.plugin.tencent.qq.QQExecution\n    url: "{server.url}/x"\n', failed_ctx())
