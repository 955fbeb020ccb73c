"""Pebble and Kestra filters (``value | name(args)``), with Pebble's argument names and null handling.

Most filters return null for a null input, as Pebble's do, so that ``{{ x | upper }}`` with a null
``x`` prints nothing instead of failing.
"""
from __future__ import annotations

import base64
import hashlib
import html
import re
import unicodedata
from collections.abc import Mapping, Set
from datetime import datetime
from typing import Any, Callable
from urllib.parse import quote_plus, unquote_plus

import yaml as yaml_module

from . import _dates
from ._errors import ExpressionError, ExpressionTimeout
from ._jq import JqFailure, run_jq
from ._numbers import decimal_format, default_number_format, java_format, number_string, parse_number
from . import _regex, _runtime
from ._runtime import check_collection, check_size, equals, is_empty, remaining_budget
from ._values import class_name, is_number, java_str, to_json, to_plain

Filter = Callable[..., Any]
FILTERS: dict[str, Filter] = {}


def pebble_filter(*names: str) -> Callable[[Filter], Filter]:
    def register(function: Filter) -> Filter:
        for name in names:
            FILTERS[name] = function
        return function
    return register


def _text(value: Any) -> str:
    return value if isinstance(value, str) else java_str(value)


def _require_int(value: Any, filter_name: str, argument: str) -> int:
    if not is_number(value):
        raise ExpressionError(f"The '{filter_name}' filter expects a number as argument '{argument}'.")
    return int(value)


# --- strings ------------------------------------------------------------------------------------

@pebble_filter("abbreviate")
def abbreviate(value: Any, length: Any = None) -> Any:
    if value is None:
        return None
    text = _text(value)
    width = _require_int(length, "abbreviate", "length")
    if width < 0:
        raise ExpressionError("Invalid argument to abbreviate filter; must be greater than zero")
    if len(text) < width or len(text) <= 3:
        return text
    if width <= 3:
        return text[:width]
    return text[:width - 3] + "..."


@pebble_filter("capitalize")
def capitalize(value: Any) -> Any:
    if value is None:
        return None
    text = _text(value)
    for index, char in enumerate(text):
        if not char.isspace():
            return text[:index] + char.title() + text[index + 1:]
    return text


@pebble_filter("title")
def title(value: Any) -> Any:
    if value is None:
        return None
    out = []
    upper_next = True
    for char in _text(value):
        if char.isspace():
            upper_next = True
        elif upper_next:
            char = char.title()
            upper_next = False
        out.append(char)
    return "".join(out)


@pebble_filter("upper")
def upper(value: Any) -> Any:
    return None if value is None else _text(value).upper()


@pebble_filter("lower")
def lower(value: Any) -> Any:
    return None if value is None else _text(value).lower()


_JAVA_TRIM = "".join(chr(code) for code in range(33))


@pebble_filter("trim")
def trim(value: Any) -> Any:
    return None if value is None else _text(value).strip(_JAVA_TRIM)


def _java_replacement(replacement: str) -> Callable[[Any], str]:
    """Java's ``$1`` / ``${name}`` / ``\\$`` replacement syntax."""
    def expand(match: Any) -> str:
        out = []
        index = 0
        while index < len(replacement):
            char = replacement[index]
            if char == "\\" and index + 1 < len(replacement):
                out.append(replacement[index + 1])
                index += 2
            elif char == "$" and index + 1 < len(replacement):
                if replacement[index + 1] == "{":
                    end = replacement.index("}", index)
                    out.append(match.group(replacement[index + 2:end]) or "")
                    index = end + 1
                else:
                    end = index + 1
                    while end < len(replacement) and replacement[end].isdigit():
                        end += 1
                    if end == index + 1:
                        raise ExpressionError("Illegal group reference in replacement")
                    out.append(match.group(int(replacement[index + 1:end])) or "")
                    index = end
            else:
                out.append(char)
                index += 1
        return "".join(out)
    return expand


