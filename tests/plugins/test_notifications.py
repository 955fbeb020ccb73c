"""Notifications against an HTTP endpoint and an SMTP server of the test's own (127.0.0.1, free ports)."""
from __future__ import annotations

import json
import socket
import threading
import time
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import MemoryPlatform

from .test_storage_kv_plugins import Ctx, run


class Receiver:
    """An HTTP endpoint recording each POST (path, headers, JSON body); ``/fail`` answers 500."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers.items()),
                                              "body": body.decode("utf-8")})
                code = 500 if self.path.startswith("/fail") else 200
                answer = b"no luck" if code == 500 else b"ok"
                if "/sendMessage" in self.path:  # Telegram's Bot API
                    answer = json.dumps({"ok": "/botbad" not in self.path}).encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def last_json(self) -> Any:
        return json.loads(self.requests[-1]["body"])


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                              "message": message_from_bytes(envelope.original_content, policy=policy.default)})
        return "250 OK"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == b"mailer" and data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    yield box, port
    controller.stop()


def wait_for(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


FAILED_EXECUTION = {
    "id": "exec-failed", "namespace": "prod.sales", "flowId": "nightly",
    "state": {"current": "FAILED", "startDate": "2024-03-01T10:00:00Z", "endDate": "2024-03-01T10:01:02.345Z"},
    "taskRunList": [
        {"id": "r1", "taskId": "extract", "state": {"current": "SUCCESS"}},
        {"id": "r2", "taskId": "load", "state": {"current": "FAILED"}},
    ],
}


def ctx_with_executions(**variables: Any) -> Ctx:
    platform = MemoryPlatform("company.team", "alerts", "exec1", "task", "run1",
                              executions=[dict(FAILED_EXECUTION)])
    return Ctx(platform, kestra={"url": "http://celestra.example/"}, **variables)


# --- Slack ----------------------------------------------------------------------------------------------

def test_slack_incoming_webhook_payload_and_message_text(receiver: Receiver) -> None:
    ctx = Ctx()
    run(f"""    type: io.kestra.plugin.slack.notifications.SlackIncomingWebhook
    url: "{receiver.url}/services/T/B/X"
    options:
      headers:
        X-Trace: abc
    payload: |
      {{"text": "Failure alert for flow {{{{ flow.namespace }}}}.{{{{ flow.id }}}} with ID {{{{ execution.id }}}}"}}
""", ctx)
    request = receiver.requests[-1]
    assert request["path"] == "/services/T/B/X"
    assert request["headers"]["Content-Type"] == "application/json" and request["headers"]["X-Trace"] == "abc"
    assert receiver.last_json() == {"text": "Failure alert for flow company.team.flow with ID exec1"}
    # the older plugin-notifications name, messageText in Markdown
    run(f"""    type: io.kestra.plugin.notifications.slack.SlackIncomingWebhook
    url: "{receiver.url}/hook"
    messageText: "**Done**: see [the report](https://example.com/r) __now__"
""", ctx)
    assert receiver.last_json() == {"text": "*Done*: see <https://example.com/r|the report> _now_"}
    with pytest.raises(TaskFailure, match="Either 'messageText' or 'payload' must be provided"):
        run(f'    type: io.kestra.plugin.slack.notifications.SlackIncomingWebhook\n    url: "{receiver.url}/x"\n', ctx)


def test_slack_execution_summarises_another_execution(receiver: Receiver) -> None:
    ctx = ctx_with_executions(trigger={"executionId": "exec-failed", "state": "FAILED"})
    run(f"""    type: io.kestra.plugin.notifications.slack.SlackExecution
    url: "{receiver.url}/slack"
    executionId: "{{{{ trigger.executionId }}}}"
    channel: "#alerts"
    customMessage: "Look at {{{{ flow.id }}}}"
    customFields:
      Env: prod
