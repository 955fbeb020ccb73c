"""Pebble and Kestra functions (``name(args)``).

Functions are compiled as Jinja filters applied to ``none`` (so a variable named like a function
never shadows it, as in Pebble) and all receive the Jinja context: the context's parent is the
dict given to ``render``, which holds the execution variables and the optional ``__services__``
object through which functions reach secrets, the KV store and storage.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import secrets as secrets_module
import socket
import time
import uuid as uuid_module
from collections.abc import Mapping, Set
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable

import yaml as yaml_module
from jinja2 import pass_context

from orchestrator.engine.ids import new_id

from . import _dates
from ._errors import ExpressionError
from ._runtime import equals, greater, less, make_range
from ._values import java_str, is_number

FUNCTIONS: dict[str, Callable[..., Any]] = {}
SERVICES_KEY = "__services__"


def pebble_function(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        wrapped = pass_context(function)
        for name in names:
            FUNCTIONS[name] = wrapped
        return wrapped
    return register


def variables(context: Any) -> Mapping[str, Any]:
    """The variables given to the top-level render (Jinja context parent)."""
    return context.parent


def service(context: Any, function: str, method: str) -> Callable[..., Any]:
    services = variables(context).get(SERVICES_KEY)
    handler = getattr(services, method, None) if services is not None else None
    if handler is None:
        raise ExpressionError(f"The '{function}' function is not available here: no '{method}' service in the "
                              "rendering context")
    return handler


# --- dates and ids ------------------------------------------------------------------------------

@pebble_function("now")
def now(context: Any, _: Any, format: Any = None, timeZone: Any = None, existingFormat: Any = None,  # noqa: A002,N803
        locale: Any = None) -> str:
    target = _dates.zone(timeZone)
    return _dates.format_datetime(datetime.now(target), format)


@pebble_function("uuid")
def uuid(context: Any, _: Any) -> str:
    return str(uuid_module.uuid4())


@pebble_function("id")
def short_id(context: Any, _: Any) -> str:
    return new_id()


_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_KSUID_EPOCH = 1_400_000_000


@pebble_function("ksuid")
def ksuid(context: Any, _: Any) -> str:
    """A K-Sortable Unique ID: 27 base62 chars of a 4-byte timestamp and 16 random bytes."""
    payload = (int(time.time()) - _KSUID_EPOCH).to_bytes(4, "big") + secrets_module.token_bytes(16)
    number = int.from_bytes(payload, "big")
    chars = []
    while number:
        number, rest = divmod(number, 62)
        chars.append(_BASE62[rest])
    return "".join(reversed(chars)).rjust(27, "0")


_NANO_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"


@pebble_function("nanoId")
def nano_id(context: Any, _: Any, length: Any = 21, alphabet: Any = None) -> str:
    size = 21 if length is None else length
    if not is_number(size) or int(size) < 0:
        raise ExpressionError("The 'nanoId()' function field 'length' must be a positive integer")
    if int(size) > 1000:
        raise ExpressionError("The 'nanoId()' function field 'length' must be lower than: 1000")
    letters = _NANO_ALPHABET if not alphabet else java_str(alphabet)
    return "".join(secrets_module.choice(letters) for _ in range(int(size)))


@pebble_function("randomInt")
def random_int(context: Any, _: Any, lower: Any = None, upper: Any = None) -> int:
    for name, value in (("lower", lower), ("upper", upper)):
        if value is None:
            raise ExpressionError(f"The 'randomInt()' function expects an argument {name}")
        if not (isinstance(value, int) and not isinstance(value, bool)):
            raise ExpressionError(f"The 'randomInt()' function expects an argument {name} of type Long.")
    if upper < lower:
        raise ExpressionError("In 'randomInt()' upper is less than lower")
    if upper == lower:
        return lower
    return secrets_module.randbelow(upper - lower) + lower


@pebble_function("randomPort")
def random_port(context: Any, _: Any) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


# --- data ---------------------------------------------------------------------------------------

@pebble_function("fromJson", "json", "jsonDecode")
def from_json(context: Any, _: Any, json_: Any = None, **kwargs: Any) -> Any:
    text = kwargs.get("json", json_)
    if text is None:
        return None
    if not isinstance(text, str):
        if isinstance(text, (Mapping, list)):
            return text
        raise ExpressionError("The 'fromJson' function expects an argument 'json' with type string.")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ExpressionError(f"Invalid JSON given to fromJson: {exc}") from None


@pebble_function("yaml")
def from_yaml(context: Any, _: Any, yaml: Any = None) -> Any:  # noqa: A002
    if yaml is None:
        return None
    if not isinstance(yaml, str):
        raise ExpressionError("The 'yaml' function expects an argument 'yaml' with type string.")
    try:
        return yaml_module.safe_load(yaml)
    except yaml_module.YAMLError as exc:
        raise ExpressionError(f"Invalid YAML given to yaml(): {exc}") from None


@pebble_function("fromIon", "ionDecode")
def from_ion(context: Any, _: Any, ion: Any = None, allRows: Any = False) -> Any:  # noqa: N803
    if ion is None:
        return None
    if not isinstance(ion, str):
        raise ExpressionError("The 'fromIon' function expects an argument 'ion' with type string.")
    values = _IonReader(ion).read_all()
    if allRows is True:
        return values
    return values[0] if values else None


class _IonReader:
    """A reader for the text Ion that Kestra writes (structs, lists, strings, numbers, timestamps)."""

    _NUMBER = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|\d[\d_]*(?:\.\d*)?(?:[eEdD][+-]?\d+)?)")
    _TIMESTAMP = re.compile(r"\d{4}(?:-\d{2}(?:-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))?)?T?)?")
    _SYMBOL = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")

    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def error(self, message: str) -> ExpressionError:
        return ExpressionError(f"Invalid Ion at position {self.pos}: {message}")

    def skip(self) -> None:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char.isspace() or char == ",":
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos)
                self.pos = len(text) if end < 0 else end + 2
            else:
                return

    def read_all(self) -> list[Any]:
        values = []
        while True:
            self.skip()
            if self.pos >= len(self.text):
                return values
            values.append(self.value())

    def value(self) -> Any:  # noqa: C901 - one branch per Ion type
        self.skip()
        text = self.text
        if self.pos >= len(text):
            raise self.error("unexpected end")
        char = text[self.pos]
        if char == "{":
            if text.startswith("{{", self.pos):
                end = text.index("}}", self.pos)
                raw = text[self.pos + 2:end].strip()
                self.pos = end + 2
                return base64.b64decode(raw) if not raw.startswith('"') else raw.strip('"').encode()
            self.pos += 1
            result: dict[str, Any] = {}
            while True:
                self.skip()
                if text.startswith("}", self.pos):
                    self.pos += 1
                    return result
                key = self.field_name()
                self.skip()
                if not text.startswith(":", self.pos):
                    raise self.error("expected ':'")
                self.pos += 1
                result[key] = self.value()
        if char in "[(":
            close = "]" if char == "[" else ")"
            self.pos += 1
            items = []
            while True:
                self.skip()
                if text.startswith(close, self.pos):
                    self.pos += 1
                    return items
                items.append(self.value())
        if char == '"':
            return self.string()
        if text.startswith("'''", self.pos):
            parts = []
            while text.startswith("'''", self.pos):
                end = text.index("'''", self.pos + 3)
                parts.append(text[self.pos + 3:end])
                self.pos = end + 3
                self.skip()
            return "".join(parts)
        if char == "'":
            symbol = self.quoted_symbol()
            return self.after_annotation(symbol)
        match = self._TIMESTAMP.match(text, self.pos)
        if match and ("T" in match.group() or match.group().count("-") == 2) and len(match.group()) >= 10:
            self.pos = match.end()
            return _dates.parse_iso(match.group().rstrip("T"), _dates.UTC)
        match = self._NUMBER.match(text, self.pos)
        if match and match.group() not in ("+", "-"):
            self.pos = match.end()
            raw = match.group().replace("_", "")
            if raw[:2].lower() in ("0x", "-0x", "+0x") or "0x" in raw.lower():
                return int(raw, 16)
            if "0b" in raw.lower():
                return int(raw, 2)
            if any(c in raw for c in "eE"):
                return float(raw)
            if "d" in raw.lower() or "." in raw:
                return Decimal(raw.lower().replace("d", "e"))
            return int(raw)
        match = self._SYMBOL.match(text, self.pos)
        if match:
            self.pos = match.end()
            word = match.group()
            if word == "null" and text.startswith(".", self.pos):
                typed = self._SYMBOL.match(text, self.pos + 1)
                self.pos = typed.end() if typed else self.pos
                return None
            if word in ("null",):
                return None
            if word in ("true", "false"):
                return word == "true"
            if word == "nan":
                return float("nan")
            return self.after_annotation(word)
        if text.startswith("+inf", self.pos) or text.startswith("-inf", self.pos):
            self.pos += 4
            return float(text[self.pos - 4:self.pos])
        raise self.error(f"unexpected character {char!r}")

    def after_annotation(self, symbol: str) -> Any:
        if self.text.startswith("::", self.pos):
            self.pos += 2
            return self.value()
        return symbol

    def field_name(self) -> str:
        text = self.text
        if text.startswith('"', self.pos):
            return self.string()
        if text.startswith("'", self.pos):
            return self.quoted_symbol()
        match = self._SYMBOL.match(text, self.pos)
        if not match:
            raise self.error("expected a field name")
        self.pos = match.end()
        return match.group()

    def string(self) -> str:
        decoder = json.JSONDecoder()
        try:
            value, end = decoder.raw_decode(self.text, self.pos)
        except ValueError:
            raise self.error("invalid string") from None
        self.pos = end
        return value

    def quoted_symbol(self) -> str:
        end = self.pos + 1
        out = []
        while end < len(self.text) and self.text[end] != "'":
            if self.text[end] == "\\":
                end += 1
            out.append(self.text[end])
            end += 1
        self.pos = end + 1
        return "".join(out)


# --- rendering ----------------------------------------------------------------------------------

@pebble_function("render")
def render(context: Any, _: Any, template: Any = None, recursive: Any = True) -> Any:
    from ._engine import render_function

    if recursive is None:
        recursive = True
    if not isinstance(recursive, bool):
        raise ExpressionError("The 'render' function expects an optional argument 'recursive' with type boolean.")
    return render_function(template, variables(context), recursive)


@pebble_function("renderOnce")
def render_once(context: Any, _: Any, template: Any = None) -> Any:
    from ._engine import render_function

    return render_function(template, variables(context), False)


def _visible_context(context: Any) -> dict[str, Any]:
    return {k: v for k, v in variables(context).items() if not str(k).startswith("__")}


@pebble_function("printContext")
def print_context(context: Any, _: Any) -> dict[str, Any]:
    return _visible_context(context)


@pebble_function("fetchContext")
def fetch_context(context: Any, _: Any) -> dict[str, Any]:
    return _visible_context(context)


@pebble_function("block")
def block(context: Any, _: Any, name: Any = None) -> str:
    from ._translate import native_name

    blocks = context.blocks.get(native_name(java_str(name)))
    if not blocks:
        raise ExpressionError(f"Block [{java_str(name)}] does not exist")
    return "".join(blocks[0](context))


# --- execution data -----------------------------------------------------------------------------

@pebble_function("currentEachOutput")
def current_each_output(context: Any, _: Any, outputs: Any = None) -> Any:
    """The output of a task inside ForEach/EachSequential for the current loop values."""
    if not isinstance(outputs, Mapping):
        raise ExpressionError("The 'currentEachOutput' function expects an argument 'outputs' with type map.")
    values = variables(context)
    parents = values.get("parents") or []
    current: Any = outputs
    for parent in reversed(list(parents)):
        taskrun = parent.get("taskrun") if isinstance(parent, Mapping) else None
        if taskrun is not None:
            key = taskrun.get("value") if isinstance(taskrun, Mapping) else None
            nested = current.get(key) if isinstance(current, Mapping) else None
            if nested is None:
                raise ExpressionError("No execution outputs for the current task runs path")
            current = nested
    taskrun = values.get("taskrun")
    value = taskrun.get("value") if isinstance(taskrun, Mapping) else None
    return current.get(value) if isinstance(current, Mapping) else None


@pebble_function("errorLogs")
def error_logs(context: Any, _: Any) -> Any:
    return service(context, "errorLogs", "error_logs")()


@pebble_function("tasksWithState")
def tasks_with_state(context: Any, _: Any, state: Any = None) -> list[dict[str, Any]]:
    """Task runs in a state: from the ``tasks_with_state`` service, else from the ``tasks`` variable."""
    if state is None:
        raise ExpressionError("The 'tasksWithState' function expects an argument 'state'.")
    wanted = java_str(state).upper()
    services = variables(context).get(SERVICES_KEY)
    handler = getattr(services, "tasks_with_state", None) if services is not None else None
    if handler is not None:
        return handler(wanted)
    tasks = variables(context).get("tasks")
    if not isinstance(tasks, Mapping):
        raise ExpressionError("The 'tasksWithState' function is not available here: no task states in the "
                              "rendering context")
    result: list[dict[str, Any]] = []
    for task_id, details in tasks.items():
        if not isinstance(details, Mapping):
            continue
        for key, item in details.items():
            if key == "state" and isinstance(item, str):
                if item.upper() == wanted:
                    result.append({"taskId": task_id, "state": item.upper()})
            elif isinstance(item, Mapping) and isinstance(item.get("state"), str):
                if item["state"].upper() == wanted:
                    result.append({"taskId": task_id, "state": item["state"].upper(), "value": key})
    return result


# --- services -----------------------------------------------------------------------------------

@pebble_function("secret")
def secret(context: Any, _: Any, key: Any = None, namespace: Any = None, subkey: Any = None) -> Any:
    if key is None:
        raise ExpressionError("The 'secret' function expects an argument 'key'.")
    return service(context, "secret", "secret")(java_str(key), namespace=namespace, subkey=subkey)


@pebble_function("kv")
def kv(context: Any, _: Any, key: Any = None, namespace: Any = None, errorOnMissing: Any = True) -> Any:  # noqa: N803
    if key is None:
        raise ExpressionError("The 'kv' function expects an argument 'key'.")
    flag = True if errorOnMissing is None else errorOnMissing
    if not isinstance(flag, bool):
        raise ExpressionError("The 'kv' function expects an optional argument 'errorOnMissing' with type boolean.")
    return service(context, "kv", "kv")(java_str(key), namespace=namespace, error_on_missing=flag)


def _path(function: str, path: Any) -> str:
    if path is None:
        raise ExpressionError(f"The '{function}' function expects an argument 'path'.")
    return java_str(path)


@pebble_function("read")
def read(context: Any, _: Any, path: Any = None) -> Any:
    return service(context, "read", "read")(_path("read", path))


@pebble_function("fileSize")
def file_size(context: Any, _: Any, path: Any = None) -> Any:
    return service(context, "fileSize", "file_size")(_path("fileSize", path))


@pebble_function("fileExists")
def file_exists(context: Any, _: Any, path: Any = None) -> Any:
    return service(context, "fileExists", "file_exists")(_path("fileExists", path))


@pebble_function("isFileEmpty")
def is_file_empty(context: Any, _: Any, path: Any = None) -> bool:
    services = variables(context).get(SERVICES_KEY)
    direct = getattr(services, "is_file_empty", None) if services is not None else None
    if direct is not None:
        return bool(direct(_path("isFileEmpty", path)))
    return int(service(context, "isFileEmpty", "file_size")(_path("isFileEmpty", path)) or 0) == 0


@pebble_function("fileURI")
def file_uri(context: Any, _: Any, path: Any = None) -> str:
    """The storage URI of a namespace file: ``kestra:///<ns as path>/_files/<path>``."""
    text = _path("fileURI", path)
    services = variables(context).get(SERVICES_KEY)
    handler = getattr(services, "file_uri", None) if services is not None else None
    if handler is not None:
        return handler(text)
    flow = variables(context).get("flow")
    namespace = flow.get("namespace") if isinstance(flow, Mapping) else None
    if not namespace:
        raise ExpressionError("The 'fileURI' function needs the flow namespace in the rendering context")
    return f"kestra:///{namespace.replace('.', '/')}/_files/{text.lstrip('/')}"


