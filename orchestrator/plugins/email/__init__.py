"""``io.kestra.plugin.email``: MailSend and MailExecution over SMTP (the standard library's smtplib).

They answer to ``io.kestra.plugin.notifications.mail.*`` too. ``transportStrategy``: ``SMTP``
(plain, upgraded with STARTTLS when the server offers it), ``SMTP_TLS`` (STARTTLS required),
``SMTPS`` (TLS from the start, the default); the port defaults to 25, 587 and 465 accordingly.
``attachments`` (and ``embeddedImages``) are ``{name, uri, contentType}`` entries whose ``uri`` is a
``kestra://`` file.
"""
from __future__ import annotations

import html
import json
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import getaddresses, make_msgid
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import platform_of
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Props, Text
from orchestrator.plugins.core._render import render_bool, render_int, render_text, render_text_list
from orchestrator.plugins.notifications._base import ExecutionProps, execution_summary, last_task_id, outcome, state_of

_OLD = "io.kestra.plugin.notifications.mail."
Strategy = Literal["SMTP", "SMTPS", "SMTP_TLS", "SMTP_OAUTH2"]
DEFAULT_PORTS = {"SMTP": 25, "SMTP_TLS": 587, "SMTPS": 465, "SMTP_OAUTH2": 587}
NO_HTML_TEXT = "Please view this email in a modern email client"


class Attachment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: Text
    name: Text
    contentType: Text = "application/octet-stream"


class MailProps(Props):
    host: Optional[Text] = None
    port: Optional[int] = None
    username: Optional[Text] = None
    password: Optional[Text] = None
    transportStrategy: Strategy = "SMTPS"
    sessionTimeout: int = 10000
    verifyServerIdentity: bool = True
    trustedHosts: Optional[list[Text]] = None
    # ``from`` is a Python keyword: the flow writes ``from``
    from_: Optional[Text] = Field(default=None, alias="from")
    to: Optional[Text] = None
    cc: Optional[Text] = None
    subject: Optional[Text] = None
    htmlTextContent: Optional[Text] = None
    plainTextContent: Optional[Text] = None
    attachments: Optional[Union[list[Attachment], str]] = None
    embeddedImages: Optional[Union[list[Attachment], str]] = None


def _addresses(value: str | None, prop: str) -> list[str]:
    if not value:
        return []
    parts = [p.strip() for p in re.split(r"[;,]", value) if p.strip()]
    pairs = getaddresses(parts)
    out = []
    for (_name, address), raw in zip(pairs, parts, strict=True):
        if "@" not in address:
            raise TaskFailure(f"Invalid property '{prop}': '{raw}' is not an e-mail address")
        out.append(raw)
    return out


def _attachments(ctx: RunContext, value: Any, prop: str) -> list[dict[str, str]]:
    if value is None:
        return []
    rendered = ctx.render(value)
    if isinstance(rendered, str):
        text = rendered.strip()
        if not text:
            return []
        try:
            rendered = json.loads(text)
            if isinstance(rendered, str):  # a JSON string holding the JSON list
                rendered = json.loads(rendered)
        except ValueError:
            raise TaskFailure(f"Invalid property '{prop}': expected a list of {{name, uri, contentType}}") from None
    if isinstance(rendered, dict):
        rendered = [rendered]
    if not isinstance(rendered, list):
        raise TaskFailure(f"Invalid property '{prop}': the `{prop}` attribute must be a String or a List")
    out = []
    for index, item in enumerate(rendered):
        if hasattr(item, "model_dump"):
            item = item.model_dump()
        if not isinstance(item, dict) or not item.get("uri") or not item.get("name"):
            raise TaskFailure(f"Invalid property '{prop}[{index}]': `uri` and `name` are required")
        out.append({"uri": ctx.render_string(item["uri"]), "name": ctx.render_string(item["name"]),
                    "contentType": ctx.render_string(item.get("contentType") or "application/octet-stream")})
    return out


