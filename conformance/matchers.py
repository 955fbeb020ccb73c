"""Strict matching of an expected value (as written in the manifest) against an actual value.

The vocabulary (manifest header):

* a plain value means equality. Equality is strict about types: ``'1'`` does not match ``1`` and
  ``true`` does not match ``1``; an int matches a float of the same value (JSON does not keep the
  difference). Two ISO-8601 durations are equal when they denote the same length (``PT60M`` and
  ``PT1H``, as Java's ``Duration.equals``).
* a mapping whose keys are all operators applies each operator: ``contains``, ``startsWith``,
  ``endsWith``, ``regex`` (whole value, as Hamcrest's ``matchesPattern``), ``equals``, ``hasItems``,
  ``hasKey``, ``containsInAnyOrder``, ``anyOf`` and ``fileContent`` (content of a ``kestra://`` file).
* any other mapping is a partial match: every expected key is matched against the actual value of
  that key, a missing key reads as ``null`` (Java's ``Map.get``); extra actual keys are ignored.
* a list must match element by element, with the same length.
* a string in ``<angle brackets>`` describes a dynamic value (an id, a date): it matches any non-null
  value, unless the :class:`MatchContext` resolves it to a concrete value (``<execution id>``) or it
  states a checkable property (``<not equal to 'x'>``, ``<storage URI whose content is 'x'>``).
  A description inside a longer string (``'childs: <trigger-flow execution id>'``) matches any
  non-empty text at its place.
* a string ending with a Java type in parentheses (``2019-10-06T18:27:49Z (Instant)``) compares the
  value part only.

:func:`check` raises :class:`Mismatch` carrying the path of the first difference and a message
naming the expected and the actual value.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Callable, Mapping

__all__ = [
    "OPERATORS",
    "MatchContext",
    "Mismatch",
    "check",
    "first_mismatch",
    "describe",
    "is_description",
    "is_operator_mapping",
    "typed_value_part",
]

#: Keys of an operator mapping (``{contains: ...}``).
OPERATORS = frozenset({
    "contains", "startsWith", "endsWith", "regex", "equals", "hasItems", "hasKey",
    "containsInAnyOrder", "anyOf", "fileContent",
})

#: Java types that may follow a value in parentheses: ``PT5M (Duration)``.
JAVA_TYPES = frozenset({
    "Instant", "LocalDate", "LocalTime", "LocalDateTime", "ZonedDateTime", "OffsetDateTime", "Duration",
    "URI", "Float", "Double", "Integer", "Long", "Boolean", "String", "BigDecimal", "Date",
})

_TYPED = re.compile(r"^(?P<value>.*\S) \((?P<type>[A-Z][A-Za-z]*)(?:[,;][^()]*)?\)$", re.DOTALL)
_DESCRIPTION = re.compile(r"^<[^<>]+>$", re.DOTALL)
_EMBEDDED = re.compile(r"<[^<>]+>")
_DURATION = re.compile(r"^-?P(?:\d+(?:\.\d+)?D)?(?:T(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?S)?)?$")
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")

Resolver = Callable[[str], "tuple[bool, Any]"]


class Mismatch(AssertionError):
    """The first difference between an expected and an actual value."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


@dataclass
class MatchContext:
    """What descriptions and file matchers need from the outside world.

    ``resolve(description)`` (the text between the brackets) returns ``(True, value)`` when the
    description names a value known to the caller (``execution id``), else ``(False, None)``.
    ``read_file(uri)`` returns the bytes of a ``kestra://`` file.
    """

    resolve: Resolver | None = None
    read_file: Callable[[str], bytes] | None = None
    #: free-form remarks about descriptions that could only be checked as "not null"
    loose: list[str] = field(default_factory=list)

    def lookup(self, description: str) -> tuple[bool, Any]:
        if self.resolve is None:
            return False, None
        return self.resolve(description)


# ---------------------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------------------

