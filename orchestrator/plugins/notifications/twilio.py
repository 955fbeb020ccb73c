"""``io.kestra.plugin.notifications.twilio``: TwilioAlert and TwilioExecution (Twilio Notify, SMS).

``POST url`` (the Notify service's ``/Notifications`` endpoint) with HTTP basic authentication
(``accountSID:authToken``) and the JSON ``payload`` sent as form fields, as Kestra does. The
execution variant sends Kestra's template (``body``) plus ``Body``, ``Identity`` and ``Tag`` when
given. The types are named as in Kestra's newer plugin (``io.kestra.plugin.twilio.notify.*``) and answer to their
older ``io.kestra.plugin.notifications.*`` names too.
"""
from __future__ import annotations

import base64
import json
import urllib.parse
from typing import Any, Optional

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Text
from orchestrator.plugins.core._render import render_text

from ._base import ExecutionProps, WebhookProps, execution_summary, last_task_id, outcome, state_of, title
from ._headers import post_with_headers


class TwilioProps(WebhookProps):
    payload: Optional[Text] = None
    accountSID: Text
    authToken: Text


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "" if value is None else str(value)


def send(ctx: RunContext, props: dict[str, Any], fields: dict[str, Any]) -> None:
    sid = (render_text(ctx, props.get("accountSID")) or "").strip()
    token = render_text(ctx, props.get("authToken")) or ""
    if not sid:
        raise TaskFailure("Invalid property 'accountSID': the account SID is blank")
    if not token:
        raise TaskFailure("Invalid property 'authToken': the auth token is blank")
    credentials = base64.b64encode(f"{sid}:{token}".encode("utf-8")).decode("ascii")
    body = urllib.parse.urlencode({key: _form_value(value) for key, value in fields.items()})
    post_with_headers(ctx, props, body, "Twilio", {"Content-Type": "application/x-www-form-urlencoded",
                                                   "Authorization": f"Basic {credentials}"})


@register
class TwilioAlert(CorePlugin):
    """Send ``payload`` (a JSON object of Twilio Notify parameters) as form fields."""

    type = "io.kestra.plugin.twilio.notify.TwilioAlert"
    aliases = ("io.kestra.plugin.notifications.twilio.TwilioAlert",)
    kind = RUNNABLE
    Props = TwilioProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        payload = self.task.props.get("payload")
        if payload is None:
            raise TaskFailure("Invalid property 'payload': the notification parameters are required")
        try:
            fields = json.loads(ctx.render_string(payload))
        except ValueError as exc:
            raise TaskFailure(f"Invalid property 'payload': not valid JSON ({exc})") from None
        if not isinstance(fields, dict):
            raise TaskFailure("Invalid property 'payload': expected a JSON object of parameters")
        send(ctx, self.task.props, fields)
        return None


class TwilioExecutionProps(TwilioProps, ExecutionProps):
    body: Optional[Text] = None
    identity: Optional[Text] = None
    tag: Optional[Text] = None
    templateUri: Optional[Text] = None
    templateRenderMap: Optional[dict[str, Any]] = None


def execution_body(summary: dict[str, Any]) -> str:
    """The ``body`` of Kestra's twilio template for an execution summary."""
    execution = summary["execution"]
    head = title(summary) if summary.get("link") else f"<|{title(summary, with_link=False)}>"
    return (f"Namespace {execution.get('namespace')}, Flow ID {execution.get('flowId')}, Execution ID "
            f"{execution.get('id')}, Execution Status {state_of(summary)}, Final task ID {last_task_id(summary) or ''}"
            f". *{head}*\n> {outcome(summary)}")


@register
class TwilioExecution(CorePlugin):
    """Send the summary of an execution through Twilio Notify (SMS, push...)."""

    type = "io.kestra.plugin.twilio.notify.TwilioExecution"
    aliases = ("io.kestra.plugin.notifications.twilio.TwilioExecution",)
    kind = RUNNABLE
    Props = TwilioExecutionProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        fields: dict[str, Any] = {"body": execution_body(execution_summary(ctx, props))}
        for prop, key in (("body", "Body"), ("identity", "Identity"), ("tag", "Tag")):
            if props.get(prop) is not None:
                fields[key] = ctx.render_string(props[prop])
        send(ctx, props, fields)
        return None
