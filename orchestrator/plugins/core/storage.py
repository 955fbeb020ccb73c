"""``io.kestra.plugin.core.storage``: internal-storage file tasks.

They work on ``kestra://`` files through the platform of the run context (``ctx.platform``, see
:mod:`orchestrator.engine.memory_platform`). Record files are Amazon ION text, one value per line, as
Kestra writes them (the codec is :mod:`._ion`; the rendering helpers are :mod:`._render`).
"""
from __future__ import annotations

import hashlib
import json
import re
import tempfile
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import Field

from orchestrator.engine.errors import CelestraError, TaskFailure, TaskKilled
from orchestrator.engine.memory_platform import PlatformBase, glob_match, platform_of
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.engine.truthy import is_truthy

from ._common import CorePlugin, Props, Text
from ._ion import IonError, ion_dumps, ion_line, ion_loads
from ._render import (
    _plain_text, extension_of, java_lines, render_bool, render_int, render_text, render_text_list, render_with,
)

_PREFIX = "io.kestra.core.tasks.storages."

__all__ = [
    "IonError", "ion_dumps", "ion_loads", "ion_line", "platform_of", "render_bool", "render_int", "render_text",
    "render_text_list", "render_with", "java_lines",
]


# ---------------------------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------------------------

def _from(ctx: RunContext, props: dict[str, Any]) -> str:
    uri = render_text(ctx, props.get("from"))
    if not uri:
        raise TaskFailure("Property 'from' is required")
    return uri.strip()


