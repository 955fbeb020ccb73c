"""``io.kestra.plugin.notifications.telegram``: TelegramSend and TelegramExecution (Bot API ``sendMessage``).

``POST <endpointOverride or https://api.telegram.org>/bot<token>/sendMessage`` with
``{"chat_id": channel, "text": payload, "parse_mode": …}``; an answer without ``"ok": true`` fails
the task. The types also answer to the names of Kestra's newer plugin (``io.kestra.plugin.telegram.*``).
"""
from __future__ import annotations

import json
from typing import Any, Literal, Optional

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Props, Text
from orchestrator.plugins.core._render import render_text

from ._base import ExecutionProps, RequestOptions, execution_summary, last_task_id, outcome, post_json, state_of

API = "https://api.telegram.org"
PARSE_MODES = {"HTML": "HTML", "MARKDOWNV2": "MarkdownV2"}


class TelegramProps(Props):
    token: Text
    channel: Text
    payload: Optional[Text] = None
    parseMode: Optional[Literal["HTML", "MARKDOWNV2"]] = None
    endpointOverride: Optional[Text] = None
    options: Optional[RequestOptions] = None


def send(ctx: RunContext, props: dict[str, Any], text: str) -> None:
    token = (render_text(ctx, props.get("token")) or "").strip()
    channel = (render_text(ctx, props.get("channel")) or "").strip()
    if not token:
        raise TaskFailure("Invalid property 'token': the bot token is blank")
    if not channel:
        raise TaskFailure("Invalid property 'channel': the chat id is blank")
    base = (render_text(ctx, props.get("endpointOverride")) or API).rstrip("/")
    mode = render_text(ctx, props.get("parseMode"))
    message: dict[str, Any] = {"chat_id": channel, "text": text}
    if mode:
        if mode.strip().upper() not in PARSE_MODES:
            raise TaskFailure(f"Invalid property 'parseMode': '{mode}' is not one of HTML, MARKDOWNV2")
        message["parse_mode"] = PARSE_MODES[mode.strip().upper()]
    request = {**props, "url": f"{base}/bot{token}/sendMessage"}
    answer = post_json(ctx, request, json.dumps(message), "Telegram")
    try:
        ok = bool(json.loads(answer).get("ok"))
    except (ValueError, AttributeError):
        ok = False
    if not ok:
        raise TaskFailure(f"Unable to send Telegram message: {answer[:500]}")


@register
class TelegramSend(CorePlugin):
    """Send ``payload`` (text) to a Telegram chat with a bot."""

    type = "io.kestra.plugin.notifications.telegram.TelegramSend"
    aliases = ("io.kestra.plugin.telegram.TelegramSend",)
    kind = RUNNABLE
    Props = TelegramProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        payload = self.task.props.get("payload")
        if payload is None:
            raise TaskFailure("Invalid property 'payload': the message text is required")
        send(ctx, self.task.props, ctx.render_string(payload))
        return None


def execution_text(summary: dict[str, Any]) -> str:
    """The Telegram text of an execution summary (the line of Kestra's telegram template)."""
    execution = summary["execution"]
    return (f"<{execution.get('namespace')} {execution.get('flowId')} {execution.get('id')} ➛ {state_of(summary)}"
            f" - Final task ID ➛ {last_task_id(summary) or ''}> {outcome(summary)} ({summary.get('link') or ''})")


class TelegramExecutionProps(TelegramProps, ExecutionProps):
    templateUri: Optional[Text] = None
    templateRenderMap: Optional[dict[str, Any]] = None


@register
class TelegramExecution(CorePlugin):
    """Send the summary of an execution to a Telegram chat."""

    type = "io.kestra.plugin.notifications.telegram.TelegramExecution"
    aliases = ("io.kestra.plugin.telegram.TelegramExecution",)
    kind = RUNNABLE
    Props = TelegramExecutionProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        send(ctx, self.task.props, execution_text(execution_summary(ctx, self.task.props)))
        return None
