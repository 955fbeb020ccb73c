"""``io.kestra.plugin.core.storage``: internal-storage file tasks.

They work on ``kestra://`` files through the platform of the run context (``ctx.platform``, see
:mod:`orchestrator.engine.memory_platform`). Record files are Amazon ION text, one value per line, as
Kestra writes them; the small ION codec used by these tasks and by ``log.Fetch`` lives here too, with
the rendering helpers shared by the platform-backed core tasks.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import tempfile
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import Field

from orchestrator.engine.errors import CelestraError, TaskFailure, TaskKilled
from orchestrator.engine.memory_platform import PlatformBase, glob_match, platform_of
from orchestrator.engine.plugins import RUNNABLE, RunContext, register
from orchestrator.engine.truthy import is_truthy

from ._common import CorePlugin, Props, Text

_PREFIX = "io.kestra.core.tasks.storages."

__all__ = [
    "ion_dumps", "ion_loads", "ion_line", "platform_of", "render_bool", "render_int", "render_text",
    "render_text_list", "render_with", "java_lines",
]


# ---------------------------------------------------------------------------------------------------------
# Rendering helpers shared by the platform-backed core tasks
# ---------------------------------------------------------------------------------------------------------

def render_text(ctx: RunContext, value: Any) -> str | None:
    """A dynamic String property: ``None`` stays ``None``, anything else is rendered to text."""
    if value is None:
        return None
    return ctx.render_string(value)


def render_bool(ctx: RunContext, value: Any, default: bool) -> bool:
    """A ``Property<Boolean>``: a literal, or an expression rendering to ``true``/``false``."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    rendered = ctx.render(value)
    if isinstance(rendered, bool):
        return rendered
    return str(rendered).strip().lower() == "true"


def render_int(ctx: RunContext, value: Any, name: str) -> int | None:
    if value is None:
        return None
    rendered = ctx.render(value) if isinstance(value, str) else value
    try:
        if isinstance(rendered, bool):
            raise ValueError(rendered)
        return int(str(rendered).strip()) if not isinstance(rendered, int) else rendered
    except ValueError:
        raise TaskFailure(f"Invalid value for '{name}': `{rendered}` is not an integer") from None


def render_text_list(ctx: RunContext, value: Any) -> list[str]:
    """A list of strings property: a list (items rendered), a string rendering to a JSON list, or one string."""
    if value is None:
        return []
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            rendered = ctx.render(item)
            if isinstance(rendered, list):
                out.extend(_plain_text(v) for v in rendered)
            elif rendered is not None:
                out.append(_plain_text(rendered))
        return out
    rendered = ctx.render(value)
    if isinstance(rendered, list):
        return [_plain_text(v) for v in rendered]
    text = _plain_text(rendered).strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            raise TaskFailure(f"Unable to read `{text}` as a JSON list") from None
        if isinstance(parsed, list):
            return [_plain_text(v) for v in parsed]
    return [text] if text else []


def _plain_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def render_with(ctx: RunContext, template: str, extra: dict[str, Any]) -> str:
    """Render ``template`` with the run context's variables plus ``extra`` (Kestra's ``render(expr, vars)``)."""
    if "{{" not in template and "{%" not in template:
        return template
    from orchestrator.engine import expressions

    return expressions.render_string(template, {**(ctx.variables or {}), **extra})


def java_lines(text: str) -> list[str]:
    """Lines as Java's ``BufferedReader.readLine`` reads them (``\\n``, ``\\r`` or ``\\r\\n``)."""
    if not text:
        return []
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def extension_of(uri: str, default: str = ".tmp") -> str:
    """Kestra takes everything from the last dot of the path as the extension of derived files."""
    name = uri.rsplit("/", 1)[-1]
    return name[name.rindex("."):] if "." in name else default


# ---------------------------------------------------------------------------------------------------------
# Amazon ION text (the subset Kestra's record files use, and the rest of the text syntax when reading)
# ---------------------------------------------------------------------------------------------------------

_SYMBOL = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_RESERVED = frozenset({"null", "true", "false", "nan"})


def _ion_quote(text: str, quote: str) -> str:
    out = [quote]
    for char in text:
        code = ord(char)
        if char == quote or char == "\\":
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(char)
    out.append(quote)
    return "".join(out)


def _ion_symbol(name: str) -> str:
    if _SYMBOL.match(name) and name not in _RESERVED:
        return name
    return _ion_quote(name, "'")


