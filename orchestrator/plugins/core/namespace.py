"""``io.kestra.plugin.core.namespace``: namespace files (run by the worker runtime)."""
from __future__ import annotations

from typing import Any, Literal, Optional, Union

from orchestrator.engine.plugins import RUNNABLE, register

from ._common import CorePlugin, Props, Text, TextOrList


@register
class UploadFiles(CorePlugin):
    type = "io.kestra.plugin.core.namespace.UploadFiles"
    kind = RUNNABLE

    class Props(Props):
        namespace: Text
        files: Optional[TextOrList] = None
        filesMap: Optional[Union[dict[str, Any], Text]] = None
        destination: Text = "/"
        conflict: Literal["OVERWRITE", "ERROR", "SKIP"] = "OVERWRITE"

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        if node.props.get("files") is None and node.props.get("filesMap") is None:
            return [("", "One of 'files' or 'filesMap' must be set")]
        return []


@register
class DownloadFiles(CorePlugin):
    type = "io.kestra.plugin.core.namespace.DownloadFiles"
    kind = RUNNABLE

    class Props(Props):
        namespace: Text
        files: TextOrList
        destination: Text = ""


@register
class DeleteFiles(CorePlugin):
    type = "io.kestra.plugin.core.namespace.DeleteFiles"
    kind = RUNNABLE

    class Props(Props):
        namespace: Text
        files: TextOrList
        deleteParentFolder: bool = False
