"""Java ``DateTimeFormatter`` patterns and Kestra's date conversions, for the date filters and ``now()``.

Flows written for Kestra use Java patterns (``yyyy-MM-dd'T'HH:mm:ss.SSSXXX``, ``EEE``, ``MMM``...)
and Java's named formatters (``iso``, ``iso_instant``, ``rfc_1123_date_time``...); strftime cannot
express them faithfully (fractions, ``XXX`` printing ``Z``, quoted literals), so this module
interprets the pattern letters itself. Text fields use the English (en_US) names.
"""
from __future__ import annotations

import calendar
import re
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._errors import ExpressionError

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_default_zone: tzinfo = UTC

MONTHS = list(calendar.month_name)[1:]
MONTHS_SHORT = list(calendar.month_abbr)[1:]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
DAYS_SHORT = [d[:3] for d in DAYS]
_QUARTERS = ["1st quarter", "2nd quarter", "3rd quarter", "4th quarter"]


def set_default_time_zone(name: str | None) -> None:
    """Zone used when a date filter or ``now()`` gets no ``timeZone`` (Kestra uses the JVM default zone)."""
    global _default_zone
    _default_zone = UTC if not name else zone(name)


def default_time_zone() -> tzinfo:
    return _default_zone


_OFFSET_ZONE = re.compile(r"^(?:UTC|GMT|UT)?([+-])(\d{1,2})(?::?(\d{2}))?(?::?(\d{2}))?$")


def zone(name: str | None) -> tzinfo:
    """``ZoneId.of``: region ids (``Europe/Paris``), ``UTC``/``Z``/``GMT`` and offsets (``+02:00``, ``UTC+1``)."""
    if name is None:
        return _default_zone
    if not isinstance(name, str):
        raise ExpressionError(f"Invalid time zone {name!r}")
    return _zone(name.strip())


@lru_cache(maxsize=128)
def _zone(text: str) -> tzinfo:
    if text in ("Z", "UTC", "GMT", "UT"):
        return UTC
    match = _OFFSET_ZONE.match(text)
    if match:
        sign, hours, minutes, seconds = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0), seconds=int(seconds or 0))
        if delta > timedelta(hours=18):
            raise ExpressionError(f"Zone offset not in valid range: {text}")
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ExpressionError(f"Unknown time-zone ID: {text}") from None


# --- pattern compilation ------------------------------------------------------------------------

_LETTERS = set("GuyDMLdQqYwWEecFaBhKkHmsSAnNVvzOXxZ")


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> tuple[tuple[Any, ...], ...]:
    """Tokens of a Java pattern: ('lit', text), ('field', letter, count), ('opt', tokens)."""
    tokens, index = _compile(pattern, 0, False)
    return tokens


def _compile(pattern: str, index: int, optional: bool) -> tuple[tuple[Any, ...], int]:
    tokens: list[tuple[Any, ...]] = []
    length = len(pattern)
    while index < length:
        char = pattern[index]
        if char == "'":
            end = index + 1
            literal = []
            while True:
                if end >= length:
                    raise ExpressionError(f"Pattern ends with an incomplete string literal: {pattern}")
                if pattern[end] == "'":
                    if end + 1 < length and pattern[end + 1] == "'":
                        literal.append("'")
                        end += 2
                        continue
                    break
                literal.append(pattern[end])
                end += 1
            tokens.append(("lit", "".join(literal) if literal or end > index + 1 else "'"))
            index = end + 1
        elif char == "[":
            inner, index = _compile(pattern, index + 1, True)
            tokens.append(("opt", inner))
        elif char == "]":
            if not optional:
                raise ExpressionError(f"Pattern invalid as it contains ] without previous [: {pattern}")
            return tuple(tokens), index + 1
        elif char in "{}#":
            raise ExpressionError(f"Pattern includes reserved character: '{char}'")
        elif char.isascii() and char.isalpha():
            if char not in _LETTERS:
                raise ExpressionError(f"Unknown pattern letter: {char}")
            end = index
            while end < length and pattern[end] == char:
                end += 1
            tokens.append(("field", char, end - index))
            index = end
        else:
            tokens.append(("lit", char))
            index += 1
    if optional:
        raise ExpressionError(f"Pattern has an unclosed optional section: {pattern}")
    return tuple(tokens), index


