"""``io.kestra.plugin.core.namespace``: upload, download and delete namespace files (spec §10.2).

Globs use Java's ``glob:`` syntax on ``/``-rooted paths (``/sql/*.sql``, ``**``); a pattern written
without its leading slash is rooted too.
"""
from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any, Literal, Optional, Union

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import PlatformBase, glob_match, matches_any
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.engine.memory_platform import platform_of

from ._common import CorePlugin, Props, Text, TextOrList
from ._render import render_text, render_text_list


def _namespace(ctx: RunContext, value: Any) -> str:
    namespace = (render_text(ctx, value) or "").strip()
    return namespace or ctx.namespace


def _file_name(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


@register
class UploadFiles(CorePlugin):
    """Upload files to a namespace: ``files`` (globs of the working directory, or ``kestra://`` URIs)
    into ``destination``, or ``filesMap`` (destination path → ``kestra://`` URI or content)."""

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

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        namespace = _namespace(ctx, props.get("namespace"))
        conflict = ctx.render_string(props.get("conflict", "OVERWRITE")).strip().upper()
        if conflict not in ("OVERWRITE", "ERROR", "SKIP"):
            raise TaskFailure(f"Invalid conflict '{conflict}', must be one of OVERWRITE, ERROR, SKIP")
        destination = "/" + (render_text(ctx, props.get("destination")) or "/").strip().strip("/")
        uploaded: dict[str, str] = {}

        def upload(target: str, content: bytes) -> None:
            path = PlatformBase.nsfile_path(target)
            uri = platform.nsfile_write(namespace, path, content, conflict)
            if uri is not None:
                uploaded[path] = uri

        files_map = props.get("filesMap")
        if files_map is not None:
            rendered = ctx.render(files_map)
            if isinstance(rendered, str):
                import json

                try:
                    rendered = json.loads(rendered)
                except ValueError:
                    raise TaskFailure("filesMap must be a map or a JSON object") from None
            if not isinstance(rendered, dict):
                raise TaskFailure("filesMap must be a map of destination path to file URI")
            for target, source in rendered.items():
                source_text = source if isinstance(source, str) else str(source)
                if source_text.startswith(("kestra://", "nsfile://")):
                    if not self._exists(platform, source_text):
                        continue
                    content = platform.read_file(source_text)
                else:
                    content = source_text.encode("utf-8")
                upload(str(target), content)

        patterns: list[str] = []
        for item in render_text_list(ctx, props.get("files")):
            if item.startswith("kestra://"):
                if self._exists(platform, item):
                    upload(posixpath.join(destination, _file_name(item)), platform.read_file(item))
            else:
                patterns.append(item)
        if patterns:
            working_dir = getattr(ctx, "working_dir", None)
            if working_dir is None:
                raise TaskFailure("UploadFiles with glob patterns needs a working directory "
                                  "(run it inside a WorkingDirectory task)")
            root = Path(working_dir).resolve()
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                relative = path.relative_to(root).as_posix()
                if any(glob_match(pattern, relative) or glob_match(pattern.lstrip("/"), relative)
                       for pattern in patterns):
                    upload(posixpath.join(destination, relative), path.read_bytes())
        return {"files": uploaded}

    @staticmethod
    def _exists(platform: PlatformBase, uri: str) -> bool:
        try:
            platform.read_file(uri)
        except TaskFailure:
            return False
        return True


@register
class DownloadFiles(CorePlugin):
    """Copy the namespace files matching ``files`` into the execution's storage."""

    type = "io.kestra.plugin.core.namespace.DownloadFiles"
    kind = RUNNABLE

    class Props(Props):
        namespace: Text
        files: TextOrList
        destination: Text = ""

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        namespace = _namespace(ctx, props.get("namespace"))
        patterns = render_text_list(ctx, props.get("files"))
        destination = (render_text(ctx, props.get("destination")) or "").strip().strip("/")
        downloaded: dict[str, str] = {}
        for path in platform.nsfile_list(namespace):
            if not matches_any(patterns, path):
                continue
            content = platform.nsfile_read(namespace, path)
            if content is None:
                continue
            name = f"{destination}{path}" if destination else path.lstrip("/")
            downloaded[path] = platform.put_file(content, name)
        ctx.metric("counter", "downloaded", float(len(downloaded)))
        return {"files": downloaded}


@register
class DeleteFiles(CorePlugin):
    """Delete the namespace files matching ``files``."""

    type = "io.kestra.plugin.core.namespace.DeleteFiles"
    kind = RUNNABLE

    class Props(Props):
        namespace: Text
        files: TextOrList
        deleteParentFolder: bool = False

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        namespace = _namespace(ctx, props.get("namespace"))
        patterns = render_text_list(ctx, props.get("files"))
        deleted: dict[str, str] = {}
        for path in platform.nsfile_list(namespace):
            if matches_any(patterns, path) or any(p.startswith("nsfile://") and
                                                   platform.nsfile_path(p[len("nsfile://"):]) == path
                                                   for p in patterns):
                uri = platform.nsfile_uri(namespace, path)
                if platform.nsfile_delete(namespace, path):
                    deleted[path] = uri
        ctx.metric("counter", "deleted", float(len(deleted)))
        return {"files": deleted}