""", ctx)
    payload = receiver.last_json()
    link = "http://celestra.example/ui/main/executions/prod.sales/nightly/exec-failed"
    headline = f"*<{link}|[prod.sales] nightly ➛ FAILED>*\n> Failed on task `load` after 00:01:02.345"
    assert payload["text"] == headline
    assert payload["channel"] == "#alerts"
    assert payload["blocks"] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Look at alerts"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": headline},
         "accessory": {"type": "button", "text": {"type": "plain_text", "text": "Details"}, "url": link}},
    ]
    attachment = payload["attachments"][0]
    assert attachment["color"] == "danger"
    assert attachment["ts"] == 1709287200
    assert [(f["title"], f["value"]) for f in attachment["fields"]] == [
        ("Namespace", "prod.sales"), ("Flow ID", "nightly"), ("Execution ID", "exec-failed"),
        ("Execution Status", "FAILED"), ("Env", "prod"), ("Final task ID", "load")]


def test_execution_not_found_fails_after_waiting_ten_minutes() -> None:
    ctx = ctx_with_executions()
    slept: list[float] = []
    ctx.sleep = slept.append  # type: ignore[method-assign] - simulated time, as the in-memory runner's
    with pytest.raises(TaskFailure, match="Unable to find execution 'nope'"):
        run('    type: io.kestra.plugin.slack.notifications.SlackExecution\n    url: "http://127.0.0.1:9/x"\n'
            '    executionId: nope\n', ctx)
    assert slept[:5] == [1.0, 2.0, 4.0, 8.0, 15.0] and 585 <= sum(slept) <= 600


def test_waits_for_the_triggering_execution_to_end(receiver: Receiver) -> None:
    ctx = ctx_with_executions()
    running = {"id": "exec-running", "namespace": "prod.sales", "flowId": "nightly", "state": "RUNNING",
               "startDate": "2024-03-01T10:00:00Z"}
    ctx.platform.executions.append(running)

    def sleep(seconds: float) -> None:  # the execution ends while the task waits
        running.update(state="SUCCESS", endDate="2024-03-01T10:00:05Z")

    ctx.sleep = sleep  # type: ignore[method-assign]
    run(f'''    type: io.kestra.plugin.slack.notifications.SlackExecution
    url: "{receiver.url}/slack"
    executionId: exec-running
''', ctx)
    assert receiver.last_json()["attachments"][0]["color"] == "good"
    assert receiver.last_json()["text"].endswith("> Succeeded after 00:00:05.000")


def test_webhook_errors_name_the_status_and_hide_the_path(receiver: Receiver) -> None:
    ctx = Ctx()
    with pytest.raises(TaskFailure, match=r"Slack webhook request to http://127\.0\.0\.1:\d+ failed with status 500: "
                                          r"no luck") as failure:
        run(f'    type: io.kestra.plugin.slack.notifications.SlackIncomingWebhook\n    url: "{receiver.url}/fail/SECRET"\n'
            '    messageText: hi\n', ctx)
    assert "SECRET" not in str(failure.value)
    with pytest.raises(TaskFailure, match="Unable to send the Microsoft Teams notification to http://127.0.0.1:"):
        run(f'    type: io.kestra.plugin.notifications.teams.TeamsIncomingWebhook\n'
            f'    url: "http://127.0.0.1:{free_port()}/x"\n    payload: "{{}}"\n', ctx)
    with pytest.raises(TaskFailure, match="Invalid property 'url'"):
        run('    type: io.kestra.plugin.notifications.discord.DiscordIncomingWebhook\n    url: "ftp://x/y"\n'
            '    payload: "{}"\n', ctx)


# --- Teams, Discord, Google Chat ------------------------------------------------------------------------

def test_teams_execution_card(receiver: Receiver) -> None:
    ctx = ctx_with_executions(trigger={"executionId": "exec-failed", "state": "FAILED"})
    run(f"""    type: io.kestra.plugin.notifications.teams.TeamsExecution
    url: "{receiver.url}/teams"
    executionId: exec-failed
    activityTitle: Nightly
""", ctx)
    card = receiver.last_json()
    assert card["@type"] == "MessageCard" and card["themeColor"] == "0076D7"
    assert card["summary"].endswith("> Failed on task `load` after 00:01:02.345")
    assert card["sections"] == [{"activityTitle": "Nightly", "facts": [
        {"name": "Namespace", "value": "prod.sales"}, {"name": "Flow ID", "value": "nightly"},
        {"name": "Execution ID", "value": "exec-failed"}, {"name": "Execution Status", "value": "FAILED"},
        {"name": "Final task ID", "value": "load"}], "markdown": True}]


def test_discord_and_google_chat(receiver: Receiver) -> None:
    ctx = ctx_with_executions(trigger={"executionId": "exec-failed", "state": "FAILED"})
    run(f"""    type: io.kestra.plugin.notifications.discord.DiscordExecution
    url: "{receiver.url}/discord"
    executionId: exec-failed
    username: Celestra
    content: Nightly run
    embedList:
      - title: Report
        color: [255, 0, 0]
