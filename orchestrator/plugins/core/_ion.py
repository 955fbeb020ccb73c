"""Amazon ION text, the subset Kestra's record files use (one value per line), and the rest of the
text syntax when reading: the codec of the storage tasks and ``log.Fetch``."""
from __future__ import annotations

import base64
import math
import re
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from orchestrator.engine.errors import TaskFailure

__all__ = ["IonError", "ion_dumps", "ion_line", "ion_loads"]


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
