"""Rendering helpers shared by the core tasks: dynamic properties rendered to text, booleans,
integers and lists, as Kestra's ``Property<T>`` reads them."""
from __future__ import annotations

import json
import re
from typing import Any

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import RunContext
from orchestrator.engine.text import as_text

__all__ = ["extension_of", "java_lines", "render_bool", "render_int", "render_text", "render_text_list",
           "render_with"]


def render_text(ctx: RunContext, value: Any) -> str | None:
    """A dynamic String property: ``None`` stays ``None``, anything else is rendered to text."""
    if value is None:
        return None
    return ctx.render_string(value)


def render_bool(ctx: RunContext, value: Any, default: bool) -> bool:
    """A ``Property<Boolean>``: a literal, or an expression rendering to ``true``/``false``."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    rendered = ctx.render(value)
    if isinstance(rendered, bool):
        return rendered
    return str(rendered).strip().lower() == "true"


def render_int(ctx: RunContext, value: Any, name: str) -> int | None:
    if value is None:
        return None
    rendered = ctx.render(value) if isinstance(value, str) else value
    try:
        if isinstance(rendered, bool):
            raise ValueError(rendered)
        return int(str(rendered).strip()) if not isinstance(rendered, int) else rendered
    except ValueError:
        raise TaskFailure(f"Invalid value for '{name}': `{rendered}` is not an integer") from None


def render_text_list(ctx: RunContext, value: Any) -> list[str]:
    """A list of strings property: a list (items rendered), a string rendering to a JSON list, or one string."""
    if value is None:
        return []
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            rendered = ctx.render(item)
            if isinstance(rendered, list):
                out.extend(_plain_text(v) for v in rendered)
            elif rendered is not None:
                out.append(_plain_text(rendered))
        return out
    rendered = ctx.render(value)
    if isinstance(rendered, list):
        return [_plain_text(v) for v in rendered]
    text = _plain_text(rendered).strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            raise TaskFailure(f"Unable to read `{text}` as a JSON list") from None
        if isinstance(parsed, list):
            return [_plain_text(v) for v in parsed]
    return [text] if text else []


def _plain_text(value: Any) -> str:
    return as_text(value, compact=False)


def render_with(ctx: RunContext, template: str, extra: dict[str, Any]) -> str:
    """Render ``template`` with the run context's variables plus ``extra`` (Kestra's ``render(expr, vars)``)."""
    if "{{" not in template and "{%" not in template:
        return template
    from orchestrator.engine import expressions

    return expressions.render_string(template, {**(ctx.variables or {}), **extra})


def java_lines(text: str) -> list[str]:
    """Lines as Java's ``BufferedReader.readLine`` reads them (``\\n``, ``\\r`` or ``\\r\\n``)."""
    if not text:
        return []
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def extension_of(uri: str, default: str = ".tmp") -> str:
    """Kestra takes everything from the last dot of the path as the extension of derived files."""
    name = uri.rsplit("/", 1)[-1]
    return name[name.rindex("."):] if "." in name else default
