"""``io.kestra.plugin.twilio.sendgrid``: SendGridMailSend and SendGridMailExecution (SendGrid v3 API).

``POST https://api.sendgrid.com/v3/mail/send`` with ``Authorization: Bearer <sendgridApiKey>`` and
SendGrid's mail object (``from``, one personalization with ``to``/``cc``/``subject``, ``content``
in text then HTML, ``attachments`` and inline ``embeddedImages`` read from internal storage). The
outputs are the answer's ``body``, ``headers`` and ``statusCode``; a status other than 2xx fails
the task. The execution variant sends the HTML summary of the e-mail notifications. The types are named as in Kestra's newer plugin (``io.kestra.plugin.twilio.sendgrid.*``) and answer to their
older ``io.kestra.plugin.notifications.*`` names too.
"""
from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Optional, Union

from pydantic import Field

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import platform_of
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Props, Text
from orchestrator.plugins.core._render import render_text, render_text_list
from orchestrator.plugins.email import NO_HTML_TEXT, Attachment, _attachments, execution_html

from orchestrator.plugins.notifications._base import ExecutionProps, execution_summary

log = logging.getLogger("celestra.plugins.notifications")
API = "https://api.sendgrid.com"


class SendGridProps(Props):
    sendgridApiKey: Text
    from_: Text = Field(alias="from")
    to: list[Text]
    cc: Optional[list[Text]] = None
    subject: Optional[Text] = None
    htmlContent: Optional[Text] = None
    textContent: Optional[Text] = None
    attachments: Optional[Union[list[Attachment], str]] = None
    embeddedImages: Optional[Union[list[Attachment], str]] = None
    #: Celestra's: the base URL of the API (a relay, a test server); SendGrid's own by default
    endpointOverride: Optional[Text] = None


def _emails(ctx: RunContext, value: Any, prop: str, required: bool = False) -> list[dict[str, str]]:
    addresses = [a.strip() for a in render_text_list(ctx, value) if a and a.strip()]
    if required and not addresses:
        raise TaskFailure(f"Invalid property '{prop}': at least one address is required")
    for address in addresses:
        if "@" not in address:
            raise TaskFailure(f"Invalid property '{prop}': '{address}' is not an e-mail address")
    return [{"email": address} for address in addresses]


def mail_object(ctx: RunContext, props: dict[str, Any], html: str | None, text: str | None) -> dict[str, Any]:
    sender = (render_text(ctx, props.get("from")) or "").strip()
    if not sender:
        raise TaskFailure("Invalid property 'from': a sender address is required")
    personalization: dict[str, Any] = {"to": _emails(ctx, props.get("to"), "to", required=True)}
    cc = _emails(ctx, props.get("cc"), "cc")
    if cc:
        personalization["cc"] = cc
    subject = render_text(ctx, props.get("subject"))
    if subject is not None:
        personalization["subject"] = subject
    mail: dict[str, Any] = {"from": {"email": sender}, "personalizations": [personalization]}
    content = []
    if text is not None:
        content.append({"type": "text/plain", "value": text or NO_HTML_TEXT})
    if html is not None:
        content.append({"type": "text/html", "value": html})
    if content:
        mail["content"] = content
    platform = platform_of(ctx)
    files = []
    for prop, disposition in (("attachments", "attachment"), ("embeddedImages", "inline")):
        for item in _attachments(ctx, props.get(prop), prop):
            try:
                data = platform.read_file(item["uri"].strip())
            except TaskFailure as exc:
                raise TaskFailure(f"Invalid property '{prop}': {exc}") from None
            files.append({"content": base64.b64encode(data).decode("ascii"), "type": item["contentType"],
                          "filename": item["name"], "disposition": disposition})
    if files:
        mail["attachments"] = files
    return mail


def send(ctx: RunContext, props: dict[str, Any], mail: dict[str, Any]) -> dict[str, Any]:
    key = (render_text(ctx, props.get("sendgridApiKey")) or "").strip()
    if not key:
        raise TaskFailure("Invalid property 'sendgridApiKey': the API key is blank")
    base = (render_text(ctx, props.get("endpointOverride")) or API).strip().rstrip("/")
    parts = urllib.parse.urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TaskFailure(f"Invalid property 'endpointOverride': '{base}' is not an http(s) URL")
    request = urllib.request.Request(f"{base}/v3/mail/send", data=json.dumps(mail).encode("utf-8"), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}",
                                              "Accept": "application/json"})
    # only the task's own endpoint is called, never through a proxy of the environment
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    log.debug("Send a SendGrid mail to %s", personalization_to(mail))
    try:
        with opener.open(request, timeout=30) as response:
            status, headers = response.status, dict(response.headers.items())
            body = response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        status, headers = exc.code, dict(exc.headers.items())
        body = exc.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        raise TaskFailure(f"Unable to reach SendGrid at {parts.scheme}://{parts.netloc}: "
                          f"{getattr(exc, 'reason', exc)}") from None
    if status // 100 != 2:
        raise TaskFailure(f"SendGrid API failed with status code: {status} and body: {body[:1000]}")
    ctx.log("INFO", f"Mail sent through SendGrid (status {status})")
    return {"body": body, "headers": headers, "statusCode": status}


def personalization_to(mail: dict[str, Any]) -> list[str]:
    return [item["email"] for item in mail["personalizations"][0]["to"]]


@register
class SendGridMailSend(CorePlugin):
    """Send an e-mail (text and/or HTML, attachments from internal storage) through SendGrid."""

    type = "io.kestra.plugin.twilio.sendgrid.SendGridMailSend"
    aliases = ("io.kestra.plugin.notifications.sendgrid.SendGridMailSend",)
    kind = RUNNABLE
    Props = SendGridProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        html = render_text(ctx, props.get("htmlContent"))
        # as Kestra: a given but empty text content becomes the "modern e-mail client" line
        text = (render_text(ctx, props.get("textContent")) or "") if "textContent" in props else None
        return send(ctx, props, mail_object(ctx, props, html, text))


class SendGridExecutionProps(SendGridProps, ExecutionProps):
    templateUri: Optional[Text] = None
    textTemplateUri: Optional[Text] = None
    templateRenderMap: Optional[dict[str, Any]] = None


@register
class SendGridMailExecution(CorePlugin):
    """E-mail the summary of an execution through SendGrid."""

    type = "io.kestra.plugin.twilio.sendgrid.SendGridMailExecution"
    aliases = ("io.kestra.plugin.notifications.sendgrid.SendGridMailExecution",)
    kind = RUNNABLE
    Props = SendGridExecutionProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        summary = execution_summary(ctx, props)
        return send(ctx, props, mail_object(ctx, props, execution_html(summary), NO_HTML_TEXT))