def describe(value: Any, limit: int = 200) -> str:
    """A compact, JSON-like rendering of a value for messages."""
    try:
        text = json.dumps(value, default=str, ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


# ---------------------------------------------------------------------------------------------------------
# Classification helpers
# ---------------------------------------------------------------------------------------------------------

def is_description(value: Any) -> bool:
    """``'<parent execution id>'``: a description of a dynamic value rather than a literal."""
    return isinstance(value, str) and bool(_DESCRIPTION.match(value.strip()))


def is_operator_mapping(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(k in OPERATORS for k in value)


def typed_value_part(value: str) -> str | None:
    """``'PT5M6S (Duration)'`` → ``'PT5M6S'``; ``None`` when the string carries no Java type."""
    match = _TYPED.match(value)
    if match and match.group("type") in JAVA_TYPES:
        return match.group("value")
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_text(value: Any) -> str | None:
    """Text form of temporal values as Java prints them; other non-strings give None."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        text = value.isoformat()
        return text.replace("+00:00", "Z")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        from orchestrator.engine.timeutil import format_duration

        return format_duration(value)
    return None


def _duration(text: Any) -> timedelta | None:
    if isinstance(text, timedelta):
        return text
    if not isinstance(text, str) or not _DURATION.match(text) or text in ("P", "PT", "-P"):
        return None
    from orchestrator.engine.timeutil import parse_duration

    try:
        return parse_duration(text)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------------------
# Equality
# ---------------------------------------------------------------------------------------------------------

def _scalar_equal(expected: Any, actual: Any) -> bool:
    if expected is None:
        return actual is None
    if isinstance(expected, bool):
        return isinstance(actual, bool) and actual == expected
    if _is_number(expected):
        if not _is_number(actual):
            return False
        if isinstance(expected, float) or isinstance(actual, float):
            return math.isclose(float(expected), float(actual), rel_tol=1e-9, abs_tol=0.0)
        return expected == actual
    if isinstance(expected, str):
        text = _as_text(actual)
        if text is None:
            return False
        if text == expected:
            return True
        left, right = _duration(expected), _duration(text)
        return left is not None and right is not None and left == right
    return expected == actual


# ---------------------------------------------------------------------------------------------------------
# Descriptions
# ---------------------------------------------------------------------------------------------------------

def _check_description(description: str, actual: Any, path: str, ctx: MatchContext) -> None:
    """Match ``actual`` against ``<description>``: a resolved value, a checkable property, or non-null."""
    inner = description.strip()[1:-1].strip()
    found, value = ctx.lookup(inner)
    if found:
        if not _scalar_equal(value, actual) and value != actual:
            raise Mismatch(path, f"expected {describe(value)} ({description}), got {describe(actual)}")
        return
    if actual is None:
        raise Mismatch(path, f"expected {description}, got null")
    lowered = inner.lower()
    quoted = _QUOTED.findall(inner)
    if lowered.startswith("not equal to") and quoted:
        if _scalar_equal(quoted[0], actual):
            raise Mismatch(path, f"expected {description}, got {describe(actual)}")
        return
    if lowered.startswith("ciphertext") and quoted:
        if _scalar_equal(quoted[0], actual):
            raise Mismatch(path, f"expected {description}, got the clear text {describe(actual)}")
        return
    if "storage uri" in lowered or "storage file" in lowered:
        _check_storage_description(inner, description, actual, path, ctx)
        return
    if lowered.startswith("iso") and "date-time" in lowered:
        text = _as_text(actual)
        try:
            datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            raise Mismatch(path, f"expected {description}, got {describe(actual)}") from None
        return
    # "<not null>" and every other description: any non-null value.


def _check_storage_description(inner: str, description: str, actual: Any, path: str, ctx: MatchContext) -> None:
    """``<storage URI whose content is 'Hello World'>``, ``<... ending with input.txt ...>``,
    ``<internal-storage URI of a file with exactly 26 lines ...>``."""
    if not isinstance(actual, str) or not actual.startswith("kestra://"):
        raise Mismatch(path, f"expected {description}, got {describe(actual)} (not a kestra:// URI)")
    ending = re.search(r"ending with (\S+?),", inner)
    if ending and not actual.endswith(ending.group(1)):
        raise Mismatch(path, f"expected a URI ending with {ending.group(1)}, got {describe(actual)}")
    content = re.search(r"content(?: is)? '((?:[^'\\]|\\.)*)'", inner)
    lines = re.search(r"exactly (\d+) lines?", inner)
    if not content and not lines:
        return
    if ctx.read_file is None:
        ctx.loose.append(f"{path}: file content of {description} not checked (no storage reader)")
        return
    try:
        data = ctx.read_file(actual).decode("utf-8", errors="replace")
    except Exception as exc:  # noqa: BLE001 - any storage failure is the mismatch to report
        raise Mismatch(path, f"cannot read {actual}: {exc}") from None
    if content and data != content.group(1):
        raise Mismatch(path, f"content of {actual}: expected {describe(content.group(1))}, got {describe(data)}")
    if lines:
        count = len(data.splitlines())
        if count != int(lines.group(1)):
            raise Mismatch(path, f"content of {actual}: expected {lines.group(1)} lines, got {count}")


def _check_embedded(expected: str, actual: Any, path: str, ctx: MatchContext) -> None:
    """A literal with descriptions inside: each resolved description is a literal, others match ``.+``."""
    text = _as_text(actual)
    if text is None:
        raise Mismatch(path, f"expected {describe(expected)}, got {describe(actual)}")
    pattern = ""
    last = 0
    for match in _EMBEDDED.finditer(expected):
        pattern += re.escape(expected[last:match.start()])
        found, value = ctx.lookup(match.group(0)[1:-1].strip())
        pattern += re.escape(str(value)) if found and value is not None else ".+"
        last = match.end()
    pattern += re.escape(expected[last:])
    if not re.fullmatch(pattern, text, re.DOTALL):
        raise Mismatch(path, f"expected {describe(expected)}, got {describe(actual)}")


# ---------------------------------------------------------------------------------------------------------
# Operators
# ---------------------------------------------------------------------------------------------------------

def _matches(expected: Any, actual: Any, ctx: MatchContext) -> bool:
    try:
        check(expected, actual, "", ctx)
    except Mismatch:
        return False
    return True


def _apply_operator(op: str, operand: Any, actual: Any, path: str, ctx: MatchContext) -> None:
    where = f"{path} ({op})" if path else op
    if op == "equals":
        check(operand, actual, path, ctx)
    elif op in ("contains", "startsWith", "endsWith"):
        if isinstance(actual, (list, tuple)) and op == "contains":
            if not any(_matches(operand, item, ctx) for item in actual):
                raise Mismatch(where, f"no element matches {describe(operand)} in {describe(actual)}")
            return
        text = _as_text(actual)
        if text is None:
            raise Mismatch(where, f"expected a string {op} {describe(operand)}, got {describe(actual)}")
        needle = str(operand)
        ok = (needle in text if op == "contains" else text.startswith(needle) if op == "startsWith"
              else text.endswith(needle))
        if not ok:
            raise Mismatch(where, f"expected a string that {op} {describe(needle)}, got {describe(text)}")
    elif op == "regex":
        text = _as_text(actual)
        if text is None or not re.fullmatch(str(operand), text, re.DOTALL):
            raise Mismatch(where, f"expected a value matching /{operand}/, got {describe(actual)}")
    elif op == "hasKey":
        if not isinstance(actual, Mapping):
            raise Mismatch(where, f"expected a map with key {describe(operand)}, got {describe(actual)}")
        for key in operand if isinstance(operand, list) else [operand]:
            if key not in actual:
                raise Mismatch(where, f"expected key {describe(key)}, got keys {describe(sorted(map(str, actual)))}")
    elif op == "hasItems":
        if not isinstance(actual, (list, tuple)):
            raise Mismatch(where, f"expected a list with items {describe(operand)}, got {describe(actual)}")
        for item in operand if isinstance(operand, list) else [operand]:
            if not any(_matches(item, candidate, ctx) for candidate in actual):
                raise Mismatch(where, f"missing item {describe(item)} in {describe(actual)}")
    elif op == "containsInAnyOrder":
        if not isinstance(actual, (list, tuple)):
            raise Mismatch(where, f"expected a list, got {describe(actual)}")
        wanted = list(operand if isinstance(operand, list) else [operand])
        if len(wanted) != len(actual) or not _permutation(wanted, list(actual), ctx):
            raise Mismatch(where, f"expected {describe(wanted)} in any order, got {describe(actual)}")
    elif op == "anyOf":
        options = operand if isinstance(operand, list) else [operand]
        if not any(_matches(option, actual, ctx) for option in options):
            raise Mismatch(where, f"expected any of {describe(options)}, got {describe(actual)}")
    elif op == "fileContent":
        if not isinstance(actual, str) or not actual.startswith("kestra://"):
            raise Mismatch(where, f"expected a kestra:// URI, got {describe(actual)}")
        if ctx.read_file is None:
            raise Mismatch(where, "cannot read file content (no storage reader)")
        try:
            data = ctx.read_file(actual).decode("utf-8", errors="replace")
        except Exception as exc:  # noqa: BLE001
            raise Mismatch(where, f"cannot read {actual}: {exc}") from None
        check(operand, data, where, ctx)
    else:  # pragma: no cover - OPERATORS and this chain are kept in step
        raise Mismatch(where, f"unknown matcher {op}")


def _permutation(wanted: list[Any], actual: list[Any], ctx: MatchContext) -> bool:
    """Whether each expected item matches a distinct actual item (backtracking; lists are short)."""
    if not wanted:
        return True
    head, rest = wanted[0], wanted[1:]
    for index, candidate in enumerate(actual):
        if _matches(head, candidate, ctx) and _permutation(rest, actual[:index] + actual[index + 1:], ctx):
            return True
    return False


# ---------------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------------

def check(expected: Any, actual: Any, path: str = "", ctx: MatchContext | None = None) -> None:
    """Raise :class:`Mismatch` at the first difference between ``expected`` and ``actual``."""
    ctx = ctx or MatchContext()
    if is_operator_mapping(expected):
        for op, operand in expected.items():
            _apply_operator(op, operand, actual, path, ctx)
        return
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            raise Mismatch(path, f"expected a map {describe(expected)}, got {describe(actual)}")
        for key, value in expected.items():
            sub = _join(path, key)
            if key in actual:
                check(value, actual[key], sub, ctx)
            elif isinstance(key, str) and key.endswith("Seconds") and key[:-7] in actual:
                # `intervalSeconds: 900` checks the duration `interval` (Java's getInterval().getSeconds())
                length = _duration(_as_text(actual[key[:-7]]) or "")
                if length is None or not _scalar_equal(value, int(length.total_seconds())):
                    raise Mismatch(sub, f"expected {describe(value)} seconds, got {describe(actual[key[:-7]])}")
            elif value is not None:
                raise Mismatch(sub, f"expected {describe(value)}, got no such key "
                                    f"(keys: {describe(sorted(map(str, actual)), 120)})")
        return
    if isinstance(expected, list):
        if not isinstance(actual, (list, tuple)):
            raise Mismatch(path, f"expected a list {describe(expected)}, got {describe(actual)}")
        if len(expected) != len(actual):
            raise Mismatch(path, f"expected {len(expected)} elements {describe(expected)}, "
                                 f"got {len(actual)} {describe(actual)}")
        for index, (item, value) in enumerate(zip(expected, actual)):
            check(item, value, _join(path, index), ctx)
        return
    if isinstance(expected, str):
        if is_description(expected):
            _check_description(expected, actual, path, ctx)
            return
        if _EMBEDDED.search(expected) and not _scalar_equal(expected, actual):
            _check_embedded(expected, actual, path, ctx)
            return
        value_part = typed_value_part(expected)
        if value_part is not None and not _scalar_equal(expected, actual):
            if not _scalar_equal(value_part, actual):
                raise Mismatch(path, f"expected {describe(expected)}, got {describe(actual)}")
            return
    if not _scalar_equal(expected, actual):
        raise Mismatch(path, f"expected {describe(expected)}, got {describe(actual)}")


def first_mismatch(expected: Any, actual: Any, path: str = "", ctx: MatchContext | None = None) -> str | None:
    """The message of the first difference, or ``None`` when ``actual`` matches."""
    try:
        check(expected, actual, path, ctx)
    except Mismatch as exc:
        return str(exc)
    return None
