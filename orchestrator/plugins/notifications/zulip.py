"""``io.kestra.plugin.notifications.zulip``: ZulipIncomingWebhook and ZulipExecution.

Zulip's incoming webhooks take Slack's message format; the types also answer to the names of
Kestra's newer plugin (``io.kestra.plugin.zulip.*``).
"""
from __future__ import annotations

import json
from typing import Any, Optional

from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Text

from ._base import ExecutionProps, WebhookProps, execution_payload, execution_summary, post_json


class ZulipProps(WebhookProps):
    payload: Optional[Text] = None


@register
class ZulipIncomingWebhook(CorePlugin):
    """Send ``payload`` (JSON) to a Zulip incoming webhook, as written."""

    type = "io.kestra.plugin.notifications.zulip.ZulipIncomingWebhook"
    aliases = ("io.kestra.plugin.zulip.ZulipIncomingWebhook",)
    kind = RUNNABLE
    Props = ZulipProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        payload = self.task.props.get("payload")
        post_json(ctx, self.task.props, ctx.render_string(payload) if payload is not None else "", "Zulip")
        return None


class ZulipExecutionProps(ZulipProps, ExecutionProps):
    channel: Optional[Text] = None
    username: Optional[Text] = None
    iconUrl: Optional[Text] = None
    iconEmoji: Optional[Text] = None
    templateUri: Optional[Text] = None
    templateRenderMap: Optional[dict[str, Any]] = None


@register
class ZulipExecution(CorePlugin):
    """Send the summary of an execution to Zulip."""

    type = "io.kestra.plugin.notifications.zulip.ZulipExecution"
    aliases = ("io.kestra.plugin.zulip.ZulipExecution",)
    kind = RUNNABLE
    Props = ZulipExecutionProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        payload = execution_payload(execution_summary(ctx, props), final_task_last=False)
        for prop, key in (("channel", "channel"), ("username", "username"), ("iconUrl", "icon_url"),
                          ("iconEmoji", "icon_emoji")):
            if props.get(prop) is not None:
                payload[key] = ctx.render_string(props[prop])
        post_json(ctx, props, json.dumps(payload), "Zulip")
        return None
