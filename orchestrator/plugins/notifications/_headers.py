"""Helpers shared by the notification services added on top of :mod:`._base` (its behaviour unchanged).

``post_with_headers`` adds a service's own headers (authentication, content type) to those of
``options.headers``; ``java_instant`` prints a moment as Java's ``Instant.toString()`` does, which is
how Kestra's templates print ``startDate`` and ``timestamp``.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RunContext

from ._base import post_json


def post_with_headers(ctx: RunContext, props: dict[str, Any], body: str | bytes, service: str,
                      headers: dict[str, str]) -> str:
    options = dict(props.get("options") or {})
    given = ctx.render(options.get("headers")) if options.get("headers") is not None else {}
    if isinstance(given, str):
        try:
            given = json.loads(given)
        except ValueError:
            raise TaskFailure("Invalid property 'options.headers': expected a map of header names to values") \
                from None
    if not isinstance(given, dict):
        raise TaskFailure("Invalid property 'options.headers': expected a map of header names to values")
    options["headers"] = {**given, **headers}
    return post_json(ctx, {**props, "options": options}, body, service)


def java_instant(moment: datetime | None = None) -> str:
    """``2024-03-01T10:00:00Z``, ``…T10:00:00.345Z``: the fraction printed in groups of three digits."""
    moment = (moment or datetime.now(timezone.utc)).astimezone(timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    micros = moment.microsecond
    if micros:
        text += f".{micros // 1000:03d}" if micros % 1000 == 0 else f".{micros:06d}"
    return text + "Z"


def json_text(ctx: RunContext, value: Any, prop: str) -> str:
    """A JSON payload property rendered to text, checked to be JSON (the error names the property)."""
    text = ctx.render_string(value)
    try:
        json.loads(text)
    except ValueError as exc:
        raise TaskFailure(f"Invalid property '{prop}': not valid JSON ({exc})") from None
    return text
