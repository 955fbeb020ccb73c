"""Files of a script's working directory: input files, namespace files, ``kestra://`` URIs in
commands, and the output files uploaded afterwards."""
from __future__ import annotations

import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import glob_match

#: ``kestra://`` URIs inside rendered commands, as Kestra's ScriptService finds them
INTERNAL_STORAGE = re.compile(r"kestra://[-\w.+~#=/,:;]*", re.UNICODE)
GLOB_CHARS = ("*", "?", "[", "{")


def platform_of(ctx: Any) -> Any:
    from orchestrator.engine.memory_platform import platform_of as context_platform

    return context_platform(ctx)


def inside(root: str, name: str, what: str) -> Path:
    """``root/name`` for a relative ``name`` that stays inside ``root`` (Kestra refuses ``/``, ``./``, ``..``)."""
    text = str(name)
    if text.startswith(("/", "./", "..")):
        raise TaskFailure(f"Invalid {what} (only relative path is supported) for path '{text}'")
    base = Path(root).resolve()
    target = (base / text).resolve()
    if target != base and base not in target.parents:
        raise TaskFailure(f"Invalid {what} (only relative path is supported) for path '{text}'")
    return target


def read_uri(ctx: Any, uri: str) -> bytes:
    return platform_of(ctx).read_file(uri)


def write_input_files(ctx: Any, root: str, files: Any, field: str = "inputFiles") -> list[str]:
    """Render ``inputFiles`` (a map, or a JSON text of one) and write each file; returns the names.

    A value that renders to a ``kestra://``, ``nsfile://`` or ``file://`` URI is that file's
    content; any other value is the content itself.
    """
    if files is None:
        return []
    rendered = ctx.render(files)
    if isinstance(rendered, str):
        try:
            rendered = json.loads(rendered)
        except ValueError:
            raise TaskFailure(f"{field} must be a map of file name to content, or a JSON object of one") from None
    if not isinstance(rendered, dict):
        raise TaskFailure(f"{field} must be a map of file name to content")
    written = []
    for name, value in rendered.items():
        if value is None:
            continue
        target = inside(root, ctx.render_string(name), "inputFile")
        target.parent.mkdir(parents=True, exist_ok=True)
        text = value if isinstance(value, str) else json.dumps(value)
        if text.startswith(("kestra://", "nsfile://", "file://")):
            data = read_uri(ctx, text.strip())
        else:
            data = text.encode("utf-8")
        target.write_bytes(data)
        written.append(str(name))
    return written


def replace_internal_storage(ctx: Any, root: str, text: str) -> str:
    """Each ``kestra://`` URI in a rendered command is downloaded into the working directory and
    replaced by the local file's path, as Kestra does for local runners."""
    if "kestra://" not in text:
        return text

    def download(match: re.Match[str]) -> str:
        uri = match.group(0)
        suffix = os.path.splitext(uri.rsplit("/", 1)[-1])[1]
        target = Path(root) / f".internal-{uuid.uuid4().hex[:12]}{suffix}"
        target.write_bytes(read_uri(ctx, uri))
        return str(target)

    return INTERNAL_STORAGE.sub(download, text)


def load_namespace_files(ctx: Any, root: str, spec: dict[str, Any]) -> int:
    """Copy the matching namespace files of each namespace into the working directory."""
    started = time.monotonic()
    platform = platform_of(ctx)
    include = _texts(ctx, spec.get("include"))
    exclude = _texts(ctx, spec.get("exclude"))
    namespaces = _texts(ctx, spec.get("namespaces")) or [ctx.namespace]
    if_exists = ctx.render_string(spec.get("ifExists") or "OVERWRITE").strip().upper()
    if if_exists not in ("OVERWRITE", "FAIL", "WARN", "IGNORE"):
        raise TaskFailure(f"namespaceFiles.ifExists: invalid value '{if_exists}', "
                          "must be one of OVERWRITE, FAIL, WARN, IGNORE")
    per_namespace = _flag(ctx, spec.get("folderPerNamespace"), False)
    count = 0
    for namespace in namespaces:
        for path in platform.nsfile_list(namespace):
            relative = path.lstrip("/")
            if include and not any(glob_match(p, path) or glob_match(p.lstrip("/"), relative) for p in include):
                continue
            if any(glob_match(p, path) or glob_match(p.lstrip("/"), relative) for p in exclude):
                continue
            content = platform.nsfile_read(namespace, path)
            if content is None:
                continue
            target = inside(root, f"{namespace}/{relative}" if per_namespace else relative, "namespace file")
            if target.exists():
                if if_exists == "FAIL":
                    raise TaskFailure(f"File '{relative}' already exists in the working directory")
                if if_exists == "WARN":
                    ctx.log("WARN", f"File '{relative}' already exists in the working directory, it is kept")
                    continue
                if if_exists == "IGNORE":
                    continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            count += 1
    elapsed = time.monotonic() - started
    ctx.metric("counter", "namespacefiles.count", float(count))
    ctx.metric("timer", "namespacefiles.duration", elapsed)
    ctx.log("INFO", f"Loaded {count} namespace files from '{', '.join(namespaces)}' in {_hms(elapsed)}")
    return count


def upload_output_files(ctx: Any, root: str, patterns: list[str]) -> dict[str, str]:
    """Upload the files matching the globs (relative to the working directory); name -> URI."""
    if not patterns:
        return {}
    platform = platform_of(ctx)
    base = Path(root)
    uploaded: dict[str, str] = {}
    files = sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith(".internal-"))
    for pattern in patterns:
        for path in files:
            relative = path.relative_to(base).as_posix()
            if relative in uploaded:
                continue
            if relative == pattern or glob_match(pattern, relative) or glob_match(pattern.lstrip("/"), relative):
                uploaded[relative] = platform.put_file(path.read_bytes(), relative)
    return uploaded


def non_glob(names: list[str]) -> list[str]:
    return [n for n in names if not any(c in n for c in GLOB_CHARS)]


def _texts(ctx: Any, value: Any) -> list[str]:
    if value is None:
        return []
    rendered = ctx.render(value)
    if isinstance(rendered, str):
        stripped = rendered.strip()
        if stripped.startswith("["):
            try:
                rendered = json.loads(stripped)
            except ValueError:
                pass
    items = rendered if isinstance(rendered, list) else [rendered]
    return [str(item) for item in items if item is not None and str(item) != ""]


def _flag(ctx: Any, value: Any, default: bool) -> bool:
    if value is None:
        return default
    rendered = ctx.render(value)
    if isinstance(rendered, bool):
        return rendered
    return str(rendered).strip().lower() == "true"


def _hms(seconds: float) -> str:
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"
