"""``io.kestra.plugin.notifications.discord``: DiscordIncomingWebhook and DiscordExecution."""
from __future__ import annotations

import json
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Text

from ._base import ExecutionProps, WebhookProps, execution_summary, last_task_id, outcome, post_json, state_of


class DiscordProps(WebhookProps):
    payload: Optional[Text] = None


def _json_body(ctx: RunContext, payload: Any) -> str:
    text = ctx.render_string(payload) if payload is not None else ""
    try:
        return json.dumps(json.loads(text))  # Kestra sends the payload as parsed JSON
    except ValueError as exc:
        raise TaskFailure(f"Invalid property 'payload': not valid JSON ({exc})") from None


@register
class DiscordIncomingWebhook(CorePlugin):
    """Send ``payload`` (JSON) to a Discord incoming webhook."""

    type = "io.kestra.plugin.notifications.discord.DiscordIncomingWebhook"
    aliases = ("io.kestra.plugin.discord.DiscordIncomingWebhook",)
    kind = RUNNABLE
    Props = DiscordProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        post_json(ctx, self.task.props, _json_body(ctx, self.task.props.get("payload")), "Discord")
        return None


class Embed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Optional[Text] = None
    websiteUrl: Optional[Text] = None
    description: Optional[Text] = None
    thumbnail: Optional[Text] = None
    authorName: Optional[Text] = None
    color: Optional[list[int]] = None


def embed_map(ctx: RunContext, embed: dict[str, Any], avatar_url: str | None) -> dict[str, Any]:
    """One Discord embed from the task's ``embedList`` entry (``color`` is ``[r, g, b]``)."""
    out: dict[str, Any] = {}

    def text(name: str) -> str | None:
        return ctx.render_string(embed[name]) if embed.get(name) is not None else None

    if text("title") is not None:
        out["title"] = text("title")
    if text("description") is not None:
        out["description"] = text("description")
    if text("websiteUrl") is not None:
        out["url"] = text("websiteUrl")
    color = embed.get("color")
    if color:
        if len(color) != 3:
            raise TaskFailure("Invalid property 'embedList.color': expected [red, green, blue]")
        out["color"] = (int(color[0]) << 16) + (int(color[1]) << 8) + int(color[2])
    if text("thumbnail") is not None:
        out["thumbnail"] = {"url": text("thumbnail")}
    if text("authorName") is not None:
        author: dict[str, Any] = {"name": text("authorName")}
        if avatar_url:
            author["icon_url"] = avatar_url
        out["author"] = author
    return out


class DiscordExecutionProps(DiscordProps, ExecutionProps):
    username: Optional[Text] = None
    avatarUrl: Optional[Text] = None
    embedList: Optional[list[Embed]] = None
    content: Optional[Text] = None
    templateUri: Optional[Text] = None
    templateRenderMap: Optional[dict[str, Any]] = None


def execution_embed(summary: dict[str, Any]) -> dict[str, Any]:
    """The embed of an execution summary (the fields of Kestra's discord template)."""
    execution = summary["execution"]
    description = (f"Namespace: {execution.get('namespace')}\nFlow ID: {execution.get('flowId')}\n"
                   f"Execution ID: {execution.get('id')}\nExecution Status: {state_of(summary)} \n"
                   f"Final task ID: {last_task_id(summary) or ''} ")
    if summary.get("link"):
        description += f"\n\n[Link to the Execution page]({summary['link']})"
    return {"description": description, "footer": {"text": outcome(summary)}}


@register
class DiscordExecution(CorePlugin):
    """Send the summary of an execution to Discord."""

    type = "io.kestra.plugin.notifications.discord.DiscordExecution"
    aliases = ("io.kestra.plugin.discord.DiscordExecution",)
    kind = RUNNABLE
    Props = DiscordExecutionProps

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        payload = props.get("payload")
        if payload is not None and ctx.render_string(payload).strip():
            post_json(ctx, props, _json_body(ctx, payload), "Discord")
            return None
        template = execution_embed(execution_summary(ctx, props))
        body: dict[str, Any] = {"embeds": [template]}
        if props.get("username") is not None:
            body["username"] = ctx.render_string(props["username"])
        avatar = ctx.render_string(props["avatarUrl"]) if props.get("avatarUrl") is not None else None
        if avatar is not None:
            body["avatar_url"] = avatar
        body["tts"] = False
        embeds = props.get("embedList")
        if isinstance(embeds, str):
            embeds = ctx.render(embeds)
        if embeds:
            built = [embed_map(ctx, e if isinstance(e, dict) else dict(e), avatar) for e in embeds]
            built[0].update(template)  # Kestra merges the execution details into the first embed
            body["embeds"] = built
        if props.get("content") is not None:
            body["content"] = ctx.render_string(props["content"])
        post_json(ctx, props, json.dumps(body), "Discord")
        return None
