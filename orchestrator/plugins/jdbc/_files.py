"""Working-directory files of the embedded databases (SQLite, DuckDB): the task's working directory,
``kestra://`` files brought into it, and files sent back to internal storage."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import platform_of
from orchestrator.engine.plugins import RunContext


def working_dir(ctx: RunContext, state: dict[str, Any]) -> Path:
    """The run context's working directory (shared in a WorkingDirectory), or one of our own."""
    directory = getattr(ctx, "working_dir", None)
    if directory:
        return Path(directory)
    own = Path(tempfile.mkdtemp(prefix="celestra-sql-"))
    state["owned_dir"] = own
    return own


def cleanup(state: dict[str, Any]) -> None:
    own = state.get("owned_dir")
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)


def fetch_into(ctx: RunContext, uri: str, target: Path, prop: str) -> None:
    """Copy a ``kestra://`` (or ``nsfile://``, allowed ``file://``) file to ``target``."""
    try:
        content = platform_of(ctx).read_file(uri.strip())
    except TaskFailure as exc:
        raise TaskFailure(f"Invalid property '{prop}': {exc}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)


def inside(directory: Path, name: str, prop: str) -> Path:
    path = (directory / name).resolve()
    if directory.resolve() not in path.parents and path != directory.resolve():
        raise TaskFailure(f"Invalid property '{prop}': '{name}' is outside the working directory")
    return path
