"""The WorkingDirectory ``cache`` (``patterns``, ``ttl``): files kept from one run to the next.

As Kestra's WorkingDirectory: one zip archive per flow + task (+ the task run's ``value``, so that
iterations of a loop cache apart) in internal storage, at
``<namespace path>/<flow id>/<task id>/cache[/<value hash>]/cache.zip``. Before the first child
runs, a live archive (younger than the ttl, measured from when it was written) is extracted into
the working directory; an expired one is deleted. After a successful run the files matching the
patterns (globs relative to the directory, ``**`` crossing directories, hidden files included)
are archived again, unless none changed since they were restored.
"""
from __future__ import annotations

import glob
import hashlib
import io
import logging
import os
import time
import zipfile
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from orchestrator.engine.timeutil import parse_duration

log = logging.getLogger("celestra.worker.cache")


def archive_path(namespace: str, flow_id: str, task_id: str, value: Any) -> str:
    base = f"{namespace.replace('.', '/')}/{flow_id}/{task_id}/cache"
    if value is None:
        return f"{base}/cache.zip"
    return f"{base}/{hashlib.sha256(str(value).encode()).hexdigest()[:32]}/cache.zip"


def _path_of(ctx: Any, group: Any) -> str:
    value = ((ctx.job.get("context") or {}).get("taskrun") or {}).get("value")
    return archive_path(ctx.namespace, ctx.flow_id, group.id, value)


def restore(ctx: Any, group: Any, directory: str) -> float | None:
    """Extract the live archive into ``directory``; the time it was restored at (None: no archive)."""
    cache = group.props.get("cache") or {}
    path = _path_of(ctx, group)
    if not default_storage.exists(path):
        return None
    ttl = cache.get("ttl")
    if ttl is not None:
        expires = default_storage.get_modified_time(path) + parse_duration(str(ctx.render(ttl)))
        if timezone.now() > expires:
            log.debug("cache %s expired, deleting it", path)
            default_storage.delete(path)
            return None
    root = os.path.realpath(directory)
    with default_storage.open(path, "rb") as handle, zipfile.ZipFile(io.BytesIO(handle.read())) as archive:
        for entry in archive.infolist():
            if entry.is_dir():
                continue
            target = os.path.realpath(os.path.join(root, entry.filename))
            if not target.startswith(root + os.sep):  # an entry may not leave the directory
                ctx.log("ERROR", f"Unable to create the file {entry.filename}")
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with archive.open(entry) as source, open(target, "wb") as out:
                out.write(source.read())
    ctx.log("DEBUG", "Cache exist, downloading it")
    return time.time()


def matching_files(directory: str, patterns: list[str]) -> list[str]:
    found: set[str] = set()
    for pattern in patterns:
        for path in glob.glob(os.path.join(directory, str(pattern)), recursive=True, include_hidden=True):
            if os.path.isfile(path) and os.access(path, os.R_OK):
                found.add(path)
    return sorted(found)


def save(ctx: Any, group: Any, directory: str, restored_at: float | None) -> None:
    """Archive the files matching the patterns, if any changed since they were restored."""
    patterns = ctx.render((group.props.get("cache") or {}).get("patterns") or [])
    files = matching_files(directory, patterns if isinstance(patterns, list) else [patterns])
    if not any(restored_at is None or os.path.getmtime(path) > restored_at for path in files):
        ctx.log("DEBUG", "Cache files didn't change, skip updating it")
        return
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, os.path.relpath(path, directory))
    path = _path_of(ctx, group)
    if default_storage.exists(path):
        default_storage.delete(path)
    default_storage.save(path, ContentFile(buffer.getvalue()))
    ctx.log("DEBUG", f"Caching in kestra:///{path}")
