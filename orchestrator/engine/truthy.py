"""Kestra's truthiness of rendered text (``TruthUtils``), shared by If, Fail, Assert, runIf...

A rendered value is false only when, trimmed, it is ``false`` (any case), ``0``, ``-0`` or empty;
everything else (``"no"``, ``"null"``, ``"[]"``...) is true. Python values are first turned into the
text Pebble would print (``None`` prints as the empty string, booleans as ``true``/``false``).
"""
from __future__ import annotations

from typing import Any

_FALSY = frozenset({"false", "0", "-0", ""})


def is_truthy(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    # Floats are judged by their printed text, as in Kestra: "0.0" is not one of the false words.
    return str(value).strip().lower() not in _FALSY