def _ion_timestamp(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond % 1000:
        text += f".{moment.microsecond:06d}"
    elif moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    return text + "Z"


def ion_dumps(value: Any) -> str:
    """One value as ION text (structs, lists, strings, numbers, booleans, null, timestamps, blobs)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "+inf" if value > 0 else "-inf"
        text = repr(value)
        return text if "e" in text else text + "e0"
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text if "." in text else text + "."
    if isinstance(value, datetime):
        return _ion_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return "{{" + base64.b64encode(bytes(value)).decode("ascii") + "}}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_ion_symbol(str(k))}:{ion_dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(ion_dumps(v) for v in value) + "]"
    return _ion_quote(str(value), '"')


class IonError(TaskFailure):
    pass


_TOKEN = re.compile(r"[A-Za-z0-9_$.+\-:]+")
_OPERATOR = re.compile(r"[!#%&*+\-./;<=>?@^`|~]+")
_TIMESTAMP = re.compile(r"^\d{4}(?:T|-\d{2}(?:T|-\d{2}(?:T(?:\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
                        r"(?:Z|[+-]\d{2}:\d{2}))?)?)?)$")
_INT = re.compile(r"^-?(?:0|[1-9][0-9_]*)$")
_HEX = re.compile(r"^-?0[xX][0-9a-fA-F_]+$")
_BIN = re.compile(r"^-?0[bB][01_]+$")
_DECIMAL = re.compile(r"^-?(?:0|[1-9][0-9_]*)(?:\.[0-9_]*)?(?:[dD][+-]?[0-9]+)?$")
_FLOAT = re.compile(r"^-?(?:0|[1-9][0-9_]*)(?:\.[0-9_]*)?[eE][+-]?[0-9]+$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
            "\\": "\\", '"': '"', "'": "'", "/": "/", "?": "?"}


class _IonReader:
    """A recursive-descent reader of ION text; returns plain Python values (timestamps as their text)."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def fail(self, message: str) -> IonError:
        return IonError(f"Invalid ION at offset {self.pos}: {message}")

    def skip(self) -> None:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t\r\n\v\f":
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end == -1 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end == -1:
                    raise self.fail("unterminated comment")
                self.pos = end + 2
            else:
                return

    def at_end(self) -> bool:
        self.skip()
        return self.pos >= len(self.text)

    def values(self) -> list[Any]:
        out = []
        while not self.at_end():
            out.append(self.value())
        return out

    def value(self, in_sexp: bool = False) -> Any:
        self.skip()
        if self.pos >= len(self.text):
            raise self.fail("a value is expected")
        text, char = self.text, self.text[self.pos]
        if text.startswith("{{", self.pos):
            return self.lob()
        if char == "{":
            return self.struct()
        if char == "[":
            return self.sequence("]")
        if char == "(":
            return self.sequence(")", sexp=True)
        if text.startswith("'''", self.pos):
            return self.long_string()
        if char == '"':
            return self.string('"')
        if char == "'":
            symbol = self.string("'")
            if self.annotation_follows():
                return self.value(in_sexp)
            return symbol
        match = _TOKEN.match(text, self.pos)
        if match is None and in_sexp:
            match = _OPERATOR.match(text, self.pos)
            if match:
                self.pos = match.end()
                return match.group(0)
        if match is None:
            raise self.fail(f"unexpected character {char!r}")
        token = match.group(0)
        if "::" in token:  # annotations glued to the value: skip them
            head, _, _ = token.rpartition("::")
            self.pos += len(head) + 2
            return self.value(in_sexp)
        self.pos = match.end()
        if _SYMBOL.match(token) and token not in _RESERVED and self.annotation_follows():
            return self.value(in_sexp)
        if in_sexp and _OPERATOR.fullmatch(token) and token not in ("+inf", "-inf"):
            return token
        return self.scalar(token)

    def annotation_follows(self) -> bool:
        saved = self.pos
        self.skip()
        if self.text.startswith("::", self.pos):
            self.pos += 2
            return True
        self.pos = saved
        return False

    def scalar(self, token: str) -> Any:
        if token == "null" or token.startswith("null."):
            return None
        if token == "true":
            return True
        if token == "false":
            return False
        if token == "nan":
            return math.nan
        if token == "+inf":
            return math.inf
        if token == "-inf":
            return -math.inf
        if _TIMESTAMP.match(token):
            return token
        if _INT.match(token):
            return int(token.replace("_", ""))
        if _HEX.match(token):
            return int(token.replace("_", ""), 16)
        if _BIN.match(token):
            return int(token.replace("_", ""), 2)
        if _FLOAT.match(token):
            return float(token.replace("_", ""))
        if _DECIMAL.match(token):
            try:
                number = Decimal(token.replace("_", "").replace("d", "e").replace("D", "e"))
            except InvalidOperation:
                raise self.fail(f"invalid decimal {token}") from None
            return int(number) if number == number.to_integral_value() and "." not in token else float(number)
        if _SYMBOL.match(token) or token.startswith("$"):
            return token
        raise self.fail(f"invalid token {token!r}")

    def string(self, quote: str) -> str:
        text = self.text
        self.pos += 1
        out: list[str] = []
        while True:
            if self.pos >= len(text):
                raise self.fail("unterminated string")
            char = text[self.pos]
            if char == quote:
                self.pos += 1
                return "".join(out)
            if char == "\\":
                out.append(self.escape())
                continue
            if char == "\n" and quote != "'''":
                raise self.fail("new line in a string")
            out.append(char)
            self.pos += 1

    def escape(self) -> str:
        text = self.text
        self.pos += 1
        if self.pos >= len(text):
            raise self.fail("unterminated escape")
        char = text[self.pos]
        self.pos += 1
        if char in _ESCAPES:
            return _ESCAPES[char]
        if char == "\n":
            return ""
        if char == "\r":
            if text.startswith("\n", self.pos):
                self.pos += 1
            return ""
        width = {"x": 2, "u": 4, "U": 8}.get(char)
        if width is None:
            raise self.fail(f"invalid escape \\{char}")
        digits = text[self.pos:self.pos + width]
        self.pos += width
        try:
            return chr(int(digits, 16))
        except ValueError:
            raise self.fail(f"invalid escape \\{char}{digits}") from None

    def long_string(self) -> str:
        parts: list[str] = []
        while self.text.startswith("'''", self.pos):
            self.pos += 3
            out: list[str] = []
            while True:
                if self.pos >= len(self.text):
                    raise self.fail("unterminated long string")
                if self.text.startswith("'''", self.pos):
                    self.pos += 3
                    break
                if self.text[self.pos] == "\\":
                    out.append(self.escape())
                    continue
                out.append(self.text[self.pos])
                self.pos += 1
            parts.append("".join(out))
            saved = self.pos
            self.skip()
            if not self.text.startswith("'''", self.pos):
                self.pos = saved
                break
        return "".join(parts)

    def lob(self) -> Any:
        end = self.text.find("}}", self.pos + 2)
        if end == -1:
            raise self.fail("unterminated blob")
        body = self.text[self.pos + 2:end].strip()
        self.pos = end + 2
        if body.startswith('"') or body.startswith("'''"):
            return _IonReader(body).value()
        try:
            return base64.b64decode("".join(body.split())).decode("utf-8", errors="replace")
        except ValueError:
            raise self.fail("invalid blob") from None

    def sequence(self, close: str, sexp: bool = False) -> list[Any]:
        self.pos += 1
        items: list[Any] = []
        while True:
            self.skip()
            if self.pos >= len(self.text):
                raise self.fail(f"missing {close!r}")
            if self.text[self.pos] == close:
                self.pos += 1
                return items
            items.append(self.value(in_sexp=sexp))
            self.skip()
            if not sexp and self.text.startswith(",", self.pos):
                self.pos += 1

    def struct(self) -> dict[str, Any]:
        self.pos += 1
        out: dict[str, Any] = {}
        while True:
            self.skip()
            if self.pos >= len(self.text):
                raise self.fail("missing '}'")
            char = self.text[self.pos]
            if char == "}":
                self.pos += 1
                return out
            if self.text.startswith("'''", self.pos):
                name = self.long_string()
            elif char in "\"'":
                name = self.string(char)
            else:
                match = _TOKEN.match(self.text, self.pos)
                if match is None:
                    raise self.fail("a field name is expected")
                name = match.group(0).split(":", 1)[0]
                self.pos += len(name)
            self.skip()
            if not self.text.startswith(":", self.pos) or self.text.startswith("::", self.pos):
                raise self.fail("':' is expected after a field name")
            self.pos += 1
            out[name] = self.value()
            self.skip()
            if self.text.startswith(",", self.pos):
                self.pos += 1


def ion_loads(text: str) -> list[Any]:
    """Every top-level value of an ION text."""
    return _IonReader(text).values()


def ion_line(line: str) -> Any:
    """The one value of a line of a record file (``None`` for an empty line)."""
    values = _IonReader(line).values()
    if not values:
        return None
    if len(values) > 1:
        raise IonError(f"Invalid ION record: one value per line is expected, got {len(values)} in `{line}`")
    return values[0]


# ---------------------------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------------------------

def _from(ctx: RunContext, props: dict[str, Any]) -> str:
    uri = render_text(ctx, props.get("from"))
    if not uri:
        raise TaskFailure("Property 'from' is required")
    return uri.strip()


_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?B)?\s*$", re.IGNORECASE)
_UNITS = {None: 1, "B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


def readable_bytes(text: Any) -> int:
    """``"10MB"`` → bytes (binary multiples, like Micronaut's ReadableBytes); a bare number is bytes."""
    match = _SIZE.match(str(text))
    if not match:
        raise TaskFailure(f"Invalid size with value '{text}'")
    unit = match.group(2).upper() if match.group(2) else None
    return int(match.group(1)) * _UNITS[unit]


@register
class Write(CorePlugin):
    """Write ``content`` to a new internal-storage file."""

    type = "io.kestra.plugin.core.storage.Write"
    kind = RUNNABLE

    class Props(Props):
        content: Text
        extension: Optional[Text] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        content = ctx.render_string(props.get("content"))
        extension = render_text(ctx, props.get("extension")) or ".tmp"
        return {"uri": platform_of(ctx).put_file(content.encode("utf-8"), extension=extension)}


@register
class Concat(CorePlugin):
    """Concatenate files, writing ``separator`` after each one."""

    type = "io.kestra.plugin.core.storage.Concat"
    aliases = (_PREFIX + "Concat",)
    kind = RUNNABLE

    class Props(Props):
        files: Union[list[Text], Text]
        separator: Optional[Text] = None
        extension: Text = ".tmp"

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        files = render_text_list(ctx, props.get("files"))
        separator = render_text(ctx, props.get("separator"))
        chunks: list[bytes] = []
        for uri in files:
            chunks.append(platform.read_file(uri.strip()))
            if separator is not None:
                chunks.append(separator.encode("utf-8"))
        extension = render_text(ctx, props.get("extension")) or ".tmp"
        return {"uri": platform.put_file(b"".join(chunks), extension=extension)}


@register
class Split(CorePlugin):
    """Split a file by ``bytes``, ``partitions`` (round robin of rows) or ``rows``."""

    type = "io.kestra.plugin.core.storage.Split"
    aliases = (_PREFIX + "Split",)
    kind = RUNNABLE

    class Props(Props):
        from_: Text = Field(alias="from")
        bytes: Optional[Text] = None
        partitions: Optional[int] = Field(None, ge=1)
        rows: Optional[int] = Field(None, ge=1)
        separator: Text = "\n"

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        given = [name for name in ("bytes", "partitions", "rows") if node.props.get(name) is not None]
        if len(given) != 1:
            return [("", "Exactly one of 'bytes', 'partitions' or 'rows' must be set")]
        return []

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        source = _from(ctx, props)
        extension = extension_of(source)
        separator = ctx.render_string(props.get("separator", "\n"))
        rows = java_lines(platform.read_text(source))
        parts: list[list[str]]
        if props.get("bytes") is not None:
            limit = readable_bytes(ctx.render_string(props["bytes"]))
            parts = self._split(rows, separator, lambda size, count: size >= limit)
        elif props.get("partitions") is not None:
            count = render_int(ctx, props["partitions"], "partitions") or 1
            buckets: list[list[str]] = [[] for _ in range(max(count, 1))]
            for index, row in enumerate(rows):
                buckets[index % len(buckets)].append(row)
            parts = [bucket for bucket in buckets if bucket]
        elif props.get("rows") is not None:
            limit = render_int(ctx, props["rows"], "rows") or 1
            parts = self._split(rows, separator, lambda size, count: count >= limit)
        else:
            raise TaskFailure("Invalid configuration with no size, count, rows, nor regexPattern")
        return {"uris": [platform.put_file("".join(row + separator for row in part).encode("utf-8"),
                                           extension=extension) for part in parts]}

    @staticmethod
    def _split(rows: list[str], separator: str, full: Any) -> list[list[str]]:
        parts: list[list[str]] = []
        size = count = 0
        for row in rows:
            if not parts or full(size, count):
                parts.append([])
                size = count = 0
            parts[-1].append(row)
            size += len((row + separator).encode("utf-8"))
            count += 1
        return parts


@register
class Size(CorePlugin):
    """The size in bytes of a file."""

    type = "io.kestra.plugin.core.storage.Size"
    aliases = (_PREFIX + "Size",)
    kind = RUNNABLE

    class Props(Props):
        uri: Text

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        uri = ctx.render_string(self.task.props.get("uri")).strip()
        return {"size": platform_of(ctx).file_size(uri)}


@register
class Delete(CorePlugin):
    """Delete a file of the internal storage."""

    type = "io.kestra.plugin.core.storage.Delete"
    aliases = (_PREFIX + "Delete",)
    kind = RUNNABLE

    class Props(Props):
        uri: Text
        errorOnMissing: bool = False

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        uri = ctx.render_string(props.get("uri")).strip()
        deleted = platform_of(ctx).delete_file(uri)
        if not deleted and render_bool(ctx, props.get("errorOnMissing"), False):
            raise TaskFailure(f"Unable to find file '{uri}'")
        return {"uri": uri, "deleted": deleted}


@register
class Reverse(CorePlugin):
    """Write the lines of a file in reverse order."""

    type = "io.kestra.plugin.core.storage.Reverse"
    aliases = (_PREFIX + "Reverse",)
    kind = RUNNABLE

    class Props(Props):
        from_: Text = Field(alias="from")
        separator: Text = "\n"
        charset: Text = "UTF-8"

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        source = _from(ctx, props)
        charset = ctx.render_string(props.get("charset", "UTF-8"))
        separator = ctx.render_string(props.get("separator", "\n"))
        lines = java_lines(platform.read_text(source, charset))
        content = "".join(line + separator for line in reversed(lines))
        try:
            data = content.encode(charset)
        except LookupError:
            raise TaskFailure(f"Unknown charset '{charset}'") from None
        return {"uri": platform.put_file(data, extension=extension_of(source))}


def _records(platform: PlatformBase, uri: str) -> list[tuple[str, Any]]:
    """``(line, record)`` of each non-empty line of an ION record file."""
    out = []
    for line in java_lines(platform.read_text(uri)):
        if not line.strip():
            continue
        record = ion_line(line)
        out.append((line, record))
    return out


def _record_vars(record: Any) -> dict[str, Any]:
    return dict(record) if isinstance(record, dict) else {}


@register
class DeduplicateItems(CorePlugin):
    """Keep the last item of each key (``expr`` rendered with the item's fields)."""

    type = "io.kestra.plugin.core.storage.DeduplicateItems"
    aliases = (_PREFIX + "DeduplicateItems",)
    kind = RUNNABLE

    class Props(Props):
        from_: Text = Field(alias="from")
        expr: Text

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        expr = str(props.get("expr"))
        records = _records(platform, _from(ctx, props))
        keys = [render_with(ctx, expr, _record_vars(record)) for _, record in records]
        last = {key: index for index, key in enumerate(keys)}
        kept = [line for index, (line, _) in enumerate(records) if last[keys[index]] == index]
        uri = platform.put_file("".join(line + "\n" for line in kept).encode("utf-8"), extension=".ion")
        return {"uri": uri, "numKeys": len(last), "processedItemsTotal": len(records),
                "droppedItemsTotal": len(records) - len(kept)}


@register
class FilterItems(CorePlugin):
    """Keep (INCLUDE) or drop (EXCLUDE) the items whose ``filterCondition`` is true."""

    type = "io.kestra.plugin.core.storage.FilterItems"
    aliases = (_PREFIX + "FilterItems",)
    kind = RUNNABLE

    class Props(Props):
        from_: Text = Field(alias="from")
        filterCondition: Text
        filterType: Literal["INCLUDE", "EXCLUDE"] = "INCLUDE"
        errorOrNullBehavior: Literal["FAIL", "INCLUDE", "EXCLUDE"] = "FAIL"

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        props = self.task.props
        platform = platform_of(ctx)
        condition = str(props.get("filterCondition"))
        filter_type = ctx.render_string(props.get("filterType", "INCLUDE")).strip().upper()
        on_error = ctx.render_string(props.get("errorOrNullBehavior", "FAIL")).strip().upper()
        if filter_type not in ("INCLUDE", "EXCLUDE") or on_error not in ("FAIL", "INCLUDE", "EXCLUDE"):
            raise TaskFailure(f"Invalid filterType '{filter_type}' or errorOrNullBehavior '{on_error}'")
        kept: list[str] = []
        processed = dropped = 0
        for line, record in _records(platform, _from(ctx, props)):
            action = filter_type
            try:
                rendered: str | None = render_with(ctx, condition, _record_vars(record))
            except TaskKilled:
                raise
            except CelestraError as exc:
                if on_error == "FAIL":
                    raise
                rendered, action = None, on_error
                ctx.log("DEBUG", f"Expression `{condition}` failed on item `{line}`: {exc}")
            if rendered is not None and not is_truthy(rendered.strip()):
                action = "EXCLUDE" if action == "INCLUDE" else "INCLUDE"
            if action == "INCLUDE":
                kept.append(line)
            else:
                dropped += 1
            processed += 1
        uri = platform.put_file("".join(line + "\n" for line in kept).encode("utf-8"), extension=".ion")
        return {"uri": uri, "processedItemsTotal": processed, "droppedItemsTotal": dropped}


def _unique_name(relative: str) -> str:
    """Kestra names uploaded output files ``<id from the path>-<file name>``."""
    digest = hashlib.sha1(relative.encode("utf-8")).hexdigest()[:22]
    return f"{digest}-{relative.rsplit('/', 1)[-1]}"


@register
class LocalFiles(CorePlugin):
    """Deprecated: write ``inputs`` into the working directory, upload ``outputs`` globs.

    Inside a WorkingDirectory the run context carries the shared directory as ``ctx.working_dir``;
    elsewhere the task uses a directory of its own.
    """

    type = "io.kestra.plugin.core.storage.LocalFiles"
    aliases = (_PREFIX + "LocalFiles",)
    kind = RUNNABLE
    deprecated = True

    class Props(Props):
        inputs: Optional[Union[dict[str, Any], Text]] = None
        outputs: Optional[list[Text]] = None

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        working_dir = getattr(ctx, "working_dir", None)
        if working_dir is not None:
            return self._run_in(ctx, Path(working_dir))
        with tempfile.TemporaryDirectory(prefix="celestra-localfiles-") as directory:
            return self._run_in(ctx, Path(directory))

    def _run_in(self, ctx: RunContext, directory: Path) -> dict[str, Any]:
        props = self.task.props
        platform = platform_of(ctx)
        for relative, content in self._inputs(ctx, props.get("inputs")).items():
            target = (directory / PlatformBase.safe_name(relative)).resolve()
            if directory.resolve() not in target.parents:
                raise TaskFailure(f"Invalid input file path: {relative}")
            target.parent.mkdir(parents=True, exist_ok=True)
            if content.startswith("kestra://"):
                target.write_bytes(platform.read_file(content.strip()))
            else:
                target.write_text(content, encoding="utf-8")
        uris: dict[str, str] = {}
        patterns = render_text_list(ctx, props.get("outputs"))
        if patterns:
            root = directory.resolve()
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                relative = path.relative_to(root).as_posix()
                if any(glob_match(pattern, relative) for pattern in patterns):
                    uris[relative] = platform.put_file(path.read_bytes(), _unique_name(relative))
        return {"uris": uris}

    @staticmethod
    def _inputs(ctx: RunContext, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        rendered = ctx.render(value)
        if isinstance(rendered, str):
            try:
                rendered = json.loads(rendered)
            except ValueError:
                raise TaskFailure("LocalFiles 'inputs' must be a map or a JSON object") from None
        if not isinstance(rendered, dict):
            raise TaskFailure("LocalFiles 'inputs' must be a map or a JSON object")
        return {str(ctx.render_string(k)): _plain_text(v) for k, v in rendered.items()}


@register
class PurgeCurrentExecutionFiles(CorePlugin):
    """Delete every internal-storage file of the current execution."""

    type = "io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles"
    aliases = (_PREFIX + "PurgeExecution", "io.kestra.plugin.core.storage.PurgeExecution")
    kind = RUNNABLE

    class Props(Props):
        pass

    def run(self, ctx: RunContext) -> dict[str, Any] | None:
        return {"uris": platform_of(ctx).purge_execution_files()}
