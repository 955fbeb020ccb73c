"""``io.kestra.plugin.core.state`` (deprecated state store; the KV store replaces it)."""
from __future__ import annotations

from typing import Any

from orchestrator.engine.plugins import OTHER, RUNNABLE, register

from ._common import CorePlugin, OpenProps, Props, Text

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


@register
class Get(CorePlugin):
    type = "io.kestra.plugin.core.state.Get"
    aliases = (_PREFIX + "Get",)
    kind = RUNNABLE
    deprecated = True

    class Props(_StateProps):
        errorOnMissing: bool = False


@register
class Set(CorePlugin):
    type = "io.kestra.plugin.core.state.Set"
    aliases = (_PREFIX + "Set",)
    kind = RUNNABLE
    deprecated = True

    class Props(_StateProps):
        data: dict[str, Any]


@register
class Delete(CorePlugin):
    type = "io.kestra.plugin.core.state.Delete"
    aliases = (_PREFIX + "Delete",)
    kind = RUNNABLE
    deprecated = True

    class Props(_StateProps):
        errorOnMissing: bool = False

