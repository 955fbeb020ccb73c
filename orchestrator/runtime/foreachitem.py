"""Worker side of ForEachItem: split the items file into batches, merge the children's outputs."""
from __future__ import annotations

import json
from typing import Any

from orchestrator.engine.errors import CelestraError


def _size(text: Any) -> int:
    """``10MB`` → bytes."""
    value = str(text).strip().upper()
    for unit, factor in (("KB", 1024), ("MB", 1024 ** 2), ("GB", 1024 ** 3), ("B", 1)):
        if value.endswith(unit):
            return int(float(value[: -len(unit)]) * factor)
    return int(value)


def split(task: Any, ctx: Any) -> dict[str, Any]:
    from storage_app.storage import get, put

    parent = task.props["forEachItem"]
    items = ctx.render(parent.props.get("items"))
    if not isinstance(items, str) or not items.startswith("kestra://"):
        raise CelestraError(f"Unable to split the items from {items}, this is not an internal storage URI!")
    batch = parent.props.get("batch") or {}
    separator = str(ctx.render(batch.get("separator") or "\n"))
    content = get(items).decode("utf-8")
    lines = [line + separator for line in content.split(separator)]
    if lines and lines[-1] == separator:
        lines.pop()  # the file ended with a separator
    groups: list[list[str]] = []
    if batch.get("partitions") is not None:
        count = max(int(ctx.render(batch["partitions"])), 1)
        size = -(-len(lines) // count) if lines else 0
        groups = [lines[i:i + size] for i in range(0, len(lines), size)] if size else []
    elif batch.get("bytes") is not None:
        limit = _size(ctx.render(batch["bytes"]))
        current: list[str] = []
        for line in lines:
            if current and sum(len(x.encode()) for x in current) + len(line.encode()) > limit:
                groups.append(current)
                current = []
            current.append(line)
        if current:
            groups.append(current)
    else:
        rows = max(int(ctx.render(batch.get("rows", 1)) or 1), 1)
        groups = [lines[i:i + rows] for i in range(0, len(lines), rows)]
    base = (f"{ctx.namespace.replace('.', '/')}/{ctx.flow_id}/executions/{ctx.execution_id}/tasks/"
            f"{parent.id}-split/{ctx.taskrun_id}")
    uris = [put(f"{base}/{index}.txt", "".join(group).encode()) for index, group in enumerate(groups)]
    listing = put(f"{base}/splits.txt", "\n".join(uris).encode())
    return {"splits": listing, "uris": uris}


def merge(task: Any, ctx: Any) -> dict[str, Any]:
    """The flow outputs of every child execution of the ForEachItem, one JSON line per child."""
    from flows_app.models import Execution
    from storage_app.storage import put

    parent = task.props["forEachItem"]
    rows = Execution.objects.filter(parent_id=ctx.execution_id).order_by("created").values("internal", "outputs")
    items_id = parent.id + "_items"
    lines = [json.dumps(row["outputs"] or {}, separators=(",", ":"))
             for row in rows if (row["internal"] or {}).get("parentTaskId") == items_id]
    base = (f"{ctx.namespace.replace('.', '/')}/{ctx.flow_id}/executions/{ctx.execution_id}/tasks/"
            f"{parent.id}-merge/{ctx.taskrun_id}")
    return {"subflowOutputs": put(f"{base}/outputs.jsonl", ("\n".join(lines) + ("\n" if lines else "")).encode())}
