"""``io.kestra.plugin.notifications.line``: LineExecution (LINE Messaging API, broadcast by default).

``POST url`` (``https://api.line.me/v2/bot/message/broadcast`` unless given) with
``Authorization: Bearer <channelAccessToken>`` and ``{"messages": [{"type": "text", "text": …}]}``;
the text is ``textBody`` when given, else the lines of Kestra's LINE template. The type is named as in
Kestra's newer plugin (``io.kestra.plugin.line.LineExecution``) and answers to its older name too.
"""
from __future__ import annotations

import json
from typing import Any, Optional

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Text
from orchestrator.plugins.core._render import render_text

from ._base import ExecutionProps, WebhookProps, execution_summary, state_of
from ._headers import java_instant, post_with_headers

BROADCAST = "https://api.line.me/v2/bot/message/broadcast"


class LineExecutionProps(WebhookProps, ExecutionProps):
    url: Text = BROADCAST
    channelAccessToken: Text
    textBody: Optional[Text] = None
    templateUri: Optional[Text] = None
    templateRenderMap: Optional[dict[str, Any]] = None


def execution_text(summary: dict[str, Any]) -> str:
    """The text of Kestra's LINE template for an execution summary."""
    execution = summary["execution"]
    lines = [f"Execution {state_of(summary)}", "", "Details:", f"- ID: {execution.get('id')}",
             f"- Namespace: {execution.get('namespace')}", f"- Flow: {execution.get('flowId')}",
             f"- Started: {java_instant(summary['startDate']) if summary.get('startDate') else ''}",
             f"- Duration: {summary['duration']}"]
    failed = summary.get("firstFailed")
    if failed and failed.get("taskId"):
        lines.append(f"- Failed Task: {failed.get('taskId')}")
    if "customMessage" in summary:
        lines += ["", summary["customMessage"]]
    if summary.get("customFields"):
        lines.append("")
        lines += [f"- {key}: {value}" for key, value in summary["customFields"].items()]
    lines += ["", f"View Execution: {summary.get('link') or ''}"]
    return "\n".join(lines)


@register
class LineExecution(CorePlugin):
    """Broadcast (or push, with another ``url``) the summary of an execution to a LINE Official Account."""

    type = "io.kestra.plugin.line.LineExecution"
    aliases = ("io.kestra.plugin.notifications.line.LineExecution",)
    kind = RUNNABLE
    Props = LineExecutionProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        token = (render_text(ctx, props.get("channelAccessToken")) or "").strip()
        if not token:
            raise TaskFailure("Invalid property 'channelAccessToken': the channel access token is blank")
        body = props.get("textBody")
        text = ctx.render_string(body) if body is not None else execution_text(execution_summary(ctx, props))
        message = {"messages": [{"type": "text", "text": text}]}
        post_with_headers(ctx, {**props, "url": props.get("url") or BROADCAST}, json.dumps(message, ensure_ascii=False),
                          "LINE", {"Authorization": f"Bearer {token}"})
        return None
