"""``io.kestra.plugin.core.state`` (deprecated state store; the KV store replaces it).

A state is a JSON object stored as an internal-storage file per (namespace, flow, name), and per
task run value when ``taskrunValue`` is true (loops keep one state per iteration value):
``kestra:///<ns/as/path>[/<flowId>]/states/<name>[/<hash of the value>]/<name>.json``; with
``namespace: true`` the state is shared by every flow of the namespace.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import PlatformBase, slugify
from orchestrator.engine.plugins import OTHER, RUNNABLE, RunContext, register
from orchestrator.engine.memory_platform import platform_of

from ._common import CorePlugin, OpenProps, Props, Text
from ._render import render_bool, render_text

_PREFIX = "io.kestra.core.tasks.states."


@register
class AbstractState(CorePlugin):
    """Listed by Kestra among core types (an abstract base); known so it is not "unknown", never a task."""

    type = "io.kestra.plugin.core.state.AbstractState"
    kind = OTHER
    Props = OpenProps


class _StateProps(Props):
    name: Text = "default"
    namespace: bool = False
    taskrunValue: bool = True


def merge(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Kestra's ``MapUtils.merge``: maps merged recursively, lists concatenated, a null keeps the old value."""
    result = dict(current)
    for key, value in update.items():
        original = result.get(key)
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(original, dict):
            result[key] = merge(original, value)
        elif isinstance(value, list) and isinstance(original, list):
            result[key] = original + value
        else:
            result[key] = value
    return result


class _State:
    """Where a state task's file is, and how to read/write it."""

    def __init__(self, ctx: RunContext, props: dict[str, Any]):
        self.platform: PlatformBase = platform_of(ctx)
        self.name = render_text(ctx, props.get("name")) or "default"
        flow_scoped = not render_bool(ctx, props.get("namespace"), False)
        value = None
        if render_bool(ctx, props.get("taskrunValue"), True):
            taskrun = (ctx.variables or {}).get("taskrun")
            value = taskrun.get("value") if isinstance(taskrun, dict) else None
        parts = [self.platform.namespace_path(ctx.namespace)]
        if flow_scoped:
            parts.append(slugify(ctx.flow_id))
        parts += ["states", self.platform.safe_name(self.name)]
        if value is not None:
            parts.append(hashlib.sha256(str(value).encode("utf-8")).hexdigest()[:32])
        parts.append(self.platform.safe_name(self.name).replace("/", "_") + ".json")
        self.uri = self.platform.uri("/".join(parts))

    def read(self) -> dict[str, Any] | None:
        try:
            content = self.platform.read_file(self.uri)
        except TaskFailure:
            return None
        try:
            data = json.loads(content.decode("utf-8"))
        except ValueError:
            raise TaskFailure(f"The state file '{self.name}' is not a JSON object") from None
        return data if isinstance(data, dict) else {}

    def missing(self) -> TaskFailure:
        return TaskFailure(f"Unable to find the state file '{self.name}'")


@register
class Get(CorePlugin):
    """Read a state: ``data`` (the JSON object) and ``count`` (its number of keys)."""

    type = "io.kestra.plugin.core.state.Get"
    aliases = (_PREFIX + "Get",)
    kind = RUNNABLE
    deprecated = True

    class Props(_StateProps):
        errorOnMissing: bool = False

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        state = _State(ctx, props)
        data = state.read()
        if data is None:
            if render_bool(ctx, props.get("errorOnMissing"), False):
                raise state.missing()
            data = {}
        return {"count": len(data), "data": data}


@register
class Set(CorePlugin):
    """Merge ``data`` into a state (created when missing); outputs its ``key`` (file URI) and ``count``."""

    type = "io.kestra.plugin.core.state.Set"
    aliases = (_PREFIX + "Set",)
    kind = RUNNABLE
    deprecated = True

    class Props(_StateProps):
        data: dict[str, Any]

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        state = _State(ctx, props)
        update = ctx.render(props.get("data") or {})
        if not isinstance(update, dict):
            raise TaskFailure("State 'data' must render to a map")
        merged = merge(state.read() or {}, update)
        uri = state.platform.put_at(state.uri, json.dumps(merged).encode("utf-8"))
        return {"count": len(merged), "key": uri}


@register
class Delete(CorePlugin):
    """Delete a state; ``deleted`` tells whether it existed."""

    type = "io.kestra.plugin.core.state.Delete"
    aliases = (_PREFIX + "Delete",)
    kind = RUNNABLE
    deprecated = True

    class Props(_StateProps):
        errorOnMissing: bool = False

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        state = _State(ctx, props)
        deleted = state.platform.delete_file(state.uri)
        if not deleted and render_bool(ctx, props.get("errorOnMissing"), False):
            raise state.missing()
        return {"deleted": deleted}
