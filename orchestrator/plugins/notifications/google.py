"""``io.kestra.plugin.notifications.google``: GoogleChatIncomingWebhook and GoogleChatExecution."""
from __future__ import annotations

import json
from typing import Any, Optional

from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Text

from ._base import (
    ExecutionProps, WebhookProps, execution_summary, last_task_id, outcome, post_json, state_of, title,
)


class GoogleChatProps(WebhookProps):
    payload: Optional[Text] = None


@register
class GoogleChatIncomingWebhook(CorePlugin):
    """Send ``payload`` (JSON) to a Google Chat incoming webhook, as written."""

    type = "io.kestra.plugin.notifications.google.GoogleChatIncomingWebhook"
    aliases = ("io.kestra.plugin.googleworkspace.chat.GoogleChatIncomingWebhook",)
    kind = RUNNABLE
    Props = GoogleChatProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        payload = self.task.props.get("payload")
        post_json(ctx, self.task.props, ctx.render_string(payload) if payload is not None else "", "Google Chat")
        return None


def execution_text(summary: dict[str, Any]) -> str:
    """The Google Chat text of an execution summary (the fields of Kestra's google chat template)."""
    execution = summary["execution"]
    return (f"Kestra Google notification: Namespace {execution.get('namespace')}, Flow ID {execution.get('flowId')}, "
            f"Execution ID {execution.get('id')}, Execution Status {state_of(summary)}, "
            f"Final task ID {last_task_id(summary) or ''}. *{title(summary)}*\n> {outcome(summary)}")


class GoogleChatExecutionProps(GoogleChatProps, ExecutionProps):
    text: Optional[Text] = None
    templateUri: Optional[Text] = None
    templateRenderMap: Optional[dict[str, Any]] = None


@register
class GoogleChatExecution(CorePlugin):
    """Send the summary of an execution to Google Chat."""

    type = "io.kestra.plugin.notifications.google.GoogleChatExecution"
    aliases = ("io.kestra.plugin.googleworkspace.chat.GoogleChatExecution",)
    kind = RUNNABLE
    Props = GoogleChatExecutionProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        payload = {"text": execution_text(execution_summary(ctx, props))}
        if props.get("text") is not None:
            payload["text"] = ctx.render_string(props["text"])
        post_json(ctx, props, json.dumps(payload), "Google Chat")
        return None
