"""``io.kestra.plugin.core.kv``: the namespace key-value store (run by the worker runtime)."""
from __future__ import annotations

from typing import Any, Literal, Optional

from orchestrator.engine.plugins import RUNNABLE, register

from ._common import CorePlugin, Duration, Props, Text

_FLOW_NAMESPACE = "{{ flow.namespace }}"


@register
class Set(CorePlugin):
    type = "io.kestra.plugin.core.kv.Set"
    kind = RUNNABLE

    class Props(Props):
        key: Text
        value: Any
        namespace: Text = _FLOW_NAMESPACE
        overwrite: bool = True
        ttl: Optional[Duration] = None
        kvType: Optional[Literal["STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON"]] = None


@register
class Get(CorePlugin):
    type = "io.kestra.plugin.core.kv.Get"
    kind = RUNNABLE

    class Props(Props):
        key: Text
        namespace: Text = _FLOW_NAMESPACE
        errorOnMissing: bool = False


@register
class Delete(CorePlugin):
    type = "io.kestra.plugin.core.kv.Delete"
    kind = RUNNABLE

    class Props(Props):
        key: Text
        namespace: Text = _FLOW_NAMESPACE
        errorOnMissing: bool = False


@register
class GetKeys(CorePlugin):
    type = "io.kestra.plugin.core.kv.GetKeys"
    kind = RUNNABLE

    class Props(Props):
        prefix: Optional[Text] = None
        namespace: Text = _FLOW_NAMESPACE
