"""``io.kestra.plugin.fs.local.Trigger``: fire on new or changed files of a local directory.

Only directories under ``CELESTRA["LOCAL_FILES_ALLOWED_PATHS"]`` (``CELESTRA_LOCAL_FILES_ALLOWED_PATHS``)
may be watched, as Kestra limits the plugin to its ``allowed-paths``.
"""
from __future__ import annotations

import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.plugins import TRIGGER, RunContext, register
from orchestrator.plugins.core._common import CorePlugin, Duration, Props, Text
from orchestrator.plugins.core._render import render_bool, render_int, render_text


def allowed_paths() -> list[Path]:
    try:
        from django.conf import settings

        paths = (getattr(settings, "CELESTRA", {}) or {}).get("LOCAL_FILES_ALLOWED_PATHS") or []
    except Exception:  # noqa: BLE001 - no Django settings: nothing is allowed
        paths = []
    return [Path(p).resolve() for p in paths]


def checked_directory(text: str, name: str) -> Path:
    directory = Path(text).expanduser().resolve()
    if not any(directory == base or base in directory.parents for base in allowed_paths()):
        raise TaskFailure(f"Invalid value for '{name}': the path {directory} is not authorized; allow it with "
                          "CELESTRA_LOCAL_FILES_ALLOWED_PATHS")
    return directory


@register
class Trigger(CorePlugin):
    """Polling trigger: list ``from`` every ``interval``; new or changed files (per ``on``) start one
    execution with ``trigger.files`` and ``trigger.count``, then ``action`` MOVE (to ``moveDirectory``),
    DELETE or NONE applies to them."""

    type = "io.kestra.plugin.fs.local.Trigger"
    kind = TRIGGER
    reports_change_type = True

    class Props(Props):
        from_: Text = Field(alias="from")
        interval: Duration = "PT60S"
        moveDirectory: Optional[Text] = None
        regExp: Optional[Text] = None
        recursive: bool = False
        action: Literal["MOVE", "DELETE", "NONE"] = "NONE"
        on: Literal["CREATE", "UPDATE", "CREATE_OR_UPDATE"] = "CREATE_OR_UPDATE"
        stateKey: Optional[Text] = None
        stateTtl: Optional[Duration] = None
        maxFiles: int = Field(25, ge=1)

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        if node.props.get("action") == "MOVE" and not node.props.get("moveDirectory"):
            return [("", "'moveDirectory' is required when 'action' is MOVE")]
        return []

    def candidates(self, ctx: RunContext) -> dict[str, tuple[Any, Any]]:
        props = self.task.props
        root = checked_directory((render_text(ctx, props.get("from")) or "").strip(), "from")
        if not root.is_dir():
            raise TaskFailure(f"Invalid value for 'from': {root} is not a directory")
        pattern_text = render_text(ctx, props.get("regExp"))
        try:
            pattern = re.compile(pattern_text) if pattern_text else None
        except re.error as exc:
            raise TaskFailure(f"Invalid value for 'regExp': {exc}") from None
        found = root.rglob("*") if render_bool(ctx, props.get("recursive"), False) else root.glob("*")
        out: dict[str, tuple[Any, Any]] = {}
        for path in sorted(p for p in found if p.is_file()):
            if pattern is not None and not pattern.fullmatch(str(path)):
                continue
            stat = path.stat()
            modified = datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc)
            out[str(path)] = (f"{stat.st_mtime_ns}_{stat.st_size}", {
                "name": path.name, "localPath": str(path), "uri": path.as_uri(), "size": stat.st_size,
                "isDirectory": False, "modifiedDate": modified.isoformat().replace("+00:00", "Z")})
        return out

    def max_items(self, ctx: RunContext) -> int:
        return render_int(ctx, self.task.props.get("maxFiles"), "maxFiles") or 25

    def variables(self, ctx: RunContext, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {"files": items, "count": len(items)}

    def after_fire(self, ctx: RunContext, items: list[dict[str, Any]]) -> None:
        props = self.task.props
        action = (render_text(ctx, props.get("action")) or "NONE").strip().upper()
        if action == "NONE":
            return
        target = None
        if action == "MOVE":
            target = checked_directory((render_text(ctx, props.get("moveDirectory")) or "").strip(), "moveDirectory")
            target.mkdir(parents=True, exist_ok=True)
        for item in items:
            path = Path(item["localPath"])
            if not path.exists():
                continue
            if target is not None:
                shutil.move(str(path), str(target / path.name))
            else:
                path.unlink()
