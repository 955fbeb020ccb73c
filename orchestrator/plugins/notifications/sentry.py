"""``io.kestra.plugin.notifications.sentry``: SentryAlert and SentryExecution (Sentry's event API).

``dsn`` is the project's DSN (``https://<key>@o<org>.ingest.sentry.io/<project>``), turned into the
``/api/<project>/envelope/`` (``endpointType: ENVELOPE``, the default) or ``/api/<project>/store/``
URL as Kestra does; any other value is used as the URL itself (a relay, a self-hosted Sentry). An
envelope is three lines: its header (``event_id``, ``dsn``, ``sdk``, ``sent_at``), the item header
(``type: event``, ``length``…) and the event. The types are named as in Kestra's newer plugin (``io.kestra.plugin.sentry.*``) and answer to their
older ``io.kestra.plugin.notifications.*`` names too.
"""
from __future__ import annotations

import json
import re
import uuid
from typing import Any, Literal, Optional

from pydantic import Field

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Text
from orchestrator.plugins.core._render import render_text

from ._base import ExecutionProps, WebhookProps, execution_summary, last_task_id, state_of
from ._headers import java_instant, json_text, post_with_headers

SENTRY_VERSION = "7"
SENTRY_CLIENT = "java"
DSN = re.compile(r"^(https?)://([a-f0-9]+)@(o[0-9]+\.ingest\.sentry\.io)/([0-9]+)$")
PAYLOAD_LIMIT = 1024 * 1024
ENVELOPE_LIMIT = 100 * 1024 * 1024
LEVELS = ("FATAL", "ERROR", "WARNING", "INFO", "DEBUG")
PLATFORMS = ("AS3", "C", "CFML", "COCOA", "CSHARP", "ELIXIR", "HASKELL", "GO", "GROOVY", "JAVA", "JAVASCRIPT",
             "NATIVE", "NODE", "OBJC", "OTHER", "PERL", "PHP", "PYTHON", "RUBY")
EVENT_ID = re.compile(r"^[0-9a-f]{32}$")
DEFAULT_PAYLOAD = """{
  "timestamp": "{{ execution.startDate }}",
  "platform": "java",
  "level": "error",
  "message": {
    "message": "Execution {{ execution.id }} failed"
  },
  "extra": {
    "Namespace": "{{ flow.namespace }}",
    "Flow ID": "{{ flow.id }}",
    "Execution ID": "{{ execution.id }}"
  }
}"""


class SentryProps(WebhookProps):
    url: Optional[Text] = None  # Sentry's tasks take a ``dsn``; ``url`` stays accepted as the endpoint itself
    dsn: Text
    endpointType: Literal["ENVELOPE", "STORE"] = "ENVELOPE"
    payload: Optional[Text] = None


def endpoint(dsn: str, endpoint_type: str) -> str:
    """The envelope or store URL of a Sentry DSN; any other value is the URL to post to."""
    match = DSN.match(dsn)
    if not match:
        return dsn
    scheme, key, host, project = match.groups()
    path = "envelope" if endpoint_type == "ENVELOPE" else "store"
    return (f"{scheme}://{host}/api/{project}/{path}/?sentry_version={SENTRY_VERSION}&sentry_client={SENTRY_CLIENT}"
            f"&sentry_key={key}")


def envelope(event_id: str, dsn: str, payload: str) -> str:
    size = len(payload.encode("utf-8"))
    if size > PAYLOAD_LIMIT:
        raise TaskFailure("Invalid property 'payload': the event payload exceeds Sentry's 1MB limit")
    head = json.dumps({"event_id": event_id, "dsn": dsn, "sdk": {"name": SENTRY_CLIENT, "version": SENTRY_VERSION},
                       "sent_at": java_instant()}, ensure_ascii=False, separators=(",", ":"))
    item = json.dumps({"type": "event", "length": size, "content_type": "application/json",
                       "filename": "application.log"}, separators=(",", ":"))
    text = f"{head}\n{item}\n{payload}\n"
    if len(text.encode("utf-8")) > ENVELOPE_LIMIT:
        raise TaskFailure("Invalid property 'payload': the envelope exceeds Sentry's 100MB limit")
    return text


