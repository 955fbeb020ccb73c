"""Flow inputs and flow outputs: typing, validation and error messages with Kestra's semantics (spec §5, §6.1).

Submitted values arrive either as text (multipart form fields), as native JSON/YAML values (Subflow and
trigger ``inputs``, ``defaults`` written in the flow) or as uploaded files. Every value is coerced to the
declared type, checked against the type's constraints, then returned as a JSON-ready value so that the
execution can be stored and rendered without any further conversion:

=====================  ================================================================
type                   stored value
=====================  ================================================================
STRING SELECT ENUM     ``str``
EMAIL URI SECRET       ``str`` (SECRET is returned in clear, see :func:`secret_input_ids`)
INT / FLOAT            ``int`` (32-bit range) / ``float``
BOOLEAN / BOOL         ``bool``
DATETIME               ``"2019-10-06T18:27:49Z"`` (Java ``Instant.toString()``)
DATE / TIME            ``"2019-10-06"`` / ``"18:27:49"``
DURATION               ``"PT5M6S"`` (Java ``Duration.toString()``)
JSON / YAML            the parsed object
ARRAY / MULTISELECT    ``list`` (elements typed by ``itemType``)
FILE                   a ``kestra://`` URI
=====================  ================================================================

Error messages are the ones Kestra prints, because users and tests match on them:
``Invalid input for `<id>`, <reason>, but received `<value>``` where ``<value>`` is printed the way
Java's ``String.valueOf`` would print it.

Nothing here imports Django or Celery: storage and expression rendering are injected.
"""
from __future__ import annotations

import json
import math
import posixpath
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Protocol, Sequence

import yaml

from . import yamlload
from .errors import InputValidationError
from .expressions import _regex as safe_regex
from .expressions._errors import ExpressionError, ExpressionTimeout
from .timeutil import format_duration, parse_duration

__all__ = [
    "FileStore",
    "InputFile",
    "InputResult",
    "INPUT_TYPES",
    "evaluate_inputs",
    "resolve_inputs",
    "validate_definitions",
    "validate_output_definitions",
    "resolve_outputs",
    "render_flow_outputs",
    "typed_value",
    "secret_input_ids",
    "input_id",
    "input_file_uri",
]

Renderer = Callable[[Any, Mapping[str, Any]], Any]

#: Every ``type`` Kestra accepts for an input or a flow output (case-sensitive, like Jackson's enum parsing).
SUPPORTED_TYPES = frozenset({
    "STRING", "ENUM", "SELECT", "INT", "FLOAT", "BOOLEAN", "BOOL", "DATETIME", "DATE", "TIME", "DURATION",
    "FILE", "JSON", "URI", "SECRET", "ARRAY", "MULTISELECT", "YAML", "EMAIL",
})
#: Kestra 2.0 / Enterprise types: accepted in a flow, their value is passed through untouched.
PASS_THROUGH_TYPES = frozenset({"FORM", "REUSABLE_INPUTS", "TABLE", "OBJECT"})
INPUT_TYPES = SUPPORTED_TYPES | PASS_THROUGH_TYPES

ID_PATTERN = r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*"
_ID_RE = re.compile(r"[a-zA-Z0-9][.a-zA-Z0-9_-]*")

#: Kestra's FlowInputOutput.URI_PATTERN: a scheme, a host with a dotted TLD, an optional path.
_URI_RE = re.compile(
    r"[a-z]+://(?:www\.)?[-a-zA-Z0-9@:%._+~#=]{1,256}\.[a-zA-Z0-9()]{1,6}\b(?:[-a-zA-Z0-9()@:%_+.~#?&/=]*)"
)
#: Kestra's EmailInput pattern (the empty string is accepted on purpose).
_EMAIL_RE = re.compile(r"^$|^[a-zA-Z0-9_!#$%&’*+/=?`{|}~^.-]+@[a-zA-Z0-9.-]+$")

_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?\s*")
_INSTANT_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2}(?::\d{2})?)"
)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME_RE = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?")

_INT32_MIN, _INT32_MAX = -(2 ** 31), 2 ** 31 - 1

#: Kestra stores an uploaded file under the input id with this extension when no file name is known.
_DEFAULT_FILE_EXTENSION = ".upl"


# ---------------------------------------------------------------------------------------------------------
# Public data types
# ---------------------------------------------------------------------------------------------------------

class FileStore(Protocol):
    """The part of the internal storage that FILE inputs need."""

    def put_input_file(self, namespace: str, flow_id: str, execution_id: str, input_id: str,
                       filename: str, content: bytes) -> str:
        """Store an uploaded input file and return its ``kestra://`` URI (see :func:`input_file_uri`)."""
        ...

    def exists(self, uri: str) -> bool:
        """Whether a ``kestra://`` URI points to a stored file."""
        ...


@dataclass(frozen=True)
class InputFile:
    """A file uploaded for a FILE input (a multipart part with a file name)."""

    filename: str
    content: bytes


@dataclass
class InputResult:
    """The outcome of one declared input, as the ``…/validate`` endpoints report it (spec §5.4)."""

    id: str
    definition: dict[str, Any]
    value: Any = None
    enabled: bool = True
    is_default: bool = False
    errors: list[str] = field(default_factory=list)