# --- encryption ---------------------------------------------------------------------------------

def _aes(key: Any) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:  # pragma: no cover - the dependency is pinned
        raise ExpressionError("encrypt()/decrypt() need the 'cryptography' package") from None
    if not isinstance(key, str):
        raise ExpressionError("The encryption key must be a base64 string")
    try:
        raw = base64.b64decode(key, validate=True)
        return AESGCM(raw)
    except (binascii.Error, ValueError) as exc:
        raise ExpressionError(f"Invalid encryption key: {exc}") from None


@pebble_function("encrypt")
def encrypt(context: Any, _: Any, key: Any = None, plaintext: Any = None) -> str:
    """AES/GCM/NoPadding with a 12-byte IV prefixed to the cipher text, base64 (Kestra's EncryptionService)."""
    if key is None or plaintext is None:
        raise ExpressionError("The 'encrypt' function expects two arguments 'key' and 'plaintext'.")
    aes = _aes(key)
    iv = secrets_module.token_bytes(12)
    return base64.b64encode(iv + aes.encrypt(iv, java_str(plaintext).encode("utf-8"), None)).decode("ascii")


@pebble_function("decrypt")
def decrypt(context: Any, _: Any, key: Any = None, encrypted: Any = None) -> str:
    if key is None or encrypted is None:
        raise ExpressionError("The 'decrypt' function expects two arguments 'key' and 'encrypted'.")
    aes = _aes(key)
    try:
        data = base64.b64decode(java_str(encrypted), validate=True)
        return aes.decrypt(data[:12], data[12:], None).decode("utf-8")
    except Exception as exc:  # noqa: BLE001 - InvalidTag and base64 errors alike
        raise ExpressionError(f"Unable to decrypt the value: {type(exc).__name__}") from None


