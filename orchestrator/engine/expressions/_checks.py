"""Pebble tests (``value is name``): defined, null, empty, even, odd, iterable, map, json."""
from __future__ import annotations

import json
from collections.abc import Mapping, Set
from typing import Any, Callable

from ._errors import ExpressionError
from ._runtime import defined_value, is_empty, strict
from ._values import class_name

TESTS: dict[str, Callable[..., bool]] = {}


def pebble_test(name: str) -> Callable[[Callable[..., bool]], Callable[..., bool]]:
    def register(function: Callable[..., bool]) -> Callable[..., bool]:
        TESTS[name] = function
        return function
    return register


@pebble_test("defined")
def defined(value: Any) -> bool:
    return defined_value(value)


@pebble_test("null")
def null(value: Any) -> bool:
    return strict(value) is None


@pebble_test("empty")
def empty(value: Any) -> bool:
    return is_empty(strict(value))


def _integer(value: Any, test: str) -> int:
    strict(value)
    if value is None:
        raise ExpressionError(f"Can not pass null value to \"{test}\" test.")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ExpressionError(f"The \"{test}\" test only applies to integers, not {class_name(value)}")
    return int(value)


@pebble_test("even")
def even(value: Any) -> bool:
    return _integer(value, "even") % 2 == 0


@pebble_test("odd")
def odd(value: Any) -> bool:
    return _integer(value, "odd") % 2 == 1


@pebble_test("iterable")
def iterable(value: Any) -> bool:
    return isinstance(strict(value), (list, tuple, Set))


@pebble_test("map")
def is_map(value: Any) -> bool:
    return isinstance(strict(value), Mapping)


@pebble_test("json")
def is_json(value: Any) -> bool:
    """Kestra's JsonTest: maps and lists are JSON, a string is JSON when it parses."""
    strict(value)
    if isinstance(value, (Mapping, list, tuple)):
        return True
    if not isinstance(value, str):
        return False
    try:
        json.loads(value)
    except ValueError:
        return False
    return True