class _Invalid(Exception):
    """A value cannot be accepted; ``reason`` is the middle part of Kestra's message."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Instant(NamedTuple):
    """A UTC instant with nanosecond precision (Python datetimes stop at microseconds)."""

    seconds: int
    nanos: int


class _LocalTime(NamedTuple):
    second_of_day: int
    nanos: int


# ---------------------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------------------

def input_id(definition: Mapping[str, Any]) -> str | None:
    """The id of an input or output definition; ``name`` is the deprecated alias of ``id``."""
    value = definition.get("id")
    if value is None:
        value = definition.get("name")
    return None if value is None else str(value)


def input_file_uri(namespace: str, flow_id: str, execution_id: str, input_id: str, filename: str) -> str:
    """Where Kestra stores an uploaded input file (spec §5.2 FILE)."""
    return (f"kestra:///{namespace.replace('.', '/')}/{flow_id}/executions/{execution_id}"
            f"/inputs/{input_id}/{filename}")


def secret_input_ids(definitions: Iterable[Mapping[str, Any]] | None) -> set[str]:
    """Ids of the SECRET inputs (or outputs): their values are returned in clear and must be masked by the caller."""
    return {
        ident for definition in definitions or () if isinstance(definition, Mapping)
        and definition.get("type") == "SECRET" and (ident := input_id(definition)) is not None
    }


def _java_float(number: float) -> str:
    """``Float.toString``: ``10.0``, ``0.42``, ``1.0E7``, ``1.0E-5``."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    magnitude = abs(number)
    if magnitude == 0 or 1e-3 <= magnitude < 1e7:
        text = repr(float(number))
        return text if ("." in text or "e" in text) else text + ".0"
    sign, digits, exponent = Decimal(repr(float(number))).normalize().as_tuple()
    mantissa = "".join(map(str, digits))
    power = len(digits) - 1 + int(exponent)
    fraction = mantissa[1:] or "0"
    return f"{'-' if sign else ''}{mantissa[0]}.{fraction}E{power}"


def _java_str(value: Any) -> str:
    """Print a value like Java's ``String.valueOf`` (what Kestra puts in ``but received `…```)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _java_float(value)
    if isinstance(value, InputFile):
        return value.filename
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_java_str(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_java_str(k)}={_java_str(v)}" for k, v in value.items()) + "}"
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, datetime):
        return _instant_str(_instant_from_datetime(value))
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value)


def _text(value: Any) -> str:
    """A native value as the text Kestra would see (``toString``); maps and lists become JSON text."""
    if isinstance(value, str):
        return value
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(_json_ready(value), ensure_ascii=False)
    return _java_str(value)


def _json_ready(value: Any) -> Any:
    """Recursively turn YAML/Python natives into JSON-compatible values (dates as ISO text, keys as strings)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, Mapping):
        return {(k if isinstance(k, str) else _java_str(k)): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_ready(v) for v in value]
    if isinstance(value, datetime):
        return _instant_str(_instant_from_datetime(value))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return _local_time_json(_local_time_from_time(value))
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _known_type(type_name: Any) -> bool:
    return isinstance(type_name, str) and type_name in INPUT_TYPES


