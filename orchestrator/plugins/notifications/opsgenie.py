"""``io.kestra.plugin.notifications.opsgenie``: OpsgenieAlert and OpsgenieExecution (Alert API).

``authorizationToken`` is sent as the ``Authorization`` header (``GenieKey <key>``). The types also
answer to the names of Kestra's newer plugin (``io.kestra.plugin.opsgenie.*``).
"""
from __future__ import annotations

import json
from typing import Any, Optional

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Text
from orchestrator.plugins.core._render import render_text, render_text_list

from ._base import ExecutionProps, WebhookProps, execution_summary, last_task_id, outcome, post_json, state_of


class OpsgenieProps(WebhookProps):
    payload: Optional[Text] = None
    authorizationToken: Optional[Text] = None


def _post(ctx: RunContext, props: dict[str, Any], body: str) -> None:
    token = render_text(ctx, props.get("authorizationToken"))
    options = dict(props.get("options") or {})
    if token:
        options["headers"] = {**(ctx.render(options.get("headers")) or {}), "Authorization": token}
    post_json(ctx, {**props, "options": options}, body, "Opsgenie")


@register
class OpsgenieAlert(CorePlugin):
    """Send ``payload`` (an Opsgenie alert, JSON) to the Alert API, as written."""

    type = "io.kestra.plugin.notifications.opsgenie.OpsgenieAlert"
    aliases = ("io.kestra.plugin.opsgenie.OpsgenieAlert",)
    kind = RUNNABLE
    Props = OpsgenieProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        payload = self.task.props.get("payload")
        _post(ctx, self.task.props, ctx.render_string(payload) if payload is not None else "")
        return None


class OpsgenieExecutionProps(OpsgenieProps, ExecutionProps):
    message: Optional[Text] = None
    alias: Optional[Text] = None
    responders: Optional[dict[str, Text]] = None
    visibleTo: Optional[dict[str, Text]] = None
    tags: Optional[list[Text]] = None
    priority: Optional[Text] = None
    templateUri: Optional[Text] = None
    templateRenderMap: Optional[dict[str, Any]] = None


def _pairs(ctx: RunContext, value: Any, prop: str) -> list[dict[str, str]]:
    rendered = ctx.render(value)
    if not isinstance(rendered, dict):
        raise TaskFailure(f"Invalid property '{prop}': expected a map of ids to types")
    return [{"id": str(k), "type": str(v)} for k, v in rendered.items()]


@register
class OpsgenieExecution(CorePlugin):
    """Open an Opsgenie alert with the summary of an execution."""

    type = "io.kestra.plugin.notifications.opsgenie.OpsgenieExecution"
    aliases = ("io.kestra.plugin.opsgenie.OpsgenieExecution",)
    kind = RUNNABLE
    Props = OpsgenieExecutionProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        summary = execution_summary(ctx, props)
        execution = summary["execution"]
        link = summary.get("link")
        head = (f"[{execution.get('namespace')}] {execution.get('flowId')} ➛ {state_of(summary)} - Final task ID "
                f"{last_task_id(summary) or ''}")
        alert: dict[str, Any] = {"description": f"*<{link}|{head}>*\n> {outcome(summary)}" if link
                                 else f"*{head}*\n> {outcome(summary)}"}
        for prop in ("message", "alias", "priority"):
            if props.get(prop) is not None:
                alert[prop] = ctx.render_string(props[prop])
        for prop in ("responders", "visibleTo"):
            if props.get(prop):
                alert[prop] = _pairs(ctx, props[prop], prop)
        tags = render_text_list(ctx, props.get("tags"))
        if tags:
            alert["tags"] = tags
        _post(ctx, props, json.dumps(alert))
        return None
