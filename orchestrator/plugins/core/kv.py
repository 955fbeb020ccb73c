"""``io.kestra.plugin.core.kv``: the namespace key-value store (spec §10.4).

The store is the platform's (``ctx.platform``): values are kept with their type, an optional
expiration (``ttl``) makes them read as missing once passed.
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.namespaces import check_read
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.engine.timeutil import parse_duration
from orchestrator.engine.memory_platform import platform_of

from ._common import CorePlugin, Duration, Props, Text
from ._render import render_bool, render_text

_FLOW_NAMESPACE = "{{ flow.namespace }}"


def _namespace(ctx: RunContext, value: Any) -> str:
    """The ``namespace`` property; its default is the flow's namespace."""
    if value is None or value == _FLOW_NAMESPACE:
        return ctx.namespace
    rendered = ctx.render_string(value).strip() or ctx.namespace
    # a flow reaches its own namespace's KV store and its parents' (orchestrator/engine/namespaces.py)
    check_read(ctx.namespace, rendered, "KV store")
    return rendered


def _key(ctx: RunContext, value: Any) -> str:
    key = render_text(ctx, value)
    if not key:
        raise TaskFailure("Property 'key' is required")
    return key


def _missing(key: str, namespace: str) -> TaskFailure:
    return TaskFailure(f"No value found for key '{key}' in namespace '{namespace}' and `errorOnMissing` is set to true")


@register
class Set(CorePlugin):
    """Store ``value`` under ``key`` (typed rendering: a lone expression keeps its type)."""

    type = "io.kestra.plugin.core.kv.Set"
    kind = RUNNABLE

    class Props(Props):
        key: Text
        value: Any
        namespace: Text = _FLOW_NAMESPACE
        overwrite: bool = True
        ttl: Optional[Duration] = None
        kvType: Optional[Literal["STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON"]] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        key = _key(ctx, props.get("key"))
        namespace = _namespace(ctx, props.get("namespace"))
        value = ctx.render(props.get("value"))
        kv_type = render_text(ctx, props.get("kvType"))
        ttl_text = render_text(ctx, props.get("ttl"))
        try:
            ttl = parse_duration(ttl_text) if ttl_text else None
        except ValueError as exc:
            raise TaskFailure(f"Invalid ttl '{ttl_text}': {exc}") from None
        platform_of(ctx).kv_set(key, value, namespace, kv_type=kv_type.strip().upper() if kv_type else None,
                                ttl=ttl, overwrite=render_bool(ctx, props.get("overwrite"), True))
        return None


@register
class Get(CorePlugin):
    """Read the value of ``key`` (``null`` when missing, unless ``errorOnMissing``)."""

    type = "io.kestra.plugin.core.kv.Get"
    kind = RUNNABLE

    class Props(Props):
        key: Text
        namespace: Text = _FLOW_NAMESPACE
        errorOnMissing: bool = False

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        key = _key(ctx, props.get("key"))
        namespace = _namespace(ctx, props.get("namespace"))
        entry = platform_of(ctx).kv_get(key, namespace)
        if entry is None and render_bool(ctx, props.get("errorOnMissing"), False):
            raise _missing(key, namespace)
        return {"value": entry.value if entry is not None else None}


@register
class Delete(CorePlugin):
    """Delete ``key``; ``deleted`` tells whether a value existed."""

    type = "io.kestra.plugin.core.kv.Delete"
    kind = RUNNABLE

    class Props(Props):
        key: Text
        namespace: Text = _FLOW_NAMESPACE
        errorOnMissing: bool = False

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        key = _key(ctx, props.get("key"))
        namespace = _namespace(ctx, props.get("namespace"))
        deleted = platform_of(ctx).kv_delete(key, namespace)
        if not deleted and render_bool(ctx, props.get("errorOnMissing"), False):
            raise _missing(key, namespace)
        return {"deleted": deleted}


@register
class GetKeys(CorePlugin):
    """The live keys of a namespace, optionally only those starting with ``prefix``."""

    type = "io.kestra.plugin.core.kv.GetKeys"
    kind = RUNNABLE

    class Props(Props):
        prefix: Optional[Text] = None
        namespace: Text = _FLOW_NAMESPACE

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        namespace = _namespace(ctx, props.get("namespace"))
        prefix = render_text(ctx, props.get("prefix"))
        return {"keys": platform_of(ctx).kv_list(namespace, prefix or None)}