def _is_expression(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _render_deep(value: Any, render: Renderer | None, context: dict[str, Any]) -> Any:
    """Render every string holding an expression; a lone expression keeps its type (typed rendering)."""
    if _is_expression(value):
        if render is None:
            raise _Invalid(f"unable to render `{value}`: no expression renderer is configured")
        return render(value, context)
    if isinstance(value, Mapping):
        return {k: _render_deep(v, render, context) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_deep(v, render, context) for v in value]
    return value


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Expand dotted ids into nested maps: ``{"a.b": 1}`` → ``{"a": {"b": 1}}``."""
    result: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        target = result
        for part in parts[:-1]:
            child = target.get(part)
            if not isinstance(child, dict):
                child = target[part] = {}
            target = child
        leaf = parts[-1]
        if isinstance(target.get(leaf), dict) and isinstance(value, dict):
            target[leaf] = {**value, **target[leaf]}
        else:
            target[leaf] = value
    return result


def _lookup(submitted: Mapping[str, Any], ident: str) -> Any:
    """The submitted value of an input: by its id, else through nested maps for dotted ids."""
    if ident in submitted:
        return submitted[ident]
    if "." in ident:
        node: Any = submitted
        for part in ident.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node
    return None


def _java_type_name(value: Any) -> str:
    if value is None:
        return "<null>"
    for python_type, java_name in ((bool, "Boolean"), (str, "String"), (int, "Integer"), (float, "Double"),
                                   (Mapping, "LinkedHashMap"), (list, "ArrayList")):
        if isinstance(value, python_type):
            return java_name
    return type(value).__name__


# ---------------------------------------------------------------------------------------------------------
# Temporal values (Java's Instant / LocalDate / LocalTime / Duration printing)
# ---------------------------------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _instant_from_datetime(moment: datetime) -> _Instant:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    return _Instant(seconds, delta.microseconds * 1000)


def _parse_instant(text: str) -> _Instant:
    match = _INSTANT_RE.fullmatch(text)
    if not match:
        raise ValueError(f"Text '{text}' could not be parsed")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7), match.group(8)
    try:
        naive = datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise ValueError(f"Text '{text}' could not be parsed: {exc}") from None
    offset = 0
    if zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        pieces = [int(p) for p in zone[1:].split(":")]
        offset = sign * (pieces[0] * 3600 + pieces[1] * 60 + (pieces[2] if len(pieces) > 2 else 0))
    delta = naive.replace(tzinfo=timezone.utc) - _EPOCH
    seconds = delta.days * 86400 + delta.seconds - offset
    nanos = int((fraction or "0").ljust(9, "0"))
    return _Instant(seconds, nanos)


def _fraction_groups(nanos: int) -> str:
    """Java prints fractions of a second in groups of three digits, omitted when zero."""
    if not nanos:
        return ""
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03d}"
    if nanos % 1_000 == 0:
        return f".{nanos // 1_000:06d}"
    return f".{nanos:09d}"


def _instant_str(instant: _Instant) -> str:
    moment = _EPOCH + timedelta(seconds=instant.seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + _fraction_groups(instant.nanos) + "Z"


def _local_time_from_time(moment: time) -> _LocalTime:
    return _LocalTime(moment.hour * 3600 + moment.minute * 60 + moment.second, moment.microsecond * 1000)


def _parse_local_time(text: str) -> _LocalTime:
    match = _TIME_RE.fullmatch(text)
    if not match:
        raise ValueError(f"Text '{text}' could not be parsed")
    hour, minute = int(match.group(1)), int(match.group(2))
    second = int(match.group(3) or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"Text '{text}' could not be parsed: invalid value")
    nanos = int((match.group(4) or "0").ljust(9, "0"))
    return _LocalTime(hour * 3600 + minute * 60 + second, nanos)


def _local_time_hms(value: _LocalTime) -> tuple[int, int, int]:
    hours, rest = divmod(value.second_of_day, 3600)
    minutes, seconds = divmod(rest, 60)
    return hours, minutes, seconds


def _local_time_java(value: _LocalTime) -> str:
    """``LocalTime.toString()``: ``01:00``, ``01:00:05``, ``01:00:05.100``."""
    hours, minutes, seconds = _local_time_hms(value)
    text = f"{hours:02d}:{minutes:02d}"
    if seconds or value.nanos:
        text += f":{seconds:02d}" + _fraction_groups(value.nanos)
    return text


def _local_time_json(value: _LocalTime) -> str:
    """``HH:mm:ss`` plus the non-zero fraction (Jackson's ISO_LOCAL_TIME)."""
    hours, minutes, seconds = _local_time_hms(value)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    if value.nanos:
        text += "." + f"{value.nanos:09d}".rstrip("0")
    return text


# ---------------------------------------------------------------------------------------------------------
# Coercion (text/native → typed), checks (constraints) and JSON output, per type
# ---------------------------------------------------------------------------------------------------------

@dataclass
class _Files:
    """What a FILE value needs to be stored."""

    store: FileStore | None
    namespace: str
    flow_id: str
    execution_id: str
    #: FILE values coming from ``defaults`` may use ``nsfile://`` / ``file://`` (spec §5.2, Kestra 0.24+)
    from_defaults: bool = False


def _parse_error(type_name: str, value: Any, detail: str) -> _Invalid:
    return _Invalid(f"Expected `{type_name}` but received `{_java_str(value)}` with errors:\n```\n{detail}\n```")


def _coerce_int(value: Any) -> int:
    if isinstance(value, bool) or isinstance(value, float):
        text = _java_str(value)
    elif isinstance(value, int):
        if not _INT32_MIN <= value <= _INT32_MAX:
            raise ValueError(f'For input string: "{value}"')
        return value
    else:
        text = _text(value)
    if not _INT_RE.fullmatch(text):
        raise ValueError(f'For input string: "{text}"')
    number = int(text)
    if not _INT32_MIN <= number <= _INT32_MAX:
        raise ValueError(f'For input string: "{text}" (out of the 32-bit integer range)')
    return number


def _coerce_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f'For input string: "{_java_str(value)}"')
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = _text(value)
        if not _FLOAT_RE.fullmatch(text):
            raise ValueError(f'For input string: "{text}"')
        number = float(text.strip().rstrip("fFdD"))
    if not math.isfinite(number):
        raise ValueError(f'For input string: "{_java_str(value)}" (not a finite number)')
    return number


def _coerce_instant(value: Any) -> _Instant:
    if isinstance(value, datetime):
        return _instant_from_datetime(value)
    if isinstance(value, date):
        raise ValueError(f"Text '{value.isoformat()}' could not be parsed: a DATETIME needs a time and a zone")
    return _parse_instant(_text(value))


def _coerce_date(value: Any) -> date:
    if isinstance(value, datetime):
        raise ValueError(f"Text '{_java_str(value)}' could not be parsed, unparsed text found")
    if isinstance(value, date):
        return value
    text = _text(value)
    if not _DATE_RE.fullmatch(text):
        raise ValueError(f"Text '{text}' could not be parsed")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"Text '{text}' could not be parsed: {exc}") from None


def _coerce_time(value: Any) -> _LocalTime:
    if isinstance(value, time):
        return _local_time_from_time(value)
    return _parse_local_time(_text(value))


def _coerce_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    text = _text(value)
    try:
        return parse_duration(text)
    except ValueError:
        raise ValueError("Text cannot be parsed to a Duration") from None


def _coerce_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return _text(value).lower() == "true"


def _coerce_json(value: Any) -> Any:
    if isinstance(value, (Mapping, list, tuple)) or value is None or isinstance(value, (bool, int, float)):
        return _json_ready(value)
    return _json_ready(json.loads(_text(value)))


def _coerce_yaml(value: Any) -> Any:
    if isinstance(value, (Mapping, list, tuple)) or value is None or isinstance(value, (bool, int, float)):
        return _json_ready(value)
    # the flow-file loader: YAML 1.2 core scalars (dates stay text), duplicate keys refused, like Jackson
    return _json_ready(yamlload.load(_text(value)))


def _as_list(type_name: str, value: Any) -> list[Any]:
    """ARRAY / MULTISELECT: a native list, or JSON text holding one."""
    if isinstance(value, (list, tuple)):
        return list(value)
    try:
        parsed = json.loads(_text(value))
    except ValueError as exc:
        raise _parse_error(type_name, value, str(exc)) from None
    if not isinstance(parsed, list):
        raise _parse_error(type_name, value, f"a JSON array is expected, got {_java_type_name(parsed)}")
    return parsed


def _option_values(definition: Mapping[str, Any], key: str = "values") -> list[str] | None:
    """SELECT/MULTISELECT/ENUM choices as text; entries may be ``{value, label}`` objects [1.x]."""
    raw = definition.get(key)
    if raw is None:
        return None
    if not isinstance(raw, (list, tuple)):
        raw = [raw]
    out = []
    for item in raw:
        if isinstance(item, Mapping) and "value" in item:
            item = item["value"]
        if item is not None:
            out.append(_text(item))
    return out


def _file_extension_allowed(filename: str, allowed: Any) -> bool:
    if not allowed:
        return True
    if isinstance(allowed, str):
        allowed = [allowed]
    name = filename.lower()
    return any(name.endswith("." + str(ext).lower().lstrip(".")) for ext in allowed)


