"""Values as Kestra's text: the one conversion used wherever a rendered value becomes a string."""
from __future__ import annotations

import json
from typing import Any

__all__ = ["as_text", "scalar_text"]


def scalar_text(value: Any) -> str:
    """Java's text of a scalar (labels, runIf, condition values): booleans lowercase, numbers as printed."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def as_text(value: Any, *, compact: bool = True) -> str:
    """A rendered value as Kestra compares and writes it: strings as is, null empty, booleans
    ``true``/``false``, maps and lists as JSON (compact, as Kestra compares loop and Switch values;
    ``compact=False`` gives Python's default separators, as file writers print them)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":")) if compact else json.dumps(value)
    return scalar_text(value)
