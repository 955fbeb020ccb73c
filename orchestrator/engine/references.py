"""Which task outputs a task's expressions can read, so that a worker job carries only those.

A job carries the expression context of its task run. Sending every output of the execution
would make each message (and each step) grow with the execution; instead the task's properties
are scanned once per parsed task for ``outputs.<id>``, ``outputs['<id>']`` (and the same for
``tasks``). Any other use of the variable (``outputs[someVar]``, ``{{ outputs }}``), or a function
that renders text the scan cannot see (``render``, ``renderOnce``, ``printContext``), means "all".
"""
from __future__ import annotations

import re
from typing import Any, Iterable

_NAMED = re.compile(r"""\b(outputs|tasks)\s*(?:\.\s*([A-Za-z0-9_][A-Za-z0-9_-]*)|\[\s*(['"])([^'"]+)\3\s*\])""")
_ANY = re.compile(r"\b(outputs|tasks)\b")
_OPAQUE = re.compile(r"\b(render|renderOnce|printContext|fetchContext)\s*\(")
ALL = None
_CACHE: dict[int, tuple[Any, dict[str, set[str] | None]]] = {}
_CACHE_SIZE = 8192


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield key
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def referenced(task: Any) -> dict[str, set[str] | None]:
    """``{"outputs": ids or None (all), "tasks": ids or None}`` for one task; cached on the task."""
    entry = _CACHE.get(id(task))
    if entry is not None and entry[0] is task:
        return entry[1]
    found: dict[str, set[str] | None] = {"outputs": set(), "tasks": set()}
    texts = list(_strings({k: v for k, v in task.props.items() if not _is_task_field(task, k)}))
    texts += [t for t in (task.run_if, task.timeout) if isinstance(t, str)]
    for text in texts:
        if "{{" not in text and "{%" not in text:
            continue
        if _OPAQUE.search(text):
            found = {"outputs": ALL, "tasks": ALL}
            break
        named = {m.start(): (m.group(1), m.group(2) or m.group(4)) for m in _NAMED.finditer(text)}
        for match in _ANY.finditer(text):
            kind = match.group(1)
            if match.start() in named:
                bucket = found[kind]
                if bucket is not None:
                    bucket.add(named[match.start()][1])
            else:
                found[kind] = ALL
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[id(task)] = (task, found)  # the task is held, so its id cannot be reused meanwhile
    return found


def _is_task_field(task: Any, name: str) -> bool:
    fields = getattr(task.plugin, "task_fields", {}) or {}
    return name in fields or name in ("errors", "finally")


def restrict(mapping: dict[str, Any], ids: set[str] | None) -> dict[str, Any]:
    if ids is None:
        return mapping
    return {key: mapping[key] for key in ids if key in mapping}