def _check_file_extension(ident: str, filename: str, definition: Mapping[str, Any]) -> None:
    allowed = definition.get("allowedFileExtensions")
    if not _file_extension_allowed(filename, allowed):
        listing = ", ".join(str(e) for e in (allowed if isinstance(allowed, (list, tuple)) else [allowed]))
        raise _Invalid(f"the file extension must be one of `[{listing}]`")


def _coerce_file(ident: str, value: Any, definition: Mapping[str, Any], files: _Files | None) -> str:
    if isinstance(value, InputFile):
        if files is None or files.store is None:
            raise _parse_error("FILE", value, "no file storage is available to store the uploaded file")
        filename = posixpath.basename(value.filename.replace("\\", "/")) if value.filename else ""
        if not filename or filename in (".", ".."):
            extension = str(definition.get("extension") or _DEFAULT_FILE_EXTENSION)
            filename = ident + (extension if extension.startswith(".") else "." + extension)
        _check_file_extension(ident, filename, definition)
        return files.store.put_input_file(files.namespace, files.flow_id, files.execution_id, ident,
                                          filename, value.content)
    text = _text(value)
    if text.startswith("kestra://"):
        if files is not None and files.store is not None and not files.store.exists(text):
            raise _parse_error("FILE", value, f"the file `{text}` does not exist in the internal storage")
        _check_file_extension(ident, text.rsplit("/", 1)[-1], definition)
        return text
    if files is not None and files.from_defaults and text.startswith(("nsfile://", "file://")):
        return text
    raise _parse_error("FILE", value, "a file upload or a `kestra://` URI is expected")


def _coerce(type_name: str, ident: str, value: Any, definition: Mapping[str, Any], files: _Files | None) -> Any:
    """Turn a submitted value into the internal typed value, or raise :class:`_Invalid`."""
    if isinstance(value, InputFile) and type_name != "FILE":
        raise _parse_error(type_name, value, "a file upload is only accepted by FILE inputs")
    try:
        if type_name in ("STRING", "ENUM", "SELECT", "EMAIL", "SECRET"):
            return _text(value)
        if type_name == "URI":
            text = _text(value)
            if not _URI_RE.fullmatch(text):
                raise _Invalid(f"Expected `URI` but received `{text}`")
            return text
        if type_name == "INT":
            return _coerce_int(value)
        if type_name == "FLOAT":
            return _coerce_float(value)
        if type_name in ("BOOLEAN", "BOOL"):
            return _coerce_bool(value)
        if type_name == "DATETIME":
            return _coerce_instant(value)
        if type_name == "DATE":
            return _coerce_date(value)
        if type_name == "TIME":
            return _coerce_time(value)
        if type_name == "DURATION":
            return _coerce_duration(value)
        if type_name == "JSON":
            return _coerce_json(value)
        if type_name == "YAML":
            return _coerce_yaml(value)
        if type_name == "FILE":
            return _coerce_file(ident, value, definition, files)
        if type_name in ("ARRAY", "MULTISELECT"):
            default_item = "STRING" if type_name == "MULTISELECT" else None
            item_type = definition.get("itemType") or default_item
            elements = _as_list(type_name, value)
            if item_type is None:
                return [_json_ready(element) for element in elements]
            if not isinstance(item_type, str) or item_type not in SUPPORTED_TYPES \
                    or item_type in ("ARRAY", "MULTISELECT"):
                raise _Invalid(f"`itemType` cannot be `{item_type}`")
            item_definition = {"id": ident, "type": item_type}
            typed = []
            for element in elements:
                try:
                    typed.append(_to_json(item_type, _coerce(item_type, ident, element, item_definition, files)))
                except _Invalid:
                    raise _Invalid(
                        f"Unable to parse array element as `{item_type}` on `{_java_str(element)}`") from None
            return typed
        if type_name in PASS_THROUGH_TYPES:
            return _json_ready(value)
    except _Invalid:
        raise
    except (ValueError, TypeError, yaml.YAMLError, yamlload.YamlError) as exc:
        raise _parse_error(type_name, value, str(exc)) from None
    raise _Invalid(f"Invalid type: {type_name}")


def _to_json(type_name: str, typed: Any) -> Any:
    if isinstance(typed, _Instant):
        return _instant_str(typed)
    if isinstance(typed, _LocalTime):
        return _local_time_json(typed)
    if isinstance(typed, timedelta):
        return format_duration(typed)
    if isinstance(typed, date):
        return typed.isoformat()
    return typed


def _bound(type_name: str, definition: Mapping[str, Any], key: str) -> Any:
    """A ``min``/``max``/``after``/``before`` bound, parsed with the input's own type."""
    raw = definition.get(key)
    if raw is None:
        return None
    try:
        if type_name == "INT":
            return _coerce_int(raw)
        if type_name == "FLOAT":
            return _coerce_float(raw)
        if type_name == "DATETIME":
            return _coerce_instant(raw)
        if type_name == "DATE":
            return _coerce_date(raw)
        if type_name == "TIME":
            return _coerce_time(raw)
        if type_name == "DURATION":
            return _coerce_duration(raw)
    except ValueError as exc:
        raise _Invalid(f"invalid `{key}` value `{_java_str(raw)}`: {exc}") from None
    return raw


def _bound_str(bound: Any) -> str:
    """Print a bound like Java's ``toString`` of the typed bound."""
    if isinstance(bound, _Instant):
        return _instant_str(bound)
    if isinstance(bound, _LocalTime):
        return _local_time_java(bound)
    if isinstance(bound, timedelta):
        return format_duration(bound)
    return _java_str(bound)


def _compile_validator(pattern: Any) -> Any:
    try:
        return safe_regex.compile_regex(str(pattern))
    except ExpressionError as exc:
        raise _Invalid(f"the validator pattern `{pattern}` is not a valid regular expression: {exc}") from None


