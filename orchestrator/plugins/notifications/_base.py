"""The HTTP call of the webhook notifications and the execution summary of the ``*Execution`` types.

The summary is what Kestra's notification templates render: the execution (its Kestra JSON), its
``link`` in the UI (``kestra.url`` + ``/ui/main/executions/<ns>/<flow>/<id>``), its ``duration``
(``HH:mm:ss.SSS``), ``startDate``, ``lastTask`` and ``firstFailed`` (the last task run when it
failed, else ``False``), ``customMessage`` and ``customFields``. The execution is the current one
by default (``executionId: "{{ execution.id }}"``); another one (``{{ trigger.executionId }}`` in a
flow started by a Flow trigger) is read from the platform and waited for until it has ended (or
reached the state the Flow trigger saw), for up to ten minutes as Kestra does.
"""
from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import platform_of
from orchestrator.engine.plugins import RunContext
from orchestrator.engine.timeutil import parse_duration
from orchestrator.plugins.core._common import Duration, Props, Text
from orchestrator.plugins.core._render import render_text
from orchestrator.plugins.core.http import egress_handlers

log = logging.getLogger("celestra.plugins.notifications")

TERMINATED = frozenset({"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED", "RETRIED"})
CURRENT_EXECUTION = "{{ execution.id }}"
#: how long a notification waits for another execution to end (Kestra's retry: 10 minutes)
WAIT_LIMIT = 600.0