# --- formatting ---------------------------------------------------------------------------------

def _pad(value: int, count: int) -> str:
    text = str(abs(value)).rjust(count, "0")
    return ("-" + text) if value < 0 else text


def _offset(moment: datetime, style: str, zero: str | None) -> str:
    """Offsets: ``style`` is H (+01), HHMM (+0100), HH:MM (+01:00), with seconds when non-zero."""
    delta = moment.utcoffset() or timedelta(0)
    seconds = int(delta.total_seconds())
    if seconds == 0 and zero is not None:
        return zero
    sign = "+" if seconds >= 0 else "-"
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    colon = ":" if ":" in style else ""
    text = f"{sign}{hours:02d}"
    if style == "H":
        if minutes:
            text += f"{minutes:02d}"
        return text
    text += f"{colon}{minutes:02d}"
    if secs and style.endswith("S"):
        text += f"{colon}{secs:02d}"
    return text


def _gmt_offset(moment: datetime, long: bool) -> str:
    delta = moment.utcoffset() or timedelta(0)
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "GMT"
    sign = "+" if seconds >= 0 else "-"
    hours, rest = divmod(abs(seconds), 3600)
    minutes = rest // 60
    if long:
        return f"GMT{sign}{hours:02d}:{minutes:02d}"
    return f"GMT{sign}{hours}" + (f":{minutes:02d}" if minutes else "")


def _zone_id(moment: datetime) -> str:
    info = moment.tzinfo
    key = getattr(info, "key", None)
    if key:
        return key
    if info is UTC or (moment.utcoffset() == timedelta(0)):
        return "Z"
    return _offset(moment, "HH:MMS", "Z")


def _us_week(day: date) -> tuple[int, int]:
    """Week-based year and week number with en_US rules (weeks start on Sunday, week 1 holds January 1st)."""
    start = day - timedelta(days=(day.weekday() + 1) % 7)
    if (start + timedelta(days=6)).year > day.year:
        return day.year + 1, 1
    first = date(day.year, 1, 1)
    first_start = first - timedelta(days=(first.weekday() + 1) % 7)
    return day.year, (start - first_start).days // 7 + 1