def _matches_validator(pattern: Any, text: str) -> bool:
    """A REGEX validator under a timeout, so that a catastrophic pattern cannot freeze the caller."""
    _compile_validator(pattern)
    try:
        return bool(safe_regex.fullmatch(str(pattern), text))
    except ExpressionTimeout:
        raise _Invalid(f"the validator pattern `{pattern}` took longer than {safe_regex.DEFAULT_TIMEOUT:g} s "
                       "to match") from None


def _check(type_name: str, typed: Any, definition: Mapping[str, Any], required: bool) -> None:
    """Apply the per-type constraints of spec §5.2 to a coerced value."""
    if type_name in ("STRING", "SECRET"):
        validator = definition.get("validator")
        if validator is not None and not _matches_validator(validator, typed):
            raise _Invalid(f"it must match the pattern `{validator}`")
    elif type_name in ("INT", "FLOAT"):
        low, high = _bound(type_name, definition, "min"), _bound(type_name, definition, "max")
        if low is not None and typed < low:
            raise _Invalid(f"it must be more than `{_bound_str(low)}`")
        if high is not None and typed > high:
            raise _Invalid(f"it must be less than `{_bound_str(high)}`")
    elif type_name == "DURATION":
        low, high = _bound(type_name, definition, "min"), _bound(type_name, definition, "max")
        if low is not None and typed < low:
            raise _Invalid(f"It must be more than `{_bound_str(low)}`")
        if high is not None and typed > high:
            raise _Invalid(f"It must be less than `{_bound_str(high)}`")
    elif type_name in ("DATETIME", "DATE", "TIME"):
        after, before = _bound(type_name, definition, "after"), _bound(type_name, definition, "before")
        if after is not None and typed < after:
            raise _Invalid(f"it must be after `{_bound_str(after)}`")
        if before is not None and typed > before:
            raise _Invalid(f"it must be before `{_bound_str(before)}`")
    elif type_name in ("SELECT", "ENUM"):
        # Kestra only enforces the choices of a *required* SELECT/ENUM (``!values.contains(x) & required``).
        values = _option_values(definition) or []
        if required and typed not in values and not definition.get("allowCustomValue"):
            raise _Invalid(f"it must match the values `[{', '.join(values)}]`")
    elif type_name == "MULTISELECT":
        options = _option_values(definition)
        if options is None:
            options = _option_values(definition, "options")
        if options is not None and not definition.get("allowCustomValue"):
            for element in typed:
                if _java_str(element) not in options:
                    raise _Invalid(f"it must match the values `[{', '.join(options)}]`")
    elif type_name == "EMAIL":
        if not _EMAIL_RE.fullmatch(typed):
            raise _Invalid("The input must be a valid email")


def _message(ident: str, reason: str, value: Any, noun: str = "input") -> str:
    return f"Invalid {noun} for `{ident}`, {reason}, but received `{_java_str(value)}`"


def typed_value(type_name: str, value: Any, definition: Mapping[str, Any], *, files: FileStore | None = None,
                namespace: str = "", flow_id: str = "", execution_id: str = "") -> Any:
    """Coerce and validate one value for an input definition and return it JSON-ready.

    Shared by execution creation, Pause ``onResume`` inputs and trigger inputs so that a value is typed the
    same way everywhere. ``None`` is returned as ``None`` (required-ness is the caller's concern).
    Raises :class:`InputValidationError` with Kestra's message on failure.
    """
    if value is None:
        return None
    ident = input_id(definition) or ""
    required = definition.get("required", True) is not False
    try:
        typed = _coerce(type_name, ident, value, definition,
                        _Files(files, namespace, flow_id, execution_id))
        _check(type_name, typed, definition, required)
        return _to_json(type_name, typed)
    except _Invalid as exc:
        raise InputValidationError([(ident, _message(ident, exc.reason, value))]) from None


# ---------------------------------------------------------------------------------------------------------
# Execution inputs
# ---------------------------------------------------------------------------------------------------------

