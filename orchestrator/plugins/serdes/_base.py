"""Shared pieces of the ``io.kestra.plugin.serdes`` tasks: typed ION records, Java date patterns, options.

Kestra's record files are ION text, one value per line (see :mod:`orchestrator.plugins.core.storage`).
The format tasks need the ION *types* too (a timestamp is not a string, a decimal is not a float),
so :class:`TypedIonReader` reads timestamps as ``datetime``/``date``, decimals as ``Decimal`` and blobs
as ``bytes``; writing goes through the shared :func:`ion_dumps`.
"""
from __future__ import annotations

import base64
import re
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrator.engine.errors import TaskFailure
from orchestrator.engine.memory_platform import platform_of
from orchestrator.engine.plugins import RunContext
from orchestrator.plugins.core._ion import _DECIMAL, _INT, _TIMESTAMP, IonError, _IonReader, ion_dumps
from orchestrator.plugins.core._render import render_bool, render_int, render_text, render_text_list

__all__ = [
    "TypedIonReader", "read_records", "write_records", "ion_dumps", "java_format", "java_parse", "render_bool",
    "render_int", "render_text", "render_text_list", "render_char", "render_enum", "render_zone", "source_uri",
    "read_source", "platform_of",
]


# --- typed ION --------------------------------------------------------------------------------------------

def parse_ion_timestamp(token: str) -> date | datetime:
    """An ION timestamp token: a day alone is a ``date``, anything with a time an aware ``datetime``."""
    text = token.rstrip("T")
    if re.fullmatch(r"\d{4}", text):
        return date(int(text), 1, 1)
    if re.fullmatch(r"\d{4}-\d{2}", text):
        return date(int(text[:4]), int(text[5:7]), 1)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return date.fromisoformat(text)
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    if text.endswith("-00:00"):  # ION's unknown offset: read as UTC
        text = text[:-6] + "+00:00"
    return datetime.fromisoformat(text)


class TypedIonReader(_IonReader):
    """The shared ION reader, keeping timestamps, decimals and blobs as their own Python types."""

    def scalar(self, token: str) -> Any:
        if _TIMESTAMP.match(token):
            try:
                return parse_ion_timestamp(token)
            except ValueError:
                raise self.fail(f"invalid timestamp {token}") from None
        if not _INT.match(token) and _DECIMAL.match(token):
            try:
                return Decimal(token.replace("_", "").replace("d", "e").replace("D", "e"))
            except InvalidOperation:
                raise self.fail(f"invalid decimal {token}") from None
        return super().scalar(token)

    def lob(self) -> Any:
        end = self.text.find("}}", self.pos + 2)
        if end == -1:
            raise self.fail("unterminated blob")
        body = self.text[self.pos + 2:end].strip()
        self.pos = end + 2
        if body.startswith('"') or body.startswith("'''"):  # clob: its text
            return _IonReader(body).value()
        try:
            return base64.b64decode("".join(body.split()), validate=True)
        except ValueError:
            raise self.fail("invalid blob") from None


def iter_records(text: str) -> Iterator[Any]:
    """Every top-level value of a record file (one per line, as Kestra writes them; any ION text is read)."""
    reader = TypedIonReader(text)
    try:
        while not reader.at_end():
            yield reader.value()
    except IonError as exc:
        raise TaskFailure(f"Unable to read the ION file: {exc}") from None


def read_records(ctx: RunContext, uri: str, charset: str = "UTF-8") -> Iterator[Any]:
    return iter_records(platform_of(ctx).read_text(uri, charset))


def write_records(records: Iterable[Any]) -> tuple[bytes, int]:
    """``(ION text, count)``: one value per line."""
    lines = [ion_dumps(record) + "\n" for record in records]
    return "".join(lines).encode("utf-8"), len(lines)



# --- property rendering -----------------------------------------------------------------------------------

def source_uri(ctx: RunContext, props: dict[str, Any], name: str = "from") -> str:
    uri = (render_text(ctx, props.get(name)) or "").strip()
    if not uri:
        raise TaskFailure(f"Property '{name}' is required")
    return uri


def read_source(ctx: RunContext, props: dict[str, Any], name: str = "from") -> bytes:
    return platform_of(ctx).read_file(source_uri(ctx, props, name))


def render_char(ctx: RunContext, value: Any, name: str, default: str) -> str:
    """A ``Property<Character>``: exactly one character (``\\t`` written as an escape is a tab)."""
    text = default if value is None else ctx.render_string(value)
    text = {"\\t": "\t", "\\n": "\n", "\\r": "\r"}.get(text, text)
    if len(text) != 1:
        raise TaskFailure(f"Invalid value for '{name}': `{text}` must be a single character")
    return text