""", ctx)
    body = receiver.last_json()
    assert body["username"] == "Celestra" and body["content"] == "Nightly run" and body["tts"] is False
    embed = body["embeds"][0]
    assert embed["title"] == "Report" and embed["color"] == 0xFF0000
    assert embed["description"].startswith("Namespace: prod.sales\nFlow ID: nightly\nExecution ID: exec-failed\n")
    assert "[Link to the Execution page](http://celestra.example/ui/main/executions/prod.sales/nightly/exec-failed)" \
        in embed["description"]
    assert embed["footer"] == {"text": "Failed on task `load` after 00:01:02.345"}
    run(f"""    type: io.kestra.plugin.notifications.google.GoogleChatExecution
    url: "{receiver.url}/chat"
    executionId: exec-failed
""", ctx)
    text = receiver.last_json()["text"]
    assert text.startswith("Kestra Google notification: Namespace prod.sales, Flow ID nightly, Execution ID "
                           "exec-failed, Execution Status FAILED, Final task ID load.")
    run(f"""    type: io.kestra.plugin.notifications.google.GoogleChatIncomingWebhook
    url: "{receiver.url}/chat"
    payload: '{{"text": "hello {{{{ flow.id }}}}"}}'
""", ctx)
    assert receiver.last_json() == {"text": "hello alerts"}


# --- e-mail ---------------------------------------------------------------------------------------------

def test_mail_send_with_attachment_over_smtp(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    ctx = Ctx()
    uri = ctx.platform.put_file(b"id,total\n1,42\n", "report.csv")
    count = len(box.messages)
    run(f"""    type: io.kestra.plugin.email.MailSend
    host: 127.0.0.1
    port: {port}
    transportStrategy: SMTP
    username: mailer
    password: s3cret
    from: Celestra <celestra@example.com>
    to: ada@example.com, grace@example.com
    cc: ops@example.com
    subject: "Report {{{{ flow.id }}}}"
    htmlTextContent: "<p>Report of <b>{{{{ execution.id }}}}</b></p>"
    plainTextContent: "Report of {{{{ execution.id }}}}"
    attachments:
      - name: report.csv
        uri: "{uri}"
        contentType: text/csv
""", ctx)
    wait_for(lambda: len(box.messages) > count)
    received = box.messages[-1]
    assert received["from"] == "celestra@example.com"
    assert sorted(received["to"]) == ["ada@example.com", "grace@example.com", "ops@example.com"]
    message = received["message"]
    assert message["Subject"] == "Report flow"
    assert message["To"] == "ada@example.com, grace@example.com" and message["Cc"] == "ops@example.com"
    assert message["Disposition-Notification-To"] == "Celestra <celestra@example.com>"
    assert message.get_body(("plain",)).get_content().strip() == "Report of exec1"
    assert message.get_body(("html",)).get_content().strip() == "<p>Report of <b>exec1</b></p>"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "report.csv" and attachment.get_content_type() == "text/csv"
    assert attachment.get_content() == "id,total\n1,42\n"


def test_mail_execution_and_smtp_errors(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    ctx = ctx_with_executions(trigger={"executionId": "exec-failed", "state": "FAILED"})
    count = len(box.messages)
    run(f"""    type: io.kestra.plugin.notifications.mail.MailExecution
    host: 127.0.0.1
    port: {port}
    transportStrategy: SMTP
    from: celestra@example.com
    to: ops@example.com
    subject: Execution failed
    executionId: exec-failed
    customFields:
      Team: data
""", ctx)
    wait_for(lambda: len(box.messages) > count)
    message = box.messages[-1]["message"]
    html = message.get_body(("html",)).get_content()
    assert "[prod.sales] nightly ➛ <span style=\"color: red;\">FAILED</span>" in html
    assert "Failed on task <code>load</code>  after 00:01:02.345" in html
    assert "<strong>Team :</strong> data" in html
    assert 'href="http://celestra.example/ui/main/executions/prod.sales/nightly/exec-failed"' in html
    assert "Final task ID: load" in message.get_body(("plain",)).get_content()
    base = """    type: io.kestra.plugin.email.MailSend
    host: 127.0.0.1
    from: celestra@example.com
    to: ops@example.com
    plainTextContent: hi