class _Resolver:
    """Resolve every declared input once, dependencies first (spec §5.3)."""

    def __init__(self, definitions: Sequence[Mapping[str, Any]], submitted: Mapping[str, Any], render: Renderer | None,
                 context: Mapping[str, Any] | None, files: _Files, raw: bool):
        self.render = render
        self.context = dict(context or {})
        self.submitted = submitted
        self.files = files
        self.raw = raw
        self.definitions: dict[str, dict[str, Any]] = {}
        for definition in definitions or ():
            if not isinstance(definition, Mapping):
                continue
            ident = input_id(definition)
            if ident is not None and ident not in self.definitions:  # first declaration wins, like Kestra
                self.definitions[ident] = dict(definition)
        self.results: dict[str, InputResult] = {}
        self._visiting: list[str] = []

    def run(self) -> list[InputResult]:
        for ident in self.definitions:
            self.resolve(ident)
        return [self.results[ident] for ident in self.definitions]

    def _render_context(self) -> dict[str, Any]:
        # Like Kestra, inputs that have ``defaults`` but are not resolved (yet) are visible as null, so that
        # ``{{ inputs.other ?? 'x' }}`` does not fail on an undefined variable.
        resolved: dict[str, Any] = {ident: None for ident, definition in self.definitions.items()
                                    if definition.get("defaults") is not None}
        resolved.update({ident: r.value for ident, r in self.results.items() if r.enabled and not r.errors})
        base_inputs = self.context.get("inputs")
        inputs = _nest(resolved)
        if isinstance(base_inputs, Mapping):
            inputs = {**base_inputs, **inputs}
        return {**self.context, "inputs": inputs}

    def resolve(self, ident: str) -> InputResult:
        if ident in self.results:
            return self.results[ident]
        definition = self.definitions[ident]
        result = InputResult(id=ident, definition=definition)
        self._visiting.append(ident)
        try:
            self._resolve_into(result, definition)
        finally:
            self._visiting.pop()
        self.results[ident] = result
        return result

    def _resolve_into(self, result: InputResult, definition: dict[str, Any]) -> None:
        ident = result.id
        type_name = definition.get("type")
        required = definition.get("required", True) is not False

        # 1. dependencies first; the input is enabled only if they all are and the condition is exactly true
        depends_on = definition.get("dependsOn") or {}
        dependencies = depends_on.get("inputs") if isinstance(depends_on, Mapping) else None
        for dependency in dependencies or ():
            dependency = str(dependency)
            if dependency == ident or dependency not in self.definitions:
                continue  # unknown dependencies are reported by validate_definitions, ignored here like Kestra
            if dependency in self._visiting:
                cycle = self._visiting[self._visiting.index(dependency):]
                result.errors.append(
                    f"Cycle dependency detected for input with id '{dependency}': [{', '.join(cycle)}]")
                result.enabled = False
                return
            if not self.resolve(dependency).enabled:
                result.enabled = False
                return
        condition = depends_on.get("condition") if isinstance(depends_on, Mapping) else None
        if condition is not None:
            try:
                outcome = _render_deep(condition, self.render, self._render_context())
            except _Invalid as exc:
                result.errors.append(f"Invalid condition: {exc.reason}")
                result.enabled = False
                return
            except Exception as exc:  # noqa: BLE001 - the renderer's own errors (undefined variable, syntax...)
                result.errors.append(f"Invalid condition: {exc}")
                result.enabled = False
                return
            if not (outcome is True or (isinstance(outcome, str) and outcome.strip().lower() == "true")):
                result.enabled = False
                return

        # 2. dynamic choices of SELECT / MULTISELECT
        if type_name in ("SELECT", "MULTISELECT") and definition.get("expression") is not None:
            expression = definition["expression"]
            try:
                choices = _render_deep(expression, self.render, self._render_context())
            except _Invalid as exc:
                result.errors.append(_message(ident, f"Cannot render 'expression'. Cause: {exc.reason}", expression))
                return
            except Exception as exc:  # noqa: BLE001 - any render error is the input's error
                result.errors.append(_message(ident, f"Cannot render 'expression'. Cause: {exc}", expression))
                return
            if not isinstance(choices, (list, tuple)):
                result.errors.append(_message(
                    ident, "Invalid expression result. Expected a list of strings, but received "
                    + _java_type_name(choices), choices))
                return
            definition = {**definition, "values": [_text(c) for c in choices if c is not None]}
            definition.pop("options", None)
            result.definition = definition

        # 3. the submitted value, else the (rendered) defaults
        value = _lookup(self.submitted, ident)
        from_defaults = False
        if value is None:
            default = definition.get("defaults")
            if default is None and definition.get("autoSelectFirst") and type_name in ("SELECT", "MULTISELECT"):
                choices = _option_values(definition) or _option_values(definition, "options") or []
                if choices:
                    default = choices[0] if type_name == "SELECT" else [choices[0]]
            if default is not None:
                from_defaults = True
                result.is_default = True
                try:
                    value = _render_deep(default, self.render, self._render_context())
                except _Invalid as exc:
                    result.errors.append(_message(ident, f"Unable to render `defaults`: {exc.reason}", default))
                    return
                except Exception as exc:  # noqa: BLE001 - any render error is the input's error
                    result.errors.append(_message(ident, f"Unable to render `defaults`: {exc}", default))
                    return

        # 4. required / optional
        if value is None:
            if required:
                result.errors.append(_message(ident, "missing required input", None))
            return

        # 5. parse and validate (a raw, already typed, submitted value is kept as is)
        if self.raw and not from_defaults and not isinstance(value, InputFile):
            result.value = _json_ready(value)
            return
        if not _known_type(type_name):
            result.errors.append(_message(ident, f"Invalid type: {_java_str(type_name)}", value))
            return
        files = _Files(self.files.store, self.files.namespace, self.files.flow_id, self.files.execution_id,
                       from_defaults=from_defaults)
        try:
            typed = _coerce(str(type_name), ident, value, definition, files)
            if isinstance(value, InputFile) and isinstance(typed, str):
                value = typed  # Kestra reports the stored URI, not the upload
            _check(str(type_name), typed, definition, required)
        except _Invalid as exc:
            result.errors.append(_message(ident, exc.reason, value))
            return
        result.value = _to_json(str(type_name), typed)


def evaluate_inputs(definitions: list[dict[str, Any]], submitted: Mapping[str, Any] | None, *, render: Renderer | None = None,
                    context: dict[str, Any] | None = None, files: FileStore | None = None, namespace: str = "",
                    flow_id: str = "", execution_id: str = "", raw: bool = False) -> list[InputResult]:
    """Resolve each declared input and report value, enabled flag, default use and errors, without raising.

    This is what ``POST …/validate`` shows; :func:`resolve_inputs` builds on it.
    """
    resolver = _Resolver(definitions, submitted or {}, render, context,
                         _Files(files, namespace, flow_id, execution_id), raw)
    return resolver.run()