def render_enum(ctx: RunContext, value: Any, name: str, choices: Iterable[str], default: str) -> str:
    text = (default if value is None else ctx.render_string(value)).strip().upper()
    allowed = list(choices)
    if text not in allowed:
        raise TaskFailure(f"Invalid value for '{name}': `{text}` must be one of {', '.join(allowed)}")
    return text


def render_zone(ctx: RunContext, value: Any) -> tzinfo:
    """``timeZoneId`` (Kestra's default is the JVM's zone; ours is UTC unless the flow says otherwise)."""
    name = (render_text(ctx, value) or "UTC").strip()
    if name in ("UTC", "Z", "GMT"):
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TaskFailure(f"Invalid value for 'timeZoneId': unknown time zone `{name}`") from None


# --- Java DateTimeFormatter patterns ----------------------------------------------------------------------

_PATTERN_TOKEN = re.compile(r"'[^']*'|\[|\]|([A-Za-z])\1*|.", re.DOTALL)


def _tokens(pattern: str) -> list[str]:
    return [m.group(0) for m in _PATTERN_TOKEN.finditer(pattern)]


def _offset_text(value: Any, token: str) -> str | None:
    offset = value.utcoffset() if isinstance(value, (datetime, time)) else None
    if offset is None:
        return None
    seconds = int(offset.total_seconds())
    if seconds == 0 and token[0] == "X":
        return "Z"
    sign = "+" if seconds >= 0 else "-"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    if token in ("X",):
        return f"{sign}{hours:02d}" + (f"{minutes:02d}" if minutes else "")
    if token in ("XX", "xx", "Z", "ZZ", "ZZZ"):
        return f"{sign}{hours:02d}{minutes:02d}"
    return f"{sign}{hours:02d}:{minutes:02d}"


def java_format(value: date | datetime | time, pattern: str) -> str:
    """Format like Java's ``DateTimeFormatter.ofPattern`` for the usual letters (y M d H h m s S a E X x Z);
    an optional section ``[...]`` is written when the value has what it needs (an offset for ``XXX``)."""
    out: list[str] = []
    stack: list[list[str]] = []
    skip_depth = [False]

    def emit(text: str | None) -> None:
        if text is None:
            skip_depth[-1] = True
            return
        (stack[-1] if stack else out).append(text)

    for token in _tokens(pattern):
        if token == "[":
            stack.append([])
            skip_depth.append(False)
            continue
        if token == "]":
            if stack:
                section = stack.pop()
                skipped = skip_depth.pop()
                if not skipped:
                    (stack[-1] if stack else out).extend(section)
            continue
        if token.startswith("'"):
            emit(token[1:-1] if token != "''" else "'")
            continue
        letter, width = token[0], len(token)
        if not letter.isalpha():
            emit(token)
            continue
        emit(_field(value, letter, width, token))
    return "".join(out)


def _field(value: Any, letter: str, width: int, token: str) -> str | None:
    has_date = isinstance(value, date)
    has_time = isinstance(value, (datetime, time))
    if letter in "yu" and has_date:
        return f"{value.year % 100:02d}" if width == 2 else f"{value.year:0{width}d}"
    if letter in "ML" and has_date:
        if width >= 4:
            return value.strftime("%B")
        if width == 3:
            return value.strftime("%b")
        return f"{value.month:0{width}d}"
    if letter == "d" and has_date:
        return f"{value.day:0{width}d}"
    if letter == "D" and has_date:
        return f"{value.timetuple().tm_yday:0{width}d}"
    if letter == "E" and has_date:
        return value.strftime("%A" if width >= 4 else "%a")
    if letter == "H" and has_time:
        return f"{value.hour:0{width}d}"
    if letter == "h" and has_time:
        return f"{(value.hour % 12) or 12:0{width}d}"
    if letter == "m" and has_time:
        return f"{value.minute:0{width}d}"
    if letter == "s" and has_time:
        return f"{value.second:0{width}d}"
    if letter == "S" and has_time:
        return f"{value.microsecond:06d}000"[:width]
    if letter == "a" and has_time:
        return "AM" if value.hour < 12 else "PM"
    if letter in "XxZ":
        return _offset_text(value, token)
    raise TaskFailure(f"Unsupported date pattern letter '{letter}' for {type(value).__name__} value")


