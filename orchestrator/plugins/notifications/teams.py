"""``io.kestra.plugin.notifications.teams``: TeamsIncomingWebhook and TeamsExecution (Microsoft Teams)."""
from __future__ import annotations

import json
from typing import Any, Optional

from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Text

from ._base import ExecutionProps, WebhookProps, execution_summary, last_task_id, outcome, post_json, state_of, title


class TeamsProps(WebhookProps):
    payload: Optional[Text] = None


@register
class TeamsIncomingWebhook(CorePlugin):
    """Send ``payload`` (a JSON message card) to a Microsoft Teams incoming webhook, as written."""

    type = "io.kestra.plugin.notifications.teams.TeamsIncomingWebhook"
    aliases = ("io.kestra.plugin.microsoft365.teams.TeamsIncomingWebhook",)
    kind = RUNNABLE
    Props = TeamsProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        payload = self.task.props.get("payload")
        post_json(ctx, self.task.props, ctx.render_string(payload) if payload is not None else "", "Microsoft Teams")
        return None


def execution_card(summary: dict[str, Any], theme_color: str, activity_title: str | None,
                   activity_subtitle: str | None) -> dict[str, Any]:
    """The MessageCard of an execution summary (the fields of Kestra's teams template)."""
    execution = summary["execution"]
    section: dict[str, Any] = {}
    if activity_title is not None:
        section["activityTitle"] = activity_title
    if activity_subtitle is not None:
        section["activitySubtitle"] = activity_subtitle
    section["facts"] = [
        {"name": "Namespace", "value": execution.get("namespace")},
        {"name": "Flow ID", "value": execution.get("flowId")},
        {"name": "Execution ID", "value": execution.get("id")},
        {"name": "Execution Status", "value": state_of(summary)},
        {"name": "Final task ID", "value": last_task_id(summary)},
    ]
    section["markdown"] = True
    return {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": theme_color,
        "summary": f"*{title(summary)}*\n> {outcome(summary)}",
        "sections": [section],
    }


class TeamsExecutionProps(TeamsProps, ExecutionProps):
    themeColor: Text = "0076D7"
    activityTitle: Optional[Text] = None
    activitySubtitle: Optional[Text] = None
    templateUri: Optional[Text] = None
    templateRenderMap: Optional[dict[str, Any]] = None


@register
class TeamsExecution(CorePlugin):
    """Send the summary of an execution to Microsoft Teams as a message card."""

    type = "io.kestra.plugin.notifications.teams.TeamsExecution"
    aliases = ("io.kestra.plugin.microsoft365.teams.TeamsExecution",)
    kind = RUNNABLE
    Props = TeamsExecutionProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props

        def text(name: str) -> str | None:
            return ctx.render_string(props[name]) if props.get(name) is not None else None

        card = execution_card(execution_summary(ctx, props), text("themeColor") or "0076D7",
                              text("activityTitle"), text("activitySubtitle"))
        post_json(ctx, props, json.dumps(card), "Microsoft Teams")
        return None