_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?B)?\s*$", re.IGNORECASE)
_UNITS = {None: 1, "B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


def readable_bytes(text: Any) -> int:
    """``"10MB"`` → bytes (binary multiples, like Micronaut's ReadableBytes); a bare number is bytes."""
    match = _SIZE.match(str(text))
    if not match:
        raise TaskFailure(f"Invalid size with value '{text}'")
    unit = match.group(2).upper() if match.group(2) else None
    return int(match.group(1)) * _UNITS[unit]


@register
class Write(CorePlugin):
    """Write ``content`` to a new internal-storage file."""

    type = "io.kestra.plugin.core.storage.Write"
    kind = RUNNABLE

    class Props(Props):
        content: Text
        extension: Optional[Text] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        content = ctx.render_string(props.get("content"))
        extension = render_text(ctx, props.get("extension")) or ".tmp"
        return {"uri": platform_of(ctx).put_file(content.encode("utf-8"), extension=extension)}


@register
class Concat(CorePlugin):
    """Concatenate files, writing ``separator`` after each one."""

    type = "io.kestra.plugin.core.storage.Concat"
    aliases = (_PREFIX + "Concat",)
    kind = RUNNABLE

    class Props(Props):
        files: Union[list[Text], Text]
        separator: Optional[Text] = None
        extension: Text = ".tmp"

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        files = render_text_list(ctx, props.get("files"))
        separator = render_text(ctx, props.get("separator"))
        chunks: list[bytes] = []
        for uri in files:
            chunks.append(platform.read_file(uri.strip()))
            if separator is not None:
                chunks.append(separator.encode("utf-8"))
        extension = render_text(ctx, props.get("extension")) or ".tmp"
        return {"uri": platform.put_file(b"".join(chunks), extension=extension)}


@register
class Split(CorePlugin):
    """Split a file by ``bytes``, ``partitions`` (round robin of rows) or ``rows``."""

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

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        source = _from(ctx, props)
        extension = extension_of(source)
        separator = ctx.render_string(props.get("separator", "\n"))
        rows = java_lines(platform.read_text(source))
        parts: list[list[str]]
        if props.get("bytes") is not None:
            limit = readable_bytes(ctx.render_string(props["bytes"]))
            parts = self._split(rows, separator, lambda size, count: size >= limit)
        elif props.get("partitions") is not None:
            count = render_int(ctx, props["partitions"], "partitions") or 1
            buckets: list[list[str]] = [[] for _ in range(max(count, 1))]
            for index, row in enumerate(rows):
                buckets[index % len(buckets)].append(row)
            parts = [bucket for bucket in buckets if bucket]
        elif props.get("rows") is not None:
            limit = render_int(ctx, props["rows"], "rows") or 1
            parts = self._split(rows, separator, lambda size, count: count >= limit)
        else:
            raise TaskFailure("Invalid configuration with no size, count, rows, nor regexPattern")
        return {"uris": [platform.put_file("".join(row + separator for row in part).encode("utf-8"),
                                           extension=extension) for part in parts]}

    @staticmethod
    def _split(rows: list[str], separator: str, full: Any) -> list[list[str]]:
        parts: list[list[str]] = []
        size = count = 0
        for row in rows:
            if not parts or full(size, count):
                parts.append([])
                size = count = 0
            parts[-1].append(row)
            size += len((row + separator).encode("utf-8"))
            count += 1
        return parts


@register
class Size(CorePlugin):
    """The size in bytes of a file."""

    type = "io.kestra.plugin.core.storage.Size"
    aliases = (_PREFIX + "Size",)
    kind = RUNNABLE

    class Props(Props):
        uri: Text

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        uri = ctx.render_string(self.task.props.get("uri")).strip()
        return {"size": platform_of(ctx).file_size(uri)}


@register
class Delete(CorePlugin):
    """Delete a file of the internal storage."""

    type = "io.kestra.plugin.core.storage.Delete"
    aliases = (_PREFIX + "Delete",)
    kind = RUNNABLE

    class Props(Props):
        uri: Text
        errorOnMissing: bool = False

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        uri = ctx.render_string(props.get("uri")).strip()
        deleted = platform_of(ctx).delete_file(uri)
        if not deleted and render_bool(ctx, props.get("errorOnMissing"), False):
            raise TaskFailure(f"Unable to find file '{uri}'")
        return {"uri": uri, "deleted": deleted}


@register
class Reverse(CorePlugin):
    """Write the lines of a file in reverse order."""

    type = "io.kestra.plugin.core.storage.Reverse"
    aliases = (_PREFIX + "Reverse",)
    kind = RUNNABLE

    class Props(Props):
        from_: Text = Field(alias="from")
        separator: Text = "\n"
        charset: Text = "UTF-8"

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        source = _from(ctx, props)
        charset = ctx.render_string(props.get("charset", "UTF-8"))
        separator = ctx.render_string(props.get("separator", "\n"))
        lines = java_lines(platform.read_text(source, charset))
        content = "".join(line + separator for line in reversed(lines))
        try:
            data = content.encode(charset)
        except LookupError:
            raise TaskFailure(f"Unknown charset '{charset}'") from None
        return {"uri": platform.put_file(data, extension=extension_of(source))}


def _records(platform: PlatformBase, uri: str) -> list[tuple[str, Any]]:
    """``(line, record)`` of each non-empty line of an ION record file."""
    out = []
    for line in java_lines(platform.read_text(uri)):
        if not line.strip():
            continue
        record = ion_line(line)
        out.append((line, record))
    return out


def _record_vars(record: Any) -> dict[str, Any]:
    return dict(record) if isinstance(record, dict) else {}


@register
class DeduplicateItems(CorePlugin):
    """Keep the last item of each key (``expr`` rendered with the item's fields)."""

    type = "io.kestra.plugin.core.storage.DeduplicateItems"
    aliases = (_PREFIX + "DeduplicateItems",)
    kind = RUNNABLE

    class Props(Props):
        from_: Text = Field(alias="from")
        expr: Text

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        expr = str(props.get("expr"))
        records = _records(platform, _from(ctx, props))
        keys = [render_with(ctx, expr, _record_vars(record)) for _, record in records]
        last = {key: index for index, key in enumerate(keys)}
        kept = [line for index, (line, _) in enumerate(records) if last[keys[index]] == index]
        uri = platform.put_file("".join(line + "\n" for line in kept).encode("utf-8"), extension=".ion")
        return {"uri": uri, "numKeys": len(last), "processedItemsTotal": len(records),
                "droppedItemsTotal": len(records) - len(kept)}


@register
class FilterItems(CorePlugin):
    """Keep (INCLUDE) or drop (EXCLUDE) the items whose ``filterCondition`` is true."""

    type = "io.kestra.plugin.core.storage.FilterItems"
    aliases = (_PREFIX + "FilterItems",)
    kind = RUNNABLE

    class Props(Props):
        from_: Text = Field(alias="from")
        filterCondition: Text
        filterType: Literal["INCLUDE", "EXCLUDE"] = "INCLUDE"
        errorOrNullBehavior: Literal["FAIL", "INCLUDE", "EXCLUDE"] = "FAIL"

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        condition = str(props.get("filterCondition"))
        filter_type = ctx.render_string(props.get("filterType", "INCLUDE")).strip().upper()
        on_error = ctx.render_string(props.get("errorOrNullBehavior", "FAIL")).strip().upper()
        if filter_type not in ("INCLUDE", "EXCLUDE") or on_error not in ("FAIL", "INCLUDE", "EXCLUDE"):
            raise TaskFailure(f"Invalid filterType '{filter_type}' or errorOrNullBehavior '{on_error}'")
        kept: list[str] = []
        processed = dropped = 0
        for line, record in _records(platform, _from(ctx, props)):
            action = filter_type
            try:
                rendered: str | None = render_with(ctx, condition, _record_vars(record))
            except TaskKilled:
                raise
            except CelestraError as exc:
                if on_error == "FAIL":
                    raise
                rendered, action = None, on_error
                ctx.log("DEBUG", f"Expression `{condition}` failed on item `{line}`: {exc}")
            if rendered is not None and not is_truthy(rendered.strip()):
                action = "EXCLUDE" if action == "INCLUDE" else "INCLUDE"
            if action == "INCLUDE":
                kept.append(line)
            else:
                dropped += 1
            processed += 1
        uri = platform.put_file("".join(line + "\n" for line in kept).encode("utf-8"), extension=".ion")
        return {"uri": uri, "processedItemsTotal": processed, "droppedItemsTotal": dropped}


def _unique_name(relative: str) -> str:
    """Kestra names uploaded output files ``<id from the path>-<file name>``."""
    digest = hashlib.sha1(relative.encode("utf-8")).hexdigest()[:22]
    return f"{digest}-{relative.rsplit('/', 1)[-1]}"


@register
class LocalFiles(CorePlugin):
    """Deprecated: write ``inputs`` into the working directory, upload ``outputs`` globs.

    Inside a WorkingDirectory the run context carries the shared directory as ``ctx.working_dir``;
    elsewhere the task uses a directory of its own.
    """

    type = "io.kestra.plugin.core.storage.LocalFiles"
    aliases = (_PREFIX + "LocalFiles",)
    kind = RUNNABLE
    deprecated = True

    class Props(Props):
        inputs: Optional[Union[dict[str, Any], Text]] = None
        outputs: Optional[list[Text]] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        working_dir = getattr(ctx, "working_dir", None)
        if working_dir is not None:
            return self._run_in(ctx, Path(working_dir))
        with tempfile.TemporaryDirectory(prefix="celestra-localfiles-") as directory:
            return self._run_in(ctx, Path(directory))

    def _run_in(self, ctx: RunContext, directory: Path) -> dict[str, Any]:
        props = self.task.props
        platform = platform_of(ctx)
        for relative, content in self._inputs(ctx, props.get("inputs")).items():
            target = (directory / PlatformBase.safe_name(relative)).resolve()
            if directory.resolve() not in target.parents:
                raise TaskFailure(f"Invalid input file path: {relative}")
            target.parent.mkdir(parents=True, exist_ok=True)
            if content.startswith("kestra://"):
                target.write_bytes(platform.read_file(content.strip()))
            else:
                target.write_text(content, encoding="utf-8")
        uris: dict[str, str] = {}
        patterns = render_text_list(ctx, props.get("outputs"))
        if patterns:
            root = directory.resolve()
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                relative = path.relative_to(root).as_posix()
                if any(glob_match(pattern, relative) for pattern in patterns):
                    uris[relative] = platform.put_file(path.read_bytes(), _unique_name(relative))
        return {"uris": uris}

    @staticmethod
    def _inputs(ctx: RunContext, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        rendered = ctx.render(value)
        if isinstance(rendered, str):
            try:
                rendered = json.loads(rendered)
            except ValueError:
                raise TaskFailure("LocalFiles 'inputs' must be a map or a JSON object") from None
        if not isinstance(rendered, dict):
            raise TaskFailure("LocalFiles 'inputs' must be a map or a JSON object")
        return {str(ctx.render_string(k)): _plain_text(v) for k, v in rendered.items()}


@register
class PurgeCurrentExecutionFiles(CorePlugin):
    """Delete every internal-storage file of the current execution."""

    type = "io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles"
    aliases = (_PREFIX + "PurgeExecution", "io.kestra.plugin.core.storage.PurgeExecution")
    kind = RUNNABLE

    class Props(Props):
        pass

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        return {"uris": platform_of(ctx).purge_execution_files()}
