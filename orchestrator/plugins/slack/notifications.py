"""``io.kestra.plugin.slack.notifications``: SlackIncomingWebhook and SlackExecution.

They answer to the names of ``plugin-notifications`` (``io.kestra.plugin.notifications.slack.*``)
and ``io.kestra.plugin.slack.*`` too, as Kestra's aliases say.
"""
from __future__ import annotations

import json
import re
from typing import Any, Optional

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Text
from orchestrator.plugins.notifications._base import (
    ExecutionProps, WebhookProps, execution_payload, execution_summary, post_json,
)

_OLD = "io.kestra.plugin.notifications.slack."
_SHORT = "io.kestra.plugin.slack."


def slack_mrkdwn(text: str) -> str:
    """Markdown to Slack's mrkdwn: ``**bold**`` → ``*bold*``, ``__it__`` → ``_it_``, links → ``<url|text>``."""
    text = re.sub(r"\*\*(.*?)\*\*", r"*\1*", text)
    text = re.sub(r"__(.*?)__", r"_\1_", text)
    return re.sub(r"\[(.*?)\]\((.*?)\)", r"<\2|\1>", text)


def message(ctx: RunContext, props: dict[str, Any]) -> Any:
    """``payload`` (JSON) wins; else ``messageText``: JSON when it parses, else mrkdwn text."""
    payload = props.get("payload")
    if payload is not None:
        text = ctx.render_string(payload)
        try:
            return json.loads(text)
        except ValueError as exc:
            raise TaskFailure(f"Invalid property 'payload': not valid JSON ({exc})") from None
    text_prop = props.get("messageText")
    if text_prop is not None:
        text = ctx.render_string(text_prop)
        try:
            parsed = json.loads(text)
            if isinstance(parsed, (dict, list)):
                return parsed
        except ValueError:
            pass
        return {"text": slack_mrkdwn(text)}
    raise TaskFailure("Either 'messageText' or 'payload' must be provided")


class SlackProps(WebhookProps):
    payload: Optional[Text] = None
    messageText: Optional[Text] = None


@register
class SlackIncomingWebhook(CorePlugin):
    """Send a message to a Slack incoming webhook."""

    type = "io.kestra.plugin.slack.notifications.SlackIncomingWebhook"
    aliases = (_OLD + "SlackIncomingWebhook", _SHORT + "SlackIncomingWebhook")
    kind = RUNNABLE
    Props = SlackProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        post_json(ctx, self.task.props, json.dumps(message(ctx, self.task.props)), "Slack")
        return None


class SlackExecutionProps(SlackProps, ExecutionProps):
    channel: Optional[Text] = None
    username: Optional[Text] = None
    iconUrl: Optional[Text] = None
    iconEmoji: Optional[Text] = None
    templateUri: Optional[Text] = None
    templateRenderMap: Optional[dict[str, Any]] = None


@register
class SlackExecution(CorePlugin):
    """Send the summary of an execution (link, state, duration, failed task...) to Slack."""

    type = "io.kestra.plugin.slack.notifications.SlackExecution"
    aliases = (_OLD + "SlackExecution", _SHORT + "SlackExecution")
    kind = RUNNABLE
    Props = SlackExecutionProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        payload = execution_payload(execution_summary(ctx, props))
        for prop, key in (("channel", "channel"), ("username", "username"), ("iconUrl", "icon_url"),
                          ("iconEmoji", "icon_emoji")):
            if props.get(prop) is not None:
                payload[key] = ctx.render_string(props[prop])
        post_json(ctx, props, json.dumps(payload), "Slack")
        return None