def send_mail(ctx: RunContext, props: dict[str, Any], html_content: str | None, text_content: str | None) -> None:
    """Build the message (plain text, HTML alternative, attachments) and send it over SMTP."""
    sender = render_text(ctx, props.get("from"))
    to = render_text(ctx, props.get("to"))
    if not sender:
        raise TaskFailure("Invalid property 'from': a sender address is required")
    if not to:
        raise TaskFailure("Invalid property 'to': at least one recipient is required")
    recipients = _addresses(to, "to")
    cc = _addresses(render_text(ctx, props.get("cc")), "cc")
    _addresses(sender, "from")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    if cc:
        message["Cc"] = ", ".join(cc)
    subject = render_text(ctx, props.get("subject"))
    if subject is not None:
        message["Subject"] = subject
    message["Message-ID"] = make_msgid()
    # Kestra asks for a return receipt (Simple Java Mail's withReturnReceiptTo())
    message["Return-Receipt-To"] = sender
    message["Disposition-Notification-To"] = sender
    message.set_content(text_content if text_content is not None else NO_HTML_TEXT)
    if html_content is not None:
        message.add_alternative(html_content, subtype="html")
    platform = platform_of(ctx)
    for prop in ("embeddedImages", "attachments"):
        for item in _attachments(ctx, props.get(prop), prop):
            try:
                content = platform.read_file(item["uri"].strip())
            except TaskFailure as exc:
                raise TaskFailure(f"Invalid property '{prop}': {exc}") from None
            main, _, sub = item["contentType"].partition("/")
            disposition = "inline" if prop == "embeddedImages" else "attachment"
            message.add_attachment(content, maintype=main or "application", subtype=sub or "octet-stream",
                                   filename=item["name"], disposition=disposition,
                                   cid=f"<{item['name']}>" if disposition == "inline" else None)
    _deliver(ctx, props, message)