class _Open(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Proxy(_Open):
    type: Optional[Text] = None
    address: Optional[Text] = None
    port: Optional[int] = None
    username: Optional[Text] = None
    password: Optional[Text] = None


class RequestOptions(_Open):
    connectTimeout: Optional[Duration] = None
    readTimeout: Optional[Duration] = None
    readIdleTimeout: Optional[Duration] = None
    connectionPoolIdleTimeout: Optional[Duration] = None
    maxContentLength: Optional[int] = None
    defaultCharset: Optional[Text] = None
    headers: Optional[dict[str, Text]] = None
    proxy: Optional[_Proxy] = None


class WebhookProps(Props):
    url: Text
    options: Optional[RequestOptions] = None


class ExecutionProps(Props):
    executionId: Text = CURRENT_EXECUTION
    customFields: Optional[dict[str, Any]] = None
    customMessage: Optional[Text] = None


# --- HTTP -----------------------------------------------------------------------------------------------

def _seconds(ctx: RunContext, value: Any, default: float) -> float:
    text = render_text(ctx, value)
    if not text:
        return default
    try:
        return parse_duration(text.strip()).total_seconds()
    except ValueError:
        raise TaskFailure(f"Invalid property 'options': invalid duration '{text}'") from None


def post_json(ctx: RunContext, props: dict[str, Any], body: str | bytes, service: str) -> str:
    """POST ``body`` (JSON) to the rendered ``url``; a status of 400 or more fails the task."""
    url = (render_text(ctx, props.get("url")) or "").strip()
    if not url:
        raise TaskFailure("Invalid property 'url': the webhook URL is blank")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TaskFailure(f"Invalid property 'url': '{parts.scheme}://{parts.netloc}…' is not an http(s) URL")
    where = f"{parts.scheme}://{parts.netloc}"  # the path of a webhook URL is its secret
    options = props.get("options") or {}
    headers = {"Content-Type": "application/json"}
    raw_headers = options.get("headers")
    if raw_headers is not None:
        rendered = ctx.render(raw_headers)
        if isinstance(rendered, str):
            try:
                rendered = json.loads(rendered)
            except ValueError:
                raise TaskFailure("Invalid property 'options.headers': expected a map of header names to values") \
                    from None
        if not isinstance(rendered, dict):
            raise TaskFailure("Invalid property 'options.headers': expected a map of header names to values")
        headers.update({str(k): str(v) for k, v in rendered.items()})
    timeout = _seconds(ctx, options.get("readTimeout"), 10.0)
    data = body.encode("utf-8") if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, method="POST", headers=headers)
    handlers: list[Any] = [urllib.request.ProxyHandler(_proxies(ctx, options.get("proxy"))),
                           *egress_handlers()]  # webhook URLs follow the tasks' egress policy
    opener = urllib.request.build_opener(*handlers)
    log.debug("Send %s webhook: %s", service, data[:2000])
    try:
        with opener.open(request, timeout=timeout) as response:
            answer = response.read().decode("utf-8", errors="replace")
            status = response.status
    except urllib.error.HTTPError as exc:
        answer = exc.read().decode("utf-8", errors="replace")[:1000]
        raise TaskFailure(f"{service} webhook request to {where} failed with status {exc.code}: {answer}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TaskFailure(f"Unable to send the {service} notification to {where}: {reason}") from None
    if 200 <= status < 300:
        ctx.log("INFO", "Request succeeded")
    return answer


def _proxies(ctx: RunContext, proxy: dict[str, Any] | None) -> dict[str, str]:
    """Only the task's own proxy is used, never one from the environment."""
    if not proxy or not proxy.get("address"):
        return {}
    kind = (render_text(ctx, proxy.get("type")) or "HTTP").strip().upper()
    if kind == "DIRECT":
        return {}
    if kind != "HTTP":
        raise TaskFailure(f"Invalid property 'options.proxy.type': {kind} proxies are not supported, use HTTP")
    address = render_text(ctx, proxy.get("address"))
    port = render_text(ctx, proxy.get("port"))
    user = render_text(ctx, proxy.get("username"))
    password = render_text(ctx, proxy.get("password"))
    auth = f"{urllib.parse.quote(user or '')}:{urllib.parse.quote(password or '')}@" if user else ""
    target = f"http://{auth}{address}{':' + port if port else ''}"
    return {"http": target, "https": target}


def render_json_payload(ctx: RunContext, value: Any, prop: str = "payload") -> Any:
    """A JSON payload property, rendered and parsed (an error names the property)."""
    rendered = ctx.render(value)
    if isinstance(rendered, (dict, list)):
        return rendered
    try:
        return json.loads(str(rendered))
    except ValueError as exc:
        raise TaskFailure(f"Invalid property '{prop}': not valid JSON ({exc})") from None


# --- the execution summary ------------------------------------------------------------------------------

def human_duration(start: datetime | None, end: datetime | None) -> str:
    """``HH:mm:ss.SSS``, as Kestra's ``State.humanDuration()``."""
    if start is None:
        return "00:00:00.000"
    millis = max(0, int(((end or datetime.now(timezone.utc)) - start).total_seconds() * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _instant(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def load_execution(ctx: RunContext, execution_id: str) -> dict[str, Any] | None:
    """The Kestra JSON of an execution, from the platform of the run context.

    A platform offering ``execution_json(id)`` answers; the in-memory platform keeps execution
    dicts; the database platform reads the execution through ``flows_app``.
    """
    platform = platform_of(ctx)
    getter = getattr(platform, "execution_json", None)
    if callable(getter):
        return getter(execution_id)
    executions = getattr(platform, "executions", None)
    if isinstance(executions, list):
        found = next((dict(e) for e in executions if e.get("id") == execution_id), None)
        if found is not None and not isinstance(found.get("state"), dict):
            # the in-memory platform keeps ``state`` as its name
            found["state"] = {"current": found.get("state"), "startDate": found.get("startDate"),
                              "endDate": found.get("endDate")}
        return found
    try:
        from flows_app.models import Execution
        from flows_app.services import execution_json
    except ImportError:  # pragma: no cover - a platform without executions
        return None
    if not Execution.objects.filter(pk=execution_id).exists():
        return None
    return execution_json(execution_id)


def find_execution(ctx: RunContext, execution_id: str) -> dict[str, Any]:
    variables = ctx.variables or {}
    current = (variables.get("execution") or {}).get("id") == execution_id
    trigger = variables.get("trigger") if isinstance(variables.get("trigger"), dict) else {}
    trigger_state = trigger.get("state") if trigger.get("executionId") == execution_id else None
    # the waits are counted rather than timed: a run context may simulate its sleeps
    waited, delay = 0.0, 1.0
    while True:
        execution = load_execution(ctx, execution_id)
        if execution is not None:
            state = (execution.get("state") or {}).get("current")
            if current or (trigger_state == "RUNNING") or (trigger_state and state == trigger_state) \
                    or (not trigger_state and state in TERMINATED):
                return execution
        if waited + delay > WAIT_LIMIT:
            raise TaskFailure(f"Unable to find execution '{execution_id}'")
        ctx.sleep(delay)
        waited += delay
        delay = min(delay * 2, 15.0)


def execution_link(ctx: RunContext, execution: dict[str, Any]) -> str | None:
    base = ((ctx.variables or {}).get("kestra") or {}).get("url")
    if not base:
        return None
    return (f"{str(base).rstrip('/')}/ui/main/executions/{execution.get('namespace')}/"
            f"{execution.get('flowId')}/{execution.get('id')}")


def execution_summary(ctx: RunContext, props: dict[str, Any]) -> dict[str, Any]:
    """What the ``*Execution`` templates are rendered with (see the module docstring)."""
    execution_id = ctx.render_string(props.get("executionId") or CURRENT_EXECUTION).strip()
    if not execution_id:
        raise TaskFailure("Invalid property 'executionId': rendered value is blank")
    execution = find_execution(ctx, execution_id)
    state = execution.get("state") or {}
    start = _instant(state.get("startDate"))
    end = _instant(state.get("endDate"))
    summary: dict[str, Any] = {
        "execution": execution,
        "duration": human_duration(start, end),
        "startDate": start,
        "link": execution_link(ctx, execution),
    }
    message = props.get("customMessage")
    if message is not None:
        summary["customMessage"] = ctx.render_string(message)
    fields = props.get("customFields")
    if fields is not None:
        rendered = ctx.render(fields)
        if isinstance(rendered, str):
            try:
                rendered = json.loads(rendered)
            except ValueError:
                raise TaskFailure("Invalid property 'customFields': expected a map") from None
        if not isinstance(rendered, dict):
            raise TaskFailure("Invalid property 'customFields': expected a map")
        if rendered:
            summary["customFields"] = rendered
    runs = list(execution.get("taskRunList") or [])
    current = (ctx.variables or {}).get("execution", {}).get("id") == execution.get("id")
    if not current:
        failed = any((run.get("state") or {}).get("current") == "FAILED" for run in runs)
        wanted = "FAILED" if failed else "SUCCESS"
        runs = [run for run in runs if (run.get("state") or {}).get("current") == wanted]
    summary["firstFailed"] = False
    if runs:
        last = runs[-1]
        summary["lastTask"] = last
        if (last.get("state") or {}).get("current") == "FAILED":
            summary["firstFailed"] = last
    return summary


def outcome(summary: dict[str, Any]) -> str:
    """``Succeeded after <duration>`` or ``Failed on task `<id>` after <duration>``."""
    failed = summary.get("firstFailed")
    head = f"Failed on task `{failed.get('taskId')}`" if failed else "Succeeded"
    return f"{head} after {summary['duration']}"


def title(summary: dict[str, Any], with_link: bool = True) -> str:
    execution = summary["execution"]
    text = f"[{execution.get('namespace')}] {execution.get('flowId')} ➛ {(execution.get('state') or {}).get('current')}"
    link = summary.get("link")
    return f"<{link}|{text}>" if link and with_link else text


def state_of(summary: dict[str, Any]) -> str:
    return str((summary["execution"].get("state") or {}).get("current") or "")


def last_task_id(summary: dict[str, Any]) -> str | None:
    last = summary.get("lastTask")
    return last.get("taskId") if isinstance(last, dict) else None


def execution_payload(summary: dict[str, Any], final_task_last: bool = True) -> dict[str, Any]:
    """The Slack-compatible message of an execution summary (Slack and Zulip; kept here so that the
    two packages do not import each other). The Slack message of an execution summary (the fields of Kestra's slack template; Zulip's
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