def _format_field(moment: datetime, letter: str, count: int) -> str:  # noqa: C901 - one branch per letter
    if letter in "yu":
        year = moment.year
        if count == 2:
            return f"{year % 100:02d}"
        return _pad(year, count)
    if letter == "Y":
        year = _us_week(moment.date())[0]
        return f"{year % 100:02d}" if count == 2 else _pad(year, count)
    if letter in "ML":
        if count <= 2:
            return _pad(moment.month, count)
        if count == 3:
            return MONTHS_SHORT[moment.month - 1]
        if count == 4:
            return MONTHS[moment.month - 1]
        return MONTHS[moment.month - 1][0]
    if letter in "Qq":
        quarter = (moment.month - 1) // 3 + 1
        if count <= 2:
            return _pad(quarter, count)
        if count == 3:
            return f"Q{quarter}"
        if count == 4:
            return _QUARTERS[quarter - 1]
        return str(quarter)
    if letter == "d":
        return _pad(moment.day, count)
    if letter == "D":
        return _pad(moment.timetuple().tm_yday, count)
    if letter == "w":
        return _pad(_us_week(moment.date())[1], count)
    if letter == "W":
        first = moment.date().replace(day=1)
        offset = (first.weekday() + 1) % 7
        return _pad((moment.day + offset - 1) // 7 + 1, count)
    if letter == "F":
        return _pad((moment.day - 1) // 7 + 1, count)
    if letter == "E" or (letter in "ec" and count >= 3):
        name = DAYS[moment.weekday()]
        if count <= 3:
            return name[:3]
        if count == 4:
            return name
        return name[0]
    if letter in "ec":
        return _pad((moment.weekday() + 1) % 7 + 1, count)
    if letter == "a":
        return "AM" if moment.hour < 12 else "PM"
    if letter == "B":
        return "in the morning" if moment.hour < 12 else "in the afternoon" if moment.hour < 18 else "at night"
    if letter == "G":
        return "AD" if count <= 3 else "Anno Domini" if count == 4 else "A"
    if letter == "H":
        return _pad(moment.hour, count)
    if letter == "k":
        return _pad(moment.hour or 24, count)
    if letter == "h":
        return _pad(moment.hour % 12 or 12, count)
    if letter == "K":
        return _pad(moment.hour % 12, count)
    if letter == "m":
        return _pad(moment.minute, count)
    if letter == "s":
        return _pad(moment.second, count)
    if letter == "S":
        return f"{moment.microsecond * 1000:09d}"[:count].ljust(count, "0")
    if letter == "n":
        return _pad(moment.microsecond * 1000, count)
    if letter == "N":
        nanos = ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 10 ** 9 + moment.microsecond * 1000
        return _pad(nanos, count)
    if letter == "A":
        millis = ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1000 + moment.microsecond // 1000
        return _pad(millis, count)
    if letter in "Vv":
        return _zone_id(moment)
    if letter == "z":
        name = moment.tzname() or _zone_id(moment)
        return name if count < 4 else _zone_id(moment) if name == _zone_id(moment) else name
    if letter == "O":
        return _gmt_offset(moment, count == 4)
    if letter in "Xx":
        zero = "Z" if letter == "X" else None
        style = {1: "H", 2: "HHMM", 3: "HH:MM", 4: "HHMMS", 5: "HH:MMS"}.get(count, "HH:MMS")
        return _offset(moment, style, zero)
    if letter == "Z":
        if count <= 3:
            return _offset(moment, "HHMM", None)
        if count == 4:
            return _gmt_offset(moment, True)
        return _offset(moment, "HH:MMS", "Z")
    raise ExpressionError(f"Unsupported pattern letter: {letter}")


def format_pattern(moment: datetime, tokens: tuple[tuple[Any, ...], ...]) -> str:
    out: list[str] = []
    for token in tokens:
        kind = token[0]
        if kind == "lit":
            out.append(token[1])
        elif kind == "field":
            out.append(_format_field(moment, token[1], token[2]))
        else:
            out.append(format_pattern(moment, token[1]))
    return "".join(out)


def _iso_local_time(moment: datetime) -> str:
    text = f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text


def _iso_offset(moment: datetime) -> str:
    return _offset(moment, "HH:MMS", "Z")


def _region_suffix(moment: datetime) -> str:
    key = getattr(moment.tzinfo, "key", None)
    return f"[{key}]" if key else ""


def _instant(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        micro = utc.microsecond
        text += f".{micro // 1000:03d}" if micro % 1000 == 0 else f".{micro:06d}"
    return text + "Z"


def _iso_week(moment: datetime) -> str:
    year, week, weekday = moment.isocalendar()
    return f"{year}-W{week:02d}-{weekday}{_iso_offset(moment)}"


_NAMED_PATTERNS = {
    "iso": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "iso_sec": "yyyy-MM-dd'T'HH:mm:ssXXX",
    "sql": "yyyy-MM-dd HH:mm:ss.SSSSSS",
    "sql_seq": "yyyy-MM-dd HH:mm:ss",
    "full": "EEEE, MMMM d, y 'at' h:mm:ss a zzzz",
    "long": "MMMM d, y 'at' h:mm:ss a z",
    "medium": "MMM d, y, h:mm:ss a",
    "short": "M/d/yy, h:mm a",
}

_NAMED_FORMATTERS: dict[str, Callable[[datetime], str]] = {
    "iso_date_time": lambda m: f"{m.date().isoformat()}T{_iso_local_time(m)}{_iso_offset(m)}{_region_suffix(m)}",
    "iso_zoned_date_time":
        lambda m: f"{m.date().isoformat()}T{_iso_local_time(m)}{_iso_offset(m)}{_region_suffix(m)}",
    "iso_offset_date_time": lambda m: f"{m.date().isoformat()}T{_iso_local_time(m)}{_iso_offset(m)}",
    "iso_date": lambda m: f"{m.date().isoformat()}{_iso_offset(m)}",
    "iso_time": lambda m: f"{_iso_local_time(m)}{_iso_offset(m)}",
    "iso_offset_time": lambda m: f"{_iso_local_time(m)}{_iso_offset(m)}",
    "iso_offset_date": lambda m: f"{m.date().isoformat()}{_iso_offset(m)}",
    "iso_local_date": lambda m: m.date().isoformat(),
    "iso_local_time": _iso_local_time,
    "iso_local_date_time": lambda m: f"{m.date().isoformat()}T{_iso_local_time(m)}",
    "iso_instant": _instant,
    "iso_ordinal_date": lambda m: f"{m.year}-{m.timetuple().tm_yday:03d}{_iso_offset(m)}",
    "iso_week_date": _iso_week,
    "basic_iso_date": lambda m: m.strftime("%Y%m%d") + _offset(m, "HHMM", "Z"),
    "rfc_1123_date_time": lambda m: (f"{DAYS_SHORT[m.weekday()]}, {m.day} {MONTHS_SHORT[m.month - 1]} {m.year} "
                                     f"{m.hour:02d}:{m.minute:02d}:{m.second:02d} "
                                     f"{_offset(m, 'HHMM', 'GMT')}"),
}


def format_datetime(moment: datetime, fmt: str | None) -> str:
    """Format with a named Kestra format or a Java pattern (``moment`` already in the target zone)."""
    name = "iso" if fmt is None else fmt
    if not isinstance(name, str):
        raise ExpressionError(f"Invalid date format {name!r}")
    named = _NAMED_FORMATTERS.get(name)
    if named is not None:
        return named(moment)
    return format_pattern(moment, compile_pattern(_NAMED_PATTERNS.get(name, name)))


# --- parsing ------------------------------------------------------------------------------------

_ZONE_SUFFIX = re.compile(r"^(.*)\[([^\]]+)\]$")
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_iso(text: str, target: tzinfo) -> datetime:
    """ISO text, tried as a zoned date-time, then a local date-time, then a local date (in ``target``)."""
    value = text.strip()
    region = None
    match = _ZONE_SUFFIX.match(value)
    if match:
        value, region = match.group(1), match.group(2)
    value = _LONG_FRACTION.sub(r"\1", value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ExpressionError(f"Text '{text}' could not be parsed as a date") from None
    if region:
        region_zone = zone(region)
        parsed = parsed.astimezone(region_zone) if parsed.tzinfo else parsed.replace(tzinfo=region_zone)
    elif parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=target)
    return parsed


_FIELD_REGEX = {
    "M3": "|".join(MONTHS_SHORT), "M4": "|".join(MONTHS), "E3": "|".join(DAYS_SHORT), "E4": "|".join(DAYS),
}
_NUMERIC = set("yuYMLdDQqwWeHhkKmsSnNAF")


def _parse_regex(tokens: tuple[tuple[Any, ...], ...], groups: list[tuple[str, str, int]]) -> str:
    parts: list[str] = []
    for position, token in enumerate(tokens):
        kind = token[0]
        if kind == "lit":
            parts.append(re.escape(token[1]))
            continue
        if kind == "opt":
            parts.append("(?:" + _parse_regex(token[1], groups) + ")?")
            continue
        letter, count = token[1], token[2]
        following = tokens[position + 1] if position + 1 < len(tokens) else None
        adjacent = following is not None and following[0] == "field" and following[1] in _NUMERIC
        group = f"g{len(groups)}"
        groups.append((group, letter, count))
        if letter in "ML" and count == 3:
            body = _FIELD_REGEX["M3"]
        elif letter in "ML" and count >= 4:
            body = _FIELD_REGEX["M4"]
        elif letter in "Eec" and (letter == "E" or count >= 3):
            body = _FIELD_REGEX["E4"] if count >= 4 else _FIELD_REGEX["E3"]
        elif letter == "a":
            body = "AM|PM|am|pm"
        elif letter == "G":
            body = "AD|BC|Anno Domini|Before Christ"
        elif letter in "Xx":
            body = r"Z|[+-]\d{2}(?::?\d{2})?(?::?\d{2})?"
        elif letter in "ZO":
            body = r"Z|GMT|UTC|(?:GMT|UTC)?[+-]\d{1,2}(?::?\d{2})?(?::?\d{2})?"
        elif letter in "Vvz":
            body = r"[A-Za-z][A-Za-z0-9_/+\-]*"
        elif letter == "S":
            body = rf"\d{{{count}}}"
        elif letter in "yuY" and count == 2:
            body = r"\d{2}"
        elif letter in "yuY":
            body = rf"[+-]?\d{{{max(count, 1)},{max(count, 4) if adjacent else 10}}}"
        elif adjacent or count >= 2:
            body = rf"\d{{{count}}}" if adjacent or count == 2 else rf"\d{{{count},}}"
        else:
            body = r"\d{1,9}"
        parts.append(f"(?P<{group}>{body})")
    return "".join(parts)


@lru_cache(maxsize=128)
def _parser(pattern: str) -> tuple[re.Pattern[str], tuple[tuple[str, str, int], ...]]:
    groups: list[tuple[str, str, int]] = []
    regex = _parse_regex(compile_pattern(pattern), groups)
    return re.compile(regex, re.IGNORECASE), tuple(groups)


def parse_with_pattern(text: str, pattern: str, target: tzinfo) -> datetime:
    """Parse ``text`` with a Java pattern; missing time is midnight, missing zone is ``target``."""
    regex, groups = _parser(pattern)
    match = regex.fullmatch(text.strip())
    if not match:
        raise ExpressionError(f"Text '{text}' could not be parsed with the format '{pattern}'")
    fields: dict[str, Any] = {}
    pm = None
    tz: tzinfo | None = None
    for group, letter, count in groups:
        raw = match.group(group)
        if raw is None:
            continue
        if letter in "yu":
            fields["year"] = 2000 + int(raw) if count == 2 else int(raw)
        elif letter in "ML":
            if raw.isdigit():
                fields["month"] = int(raw)
            else:
                names = MONTHS_SHORT if count == 3 else MONTHS
                fields["month"] = [n.lower() for n in names].index(raw.lower()) + 1
        elif letter == "d":
            fields["day"] = int(raw)
        elif letter == "D":
            fields["day_of_year"] = int(raw)
        elif letter in "Hk":
            fields["hour"] = int(raw) % 24
        elif letter in "hK":
            fields["hour12"] = int(raw) % 12
        elif letter == "a":
            pm = raw.upper() == "PM"
        elif letter == "m":
            fields["minute"] = int(raw)
        elif letter == "s":
            fields["second"] = int(raw)
        elif letter == "S":
            fields["micro"] = int((raw + "000000")[:6])
        elif letter in "XxZO":
            tz = zone(raw.replace("GMT", "").replace("UTC", "") or "Z") if raw not in ("Z", "GMT", "UTC") else UTC
        elif letter in "Vz":
            tz = zone(raw)
    hour = fields.get("hour", 0)
    if "hour12" in fields:
        hour = fields["hour12"] + (12 if pm else 0)
    year = fields.get("year", 1970)
    try:
        if "day_of_year" in fields and "month" not in fields:
            base = date(year, 1, 1) + timedelta(days=fields["day_of_year"] - 1)
        else:
            base = date(year, fields.get("month", 1), fields.get("day", 1))
        return datetime(base.year, base.month, base.day, hour, fields.get("minute", 0), fields.get("second", 0),
                        fields.get("micro", 0), tzinfo=tz or target)
    except ValueError as exc:
        raise ExpressionError(f"Text '{text}' could not be parsed: {exc}") from None


def parse_text(text: str, existing_format: str | None, target: tzinfo) -> datetime:
    if existing_format is None or existing_format in _NAMED_FORMATTERS and existing_format != "rfc_1123_date_time":
        return parse_iso(text, target)
    if existing_format == "rfc_1123_date_time":
        try:
            return parsedate_to_datetime(text)
        except (TypeError, ValueError):
            raise ExpressionError(f"Text '{text}' could not be parsed as an RFC 1123 date") from None
    return parse_with_pattern(text, _NAMED_PATTERNS.get(existing_format, existing_format), target)


def to_datetime(value: Any, target: tzinfo, existing_format: str | None = None) -> datetime:
    """Kestra's ``AbstractDate.convert``: dates, epoch seconds and ISO (or ``existingFormat``) text."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=target)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=target)
    if isinstance(value, bool):
        raise ExpressionError(f"Unable to convert {value!r} to a date")
    if isinstance(value, (int, float)):
        return EPOCH.astimezone(target) + timedelta(seconds=value)
    if isinstance(value, str):
        return parse_text(value, existing_format, target)
    raise ExpressionError(f"Unable to convert '{value}' of type {type(value).__name__} to a date")


# --- arithmetic and epochs ----------------------------------------------------------------------

_TIME_UNITS = {"NANOS": timedelta(microseconds=0.001), "MICROS": timedelta(microseconds=1),
               "MILLIS": timedelta(milliseconds=1), "SECONDS": timedelta(seconds=1),
               "MINUTES": timedelta(minutes=1), "HOURS": timedelta(hours=1), "HALF_DAYS": timedelta(hours=12)}
_DAY_UNITS = {"DAYS": 1, "WEEKS": 7}
_MONTH_UNITS = {"MONTHS": 1, "YEARS": 12, "DECADES": 120, "CENTURIES": 1200, "MILLENNIA": 12000}


def add_to(moment: datetime, amount: Any, unit: Any) -> datetime:
    """``ZonedDateTime.plus(amount, ChronoUnit)``: time units on the instant, date units on the local date."""
    if not isinstance(unit, str):
        raise ExpressionError("The 'dateAdd' filter expects a 'unit' (a ChronoUnit name such as DAYS)")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise ExpressionError("The 'dateAdd' filter expects an integer 'amount'")
    name = unit.upper()
    count = int(amount)
    if name in _TIME_UNITS:
        utc = moment.astimezone(UTC) + _TIME_UNITS[name] * count
        return utc.astimezone(moment.tzinfo)
    if name in _DAY_UNITS:
        local = moment.replace(tzinfo=None) + timedelta(days=_DAY_UNITS[name] * count)
        return _relocalize(local, moment)
    if name in _MONTH_UNITS:
        months = moment.month - 1 + _MONTH_UNITS[name] * count
        year = moment.year + months // 12
        month = months % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        return _relocalize(moment.replace(tzinfo=None, year=year, month=month, day=day), moment)
    raise ExpressionError(f"No enum constant java.time.temporal.ChronoUnit.{unit}")


def _relocalize(local: datetime, original: datetime) -> datetime:
    return local.replace(tzinfo=original.tzinfo)


def epoch(moment: datetime, unit: timedelta) -> int:
    return (moment - EPOCH) // unit


SECOND = timedelta(seconds=1)
MILLI = timedelta(milliseconds=1)
MICRO = timedelta(microseconds=1)
