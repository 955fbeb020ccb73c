"""How Kestra turns values into text: Java ``toString``, Jackson JSON, ISO dates, Java doubles.

Kestra runs on the JVM, so an expression prints ``1.0E7`` for a large double, ``[a, b]`` when a list is
concatenated with ``~`` and ``{"a":1}`` when a map is interpolated. Those rules live here so that every
filter, function and operator prints values the same way.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Set
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from jinja2 import Undefined
from jinja2.runtime import LoopContext

from ._errors import ExpressionError, MissingVariable

_encode_str = json.encoder.encode_basestring  # type: ignore[attr-defined]


class PebbleUndefined(Undefined):
    """A name that is not in the context.

    Jinja resolves every name a template uses when a block starts, so a missing one must be a lazy
    object. Translated templates read context names through ``_p_s``, which raises MissingVariable at
    once (where Pebble's strict mode throws); any other use of the object raises it too, as a safety net.
    """

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise MissingVariable(self._undefined_name or "undefined")

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        return self._fail_with_undefined_error()

    __add__ = __radd__ = __sub__ = __rsub__ = _fail_with_undefined_error
    __mul__ = __rmul__ = __div__ = __rdiv__ = _fail_with_undefined_error
    __truediv__ = __rtruediv__ = _fail_with_undefined_error
    __floordiv__ = __rfloordiv__ = _fail_with_undefined_error
    __mod__ = __rmod__ = __pos__ = __neg__ = _fail_with_undefined_error
    __call__ = __getitem__ = __lt__ = __le__ = __gt__ = __ge__ = _fail_with_undefined_error
    __int__ = __float__ = __complex__ = __pow__ = __rpow__ = _fail_with_undefined_error
    __iter__ = __str__ = __len__ = __eq__ = __ne__ = __bool__ = _fail_with_undefined_error
    __contains__ = __hash__ = _fail_with_undefined_error  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Undefined({self._undefined_name!r})"


def missing_name(value: Any) -> str:
    return value._undefined_name or "undefined"  # noqa: SLF001 - Jinja's own slot


class Entry:
    """One entry of a map being iterated (``{% for e in map %}`` gives ``e.key`` / ``e.value``)."""

    __slots__ = ("key", "value")

    def __init__(self, key: Any, value: Any):
        self.key = key
        self.value = value

    def __repr__(self) -> str:
        return f"{java_str(self.key)}={java_str(self.value)}"


def is_number(value: Any) -> bool:
    """Java ``Number``: int, float or Decimal, but not bool (a Boolean is not a Number in Java)."""
    return (isinstance(value, (int, float, Decimal))) and not isinstance(value, bool)


# --- Java number text ---------------------------------------------------------------------------

def java_double(value: float) -> str:
    """``Double.toString``: plain notation in [1e-3, 1e7), else ``d.dddE±n``; shortest round-trip digits."""
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    text = repr(value)
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        if "e" in text or "E" in text:
            text = format(Decimal(text), "f")
        if "." not in text:
            text += ".0"
        return text
    sign, digits, exponent = Decimal(text).as_tuple()
    digit_text = "".join(map(str, digits)).rstrip("0") or "0"
    exp10 = int(exponent) + len(digits) - 1
    mantissa = digit_text[0] + "." + (digit_text[1:] or "0")
    return f"{'-' if sign else ''}{mantissa}E{exp10}"


def number_text(value: Any) -> str:
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, Decimal):
        return format(value, "f") if value == value.to_integral_value() and abs(value) < 10 ** 20 else str(value)
    return str(value)


# --- dates --------------------------------------------------------------------------------------

def _fraction(micro: int) -> str:
    if not micro:
        return ""
    if micro % 1000 == 0:
        return f".{micro // 1000:03d}"
    return f".{micro:06d}"


def _local_text(moment: datetime | time, always_seconds: bool) -> str:
    """Java ``LocalTime.toString`` (seconds dropped when zero, unless ``always_seconds``)."""
    text = f"{moment.hour:02d}:{moment.minute:02d}"
    if always_seconds or moment.second or moment.microsecond:
        text += f":{moment.second:02d}" + _fraction(moment.microsecond)
    return text


def offset_text(offset: timedelta | None) -> str:
    if offset is None:
        return ""
    seconds = int(offset.total_seconds())
    if seconds == 0:
        return "Z"
    sign = "+" if seconds >= 0 else "-"
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def _zone_suffix(moment: datetime) -> str:
    key = getattr(moment.tzinfo, "key", None)
    return f"[{key}]" if key and key not in ("UTC", "Etc/UTC", "Z") else ""


def datetime_text(moment: datetime) -> str:
    """A context date as Kestra prints it.

    UTC values are Kestra ``Instant``s (``2024-05-02T10:15:30.123456Z``, seconds always shown);
    other offsets follow ``ZonedDateTime.toString`` (``2013-09-08T16:19+02:00``); naive values
    follow ``LocalDateTime.toString``.
    """
    offset = moment.utcoffset()
    if offset is None:
        return f"{moment.date().isoformat()}T{_local_text(moment, False)}"
    if offset == timedelta(0) and _zone_suffix(moment) == "":
        return f"{moment.date().isoformat()}T{_local_text(moment, True)}Z"
    return f"{moment.date().isoformat()}T{_local_text(moment, False)}{offset_text(offset)}{_zone_suffix(moment)}"


def temporal_text(value: Any) -> str:
    if isinstance(value, datetime):
        return datetime_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return _local_text(value, False)
    if isinstance(value, timedelta):
        from orchestrator.engine.timeutil import format_duration

        return format_duration(value)
    return str(value)


# --- Java toString ------------------------------------------------------------------------------

def java_str(value: Any) -> str:
    """``String.valueOf``: what ``~``, ``+`` with a string, ``join`` and ``replace`` print."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float, Decimal)):
        return number_text(value)
    if value.__class__ is PebbleUndefined:
        raise MissingVariable(missing_name(value))
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{java_str(k)}={java_str(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, Set)):
        return "[" + ", ".join(java_str(item) for item in value) + "]"
    if isinstance(value, (datetime, date, time, timedelta)):
        return temporal_text(value)
    if isinstance(value, Entry):
        return repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# --- Jackson JSON -------------------------------------------------------------------------------

#: Maximum characters of one JSON text (expressions' configure_limits sets it with MAX_OUTPUT_CHARS).
MAX_JSON_CHARS = 10 * 1024 * 1024
#: Maximum values visited by one to_plain call (shared nested lists must not expand without bound).
MAX_PLAIN_NODES = 1_000_000


class _Count:
    """Characters written so far, and where each container's text already is (shared containers)."""

    __slots__ = ("size", "limit", "seen")

    def __init__(self, limit: int) -> None:
        self.size = 0
        self.limit = limit
        self.seen: dict[int, tuple[int, int, int]] = {}

    def add(self, amount: int) -> None:
        self.size += amount
        if self.size > self.limit:
            raise ExpressionError(f"Rendered value exceeds the maximum size of {self.limit} characters")


def to_json(value: Any, include_nulls: bool = False) -> str:
    """Compact JSON the way Kestra's Jackson mapper writes it (null map values dropped by default).

    The size is counted while serialising, so that a value made of shared nested lists (each level
    doubling the text) fails at the limit instead of being built first.
    """
    parts: list[str] = []
    _json_into(value, parts, include_nulls, 0, _Count(MAX_JSON_CHARS))
    return "".join(parts)


def _json_into(value: Any, out: list[str], include_nulls: bool, depth: int, count: _Count) -> None:
    if depth > 200:
        raise ExpressionError("Value is nested too deeply to be serialized")
    if isinstance(value, str):
        text = _encode_str(value)
        count.add(len(text))
        out.append(text)
    elif value is None:
        count.add(4)
        out.append("null")
    elif value is True:
        count.add(4)
        out.append("true")
    elif value is False:
        count.add(5)
        out.append("false")
    elif isinstance(value, int):
        text = str(value)
        count.add(len(text))
        out.append(text)
    elif isinstance(value, float):
        text = java_double(value)
        count.add(len(text))
        out.append(text)
    elif isinstance(value, Decimal):
        text = number_text(value)
        count.add(len(text))
        out.append(text)
    elif isinstance(value, (Mapping, list, tuple, Set)):
        # A container met again (a list holding the same list twice) is copied from its first
        # text: its size is added before copying, so doubling nested lists stop at the limit at once.
        known = count.seen.get(id(value))
        if known is not None:
            first, last, chars = known
            count.add(chars)
            out.extend(out[first:last])
            return
        first, before = len(out), count.size
        _container_json(value, out, include_nulls, depth, count)
        count.seen[id(value)] = (first, len(out), count.size - before)
    elif isinstance(value, (datetime, date, time)):
        text = _encode_str(temporal_text(value))
        count.add(len(text))
        out.append(text)
    elif isinstance(value, timedelta):
        text = java_double(value.total_seconds())
        count.add(len(text))
        out.append(text)
    elif isinstance(value, Entry):
        text = _encode_str(java_str(value.key))
        count.add(len(text) + 3)
        out.append("{")
        out.append(text)
        out.append(":")
        _json_into(value.value, out, include_nulls, depth + 1, count)
        out.append("}")
    elif value.__class__ is PebbleUndefined:
        raise MissingVariable(missing_name(value))
    else:
        text = _encode_str(str(value))
        count.add(len(text))
        out.append(text)


def _container_json(value: Any, out: list[str], include_nulls: bool, depth: int, count: _Count) -> None:
    if isinstance(value, Mapping):
        count.add(2)
        out.append("{")
        leading = True
        for key, item in value.items():
            if item is None and not include_nulls:
                continue
            if not leading:
                out.append(",")
            leading = False
            text = _encode_str(key if isinstance(key, str) else java_str(key))
            count.add(len(text) + 2)
            out.append(text)
            out.append(":")
            _json_into(item, out, include_nulls, depth + 1, count)
        out.append("}")
    else:
        count.add(2)
        out.append("[")
        for index, item in enumerate(value):
            if index:
                count.add(1)
                out.append(",")
            _json_into(item, out, include_nulls, depth + 1, count)
        out.append("]")


def to_plain(value: Any) -> Any:
    """Plain JSON-like data (dates as ISO text, sets as lists) for yaml/jq/ion encoders."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return _plain(value, _Count(MAX_PLAIN_NODES), 0)


def _plain(value: Any, count: _Count, depth: int) -> Any:
    count.size += 1
    if count.size > count.limit:
        raise ExpressionError(f"Value has more than {count.limit} elements to convert")
    if depth > 200:
        raise ExpressionError("Value is nested too deeply to be converted")
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Mapping):
        return {(k if isinstance(k, str) else java_str(k)): _plain(v, count, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, Set)):
        return [_plain(v, count, depth + 1) for v in value]
    if isinstance(value, (datetime, date, time, timedelta)):
        return temporal_text(value)
    if isinstance(value, Entry):
        return {java_str(value.key): _plain(value.value, count, depth + 1)}
    if value.__class__ is PebbleUndefined:
        raise MissingVariable(missing_name(value))
    return str(value)


# --- output -------------------------------------------------------------------------------------

def to_text(value: Any) -> str:
    """What ``{{ value }}`` prints: null → "", booleans lowercase, maps/lists as JSON, dates ISO."""
    cls = value.__class__
    if cls is str:
        return value
    if value is None:
        return ""
    if cls is bool:
        return "true" if value else "false"
    if cls is int:
        return str(value)
    if cls is float:
        return java_double(value)
    if cls is PebbleUndefined:
        raise MissingVariable(missing_name(value))
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, (Mapping, list, tuple, Set)):
        return to_json(value)
    if isinstance(value, (datetime, date, time, timedelta)):
        return temporal_text(value)
    if isinstance(value, (int, Decimal)):
        return number_text(value)
    if isinstance(value, Entry):
        return repr(value)
    if isinstance(value, LoopContext):
        return (f"{{last={java_str(value.last)}, length={value.length}, index={value.index0}, "
                f"revindex={value.revindex0}, first={java_str(value.first)}}}")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if callable(value):
        raise MissingVariable(getattr(value, "__name__", "function"))
    return str(value)


_JAVA_CLASSES: list[tuple[type, str]] = [
    (bool, "java.lang.Boolean"),
    (str, "java.lang.String"),
    (float, "java.lang.Double"),
    (Decimal, "java.math.BigDecimal"),
    (datetime, "java.time.ZonedDateTime"),
    (date, "java.time.LocalDate"),
    (time, "java.time.LocalTime"),
    (timedelta, "java.time.Duration"),
    (Mapping, "java.util.LinkedHashMap"),
    (list, "java.util.ArrayList"),
    (tuple, "java.util.ArrayList"),
    (Set, "java.util.HashSet"),
]


def class_name(value: Any) -> str | None:
    """The Java class Kestra would report (``className`` filter)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return "java.lang.Integer" if -(2 ** 31) <= value < 2 ** 31 else "java.lang.Long"
    for python_type, java in _JAVA_CLASSES:
        if isinstance(value, python_type):
            if python_type is datetime and value.tzinfo is None:
                return "java.time.LocalDateTime"
            if python_type is datetime and value.utcoffset() == timedelta(0):
                return "java.time.Instant"
            return java
    if isinstance(value, Entry):
        return "java.util.HashMap$Node"
    return type(value).__name__


UTC = timezone.utc
