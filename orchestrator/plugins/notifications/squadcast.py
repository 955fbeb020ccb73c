"""``io.kestra.plugin.notifications.squadcast``: SquadcastIncomingWebhook and SquadcastExecution.

``url`` is the webhook of a Squadcast "Incident Webhook" alert source. The types are named as in Kestra's newer plugin (``io.kestra.plugin.squadcast.*``) and answer to their
older ``io.kestra.plugin.notifications.*`` names too.
"""
from __future__ import annotations

import json
from typing import Any, Optional

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Text

from ._base import ExecutionProps, WebhookProps, execution_summary, last_task_id, post_json, state_of
from ._headers import json_text


class SquadcastProps(WebhookProps):
    payload: Optional[Text] = None


@register
class SquadcastIncomingWebhook(CorePlugin):
    """Send ``payload`` (a Squadcast event, JSON) to the webhook, as written."""

    type = "io.kestra.plugin.squadcast.SquadcastIncomingWebhook"
    aliases = ("io.kestra.plugin.notifications.squadcast.SquadcastIncomingWebhook",)
    kind = RUNNABLE
    Props = SquadcastProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        payload = self.task.props.get("payload")
        if payload is None:
            raise TaskFailure("Invalid property 'payload': the Squadcast event is required")
        post_json(ctx, self.task.props, json_text(ctx, payload, "payload"), "Squadcast")
        return None


class SquadcastExecutionProps(SquadcastProps, ExecutionProps):
    message: Optional[Text] = None
    priority: Optional[Text] = None
    eventId: Optional[Text] = None
    status: Optional[Text] = None
    tags: Optional[dict[str, Text]] = None
    templateUri: Optional[Text] = None
    templateRenderMap: Optional[dict[str, Any]] = None


def execution_event(ctx: RunContext, props: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """Kestra's squadcast template for the summary (its ``&rarr;`` kept as written), then the task's properties."""
    execution = summary["execution"]
    head = f"[{execution.get('namespace')}] {execution.get('flowId')} &rarr; {state_of(summary)}"
    link = summary.get("link")
    failed = summary.get("firstFailed")
    status = f"Failed on task `{failed.get('taskId')}`" if failed else "Succeeded"
    event: dict[str, Any] = {
        "description": (f"*{f'<{link}|{head}>' if link else head}*\nFinal task ID: {last_task_id(summary) or ''}\n"
                        f"Status: {status}\nDuration: {summary['duration']}"),
    }
    for prop, key in (("message", "message"), ("priority", "priority"), ("eventId", "event_id"),
                      ("status", "status")):
        if props.get(prop) is not None:
            event[key] = ctx.render_string(props[prop])
    if props.get("tags"):
        tags = ctx.render(props["tags"])
        if not isinstance(tags, dict):
            raise TaskFailure("Invalid property 'tags': expected a map of tag names to values")
        event["tags"] = {str(k): str(v) for k, v in tags.items()}
    return event


@register
class SquadcastExecution(CorePlugin):
    """Send the summary of an execution to Squadcast as an incident."""

    type = "io.kestra.plugin.squadcast.SquadcastExecution"
    aliases = ("io.kestra.plugin.notifications.squadcast.SquadcastExecution",)
    kind = RUNNABLE
    Props = SquadcastExecutionProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        post_json(ctx, props, json.dumps(execution_event(ctx, props, execution_summary(ctx, props)),
                                          ensure_ascii=False), "Squadcast")
        return None
