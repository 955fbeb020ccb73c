"""``io.kestra.plugin.notifications.pagerduty``: PagerDutyAlert and PagerDutyExecution (Events API v2).

The types also answer to the names of Kestra's newer plugin (``io.kestra.plugin.pagerduty.*``).
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Optional

from pydantic import Field

from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Text

from ._base import ExecutionProps, WebhookProps, execution_summary, last_task_id, outcome, post_json, state_of, title


class PagerDutyProps(WebhookProps):
    payload: Optional[Text] = None


@register
class PagerDutyAlert(CorePlugin):
    """Send ``payload`` (a PagerDuty event, JSON) to the Events API, as written."""

    type = "io.kestra.plugin.notifications.pagerduty.PagerDutyAlert"
    aliases = ("io.kestra.plugin.pagerduty.PagerDutyAlert",)
    kind = RUNNABLE
    Props = PagerDutyProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        payload = self.task.props.get("payload")
        post_json(ctx, self.task.props, ctx.render_string(payload) if payload is not None else "", "PagerDuty")
        return None


def execution_event(summary: dict[str, Any]) -> dict[str, Any]:
    """The PagerDuty event of an execution summary (the fields of Kestra's pagerduty template)."""
    execution = summary["execution"]
    return {
        "event_action": "trigger",
        "payload": {
            "source": f"{execution.get('namespace')} {execution.get('id')}",
            "severity": "error" if summary.get("firstFailed") else "info",
            "custom_details": [
                {"title": "Flow ID", "value": execution.get("flowId")},
                {"title": "Execution Status", "value": state_of(summary)},
                {"title": "Final task ID", "value": last_task_id(summary)},
            ],
        },
        "links": [{"href": f"*{title(summary)}*\n>", "text": outcome(summary)}],
    }


class PagerDutyExecutionProps(PagerDutyProps, ExecutionProps):
    routingKey: Optional[Text] = None
    deduplicationKey: Optional[Text] = None
    eventAction: Optional[Text] = None
    payloadSummary: Optional[Text] = Field(default=None, max_length=1024)
    templateUri: Optional[Text] = None
    templateRenderMap: Optional[dict[str, Any]] = None


@register
class PagerDutyExecution(CorePlugin):
    """Send the summary of an execution to PagerDuty as an event."""

    type = "io.kestra.plugin.notifications.pagerduty.PagerDutyExecution"
    aliases = ("io.kestra.plugin.pagerduty.PagerDutyExecution",)
    kind = RUNNABLE
    Props = PagerDutyExecutionProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        event = execution_event(execution_summary(ctx, props))
        for prop, key in (("routingKey", "routing_key"), ("deduplicationKey", "dedup_key"),
                          ("eventAction", "event_action")):
            if props.get(prop) is not None:
                event[key] = ctx.render_string(props[prop])
        if props.get("payloadSummary") is not None:
            event["payload"]["summary"] = ctx.render_string(props["payloadSummary"])
        event["payload"]["timestamp"] = datetime.now().isoformat()
        post_json(ctx, props, json.dumps(event), "PagerDuty")
        return None
