"""``io.kestra.plugin.notifications.zenduty``: ZendutyAlert and ZendutyExecution (Zenduty's events API).

``url`` is the integration's endpoint (``https://www.zenduty.com/api/events/<integration key>/``).
The types are named as in Kestra's newer plugin (``io.kestra.plugin.zenduty.*``) and answer to their
older ``io.kestra.plugin.notifications.*`` names too.
"""
from __future__ import annotations

import json
from typing import Any, Optional

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Text
from orchestrator.plugins.core._render import render_text_list

from ._base import ExecutionProps, WebhookProps, execution_summary, last_task_id, post_json, state_of
from ._headers import json_text

ALERT_TYPES = ("CRITICAL", "ACKNOWLEDGED", "RESOLVED", "ERROR", "WARNING", "INFO")


class ZendutyProps(WebhookProps):
    payload: Optional[Text] = None


@register
class ZendutyAlert(CorePlugin):
    """Send ``payload`` (a Zenduty event, JSON) as written."""

    type = "io.kestra.plugin.zenduty.ZendutyAlert"
    aliases = ("io.kestra.plugin.notifications.zenduty.ZendutyAlert",)
    kind = RUNNABLE
    Props = ZendutyProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        payload = self.task.props.get("payload")
        if payload is None:
            raise TaskFailure("Invalid property 'payload': the Zenduty event is required")
        post_json(ctx, self.task.props, json_text(ctx, payload, "payload"), "Zenduty")
        return None


class ZendutyExecutionProps(ZendutyProps, ExecutionProps):
    message: Optional[Text] = None
    summary: Optional[Text] = None
    alertType: Optional[Text] = None
    entityId: Optional[Text] = None
    urls: Optional[list[Text]] = None
    templateUri: Optional[Text] = None
    templateRenderMap: Optional[dict[str, Any]] = None


def execution_event(ctx: RunContext, props: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """Kestra's zenduty template for the summary, then the task's own properties over it."""
    execution = summary["execution"]
    event: dict[str, Any] = {
        "message": "Kestra workflow execution",
        "alert_type": "error" if summary.get("firstFailed") else "resolved",
        "entity_id": execution.get("id"),
        "urls": [{"link_url": summary.get("link") or "", "link_text": "Execution link"}],
        "payload": {
            "Namespace": execution.get("namespace"), "Flow ID": execution.get("flowId"),
            "Execution ID": execution.get("id"), "Execution Status": state_of(summary),
            "Final task ID": last_task_id(summary) or "", "Duration": summary["duration"],
        },
        "summary": (f"Kestra workflow execution {execution.get('id')} of a flow {execution.get('flowId')} in the "
                    f"namespace {execution.get('namespace')} changed status to {state_of(summary)}"),
    }
    for prop, key in (("message", "message"), ("summary", "summary"), ("entityId", "entity_id")):
        if props.get(prop) is not None:
            event[key] = ctx.render_string(props[prop])
    if props.get("alertType") is not None:
        kind = ctx.render_string(props["alertType"]).strip().upper()
        if kind not in ALERT_TYPES:
            raise TaskFailure(f"Invalid property 'alertType': '{kind}' is not one of {', '.join(ALERT_TYPES)}")
        event["alert_type"] = kind.lower()
    urls = render_text_list(ctx, props.get("urls"))
    if urls:
        event["urls"] = urls  # Kestra replaces the links of the template with the plain list
    return event


@register
class ZendutyExecution(CorePlugin):
    """Send the summary of an execution to Zenduty as an event."""

    type = "io.kestra.plugin.zenduty.ZendutyExecution"
    aliases = ("io.kestra.plugin.notifications.zenduty.ZendutyExecution",)
    kind = RUNNABLE
    Props = ZendutyExecutionProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        event = execution_event(ctx, props, execution_summary(ctx, props))
        post_json(ctx, props, json.dumps(event, ensure_ascii=False), "Zenduty")
        return None
