"""``io.kestra.plugin.tencent.qq``: QQIncomingWebhook and QQExecution (Tencent Cloud IM REST API).

``QQIncomingWebhook`` posts ``payload`` (JSON) as written, with ``Authorization: Bearer <token>`` when
a token is given. ``QQExecution`` sends one ``TIMTextElem`` message per ``recipientIds`` entry
(``To_Account``, a random ``MsgRandom``, ``MsgBody``) whose text is Kestra's QQ template of the
execution summary.
"""
from __future__ import annotations

import json
import random
from typing import Any, Optional

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Text
from orchestrator.plugins.core._render import render_text, render_text_list
from orchestrator.plugins.notifications._base import ExecutionProps, WebhookProps, execution_summary, last_task_id
from orchestrator.plugins.notifications._base import state_of
from orchestrator.plugins.notifications._headers import java_instant, json_text, post_with_headers


class QQProps(WebhookProps):
    token: Optional[Text] = None
    payload: Optional[Text] = None


def _auth(ctx: RunContext, props: dict[str, Any]) -> dict[str, str]:
    token = render_text(ctx, props.get("token"))
    return {"Authorization": f"Bearer {token}"} if token else {}


@register
class QQIncomingWebhook(CorePlugin):
    """Send ``payload`` (JSON) to a Tencent IM / QQ REST endpoint."""

    type = "io.kestra.plugin.tencent.qq.QQIncomingWebhook"
    kind = RUNNABLE
    Props = QQProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        if props.get("payload") is None:
            raise TaskFailure("Invalid property 'payload': the message is required")
        post_with_headers(ctx, props, json_text(ctx, props["payload"], "payload"), "Tencent IM",
                          {"Content-Type": "application/json", **_auth(ctx, props)})
        ctx.log("INFO", "QQ IncomingWebhook message sent successfully")
        return None


class QQExecutionProps(QQProps, ExecutionProps):
    recipientIds: Optional[list[Text]] = None
    templateUri: Optional[Text] = None
    templateRenderMap: Optional[dict[str, Any]] = None


def execution_text(summary: dict[str, Any]) -> str:
    """The text of Kestra's QQ template for an execution summary."""
    execution = summary["execution"]
    start = java_instant(summary["startDate"]) if summary.get("startDate") else ""
    text = (f"Namespace: {execution.get('namespace')}\nFlow: {execution.get('flowId')}\n"
            f"Execution ID: {execution.get('id')}\n\nStatus: {state_of(summary)}\nStarted At: {start}\n"
            f"Duration: {summary['duration']}\nFinal task ID: {last_task_id(summary) or ''}\n\n")
    failed = summary.get("firstFailed")
    if failed:
        text += f"Failed Task: {failed.get('taskId')}\n"
    text += f"\nView Execution: {summary.get('link') or ''}\n\n"
    if summary.get("customMessage"):
        text += f"Message:\n{summary['customMessage']}\n"
    text += "\n"
    if "customFields" in summary:
        text += "Additional Info:\n" + "".join(f"- {k}: {v}\n" for k, v in summary["customFields"].items())
    return text


@register
class QQExecution(CorePlugin):
    """Send the summary of an execution to each of ``recipientIds``."""

    type = "io.kestra.plugin.tencent.qq.QQExecution"
    kind = RUNNABLE
    Props = QQExecutionProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        recipients = render_text_list(ctx, props.get("recipientIds"))
        if not recipients:
            raise TaskFailure("Invalid property 'recipientIds': at least one recipient is required")
        text = execution_text(execution_summary(ctx, props))
        for recipient in recipients:
            message = {"To_Account": recipient, "MsgRandom": random.randrange(2**31 - 1),
                       "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]}
            post_with_headers(ctx, props, json.dumps(message, ensure_ascii=False), "Tencent IM",
                              {"Content-Type": "application/json", **_auth(ctx, props)})
        return None