def _deliver(ctx: RunContext, props: dict[str, Any], message: EmailMessage) -> None:
    host = render_text(ctx, props.get("host"))
    if not host or not host.strip():
        raise TaskFailure("Invalid property 'host': the SMTP server host is required")
    host = host.strip()
    strategy = ctx.render_string(props.get("transportStrategy") or "SMTPS").strip().upper()
    if strategy not in DEFAULT_PORTS:
        raise TaskFailure(f"Invalid property 'transportStrategy': '{strategy}' is not one of SMTP, SMTPS, SMTP_TLS")
    if strategy == "SMTP_OAUTH2":
        raise TaskFailure("Invalid property 'transportStrategy': SMTP_OAUTH2 is not supported")
    port = render_int(ctx, props.get("port"), "port") or DEFAULT_PORTS[strategy]
    timeout = (render_int(ctx, props.get("sessionTimeout"), "sessionTimeout") or 10000) / 1000
    context = ssl.create_default_context()
    trusted = render_text_list(ctx, props.get("trustedHosts"))
    if not render_bool(ctx, props.get("verifyServerIdentity"), True) or host in trusted:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    username = render_text(ctx, props.get("username"))
    password = render_text(ctx, props.get("password"))
    try:
        if strategy == "SMTPS":
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            client.ehlo()
            if strategy == "SMTP_TLS" or (strategy == "SMTP" and client.has_extn("starttls")):
                client.starttls(context=context)
                client.ehlo()
            if username:
                _login(client, username, password or "")
            refused = client.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise TaskFailure(f"SMTP authentication failed on {host}:{port} for '{username}': "
                          f"{exc.smtp_code} {_text(exc.smtp_error)}") from None
    except smtplib.SMTPNotSupportedError as exc:
        raise TaskFailure(f"SMTP server {host}:{port} does not support {strategy}: {exc}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise TaskFailure(f"SMTP server {host}:{port} refused the recipients: {', '.join(exc.recipients)}") from None
    except smtplib.SMTPException as exc:
        raise TaskFailure(f"Sending the e-mail through {host}:{port} failed: {exc}") from None
    except (OSError, ssl.SSLError) as exc:
        raise TaskFailure(f"Unable to connect to the SMTP server {host}:{port} ({strategy}): {exc}") from None
    if refused:
        ctx.log("WARN", f"Recipients refused: {', '.join(refused)}")
    ctx.log("INFO", f"E-mail sent to {message['To']}")


def _login(client: smtplib.SMTP, username: str, password: str) -> None:
    """Authenticate with the first mechanism both sides know, and only that one (as JavaMail does):
    smtplib's ``login`` would try the next mechanism after a refusal, which some servers never answer."""
    offered = (client.esmtp_features.get("auth") or "").upper().split()
    for mechanism in ("PLAIN", "LOGIN", "CRAM-MD5"):
        if mechanism in offered:
            client.user, client.password = username, password
            client.auth(mechanism, getattr(client, "auth_" + mechanism.lower().replace("-", "_")))
            return
    client.login(username, password)


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


@register
class MailSend(CorePlugin):
    """Send an e-mail (plain text and/or HTML, attachments from internal storage) over SMTP."""

    type = "io.kestra.plugin.email.MailSend"
    aliases = (_OLD + "MailSend",)
    kind = RUNNABLE
    Props = MailProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        html_content = render_text(ctx, props.get("htmlTextContent"))
        text_content = render_text(ctx, props.get("plainTextContent"))
        send_mail(ctx, props, html_content, text_content)
        return None


def execution_html(summary: dict[str, Any]) -> str:
    """The HTML body of an execution summary (the facts of Kestra's mail template)."""
    execution = summary["execution"]
    state = state_of(summary)
    color = "green" if state == "SUCCESS" else "orange" if state == "WARNING" else "red"
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset=\"UTF-8\">",
        f"<title>Flow [{esc(str(execution.get('namespace')))}] {esc(str(execution.get('flowId')))} execution</title>",
        "</head><body style=\"font-family: sans-serif; font-size: 14px;\">",
        f"<p style=\"font-size: 16px;\">[{esc(str(execution.get('namespace')))}] {esc(str(execution.get('flowId')))}"
        f" ➛ <span style=\"color: {color};\">{esc(state)}</span></p>",
    ]
    if "customMessage" in summary:
        parts.append(f"<p>{esc(summary['customMessage'])}</p>")
    failed = summary.get("firstFailed")
    result = (f"Failed on task <code>{esc(str(failed.get('taskId')))}</code> " if failed else "Succeeded") \
        + f" after {esc(summary['duration'])}"
    parts.append(f"<p>{result}</p>")
    if summary.get("link"):
        parts.append(f"<p><a href=\"{esc(summary['link'])}\" target=\"_blank\">See details</a></p>")
    facts = [("Namespace", execution.get("namespace")), ("Flow", execution.get("flowId")),
             ("Execution", execution.get("id")), ("Status", state)]
    if summary.get("lastTask"):
        facts.append(("Final task ID", last_task_id(summary)))
    facts.extend((str(k), v) for k, v in (summary.get("customFields") or {}).items())
    parts.extend(f"<p><strong>{esc(name)} :</strong> {esc(str(value))}</p>" for name, value in facts)
    parts.append("</body></html>")
    return "\n".join(parts)


def execution_text(summary: dict[str, Any]) -> str:
    """The plain-text body of an execution summary."""
    execution = summary["execution"]
    lines = [f"[{execution.get('namespace')}] {execution.get('flowId')} ➛ {state_of(summary)}"]
    if "customMessage" in summary:
        lines.append(summary["customMessage"])
    lines.append(outcome(summary))
    if summary.get("link"):
        lines.append(f"See details: {summary['link']}")
    lines.extend([f"Namespace: {execution.get('namespace')}", f"Flow: {execution.get('flowId')}",
                  f"Execution: {execution.get('id')}", f"Status: {state_of(summary)}"])
    if summary.get("lastTask"):
        lines.append(f"Final task ID: {last_task_id(summary)}")
    lines.extend(f"{k}: {v}" for k, v in (summary.get("customFields") or {}).items())
    return "\n".join(lines) + "\n"


class MailExecutionProps(MailProps, ExecutionProps):
    templateUri: Optional[Text] = None
    textTemplateUri: Optional[Text] = None
    templateRenderMap: Optional[dict[str, Any]] = None


@register
class MailExecution(CorePlugin):
    """E-mail the summary of an execution (link, state, duration, failed task...)."""

    type = "io.kestra.plugin.email.MailExecution"
    aliases = (_OLD + "MailExecution",)
    kind = RUNNABLE
    Props = MailExecutionProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        summary = execution_summary(ctx, props)
        send_mail(ctx, props, execution_html(summary), execution_text(summary))
        return None
