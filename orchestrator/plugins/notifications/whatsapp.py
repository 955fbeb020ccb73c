"""``io.kestra.plugin.notifications.whatsapp``: WhatsAppIncomingWebhook and WhatsAppExecution.

``url`` is the webhook to post the WhatsApp message object to. The execution variant builds Kestra's
template (contacts, one text message whose ``body`` lists the facts of the execution) and puts the
task's ``profileName``/``whatsAppIds``, ``from``/``messageId``/``textBody`` and ``recipientId`` over it.
The types are named as in Kestra's newer plugin (``io.kestra.plugin.meta.whatsapp.*``) and answer to their
older ``io.kestra.plugin.notifications.*`` names too.
"""
from __future__ import annotations

import json
from typing import Any, Optional

from pydantic import Field

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Text
from orchestrator.plugins.core._render import render_text, render_text_list

from ._base import ExecutionProps, WebhookProps, execution_summary, last_task_id, outcome, state_of, title
from ._headers import json_text, post_with_headers


class WhatsAppProps(WebhookProps):
    payload: Optional[Text] = None


def _post(ctx: RunContext, props: dict[str, Any], body: str) -> None:
    post_with_headers(ctx, props, body, "WhatsApp", {"Content-Type": "application/json"})


@register
class WhatsAppIncomingWebhook(CorePlugin):
    """Send ``payload`` (a WhatsApp message object, JSON) to the webhook, as written."""

    type = "io.kestra.plugin.meta.whatsapp.WhatsAppIncomingWebhook"
    aliases = ("io.kestra.plugin.notifications.whatsapp.WhatsAppIncomingWebhook",)
    kind = RUNNABLE
    Props = WhatsAppProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        payload = self.task.props.get("payload")
        if payload is None:
            raise TaskFailure("Invalid property 'payload': the message is required")
        _post(ctx, self.task.props, json_text(ctx, payload, "payload"))
        return None


class WhatsAppExecutionProps(WhatsAppProps, ExecutionProps):
    profileName: Optional[Text] = None
    whatsAppIds: Optional[list[Text]] = None
    from_: Optional[Text] = Field(default=None, alias="from")
    messageId: Optional[Text] = None
    textBody: Optional[Text] = None
    recipientId: Optional[Text] = None
    templateUri: Optional[Text] = None
    templateRenderMap: Optional[dict[str, Any]] = None


def execution_message(ctx: RunContext, props: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    execution = summary["execution"]
    head = title(summary) if summary.get("link") else f"<|{title(summary, with_link=False)}>"
    text: dict[str, Any] = {"body": [
        f"Namespace {execution.get('namespace')}", f"Flow ID {execution.get('flowId')}",
        f"Execution ID {execution.get('id')}", f"Execution Status {state_of(summary)}",
        f"Final task ID {last_task_id(summary) or ''}", f"*{head}*\n> {outcome(summary)}"]}
    message: dict[str, Any] = {"contacts": [], "messages": [{"text": text, "type": "text"}]}
    profile = render_text(ctx, props.get("profileName"))
    ids = render_text_list(ctx, props.get("whatsAppIds"))
    if profile is not None and ids:
        message["contacts"] = [{"profile": {"name": profile}, "wa_id": wa_id} for wa_id in ids]
    sender = render_text(ctx, props.get("from"))
    if sender is not None:
        item: dict[str, Any] = {"from": sender}
        if props.get("messageId") is not None:
            item["id"] = ctx.render_string(props["messageId"])
        body = props.get("textBody")
        item["text"] = {"body": ctx.render_string(body)} if body is not None else text
        item["type"] = "text"
        message["messages"] = [item]
    if props.get("recipientId") is not None:
        message["recipient_id"] = ctx.render_string(props["recipientId"])
    return message


@register
class WhatsAppExecution(CorePlugin):
    """Send the summary of an execution to a WhatsApp webhook."""

    type = "io.kestra.plugin.meta.whatsapp.WhatsAppExecution"
    aliases = ("io.kestra.plugin.notifications.whatsapp.WhatsAppExecution",)
    kind = RUNNABLE
    Props = WhatsAppExecutionProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        message = execution_message(ctx, props, execution_summary(ctx, props))
        _post(ctx, props, json.dumps(message, ensure_ascii=False))
        return None