def resolve_inputs(definitions: list[dict[str, Any]], submitted: dict[str, Any] | None, *, render: Renderer | None = None,
                   context: dict[str, Any] | None = None, files: FileStore | None = None, namespace: str = "",
                   flow_id: str = "", execution_id: str = "", raw: bool = False) -> dict[str, Any]:
    """Type and validate an execution's inputs; return them nested by dotted id, JSON-ready.

    Steps (spec §5.3):

    1. For each declared input in order, resolve its ``dependsOn`` inputs first; the input is enabled
       only when they all are and its ``condition`` renders exactly ``true``. Disabled inputs are absent.
    2. SELECT/MULTISELECT ``expression`` is rendered to get the allowed ``values``.
    3. value = submitted value, else ``defaults`` (expressions rendered with ``inputs`` resolved so far).
    4. No value: required → "missing required input"; optional → the key is present with ``None``.
    5. Otherwise coerce to the type and check its constraints.
    6. Every error is collected; if any, one :class:`InputValidationError` lists them all.

    Submitted keys that are not declared are ignored, except with ``raw=True`` where the submitted map is
    an already typed map (a test or an internal caller injecting values): those values are kept untouched,
    undeclared keys included, while defaults and required inputs are still applied.
    """
    results = evaluate_inputs(definitions, submitted, render=render, context=context, files=files,
                              namespace=namespace, flow_id=flow_id, execution_id=execution_id, raw=raw)
    errors = [(result.id, message) for result in results for message in result.errors]
    if errors:
        raise InputValidationError(errors)
    flat: dict[str, Any] = {}
    if raw:
        declared = {result.id for result in results}
        flat.update({str(k): _json_ready(v) for k, v in (submitted or {}).items()
                     if k not in declared and not isinstance(v, InputFile)})
    flat.update({result.id: result.value for result in results if result.enabled})
    return _nest(flat)


# ---------------------------------------------------------------------------------------------------------
# Flow outputs (spec §6.1)
# ---------------------------------------------------------------------------------------------------------

def resolve_outputs(definitions: list[dict[str, Any]] | None, rendered: Mapping[str, Any]) -> dict[str, Any]:
    """Coerce rendered flow output values with the input type parser; FILE values must be ``kestra://`` URIs.

    An output whose value is ``None`` is kept as ``None`` when ``required: false`` and is an error otherwise
    (``required`` defaults to true). SECRET values are returned in clear: see :func:`secret_input_ids`.
    """
    outputs: dict[str, Any] = {}
    errors: list[tuple[str, str]] = []
    for definition in definitions or ():
        ident = input_id(definition)
        if ident is None:
            continue
        value = rendered.get(ident)
        type_name = definition.get("type")
        if value is None:
            if definition.get("required", True) is False:
                outputs[ident] = None
            else:
                errors.append((ident, _message(ident, "missing required output", None, "output")))
            continue
        if type_name is None:
            outputs[ident] = _json_ready(value)
            continue
        if not _known_type(type_name):
            errors.append((ident, _message(ident, f"Invalid type: {_java_str(type_name)}", value, "output")))
            continue
        try:
            outputs[ident] = _to_json(type_name, _coerce(type_name, ident, value, definition,
                                                         _Files(None, "", "", "")))
        except _Invalid as exc:
            errors.append((ident, _message(ident, exc.reason, value, "output")))
    if errors:
        raise InputValidationError(errors)
    return outputs


def render_flow_outputs(definitions: list[dict[str, Any]] | None, render: Renderer, context: dict[str, Any]) -> dict[str, Any]:
    """Render each output ``value`` (typed rendering), then coerce it with :func:`resolve_outputs`.

    Render failures and type failures are reported together in one :class:`InputValidationError`; the
    executor then fails the execution with "Failed to render output values".
    """
    rendered: dict[str, Any] = {}
    errors: list[tuple[str, str]] = []
    for definition in definitions or ():
        ident = input_id(definition)
        if ident is None:
            continue
        raw_value = definition.get("value")
        try:
            rendered[ident] = _render_deep(raw_value, render, context)
        except _Invalid as exc:
            errors.append((ident, _message(ident, exc.reason, raw_value, "output")))
        except Exception as exc:  # noqa: BLE001 - the renderer's own errors
            errors.append((ident, _message(ident, f"Unable to render value: {exc}", raw_value, "output")))
    try:
        outputs = resolve_outputs([d for d in definitions or () if input_id(d) in rendered], rendered)
    except InputValidationError as exc:
        errors.extend(exc.errors)
        outputs = {}
    if errors:
        order = [input_id(d) for d in definitions or ()]
        errors.sort(key=lambda e: order.index(e[0]) if e[0] in order else len(order))
        raise InputValidationError(errors)
    return outputs


# ---------------------------------------------------------------------------------------------------------
# Flow-level validation of the definitions (when a flow is saved)
# ---------------------------------------------------------------------------------------------------------

def _duplicates(ids: list[str]) -> list[str]:
    seen: set[str] = set()
    duplicated: list[str] = []
    for ident in ids:
        if ident in seen and ident not in duplicated:
            duplicated.append(ident)
        seen.add(ident)
    return [ident for ident in dict.fromkeys(ids) if ident in duplicated]


def _find_cycle(start: str, graph: Mapping[str, list[str]]) -> list[str] | None:
    """Depth-first search from ``start``; the returned path is the cycle reached, as Kestra prints it."""
    visiting: set[str] = set()
    visited: set[str] = set()
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        if node in visiting:
            return path[path.index(node):]
        if node in visited:
            return None
        visiting.add(node)
        path.append(node)
        for dependency in graph.get(node, ()):
            cycle = walk(dependency)
            if cycle is not None:
                return cycle
        visiting.discard(node)
        visited.add(node)
        path.pop()
        return None

    return walk(start)


def _type_list() -> str:
    return "[" + ", ".join(sorted(INPUT_TYPES)) + "]"


def _check_common(index: int, definition: Any, kind: str) -> tuple[str | None, list[tuple[str, str]]]:
    """Id and type rules shared by inputs and outputs; returns the id (if usable) and the violations."""
    if not isinstance(definition, Mapping):
        return None, [(f"{kind}[{index}]", "must be an object with an `id` and a `type`")]
    violations: list[tuple[str, str]] = []
    ident = input_id(definition)
    if ident is None:
        violations.append((f"{kind}[{index}].id", "must not be null"))
    elif not _ID_RE.fullmatch(ident):
        violations.append((f"{kind}[{index}].id", f'must match "{ID_PATTERN}"'))
    type_name = definition.get("type")
    if type_name is None:
        violations.append((f"{kind}[{index}].type", "Invalid type: null"))
    elif not _known_type(type_name):
        violations.append((f"{kind}[{index}].type",
                           f"Invalid type: {_java_str(type_name)}, must be one of {_type_list()}"))
    display_name = definition.get("displayName")
    if display_name is not None and len(str(display_name)) > 64:
        violations.append((ident or f"{kind}[{index}]", "`displayName` size must be between 0 and 64"))
    return ident, violations