# --- Pebble built-ins ---------------------------------------------------------------------------

@pebble_function("max")
def maximum(context: Any, _: Any, *args: Any) -> Any:
    best = None
    for candidate in args:
        if best is None or greater(candidate, best):
            best = candidate
    return best


@pebble_function("min")
def minimum(context: Any, _: Any, *args: Any) -> Any:
    best = None
    for candidate in args:
        if best is None or less(candidate, best):
            best = candidate
    return best


@pebble_function("range")
def range_(context: Any, _: Any, start: Any = None, end: Any = None, increment: Any = 1) -> list[Any]:
    return make_range(start, end, increment)


# --- Java-like method calls ---------------------------------------------------------------------

def _str_methods(text: str, name: str, args: tuple[Any, ...]) -> Any:  # noqa: C901 - a dispatch table
    if name == "length" and not args:
        return len(text)
    if name == "isEmpty" and not args:
        return text == ""
    if name == "isBlank" and not args:
        return text.strip() == ""
    if name == "toUpperCase" and not args:
        return text.upper()
    if name == "toLowerCase" and not args:
        return text.lower()
    if name in ("trim", "strip") and not args:
        return text.strip()
    if name == "contains" and len(args) == 1:
        return java_str(args[0]) in text
    if name == "startsWith" and len(args) == 1:
        return text.startswith(java_str(args[0]))
    if name == "endsWith" and len(args) == 1:
        return text.endswith(java_str(args[0]))
    if name == "indexOf" and len(args) == 1:
        return text.find(java_str(args[0]))
    if name == "lastIndexOf" and len(args) == 1:
        return text.rfind(java_str(args[0]))
    if name == "substring" and 1 <= len(args) <= 2 and all(is_number(a) for a in args):
        start, end = int(args[0]), int(args[1]) if len(args) == 2 else len(text)
        if not 0 <= start <= end <= len(text):
            raise ExpressionError(f"begin {start}, end {end}, length {len(text)}")
        return text[start:end]
    if name == "charAt" and len(args) == 1 and is_number(args[0]):
        return text[int(args[0])]
    if name == "replace" and len(args) == 2:
        return text.replace(java_str(args[0]), java_str(args[1]))
    if name == "split" and 1 <= len(args) <= 2:
        from ._filters import java_split

        return java_split(text, java_str(args[0]), int(args[1]) if len(args) == 2 else 0)
    if name == "concat" and len(args) == 1:
        return text + java_str(args[0])
    if name == "equalsIgnoreCase" and len(args) == 1:
        return isinstance(args[0], str) and text.lower() == args[0].lower()
    if name == "matches" and len(args) == 1:
        from . import _regex
        from ._runtime import remaining_budget

        return _regex.fullmatch(java_str(args[0]), text, remaining_budget())
    return _MISSING


