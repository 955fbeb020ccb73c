"""``io.kestra.plugin.core.storage``: internal-storage file tasks (run by the worker runtime)."""
from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import Field

from orchestrator.engine.plugins import RUNNABLE, register

from ._common import CorePlugin, Props, Text

_PREFIX = "io.kestra.core.tasks.storages."


@register
class Write(CorePlugin):
    type = "io.kestra.plugin.core.storage.Write"
    kind = RUNNABLE

    class Props(Props):
        content: Text
        extension: Optional[Text] = None


@register
class Concat(CorePlugin):
    type = "io.kestra.plugin.core.storage.Concat"
    aliases = (_PREFIX + "Concat",)
    kind = RUNNABLE

    class Props(Props):
        files: Union[list[Text], Text]
        separator: Optional[Text] = None
        extension: Text = ".tmp"


@register
class Split(CorePlugin):
    type = "io.kestra.plugin.core.storage.Split"
    aliases = (_PREFIX + "Split",)
    kind = RUNNABLE

    class Props(Props):
        from_: Text = Field(alias="from")
        bytes: Optional[Text] = None
        partitions: Optional[int] = Field(None, ge=1)
        rows: Optional[int] = Field(None, ge=1)
        separator: Text = "\n"

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        given = [name for name in ("bytes", "partitions", "rows") if node.props.get(name) is not None]
        if len(given) != 1:
            return [("", "Exactly one of 'bytes', 'partitions' or 'rows' must be set")]
        return []


@register
class Size(CorePlugin):
    type = "io.kestra.plugin.core.storage.Size"
    aliases = (_PREFIX + "Size",)
    kind = RUNNABLE

    class Props(Props):
        uri: Text


@register
class Delete(CorePlugin):
    type = "io.kestra.plugin.core.storage.Delete"
    aliases = (_PREFIX + "Delete",)
    kind = RUNNABLE

    class Props(Props):
        uri: Text
        errorOnMissing: bool = False


@register
class Reverse(CorePlugin):
    type = "io.kestra.plugin.core.storage.Reverse"
    aliases = (_PREFIX + "Reverse",)
    kind = RUNNABLE

    class Props(Props):
        from_: Text = Field(alias="from")
        separator: Text = "\n"
        charset: Text = "UTF-8"


@register
class DeduplicateItems(CorePlugin):
    type = "io.kestra.plugin.core.storage.DeduplicateItems"
    aliases = (_PREFIX + "DeduplicateItems",)
    kind = RUNNABLE

    class Props(Props):
        from_: Text = Field(alias="from")
        expr: Text


@register
class FilterItems(CorePlugin):
    type = "io.kestra.plugin.core.storage.FilterItems"
    aliases = (_PREFIX + "FilterItems",)
    kind = RUNNABLE

    class Props(Props):
        from_: Text = Field(alias="from")
        filterCondition: Text
        filterType: Literal["INCLUDE", "EXCLUDE"] = "INCLUDE"
        errorOrNullBehavior: Literal["FAIL", "INCLUDE", "EXCLUDE"] = "FAIL"


@register
class LocalFiles(CorePlugin):
    """Deprecated: write ``inputs`` into the working directory, upload ``outputs`` globs."""

    type = "io.kestra.plugin.core.storage.LocalFiles"
    aliases = (_PREFIX + "LocalFiles",)
    kind = RUNNABLE
    deprecated = True

    class Props(Props):
        inputs: Optional[Union[dict[str, Any], Text]] = None
        outputs: Optional[list[Text]] = None


@register
class PurgeCurrentExecutionFiles(CorePlugin):
    type = "io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles"
    aliases = (_PREFIX + "PurgeExecution", "io.kestra.plugin.core.storage.PurgeExecution")
    kind = RUNNABLE

    class Props(Props):
        pass