"""
    with pytest.raises(TaskFailure, match=f"SMTP authentication failed on 127.0.0.1:{port} for 'mailer'"):
        run(base + f"    port: {port}\n    transportStrategy: SMTP\n    username: mailer\n    password: wrong\n", ctx)
    closed = free_port()
    with pytest.raises(TaskFailure, match=f"Unable to connect to the SMTP server 127.0.0.1:{closed} \\(SMTPS\\)"):
        run(base + f"    port: {closed}\n", ctx)
    with pytest.raises(TaskFailure, match="does not support SMTP_TLS"):
        run(base + f"    port: {port}\n    transportStrategy: SMTP_TLS\n", ctx)
    with pytest.raises(TaskFailure, match="Invalid property 'to': 'nobody' is not an e-mail address"):
        run(base.replace("to: ops@example.com", "to: nobody") + f"    port: {port}\n", ctx)


# --- Zulip, Telegram ------------------------------------------------------------------------------------

def test_zulip_and_telegram(receiver: Receiver) -> None:
    ctx = ctx_with_executions(trigger={"executionId": "exec-failed", "state": "FAILED"})
    run(f"""    type: io.kestra.plugin.zulip.ZulipExecution
    url: "{receiver.url}/zulip"
    executionId: exec-failed
    customFields:
      Env: prod
""", ctx)
    fields = receiver.last_json()["attachments"][0]["fields"]
    assert [f["title"] for f in fields] == ["Namespace", "Flow ID", "Execution ID", "Execution Status",
                                            "Final task ID", "Env"]
    run(f"""    type: io.kestra.plugin.notifications.telegram.TelegramSend
    endpointOverride: "{receiver.url}"
    token: "123:abc"
    channel: "-100200"
    parseMode: HTML
    payload: "<b>{{{{ flow.id }}}}</b> done"
""", ctx)
    assert receiver.requests[-1]["path"] == "/bot123:abc/sendMessage"
    assert receiver.last_json() == {"chat_id": "-100200", "text": "<b>alerts</b> done", "parse_mode": "HTML"}
    run(f"""    type: io.kestra.plugin.telegram.TelegramExecution
    endpointOverride: "{receiver.url}"
    token: "123:abc"
    channel: "-100200"
    executionId: exec-failed
""", ctx)
    assert receiver.last_json()["text"] == (
        "<prod.sales nightly exec-failed ➛ FAILED - Final task ID ➛ load> Failed on task `load` after 00:01:02.345 "
        "(http://celestra.example/ui/main/executions/prod.sales/nightly/exec-failed)")
    with pytest.raises(TaskFailure, match="Unable to send Telegram message"):
        run(f"""    type: io.kestra.plugin.notifications.telegram.TelegramSend
    endpointOverride: "{receiver.url}"
    token: "bad"
    channel: "1"
    payload: hi
""", ctx)


# --- PagerDuty, Opsgenie --------------------------------------------------------------------------------

def test_pagerduty_and_opsgenie(receiver: Receiver) -> None:
    ctx = ctx_with_executions(trigger={"executionId": "exec-failed", "state": "FAILED"})
    run(f"""    type: io.kestra.plugin.pagerduty.PagerDutyExecution
    url: "{receiver.url}/v2/enqueue"
    executionId: exec-failed
    routingKey: rk-1
    payloadSummary: "Nightly failed"
""", ctx)
    event = receiver.last_json()
    assert event["routing_key"] == "rk-1" and event["event_action"] == "trigger"
    payload = event["payload"]
    assert payload["summary"] == "Nightly failed" and payload["severity"] == "error"
    assert payload["source"] == "prod.sales exec-failed" and "timestamp" in payload
    assert payload["custom_details"][2] == {"title": "Final task ID", "value": "load"}
    assert event["links"][0]["text"] == "Failed on task `load` after 00:01:02.345"
    run(f"""    type: io.kestra.plugin.notifications.opsgenie.OpsgenieExecution
    url: "{receiver.url}/v2/alerts"
    authorizationToken: GenieKey k-1
    executionId: exec-failed
    message: Nightly failed
    priority: P1
    responders:
      team-id: team
    tags: [prod, nightly]
""", ctx)
    assert receiver.requests[-1]["headers"]["Authorization"] == "GenieKey k-1"
    alert = receiver.last_json()
    assert alert["message"] == "Nightly failed" and alert["priority"] == "P1" and alert["tags"] == ["prod", "nightly"]
    assert alert["responders"] == [{"id": "team-id", "type": "team"}]
    assert alert["description"].startswith("*<http://celestra.example/ui/main/executions/prod.sales/nightly/"
                                           "exec-failed|[prod.sales] nightly ➛ FAILED - Final task ID load>*")
    run(f"""    type: io.kestra.plugin.notifications.pagerduty.PagerDutyAlert
    url: "{receiver.url}/v2/enqueue"
    payload: '{{"routing_key": "rk", "event_action": "trigger"}}'
""", ctx)
    assert receiver.last_json() == {"routing_key": "rk", "event_action": "trigger"}