_PARSE_PIECES = {"yyyy": r"(?P<year>\d{4})", "uuuu": r"(?P<year>\d{4})", "yy": r"(?P<year2>\d{2})",
                 "MM": r"(?P<month>\d{2})", "M": r"(?P<month>\d{1,2})", "dd": r"(?P<day>\d{2})",
                 "d": r"(?P<day>\d{1,2})", "HH": r"(?P<hour>\d{2})", "H": r"(?P<hour>\d{1,2})",
                 "mm": r"(?P<minute>\d{2})", "ss": r"(?P<second>\d{2})"}


def _parse_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    for token in _tokens(pattern):
        if token == "[":
            parts.append("(?:")
        elif token == "]":
            parts.append(")?")
        elif token.startswith("'"):
            parts.append(re.escape(token[1:-1] if token != "''" else "'"))
        elif token in _PARSE_PIECES:
            parts.append(_PARSE_PIECES[token])
        elif token[0] == "S":
            parts.append(r"(?P<fraction>\d{1,%d})" % len(token))
        elif token[0] in "XxZ":
            parts.append(r"(?P<offset>Z|[+-]\d{2}(?::?\d{2})?)")
        elif token[0].isalpha():
            raise TaskFailure(f"Unsupported date pattern '{token}' in `{pattern}`")
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts) + r"\Z")


def java_parse(text: str, pattern: str, zone: tzinfo) -> date | datetime | time:
    """Parse ``text`` with a Java pattern: a ``date`` when the pattern has no time, a ``time`` when it has
    no date, else an aware ``datetime`` (``zone`` when the text has no offset)."""
    match = _parse_regex(pattern).match(text.strip())
    if not match:
        raise ValueError(f"`{text}` does not match the pattern `{pattern}`")
    parts = {k: v for k, v in match.groupdict().items() if v is not None}
    offset = parts.get("offset")
    moment_zone: tzinfo = zone
    if offset:
        if offset == "Z":
            moment_zone = timezone.utc
        else:
            digits = offset[1:].replace(":", "")
            delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
            moment_zone = timezone(delta if offset[0] == "+" else -delta)
    micro = int((parts.get("fraction", "") + "000000")[:6])
    has_date = "year" in parts or "year2" in parts
    clock = time(int(parts.get("hour", 0)), int(parts.get("minute", 0)), int(parts.get("second", 0)), micro)
    if not has_date:
        return clock.replace(tzinfo=moment_zone if offset else None)
    year = int(parts["year"]) if "year" in parts else 2000 + int(parts["year2"])
    day = date(year, int(parts.get("month", 1)), int(parts.get("day", 1)))
    if "hour" not in parts:
        return day
    return datetime.combine(day, clock, tzinfo=moment_zone)


# --- text writers (IonToCsv, IonToExcel): Kestra's AbstractTextWriter ----------------------------------

class TextFormats:
    """``dateFormat``, ``timeFormat``, ``dateTimeFormat`` and ``timeZoneId`` of a text writer, and the
    conversion of one value to its text (``None`` stays ``None``)."""

    DATE = "yyyy-MM-dd"
    TIME = "HH:mm:ss[XXX]"
    DATETIME = "yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]"

    def __init__(self, ctx: RunContext, props: dict[str, Any]):
        self.date_format = render_text(ctx, props.get("dateFormat")) or self.DATE
        self.time_format = render_text(ctx, props.get("timeFormat")) or self.TIME
        self.datetime_format = render_text(ctx, props.get("dateTimeFormat")) or self.DATETIME
        self.zone = render_zone(ctx, props.get("timeZoneId"))

    def convert(self, value: Any) -> str | None:
        import json

        if value is None:
            return None
        if isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
            if moment.utcoffset() == timedelta(0):  # an Instant: written in UTC, as Kestra does
                moment = moment.astimezone(timezone.utc)
            return java_format(moment, self.datetime_format)
        if isinstance(value, date):
            return java_format(value, self.date_format)
        if isinstance(value, time):
            return java_format(value, self.time_format)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return java_double(value)
        if isinstance(value, Decimal):  # Python's and Java's BigDecimal texts follow the same rules
            return str(value)
        if isinstance(value, (bytes, bytearray)):
            return base64.b64encode(bytes(value)).decode("ascii")
        if isinstance(value, (dict, list)):
            return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
        return str(value)


def java_double(value: float) -> str:
    """``Double.toString``: ``1.0``, ``0.5``, ``1.5E10``, ``1.0E-5``, ``NaN``, ``Infinity``."""
    import math

    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        text = repr(value)
        return text if "e" not in text else format(Decimal(text), "f")
    # the shortest digits that read back as the value, in Java's d.dddE<n> notation
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    power = len(text) - 1 + int(exponent)
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{power}"