def send(ctx: RunContext, props: dict[str, Any], payload: str, event_id: str | None = None) -> None:
    dsn = (render_text(ctx, props.get("dsn")) or "").strip()
    if not dsn:
        raise TaskFailure("Invalid property 'dsn': the Sentry DSN is blank")
    kind = props.get("endpointType") or "ENVELOPE"
    body = envelope(event_id or uuid.uuid4().hex, dsn, payload) if kind == "ENVELOPE" else payload
    try:
        post_with_headers(ctx, {**props, "url": endpoint(dsn, kind)}, body, "Sentry",
                          {"Content-Type": "application/json"})
    except TaskFailure as exc:
        if kind == "ENVELOPE" and (" status 401" in str(exc) or " status 404" in str(exc)):
            ctx.log("ERROR", "Envelope endpoint not supported; Please try to configure the store endpoint instead: "
                             "endpointType: store")
        raise


@register
class SentryAlert(CorePlugin):
    """Send ``payload`` (a Sentry event, JSON; a failure event of the execution by default) to Sentry."""

    type = "io.kestra.plugin.sentry.SentryAlert"
    aliases = ("io.kestra.plugin.notifications.sentry.SentryAlert",)
    kind = RUNNABLE
    Props = SentryProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        payload = self.task.props.get("payload")
        send(ctx, self.task.props, json_text(ctx, payload if payload is not None else DEFAULT_PAYLOAD, "payload"))
        return None


class SentryExecutionProps(SentryProps, ExecutionProps):
    eventId: Optional[Text] = None
    platform: Text = "JAVA"
    level: Text = "ERROR"
    transaction: Optional[Text] = None
    serverName: Optional[Text] = None
    extra: Optional[dict[str, Any]] = None
    errors_: Optional[dict[str, Any]] = Field(default=None, alias="errors")
    templateUri: Optional[Text] = None
    templateRenderMap: Optional[dict[str, Any]] = None


def _choice(ctx: RunContext, value: Any, prop: str, allowed: tuple[str, ...]) -> str:
    text = (render_text(ctx, value) or "").strip().upper()
    if text not in allowed:
        raise TaskFailure(f"Invalid property '{prop}': '{text}' is not one of {', '.join(allowed)}")
    return text.lower()


def _map(ctx: RunContext, value: Any, prop: str) -> dict[str, Any]:
    rendered = ctx.render(value)
    if isinstance(rendered, str):
        try:
            rendered = json.loads(rendered)
        except ValueError:
            rendered = None
    if not isinstance(rendered, dict):
        raise TaskFailure(f"Invalid property '{prop}': expected a map")
    return rendered


def execution_event(ctx: RunContext, props: dict[str, Any], summary: dict[str, Any], event_id: str,
                    platform: str, level: str) -> dict[str, Any]:
    """The event of Kestra's sentry template, then the task's own properties over it."""
    execution = summary["execution"]
    failed = summary.get("firstFailed")
    event: dict[str, Any] = {
        "exception": {"values": [{
            "type": f"{execution.get('flowId')} ➛ {state_of(summary)}",
            # the template prints the failure line even for a success (without a task id), as Kestra's does
            "value": f"Failed on task `{failed.get('taskId') if failed else ''}` after {summary['duration']}",
            "module": execution.get("namespace"),
            "stacktrace": {},
        }]},
        "extra": {
            "Namespace": execution.get("namespace"), "Flow ID": execution.get("flowId"),
            "Execution ID": execution.get("id"), "Execution Status": state_of(summary),
            "Final task ID": last_task_id(summary) or "", "Link": summary.get("link") or "",
        },
        "event_id": event_id,
        "timestamp": java_instant(),
        "platform": platform,
        "level": level,
    }
    if props.get("transaction") is not None:
        event["transaction"] = ctx.render_string(props["transaction"])
    if props.get("serverName") is not None:
        event["server_name"] = ctx.render_string(props["serverName"])
    if props.get("extra"):
        event["extra"].update(_map(ctx, props["extra"], "extra"))
    if props.get("errors"):
        event["errors"] = _map(ctx, props["errors"], "errors")
    return event


@register
class SentryExecution(CorePlugin):
    """Send the summary of an execution to Sentry as an error event."""

    type = "io.kestra.plugin.sentry.SentryExecution"
    aliases = ("io.kestra.plugin.notifications.sentry.SentryExecution",)
    kind = RUNNABLE
    Props = SentryExecutionProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        event_id = (render_text(ctx, props.get("eventId")) or uuid.uuid4().hex).strip()
        if not EVENT_ID.match(event_id):
            raise TaskFailure(f"Invalid property 'eventId': '{event_id}' is not 32 lower-case hexadecimal digits")
        platform = _choice(ctx, props.get("platform") or "JAVA", "platform", PLATFORMS)
        level = _choice(ctx, props.get("level") or "ERROR", "level", LEVELS)
        event = execution_event(ctx, props, execution_summary(ctx, props), event_id, platform, level)
        send(ctx, props, json.dumps(event, ensure_ascii=False), event_id)
        return None