def _replace_text(text: str, pairs: Mapping[Any, Any], regexp: bool) -> str:
    for key, replacement in pairs.items():
        if regexp:
            text = _regex.sub(java_str(key), _java_replacement(java_str(replacement)), text, remaining_budget())
        else:
            text = text.replace(java_str(key), java_str(replacement))
        check_size(text)
    return text


def _deep(value: Any, apply: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return apply(value)
    if isinstance(value, Mapping):
        return {k: _deep(v, apply) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_deep(v, apply) for v in value]
    return apply(java_str(value))


@pebble_filter("replace")
def replace(value: Any, replace_pairs: Any = None, regexp: Any = False) -> Any:
    if value is None:
        return None
    if replace_pairs is None:
        raise ExpressionError("The argument 'replace_pairs' is required.")
    if not isinstance(replace_pairs, Mapping):
        raise ExpressionError("The 'replace' filter expects a map of replacements, e.g. replace({'a': 'b'})")
    return _deep(value, lambda text: _replace_text(text, replace_pairs, bool(regexp)))


def java_split(text: str, pattern: str, limit: int = 0) -> list[str]:
    """``String.split(regex, limit)``: trailing empty strings dropped when limit is 0."""
    if text == "":
        return [""]
    if len(pattern) == 1 and pattern not in ".$|()[{^?*+\\":
        parts = text.split(pattern, limit - 1) if limit > 0 else text.split(pattern)
    else:
        parts = []
        position = 0
        for match in _regex.finditer(pattern, text, remaining_budget()):
            if limit > 0 and len(parts) == limit - 1:
                break
            if match.end() == 0:
                continue
            if match.start() == match.end() and match.start() >= len(text):
                break
            parts.append(text[position:match.start()])
            position = match.end()
        parts.append(text[position:])
    if limit == 0:
        while parts and parts[-1] == "" and len(parts) > 0:
            parts.pop()
        if not parts:
            return [] if text else [""]
    return parts


@pebble_filter("split")
def split(value: Any, delimiter: Any = None, limit: Any = None) -> Any:
    if value is None:
        return None
    if delimiter is None:
        raise ExpressionError("missing delimiter parameter in split filter")
    return java_split(_text(value), java_str(delimiter), 0 if limit is None else int(limit))


@pebble_filter("slice")
def slice_(value: Any, fromIndex: Any = None, toIndex: Any = None) -> Any:  # noqa: N803 - Pebble names
    if value is None:
        return None
    start = 0 if fromIndex is None else _require_int(fromIndex, "slice", "fromIndex")
    if start < 0:
        raise ExpressionError("fromIndex must be greater than 0")
    if isinstance(value, (list, tuple)):
        length = len(value)
    elif isinstance(value, str):
        length = len(value)
    else:
        raise ExpressionError("Slice filter can only be applied to String, List and array inputs. "
                              f"Actual type was: {class_name(value)}")
    if toIndex is None:
        end = length
    else:
        end = _require_int(toIndex, "slice", "toIndex")
        if end > length:
            raise ExpressionError(f"toIndex must be smaller than input size: {length}")
        if start >= end:
            raise ExpressionError("toIndex must be greater than fromIndex")
    result = value[start:end]
    return list(result) if isinstance(result, tuple) else result


def _substring(value: Any, separator: Any, last: bool, after: bool) -> Any:
    if value is None:
        return None
    text = _text(value)
    if separator is None:
        return "" if after else text
    sep = java_str(separator)
    if sep == "":
        return (text if not last else "") if after else ("" if not last else text)
    position = text.rfind(sep) if last else text.find(sep)
    if position < 0:
        return "" if after else text
    return text[position + len(sep):] if after else text[:position]


@pebble_filter("substringBefore")
def substring_before(value: Any, separator: Any = None) -> Any:
    return _substring(value, separator, last=False, after=False)


@pebble_filter("substringBeforeLast")
def substring_before_last(value: Any, separator: Any = None) -> Any:
    return _substring(value, separator, last=True, after=False)


@pebble_filter("substringAfter")
def substring_after(value: Any, separator: Any = None) -> Any:
    return _substring(value, separator, last=False, after=True)


@pebble_filter("substringAfterLast")
def substring_after_last(value: Any, separator: Any = None) -> Any:
    return _substring(value, separator, last=True, after=True)


@pebble_filter("startsWith")
def starts_with(value: Any, prefix: Any = None) -> bool:
    if value is None or prefix is None:
        return False
    return _text(value).startswith(java_str(prefix))


@pebble_filter("endsWith")
def ends_with(value: Any, suffix: Any = None) -> bool:
    if value is None or suffix is None:
        return False
    return _text(value).endswith(java_str(suffix))


_SLUG_NON_LATIN = re.compile(r"[^\w-]", re.ASCII)
_SLUG_SPACE = re.compile(r"\s")


@pebble_filter("slugify")
def slugify(value: Any) -> Any:
    if value is None:
        return None
    text = _SLUG_SPACE.sub("-", _text(value))
    text = unicodedata.normalize("NFD", text)
    text = _SLUG_NON_LATIN.sub("", text).replace("_", "-")
    while "--" in text:
        text = text.replace("--", "-")
    return text.strip("-").lower()


@pebble_filter("urlencode")
def urlencode(value: Any) -> Any:
    if value is None:
        return None
    return quote_plus(_text(value), safe="*").replace("~", "%7E")


@pebble_filter("urldecode")
def urldecode(value: Any) -> Any:
    return None if value is None else unquote_plus(_text(value))


@pebble_filter("base64encode")
def base64encode(value: Any) -> Any:
    if value is None:
        return None
    data = value if isinstance(value, bytes) else _text(value).encode("utf-8")
    return base64.b64encode(data).decode("ascii")


@pebble_filter("base64decode")
def base64decode(value: Any) -> Any:
    if value is None:
        return None
    try:
        return base64.b64decode(_text(value), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExpressionError(f"Unable to base64-decode the value: {exc}") from None


def _digest(algorithm: str) -> Filter:
    def digest(value: Any) -> Any:
        if value is None:
            return None
        return hashlib.new(algorithm, _text(value).encode("utf-8")).hexdigest()
    digest.__name__ = algorithm
    return digest


for _name in ("md5", "sha1", "sha256", "sha512"):
    FILTERS[_name] = _digest(_name)


@pebble_filter("escapeChar")
def escape_char(value: Any, type: Any = None) -> Any:  # noqa: A002 - Pebble argument name
    if value is None:
        return None
    if type is None:
        raise ExpressionError("The 'escapeChar' filter expects an argument 'type'.")
    kind = java_str(type).lower()
    if kind == "single":
        return _deep(value, lambda text: text.replace("'", "\\'"))
    if kind == "double":
        return _deep(value, lambda text: text.replace('"', '\\"'))
    if kind == "shell":
        return _deep(value, lambda text: text.replace("'", "'\\''"))
    raise ExpressionError("The 'escapeChar' filter expects the value of 'type' to be either 'single', 'double', "
                          "or 'shell'.")


def _line_separator(text: str) -> str:
    for separator in ("\r\n", "\n\r", "\n", "\r"):
        if separator in text:
            return separator
    return "\n"


def _indent(value: Any, amount: Any, prefix: Any, name: str) -> Any:
    if value is None:
        return None
    text = _text(value)
    if text == "":
        return text
    if amount is None:
        raise ExpressionError(f"The '{name}' filter expects an integer as argument 'amount'.")
    count = _require_int(amount, name, "amount")
    if count < 0:
        raise ExpressionError(f"The '{name}' filter expects a positive integer >=0 as argument 'amount'.")
    unit = " " if prefix is None else java_str(prefix)
    if len(unit) * count > _runtime.MAX_OUTPUT_CHARS:  # refuse before building a gigabyte of padding
        raise ExpressionError(f"Rendered value exceeds the maximum size of {_runtime.MAX_OUTPUT_CHARS} characters")
    pad = unit * count
    newline = _line_separator(text)
    if name == "nindent":
        text = newline + text
    return check_size(text.replace(newline, newline + pad))


@pebble_filter("indent")
def indent(value: Any, amount: Any = None, prefix: Any = None) -> Any:
    return _indent(value, amount, prefix, "indent")


@pebble_filter("nindent")
def nindent(value: Any, amount: Any = None, prefix: Any = None) -> Any:
    return _indent(value, amount, prefix, "nindent")


@pebble_filter("format")
def format_(value: Any, *args: Any) -> Any:
    if value is None:
        return None
    return check_size(java_format(_text(value), list(args)))


@pebble_filter("nl2br")
def nl2br(value: Any) -> Any:
    if value is None:
        return None
    return _text(value).replace("\r\n", "<br />").replace("\r", "<br />").replace("\n", "<br />")


@pebble_filter("escape", "e")
def escape(value: Any, strategy: Any = None) -> Any:
    if value is None:
        return None
    return html.escape(_text(value), quote=True).replace("&#x27;", "&#39;")


@pebble_filter("raw")
def raw(value: Any) -> Any:
    return value


# --- collections --------------------------------------------------------------------------------

@pebble_filter("first")
def first(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            raise ExpressionError("The 'first' filter can not be applied to an empty string")
        return value[0]
    if isinstance(value, Mapping):
        raise ExpressionError("The 'first' filter can not be applied to a map")
    for item in value:
        return item
    return None


@pebble_filter("last")
def last(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            raise ExpressionError("The 'last' filter can not be applied to an empty string")
        return value[-1]
    if isinstance(value, Mapping):
        raise ExpressionError("The 'last' filter can not be applied to a map")
    items = list(value)
    return items[-1] if items else None


@pebble_filter("length")
def length(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, (str, list, tuple, Mapping, Set)):
        return len(value)
    return 0


@pebble_filter("join")
def join(value: Any, separator: Any = None) -> Any:
    if value is None:
        return None
    if not isinstance(value, (list, tuple, Set)):
        raise ExpressionError("The 'join' filter expects that the input is either a collection or an array.")
    glue = "" if separator is None else java_str(separator)
    return check_size(glue.join(java_str(item) for item in value))


def _sortable(items: list[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:
        raise ExpressionError("The 'sort' filter can only sort values of one comparable type") from None


@pebble_filter("sort")
def sort(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise ExpressionError("Unsupported input type for sort filter")
    return _sortable(list(value))


@pebble_filter("rsort")
def rsort(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise ExpressionError("Unsupported input type for rsort filter")
    return list(reversed(_sortable(list(value))))


@pebble_filter("reverse")
def reverse(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return value[::-1]
    if not isinstance(value, (list, tuple)):
        raise ExpressionError("The 'reverse' filter can only be applied to a list")
    return list(reversed(value))


@pebble_filter("merge")
def merge(value: Any, items: Any = None) -> Any:
    if value is None:
        if items is None:
            raise ExpressionError("The two arguments to be merged are null")
        return items
    if items is None:
        return value
    if isinstance(value, Mapping):
        result = dict(value)
        if isinstance(items, Mapping):
            result.update(items)
        elif isinstance(items, (list, tuple)):
            for item in items:
                result[item] = item
        else:
            raise ExpressionError("Currently, only Maps and Lists can be merged with a Map.")
        return check_collection(result)
    if isinstance(value, (list, tuple)):
        if isinstance(items, Mapping):
            from ._values import Entry

            return check_collection([*value, *(Entry(k, v) for k, v in items.items())])
        if isinstance(items, (list, tuple)):
            return check_collection([*value, *items])
        raise ExpressionError("Currently, only Maps and Lists can be merged with a List.")
    raise ExpressionError("The object being filtered is not a Map/List/Array")


@pebble_filter("chunk")
def chunk(value: Any, size: Any = None) -> Any:
    if value is None:
        return None
    if size is None:
        raise ExpressionError("'chunk' filter expects an argument 'size'.")
    if not isinstance(value, (list, tuple)):
        raise ExpressionError(f"'chunk' filter can only be applied to List. Actual type was: {class_name(value)}")
    step = _require_int(size, "chunk", "size")
    if step <= 0:
        raise ExpressionError("'chunk' filter argument 'size' must be greater than 0")
    return [list(value[i:i + step]) for i in range(0, len(value), step)]


@pebble_filter("distinct")
def distinct(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, (list, tuple, Set)):
        raise ExpressionError("The 'distinct' filter can only be applied to lists.")
    result: list[Any] = []
    for item in value:
        if not any(equals(item, seen) for seen in result):
            result.append(item)
    return result


@pebble_filter("flatten")
def flatten(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise ExpressionError("The 'flatten' filter can only be applied to lists.")
    result: list[Any] = []
    for item in value:
        if isinstance(item, (list, tuple)):
            result.extend(item)
        else:
            result.append(item)
    return check_collection(result)


@pebble_filter("keys")
def keys(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return list(value.keys())
    if isinstance(value, (list, tuple)):
        return list(range(len(value)))
    raise ExpressionError(f"'keys' filter can only be applied to List, Map, Array. Actual type was: "
                          f"{class_name(value)}")


@pebble_filter("values")
def values(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return list(value.values())
    raise ExpressionError(f"'values' filter can only be applied to Map. Actual type was: {class_name(value)}")


@pebble_filter("default")
def default(value: Any, default: Any = None) -> Any:  # noqa: A002 - Pebble argument name
    return default if is_empty(value) else value


@pebble_filter("abs")
def abs_(value: Any) -> Any:
    if value is None:
        return None
    if not is_number(value):
        raise ExpressionError(f"The 'abs' filter can only be applied to numbers, not {class_name(value)}")
    return abs(value)


# --- data ---------------------------------------------------------------------------------------

@pebble_filter("toJson", "json", "jsonEncode")
def to_json_filter(value: Any, includeNulls: Any = False) -> str:  # noqa: N803 - Pebble name
    if value is None:
        return "null"
    return check_size(to_json(value, include_nulls=includeNulls is True))


class _YamlDumper(yaml_module.SafeDumper):
    """Jackson's YAML output: block style, indented sequences, minimal quotes."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)


def to_yaml(value: Any) -> str:
    plain = to_plain(value)
    if not isinstance(plain, (dict, list)):
        text = yaml_module.dump(plain, Dumper=_YamlDumper, allow_unicode=True, width=2 ** 31)
        return text[:-4] if text.endswith("\n...\n") else text
    return yaml_module.dump(plain, Dumper=_YamlDumper, default_flow_style=False, sort_keys=False,
                            allow_unicode=True, width=2 ** 31)


@pebble_filter("yaml", "toYaml")
def yaml_filter(value: Any) -> str:
    if value is None:
        return "null"
    return check_size(to_yaml(value))


def _ion_symbol(key: str) -> str:
    if re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", key) and key not in ("null", "true", "false", "nan"):
        return key
    return "'" + key.replace("\\", "\\\\").replace("'", "\\'") + "'"


def to_ion(value: Any) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        return to_json(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value).replace("inf", "+inf") + ("e0" if "e" not in repr(value) else "")
    if isinstance(value, datetime):
        from ._values import datetime_text

        return datetime_text(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_ion_symbol(java_str(k))}:{to_ion(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, Set)):
        return "[" + ",".join(to_ion(v) for v in value) + "]"
    return to_ion(to_plain(value))


@pebble_filter("toIon")
def to_ion_filter(value: Any) -> str:
    return check_size(to_ion(value))


@pebble_filter("jq")
def jq(value: Any, expression: Any = None) -> Any:
    """Kestra's ``jq``: always a list of results; a string input is parsed as JSON first.

    The program runs in a sandbox process (no server environment, killed at the render's deadline).
    """
    if value is None:
        return None
    if expression is None:
        raise ExpressionError("The 'jq' filter expects an argument 'expression'.")
    program = java_str(expression)
    try:
        if isinstance(value, str):
            return run_jq(program, value, None, remaining_budget(), _runtime.MAX_OUTPUT_CHARS)
        # Sent as JSON text written by to_json, which counts the size while writing (shared nested
        # lists fail at the limit at once instead of being expanded first).
        return run_jq(program, to_json(value, include_nulls=True), None, remaining_budget(),
                      _runtime.MAX_OUTPUT_CHARS)
    except ExpressionTimeout:
        raise ExpressionTimeout(f"The jq program '{program[:200]}' ran past the time budget of "
                                f"{_runtime.budget_of_render(0)}") from None
    except JqFailure as exc:
        if exc.kind == "compile":
            raise ExpressionError(f"Failed to resolve JQ expression '{program}': {exc}") from None
        if exc.kind == "value":
            raise ExpressionError(f"Unable to parse jq value '{java_str(value)[:200]}': {exc}") from None
        raise ExpressionError(f"The jq program '{program[:200]}' failed: {exc}") from None


@pebble_filter("className")
def class_name_filter(value: Any) -> Any:
    return class_name(value)


@pebble_filter("number")
def number(value: Any, type: Any = None) -> Any:  # noqa: A002 - Pebble argument name
    return parse_number(value, type)


@pebble_filter("string")
def string(value: Any) -> Any:
    return number_string(value)


@pebble_filter("numberFormat", "numberformat")
def number_format(value: Any, format: Any = None) -> Any:  # noqa: A002 - Pebble argument name
    if value is None:
        return None
    if format is None:
        return default_number_format(value)
    return decimal_format(value, java_str(format))


# --- dates --------------------------------------------------------------------------------------

@pebble_filter("date")
def date_filter(value: Any, format: Any = None, timeZone: Any = None, existingFormat: Any = None,  # noqa: A002,N803
                locale: Any = None) -> Any:
    if value is None:
        return None
    target = _dates.zone(timeZone)
    moment = _dates.to_datetime(value, target, existingFormat)
    return _dates.format_datetime(moment.astimezone(target), format)


@pebble_filter("dateAdd")
def date_add(value: Any, amount: Any = None, unit: Any = None, format: Any = None,  # noqa: A002
             timeZone: Any = None, existingFormat: Any = None, locale: Any = None) -> Any:  # noqa: N803
    if value is None:
        return None
    target = _dates.zone(timeZone)
    moment = _dates.add_to(_dates.to_datetime(value, target, existingFormat), amount, unit)
    return _dates.format_datetime(moment.astimezone(target), format)


def _epoch_filter(unit: Any) -> Filter:
    def epoch(value: Any, timeZone: Any = None, existingFormat: Any = None) -> Any:  # noqa: N803
        if value is None:
            return None
        target = _dates.zone(timeZone)
        return _dates.epoch(_dates.to_datetime(value, target, existingFormat), unit)
    return epoch


FILTERS["timestamp"] = _epoch_filter(_dates.SECOND)
FILTERS["timestampMilli"] = _epoch_filter(_dates.MILLI)
FILTERS["timestampMicro"] = _epoch_filter(_dates.MICRO)


@pebble_filter("timestampNano")
def timestamp_nano(value: Any, timeZone: Any = None, existingFormat: Any = None) -> Any:  # noqa: N803
    if value is None:
        return None
    target = _dates.zone(timeZone)
    return _dates.epoch(_dates.to_datetime(value, target, existingFormat), _dates.MICRO) * 1000
