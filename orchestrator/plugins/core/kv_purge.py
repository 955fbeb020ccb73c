"""``io.kestra.plugin.core.kv.PurgeKV``: delete keys of the KV store across namespaces.

As Kestra's PurgeKV (1.x):

1. the namespaces: ``namespacePattern`` (a glob, ``*`` and ``?``) over the known namespaces; or
   ``namespaces``, each with its child namespaces unless ``includeChildNamespaces: false`` (a listed
   namespace counts even when nothing else is known of it); or, with neither, every known
   namespace. ``namespaces`` and ``namespacePattern`` together are an error;
2. in each, the keys matching ``keyPattern`` (a glob; every key without it);
3. ``behavior`` says which of them go: ``{type: key, expiredOnly: true}`` (the default: only keys
   whose expiration has passed) or ``expiredOnly: false`` (all); the deprecated ``expiredOnly``
   property overrides ``behavior``. ``{type: version, before, keepAmount}`` purges old versions:
   Celestra keeps one version per key, which these rules never delete (``keepAmount: 0`` aside);
4. ``size`` is the number of deleted keys.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import KVValue, PlatformBase
from orchestrator.engine.namespaces import NamespaceAccessDenied, may_manage
from orchestrator.engine.plugins import RUNNABLE, RunContext, register

from ._common import CorePlugin, Props, Text
from .storage import platform_of, render_bool, render_text, render_text_list


class _Behavior(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["key", "version", "KEY", "VERSION"] = "key"
    expiredOnly: bool = True
    before: Optional[Text] = None
    keepAmount: Optional[int] = None


def wildcard(pattern: str) -> re.Pattern[str]:
    """A ``FilenameUtils.wildcardMatch`` pattern: ``*`` any text, ``?`` one character, the rest literal."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + r"\Z",
                      re.DOTALL)


def known_namespaces(platform: PlatformBase) -> list[str]:
    """Namespaces holding flows or KV entries.

    A platform offering ``kv_namespaces()`` answers; the in-memory platform's KV keys name theirs;
    the database platform reads the flows and KV entries tables.
    """
    getter = getattr(platform, "kv_namespaces", None)
    if callable(getter):
        return sorted(set(getter()))
    kv = getattr(platform, "kv", None)
    if isinstance(kv, dict):
        return sorted({namespace for namespace, _ in kv})
    from flows_app.models import Flow
    from storage_app.models import KVEntry

    names = set(KVEntry.objects.values_list("namespace", flat=True).distinct())
    names.update(Flow.objects.values_list("namespace", flat=True).distinct())
    return sorted(names)


@register
class PurgeKV(CorePlugin):
    """Delete keys (expired ones by default) of the KV store of several namespaces."""

    type = "io.kestra.plugin.core.kv.PurgeKV"
    kind = RUNNABLE

    class Props(Props):
        keyPattern: Optional[Text] = None
        namespaces: Optional[list[Text]] = None
        namespacePattern: Optional[Text] = None
        behavior: Optional[_Behavior] = None
        includeChildNamespaces: bool = True
        expiredOnly: Optional[bool] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        namespaces = self._reachable(ctx, self._namespaces(ctx, platform))
        ctx.log("INFO", f"purging {len(namespaces)} namespaces: [{', '.join(namespaces)}]")
        select = self._behavior(ctx)
        key_pattern = render_text(ctx, props.get("keyPattern"))
        matcher = wildcard(key_pattern.strip()) if key_pattern and key_pattern.strip() else None
        now = datetime.now(timezone.utc)
        count = 0
        for namespace in namespaces:
            for key, entry in sorted(platform._kv_items(namespace), key=lambda item: item[0]):
                if matcher is not None and not matcher.match(key):
                    continue
                if select(entry, now):
                    platform.kv_delete(key, namespace)
                    count += 1
        ctx.log("INFO", f"purged {count} keys")
        return {"size": count}

    def _reachable(self, ctx: RunContext, chosen: list[str]) -> list[str]:
        """The chosen namespaces the flow may manage (its own, its parents' and those below it, while
        namespace isolation is on).

        A namespace named in ``namespaces`` that the flow may not manage fails the task; one selected
        by a pattern or by default is left out, and the log says how many were.
        """
        listed = {n.strip() for n in render_text_list(ctx, self.task.props.get("namespaces")) if n.strip()}
        refused = sorted(n for n in listed if not may_manage(ctx.namespace, n))
        if refused:
            raise NamespaceAccessDenied(
                f"Namespace '{ctx.namespace}' cannot purge the KV store of {', '.join(refused)}: a flow manages "
                "its own namespace, its parents and the namespaces below it only")
        reachable = [n for n in chosen if may_manage(ctx.namespace, n)]
        if len(reachable) < len(chosen):
            ctx.log("INFO", f"{len(chosen) - len(reachable)} namespaces left out: a flow manages its own "
                            "namespace, its parents and the namespaces below it only")
        return reachable

    def _namespaces(self, ctx: RunContext, platform: PlatformBase) -> list[str]:
        props = self.task.props
        listed = [n.strip() for n in render_text_list(ctx, props.get("namespaces")) if n.strip()]
        pattern = (render_text(ctx, props.get("namespacePattern")) or "").strip()
        if listed and pattern:
            raise TaskFailure("Properties `namespaces` and `namespacePattern` can't be used at the same time "
                              "— use one or the other.")
        known = known_namespaces(platform)
        if pattern:
            matcher = wildcard(pattern)
            return [n for n in known if matcher.match(n)]
        if not listed:
            return known
        children = render_bool(ctx, props.get("includeChildNamespaces"), True)
        # as Kestra: a child is any namespace starting with the listed one
        chosen = [n for n in known if any(n.startswith(ns) if children else n == ns for ns in listed)]
        return chosen + [ns for ns in listed if ns not in chosen]

    def _behavior(self, ctx: RunContext) -> Any:
        props = self.task.props
        if props.get("expiredOnly") is not None:
            expired_only = render_bool(ctx, props.get("expiredOnly"), True)
            return lambda entry, now: (not expired_only) or _expired(entry, now)
        behavior = props.get("behavior") or {}
        kind = str(behavior.get("type") or "key").lower()
        if kind == "key":
            expired_only = render_bool(ctx, behavior.get("expiredOnly"), True)
            return lambda entry, now: (not expired_only) or _expired(entry, now)
        keep = behavior.get("keepAmount")
        keep_amount = int(ctx.render_string(keep)) if keep is not None else None
        if keep_amount is not None and keep_amount < 0:
            raise TaskFailure("Invalid property 'behavior.keepAmount': must be 0 or more")
        # one version per key: ``before`` never deletes the last version, keepAmount >= 1 keeps it
        purge_all = keep_amount == 0 and behavior.get("before") is None
        return lambda entry, now: purge_all


def _expired(entry: KVValue, now: datetime) -> bool:
    return entry.expires is not None and entry.expires < now