_MISSING = object()


def call_method(obj: Any, name: str, *args: Any) -> Any:
    """The few Java methods Kestra flows call on values (``s.length()``, ``list.size()``, ``map.keySet()``)."""
    result: Any = _MISSING
    if name == "toString" and not args:
        return java_str(obj)
    if name == "equals" and len(args) == 1:
        return equals(obj, args[0])
    if isinstance(obj, str):
        result = _str_methods(obj, name, args)
    elif isinstance(obj, (list, tuple, Set)):
        if name == "size" and not args:
            result = len(obj)
        elif name == "isEmpty" and not args:
            result = len(obj) == 0
        elif name == "contains" and len(args) == 1:
            result = any(equals(item, args[0]) for item in obj)
        elif name == "get" and len(args) == 1 and is_number(args[0]) and isinstance(obj, (list, tuple)):
            index = int(args[0])
            if not 0 <= index < len(obj):
                raise ExpressionError(f"Index {index} out of bounds for length {len(obj)}")
            result = obj[index]
        elif name == "indexOf" and len(args) == 1:
            result = next((i for i, item in enumerate(obj) if equals(item, args[0])), -1)
    elif isinstance(obj, Mapping):
        if name == "size" and not args:
            result = len(obj)
        elif name == "isEmpty" and not args:
            result = len(obj) == 0
        elif name == "get" and len(args) == 1:
            result = obj.get(args[0])
        elif name == "getOrDefault" and len(args) == 2:
            result = obj.get(args[0], args[1])
        elif name == "containsKey" and len(args) == 1:
            result = args[0] in obj
        elif name == "containsValue" and len(args) == 1:
            result = any(equals(item, args[0]) for item in obj.values())
        elif name == "keySet" and not args:
            result = list(obj.keys())
        elif name == "values" and not args:
            result = list(obj.values())
    if result is _MISSING:
        from ._values import class_name

        raise ExpressionError(f"Method [{name}] of [{class_name(obj)}] does not exist or can not be called")
    return result
