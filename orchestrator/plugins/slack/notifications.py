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
    ExecutionProps, WebhookProps, execution_summary, last_task_id, outcome, post_json, state_of, title,
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


def execution_payload(summary: dict[str, Any], final_task_last: bool = True) -> dict[str, Any]:
    """The Slack message of an execution summary (the fields of Kestra's slack template; Zulip's
    template, Slack-compatible, lists the final task before the custom fields)."""
    execution = summary["execution"]
    state = state_of(summary)
    headline = f"*{title(summary)}*\n> {outcome(summary)}"
    section: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": headline}}
    if summary.get("link"):
        section["accessory"] = {"type": "button", "text": {"type": "plain_text", "text": "Details"},
                                "url": summary["link"]}
    blocks = []
    if "customMessage" in summary:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": summary["customMessage"]}})
    blocks.append(section)
    fields = [
        {"title": "Namespace", "value": execution.get("namespace"), "short": True},
        {"title": "Flow ID", "value": execution.get("flowId"), "short": True},
        {"title": "Execution ID", "value": execution.get("id"), "short": True},
        {"title": "Execution Status", "value": state, "short": True},
    ]
    final = {"title": "Final task ID", "value": last_task_id(summary), "short": True}
    if not final_task_last:
        fields.append(final)
    for key, value in (summary.get("customFields") or {}).items():
        fields.append({"title": key, "value": value, "short": True})
    if final_task_last:
        fields.append(final)
    attachment: dict[str, Any] = {
        "color": "good" if state == "SUCCESS" else "warning" if state == "WARNING" else "danger",
        "fields": fields,
    }
    if summary.get("startDate") is not None:
        attachment["ts"] = int(summary["startDate"].timestamp())
    return {"text": headline, "blocks": blocks, "attachments": [attachment]}


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