def validate_definitions(definitions: list[dict[str, Any]] | None) -> list[tuple[str, str]]:
    """Flow-level rules on ``inputs:`` (spec §5.1/§5.2), as ``(path, message)`` pairs; empty when valid.

    Per-input rules use the input id as path (Kestra prints them as ``id: message``); id/type shape rules
    use ``inputs[i].id`` / ``inputs[i].type``; rules across inputs use ``inputs``.
    """
    if definitions is None:
        return []
    if not isinstance(definitions, list):
        return [("inputs", "must be a list of inputs")]
    violations: list[tuple[str, str]] = []
    ids: list[str] = []
    for index, definition in enumerate(definitions):
        ident, common = _check_common(index, definition, "inputs")
        violations.extend(common)
        if ident is None:
            continue
        ids.append(ident)
        violations.extend((ident, message) for message in _definition_rules(definition))

    duplicated = _duplicates(ids)
    if duplicated:
        violations.append(("inputs", f"Duplicate input with name [{', '.join(duplicated)}]"))

    graph: dict[str, list[str]] = {}
    for definition in definitions:
        ident = input_id(definition) if isinstance(definition, Mapping) else None
        if ident is None:
            continue
        graph.setdefault(ident, [])
        depends_on = definition.get("dependsOn")
        if isinstance(depends_on, Mapping) and isinstance(depends_on.get("inputs"), list):
            graph[ident].extend(str(d) for d in depends_on["inputs"])
    for ident, dependencies in graph.items():
        for dependency in dependencies:
            if dependency not in graph:
                violations.append(
                    ("inputs", f"Input with id '{ident}' depends on a non-existent input '{dependency}'."))
        cycle = _find_cycle(ident, graph)
        if cycle is not None:
            violations.append(
                ("inputs", f"Cycle dependency detected for input with id '{ident}': [{', '.join(cycle)}]"))
    return violations


def _definition_rules(definition: Mapping[str, Any]) -> list[str]:
    """Type-specific rules of one input definition."""
    messages: list[str] = []
    type_name = definition.get("type")
    if type_name in ("STRING", "SECRET") and definition.get("validator") is not None:
        try:
            _compile_validator(definition["validator"])
        except _Invalid as exc:
            messages.append(exc.reason)
    if type_name == "ARRAY":
        item_type = definition.get("itemType")
        if item_type is None:
            messages.append("`itemType` must not be null")
        elif item_type == "ARRAY":
            messages.append("`itemType` cannot be `ARRAY`")
        elif item_type not in SUPPORTED_TYPES:
            messages.append(f"Invalid type: {item_type}, must be one of {_type_list()}")
    if type_name == "MULTISELECT":
        item_type = definition.get("itemType")
        if item_type in ("ARRAY", "MULTISELECT"):
            messages.append(f"`itemType` cannot be `{item_type}`")
        elif item_type is not None and item_type not in SUPPORTED_TYPES:
            messages.append(f"Invalid type: {item_type}, must be one of {_type_list()}")
        if definition.get("values") is not None and definition.get("options") is not None:
            messages.append("you can't define both `values` and `options`")
        if all(definition.get(k) is None for k in ("values", "options", "expression")):
            messages.append("one of `values`, `options` or `expression` must be set")
    if type_name == "SELECT" and definition.get("values") is None and definition.get("expression") is None:
        messages.append("one of `values` or `expression` must be set")
    if type_name == "ENUM" and definition.get("values") is None:
        messages.append("`values` must not be null")
    if type_name == "FILE":
        default = definition.get("defaults")
        if default is not None and not (isinstance(default, str) and (
                default.startswith(("nsfile:///", "file:///")) or _is_expression(default))):
            messages.append("no `defaults` can be set for inputs of type 'FILE'")
    if definition.get("prefill") is not None and definition.get("defaults") is not None:
        messages.append("`prefill` cannot be combined with `defaults`")
    if type_name in ("INT", "FLOAT", "DURATION", "DATETIME", "DATE", "TIME"):
        keys = ("min", "max") if type_name in ("INT", "FLOAT", "DURATION") else ("after", "before")
        for key in keys:
            try:
                _bound(type_name, definition, key)
            except _Invalid as exc:
                messages.append(exc.reason)
    depends_on = definition.get("dependsOn")
    if depends_on is not None:
        if not isinstance(depends_on, Mapping):
            messages.append("`dependsOn` must be an object with `inputs` and `condition`")
        elif depends_on.get("inputs") is not None and not isinstance(depends_on.get("inputs"), list):
            messages.append("`dependsOn.inputs` must be a list of input ids")
    return messages


def validate_output_definitions(definitions: list[dict[str, Any]] | None) -> list[tuple[str, str]]:
    """Flow-level rules on ``outputs:`` (spec §6.1): id pattern, known type, a ``value``, unique ids."""
    if definitions is None:
        return []
    if not isinstance(definitions, list):
        return [("outputs", "must be a list of outputs")]
    violations: list[tuple[str, str]] = []
    ids: list[str] = []
    for index, definition in enumerate(definitions):
        ident, common = _check_common(index, definition, "outputs")
        violations.extend(common)
        if ident is None:
            continue
        ids.append(ident)
        if "value" not in definition:
            violations.append((ident, "`value` must not be null"))
    duplicated = _duplicates(ids)
    if duplicated:
        violations.append(("outputs", f"Duplicate output with name [{', '.join(duplicated)}]"))
    return violations


#: Java's String.valueOf rendering of a value (``[a, null]``, ``{k=v}``), for Kestra-worded messages.
java_str = _java_str
