"""What runnable tasks need from the platform, and an in-memory implementation for pure tests.

A task reaches the platform through ``ctx.platform``: internal storage (``kestra://`` files of the
current execution), the KV store, namespace files, the log store (``log.Fetch``/``PurgeLogs``), the
execution store (``execution.Count``/``PurgeExecutions``) and secrets (spec §10.1-§10.5).

:class:`PlatformBase` holds the logic shared by every backend (paths, URIs, access rules, KV typing,
globs); a backend implements the ``_storage_*``, ``_kv_*``, ``_nsfile_*`` primitives and the queries.
:class:`MemoryPlatform` keeps everything in dicts; ``orchestrator.runtime.platform.Platform`` is the
database/storage backend used by workers.
"""
from __future__ import annotations

import functools
import json
import posixpath
import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from .errors import CelestraError, TaskFailure
from .levels import LEVELS, level_at_least
from .namespaces import check_read
from .states import TERMINATED
from .timeutil import parse_duration

__all__ = [
    "KV_KEY_PATTERN", "KV_TYPES", "LEVELS", "KVValue", "MemoryPlatform", "PlatformBase", "glob_regex",
    "infer_kv_type", "coerce_kv_value", "slugify", "level_at_least", "parse_instant", "TERMINATED",
]

SCHEME = "kestra://"
KV_KEY_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
KV_KEY_ERROR = ("Key must start with an alphanumeric character (uppercase or lowercase) and can contain "
                "alphanumeric characters (uppercase or lowercase), dots (.), underscores (_), and hyphens (-) only.")
KV_TYPES = ("STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON")
OUT_OF_SCOPE = "Unable to read file, it is not from the current execution/namespace"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def slugify(text: str) -> str:
    """Kestra's ``Slugify.of``: whitespace to dashes, accents dropped, other symbols removed, lower case."""
    value = re.sub(r"\s+", "-", str(text))
    value = unicodedata.normalize("NFD", value)
    value = re.sub(r"[^\w-]", "", value, flags=re.ASCII)
    value = re.sub(r"-{2,}", "-", value).strip("-")
    return value.lower()


def parse_instant(value: Any) -> datetime | None:
    """An ISO-8601 instant (``Z`` or offset; a date alone is midnight UTC), as an aware datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    text = str(value).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
        text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00").replace("z", "+00:00"))
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise TaskFailure(f"Invalid date '{value}': an ISO-8601 date-time is expected") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@functools.lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Java's ``glob:`` PathMatcher syntax: ``*`` within a segment, ``**`` across, ``?``, ``[..]``, ``{a,b}``."""
    out: list[str] = []
    i, depth = 0, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            if pattern.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1:end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        elif char == "{":
            out.append("(?:")
            depth += 1
        elif char == "}" and depth:
            out.append(")")
            depth -= 1
        elif char == "," and depth:
            out.append("|")
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + "\\Z", re.DOTALL)


def glob_match(pattern: str, path: str) -> bool:
    return bool(glob_regex(pattern).match(path))


# --- KV values --------------------------------------------------------------------------------------------

@dataclass
class KVValue:
    """A KV entry: its typed value, its type and its expiration."""

    value: Any
    type: str = "STRING"
    expires: datetime | None = None
    description: str = ""
    created: datetime = field(default_factory=utcnow)
    updated: datetime = field(default_factory=utcnow)

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires is not None and self.expires <= (now or utcnow())


def infer_kv_type(value: Any) -> str:
    """The KV type of a value stored without ``kvType``."""
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, (int, float)):
        return "NUMBER"
    if isinstance(value, (dict, list)):
        return "JSON"
    if isinstance(value, datetime):
        return "DATETIME"
    if isinstance(value, date):
        return "DATE"
    if isinstance(value, timedelta):
        return "DURATION"
    return "STRING"


def _json_ready(value: Any) -> Any:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        from .timeutil import format_duration

        return format_duration(value)
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value


def coerce_kv_value(value: Any, kv_type: str | None) -> tuple[str, Any]:
    """``(type, JSON-ready value)`` to store, following kv.Set: a string is parsed per ``kvType``.

    Without ``kvType`` the type is inferred from the rendered value (a string stays a STRING).
    """
    if kv_type is None:
        return infer_kv_type(value), _json_ready(value)
    kv_type = kv_type.upper()
    if kv_type not in KV_TYPES:
        raise TaskFailure(f"Invalid kvType '{kv_type}', must be one of {', '.join(KV_TYPES)}")
    if isinstance(value, str):
        text = value.strip()
        try:
            if kv_type == "NUMBER":
                number = json.loads(text)
                if isinstance(number, bool) or not isinstance(number, (int, float)):
                    raise ValueError(text)
                return kv_type, number
            if kv_type == "BOOLEAN":
                return kv_type, text.lower() == "true"
            if kv_type == "DATETIME":
                return kv_type, _json_ready(parse_instant(text))
            if kv_type == "DATE":
                if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                    return kv_type, date.fromisoformat(text).isoformat()
                return kv_type, _json_ready(parse_instant(text))
            if kv_type == "DURATION":
                from .timeutil import format_duration

                return kv_type, format_duration(parse_duration(text))
            if kv_type == "JSON":
                return kv_type, json.loads(text)
        except (ValueError, TaskFailure) as exc:
            raise TaskFailure(f"Unable to read the value `{value}` as {kv_type}: {exc}") from None
        return kv_type, value
    return kv_type, _json_ready(value)


def check_kv_key(key: str) -> None:
    if not isinstance(key, str) or not KV_KEY_PATTERN.match(key):
        raise TaskFailure(KV_KEY_ERROR)


# --- the platform -----------------------------------------------------------------------------------------

class PlatformBase:
    """Storage, KV, namespace files, logs, executions and secrets for one task run.

    ``namespace``/``flow_id``/``execution_id``/``task_id``/``taskrun_id`` locate the current task run;
    files it creates go under :meth:`task_prefix`. ``related_executions`` are other executions whose
    files the task may read (parent/child executions of Subflow and ForEachItem).
    """

    def __init__(self, namespace: str, flow_id: str, execution_id: str, task_id: str | None = None,
                 taskrun_id: str | None = None, *, related_executions: Iterable[str] = ()):
        self.namespace = namespace
        self.flow_id = flow_id
        self.execution_id = execution_id
        self.task_id = task_id
        self.taskrun_id = taskrun_id
        self.related_executions = set(related_executions)

    # -- paths -----------------------------------------------------------------------------------------

    @staticmethod
    def namespace_path(namespace: str) -> str:
        return namespace.replace(".", "/")

    def execution_prefix(self, execution_id: str | None = None, *, namespace: str | None = None,
                         flow_id: str | None = None) -> str:
        """``<ns/as/path>/<flow>/executions/<id>`` (no scheme, no leading slash)."""
        return (f"{self.namespace_path(namespace or self.namespace)}/{slugify(flow_id or self.flow_id)}"
                f"/executions/{execution_id or self.execution_id}")

    def execution_prefixes(self, execution_id: str | None = None, *, namespace: str | None = None,
                           flow_id: str | None = None) -> list[str]:
        """The execution prefix, and its variant with the flow id as written (FILE inputs use it)."""
        slugged = self.execution_prefix(execution_id, namespace=namespace, flow_id=flow_id)
        raw = (f"{self.namespace_path(namespace or self.namespace)}/{flow_id or self.flow_id}"
               f"/executions/{execution_id or self.execution_id}")
        return [slugged] if raw == slugged else [slugged, raw]

    def task_prefix(self) -> str:
        if not self.task_id or not self.taskrun_id:
            raise CelestraError("The platform is not bound to a task run: no task file can be written")
        return f"{self.execution_prefix()}/tasks/{slugify(self.task_id)}/{self.taskrun_id}"

    @staticmethod
    def uri(path: str) -> str:
        return SCHEME + "/" + path.lstrip("/")

    @staticmethod
    def path_of(uri: str) -> str:
        """The storage path of a ``kestra://`` URI; refuses other schemes and ``..``."""
        if not isinstance(uri, str) or not uri.startswith(SCHEME):
            raise TaskFailure(f"Invalid internal storage URI: {uri}")
        path = uri[len(SCHEME):].lstrip("/")
        if not path or ".." in path.split("/"):
            raise TaskFailure(f"Invalid internal storage URI: {uri}")
        return path

    @staticmethod
    def safe_name(name: str) -> str:
        """A file name (or relative path) inside a prefix: no leading slash, no ``..``."""
        cleaned = posixpath.normpath("/" + str(name).replace("\\", "/")).lstrip("/")
        if not cleaned or cleaned == ".":
            raise TaskFailure(f"Invalid file name: {name!r}")
        return cleaned

    @staticmethod
    def temp_name(extension: str | None = None) -> str:
        ext = extension or ".tmp"
        if not ext.startswith("."):
            ext = "." + ext
        return f"{uuid.uuid4().hex[:22]}{ext}"

    def check_access(self, path: str) -> None:
        """A task reads files of its namespace (namespace files, KV, its own executions) and of related
        executions; anything else is refused with Kestra's message."""
        if path.startswith(self.namespace_path(self.namespace) + "/"):
            return
        match = re.search(r"/executions/([^/]+)/", "/" + path)
        if match and (match.group(1) == self.execution_id or match.group(1) in self.related_executions):
            return
        if self._related_execution(match.group(1) if match else None):
            return
        raise TaskFailure(OUT_OF_SCOPE)

    def _related_execution(self, execution_id: str | None) -> bool:
        return False

    # -- storage ---------------------------------------------------------------------------------------

    def put_file(self, content: bytes | str, name: str | None = None, *, extension: str | None = None) -> str:
        """Store a file of the current task run; ``name`` may hold sub-folders. Returns its URI."""
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        filename = self.safe_name(name) if name else self.temp_name(extension)
        path = f"{self.task_prefix()}/{filename}"
        self._storage_put(path, data)
        return self.uri(path)

    def put_at(self, uri: str, content: bytes | str) -> str:
        """Write a file at a given ``kestra://`` location of the task's namespace or execution."""
        path = self.path_of(uri)
        self.check_access(path)
        self._storage_put(path, content.encode("utf-8") if isinstance(content, str) else bytes(content))
        return self.uri(path)

    def read_file(self, uri: str) -> bytes:
        """Content of a ``kestra://`` file (current execution, namespace or related execution),
        ``nsfile://`` namespace file or allowed ``file://`` path."""
        if isinstance(uri, str) and uri.startswith("nsfile://"):
            namespace, path = self._nsfile_target(uri)
            content = self.nsfile_read(namespace, path)
            if content is None:
                raise TaskFailure(f"File not found: {uri}")
            return content
        if isinstance(uri, str) and uri.startswith("file://"):
            return self._local_file(uri)
        path = self.path_of(uri)
        self.check_access(path)
        content = self._storage_get(path)
        if content is None:
            content = self._nsfile_from_storage_path(path)
        if content is None:
            raise TaskFailure(f"File not found: {uri}")
        return content

    def read_text(self, uri: str, charset: str = "utf-8") -> str:
        try:
            return self.read_file(uri).decode(_python_charset(charset))
        except LookupError:
            raise TaskFailure(f"Unknown charset '{charset}'") from None

    def file_exists(self, uri: str) -> bool:
        path = self.path_of(uri)
        self.check_access(path)
        return self._storage_exists(path) or self._nsfile_from_storage_path(path) is not None

    def file_size(self, uri: str) -> int:
        return len(self.read_file(uri))

    def delete_file(self, uri: str) -> bool:
        path = self.path_of(uri)
        self.check_access(path)
        return self._storage_delete(path)

    def list_files(self, prefix_uri: str) -> list[str]:
        path = self.path_of(prefix_uri).rstrip("/")
        return [self.uri(p) for p in sorted(self._storage_list(path + "/"))]

    def execution_files(self) -> list[str]:
        found: list[str] = []
        for prefix in self.execution_prefixes():
            found.extend(self._storage_list(prefix + "/"))
        return [self.uri(p) for p in sorted(set(found))]

    def purge_execution_files(self, execution_id: str | None = None, *, namespace: str | None = None,
                              flow_id: str | None = None) -> list[str]:
        """Delete every file of an execution (the current one by default); return their URIs."""
        deleted: list[str] = []
        for prefix in self.execution_prefixes(execution_id, namespace=namespace, flow_id=flow_id):
            for path in sorted(self._storage_list(prefix + "/")):
                if self._storage_delete(path):
                    deleted.append(self.uri(path))
        return deleted

    def _local_file(self, uri: str) -> bytes:
        from pathlib import Path

        target = Path(uri[len("file://"):]).resolve()
        for allowed in self.allowed_local_paths():
            base = Path(allowed).resolve()
            if target == base or base in target.parents:
                try:
                    return target.read_bytes()
                except OSError as exc:
                    raise TaskFailure(f"Unable to read {uri}: {exc}") from None
        raise TaskFailure(f"The path {target} is not authorized. Only files inside the working directory are "
                          "allowed by default, other paths must be allowed in the local files configuration.")

    def allowed_local_paths(self) -> list[str]:
        return []

    # -- namespace files -------------------------------------------------------------------------------

    def _nsfile_target(self, uri: str) -> tuple[str, str]:
        rest = uri[len("nsfile://"):]
        if rest.startswith("/"):
            return self.namespace, self.nsfile_path(rest)
        namespace, _, path = rest.partition("/")
        return namespace, self.nsfile_path(path)

    @staticmethod
    def nsfile_path(path: str) -> str:
        """``/a/b.sql`` form of a namespace file path."""
        cleaned = posixpath.normpath("/" + str(path).replace("\\", "/").lstrip("/"))
        if cleaned == "/" or ".." in cleaned.split("/"):
            raise TaskFailure(f"Invalid namespace file path: {path}")
        return cleaned

    def nsfile_uri(self, namespace: str, path: str) -> str:
        """``kestra:///<ns/as/path>/_files/<path>``: how Kestra addresses a namespace file."""
        return self.uri(f"{self.namespace_path(namespace)}/_files{self.nsfile_path(path)}")

    def _nsfile_from_storage_path(self, path: str) -> bytes | None:
        head, sep, rest = path.partition("/_files/")
        if not sep or not rest:
            return None
        return self.nsfile_read(head.replace("/", "."), "/" + rest)

    def nsfile_list(self, namespace: str) -> list[str]:
        """Paths (``/a/b.sql``) of every file of a namespace."""
        return sorted(self._nsfile_list(namespace))

    def nsfile_read(self, namespace: str, path: str) -> bytes | None:
        return self._nsfile_get(namespace, self.nsfile_path(path))

    def nsfile_write(self, namespace: str, path: str, content: bytes, conflict: str = "OVERWRITE") -> str | None:
        """Write a namespace file; ``conflict``: OVERWRITE, ERROR (fail) or SKIP (keep; returns None)."""
        target = self.nsfile_path(path)
        if conflict != "OVERWRITE" and self._nsfile_get(namespace, target) is not None:
            if conflict == "ERROR":
                raise TaskFailure(f"File '{target}' already exists in namespace '{namespace}' "
                                  "and conflict is set to ERROR")
            return None
        self._nsfile_put(namespace, target, bytes(content))
        return self.nsfile_uri(namespace, target)

    def nsfile_delete(self, namespace: str, path: str) -> bool:
        return self._nsfile_delete(namespace, self.nsfile_path(path))

    # -- KV --------------------------------------------------------------------------------------------

    def kv_get(self, key: str, namespace: str | None = None) -> KVValue | None:
        """The live entry of ``key`` (expired entries are deleted and read as missing)."""
        check_kv_key(key)
        namespace = namespace or self.namespace
        entry = self._kv_get(namespace, key)
        if entry is not None and entry.expired():
            self._kv_delete(namespace, key)
            return None
        return entry

    def kv_set(self, key: str, value: Any, namespace: str | None = None, *, kv_type: str | None = None,
               ttl: timedelta | str | None = None, overwrite: bool = True, description: str | None = None) -> KVValue:
        check_kv_key(key)
        namespace = namespace or self.namespace
        if not overwrite and self.kv_get(key, namespace) is not None:
            raise TaskFailure(f"Cannot set value for key '{key}'. "
                              "Key already exists and `overwrite` is set to `false`.")
        stored_type, stored = coerce_kv_value(value, kv_type)
        if isinstance(ttl, str):
            ttl = parse_duration(ttl)
        expires = utcnow() + ttl if ttl is not None else None
        entry = KVValue(stored, stored_type, expires, description or "")
        self._kv_put(namespace, key, entry)
        return entry

    def kv_delete(self, key: str, namespace: str | None = None) -> bool:
        check_kv_key(key)
        namespace = namespace or self.namespace
        entry = self._kv_get(namespace, key)
        if entry is None:
            return False
        self._kv_delete(namespace, key)
        return not entry.expired()

    def kv_list(self, namespace: str | None = None, prefix: str | None = None) -> list[str]:
        """Live keys of a namespace, sorted; only those starting with ``prefix`` when given."""
        namespace = namespace or self.namespace
        now = utcnow()
        return sorted(key for key, entry in self._kv_items(namespace)
                      if not entry.expired(now) and (not prefix or key.startswith(prefix)))

    # -- logs --------------------------------------------------------------------------------------------

    def fetch_logs(self, execution_id: str | None = None, *, task_ids: list[str] | None = None,
                   min_level: str = "INFO") -> list[dict[str, Any]]:
        """Log entries (Kestra's LogEntry JSON) of an execution at ``min_level`` or more severe, in
        time order; with ``task_ids``, the entries of those tasks, task after task."""
        entries = [e for e in self._logs_of(execution_id or self.execution_id)
                   if level_at_least(e.get("level") or "INFO", min_level)]
        if not task_ids:
            return entries
        return [e for task_id in task_ids for e in entries if e.get("taskId") == task_id]

    # -- backend primitives ------------------------------------------------------------------------------

    def _storage_put(self, path: str, content: bytes) -> None:
        raise NotImplementedError

    def _storage_get(self, path: str) -> bytes | None:
        raise NotImplementedError

    def _storage_exists(self, path: str) -> bool:
        return self._storage_get(path) is not None

    def _storage_delete(self, path: str) -> bool:
        raise NotImplementedError

    def _storage_list(self, prefix: str) -> list[str]:
        raise NotImplementedError

    def _kv_get(self, namespace: str, key: str) -> KVValue | None:
        raise NotImplementedError

    def _kv_put(self, namespace: str, key: str, entry: KVValue) -> None:
        raise NotImplementedError

    def _kv_delete(self, namespace: str, key: str) -> None:
        raise NotImplementedError

    def _kv_items(self, namespace: str) -> list[tuple[str, KVValue]]:
        raise NotImplementedError

    def _nsfile_list(self, namespace: str) -> list[str]:
        raise NotImplementedError

    def _nsfile_get(self, namespace: str, path: str) -> bytes | None:
        raise NotImplementedError

    def _nsfile_put(self, namespace: str, path: str, content: bytes) -> None:
        raise NotImplementedError

    def _nsfile_delete(self, namespace: str, path: str) -> bool:
        raise NotImplementedError

    def _logs_of(self, execution_id: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def purge_logs(self, *, namespace: str | None = None, flow_id: str | None = None,
                   levels: list[str] | None = None, start: datetime | None = None,
                   end: datetime | None = None) -> int:
        raise NotImplementedError

    def count_executions(self, *, flows: list[tuple[str, str]] | None = None, namespaces: list[str] | None = None,
                         states: list[str] | None = None, start: datetime | None = None,
                         end: datetime | None = None) -> list[dict[str, Any]]:
        """``[{namespace, flowId, count}]``: one row per flow of ``flows`` (zero counts included), else
        per flow that has executions in ``namespaces`` (sub-namespaces included)."""
        raise NotImplementedError

    def purge_executions(self, *, namespace: str | None = None, flow_id: str | None = None,
                         start: datetime | None = None, end: datetime | None = None,
                         states: list[str] | None = None, purge_execution: bool = True, purge_log: bool = True,
                         purge_metric: bool = True, purge_storage: bool = True) -> dict[str, int]:
        raise NotImplementedError

    def secret(self, key: str, namespace: str | None = None) -> str:
        raise NotImplementedError

    def set_trigger_disabled(self, namespace: str, flow_id: str, trigger_id: str, disabled: bool) -> None:
        """Enable or disable a trigger of a flow (Toggle); raises TaskFailure when it does not exist."""
        raise NotImplementedError

    def child_outputs(self, parent_task_id: str) -> list[dict[str, Any]]:
        """Flow outputs of the executions created by task ``parent_task_id`` of the current
        execution, in creation order (ForEachItem's merge)."""
        raise NotImplementedError


def _python_charset(charset: str) -> str:
    import codecs

    return codecs.lookup(charset or "utf-8").name


def in_namespace(candidate: str, namespace: str) -> bool:
    return candidate == namespace or candidate.startswith(namespace + ".")


# --- in memory --------------------------------------------------------------------------------------------

class MemoryPlatform(PlatformBase):
    """Everything in dicts; the stores may be shared between several platforms (``share``).

    ``logs``: Kestra LogEntry dicts (``executionId``, ``taskId``, ``level``, ``message``, ``timestamp``...);
    ``executions``: ``{id, namespace, flowId, state, startDate}`` dicts; ``secrets``: ``{(ns, key): value}``
    or ``{key: value}``.
    """

    def __init__(self, namespace: str = "company.team", flow_id: str = "flow", execution_id: str = "execution",
                 task_id: str | None = "task", taskrun_id: str | None = "taskrun", *,
                 files: dict[str, bytes] | None = None, kv: dict[tuple[str, str], KVValue] | None = None,
                 namespace_files: dict[tuple[str, str], bytes] | None = None,
                 logs: list[dict[str, Any]] | None = None, executions: list[dict[str, Any]] | None = None,
                 metrics: list[dict[str, Any]] | None = None, secrets: dict[Any, str] | None = None,
                 related_executions: Iterable[str] = (), allowed_paths: Iterable[str] = (),
                 triggers: dict[tuple[str, str, str], bool] | None = None):
        super().__init__(namespace, flow_id, execution_id, task_id, taskrun_id, related_executions=related_executions)
        self.files: dict[str, bytes] = files if files is not None else {}
        self.kv: dict[tuple[str, str], KVValue] = kv if kv is not None else {}
        self.namespace_files: dict[tuple[str, str], bytes] = namespace_files if namespace_files is not None else {}
        self.logs: list[dict[str, Any]] = logs if logs is not None else []
        self.executions: list[dict[str, Any]] = executions if executions is not None else []
        self.metrics: list[dict[str, Any]] = metrics if metrics is not None else []
        self.secrets: dict[Any, str] = secrets if secrets is not None else {}
        self.allowed_paths = list(allowed_paths)
        #: (namespace, flow id, trigger id) -> disabled, for the triggers that exist
        self.triggers: dict[tuple[str, str, str], bool] = triggers if triggers is not None else {}

    def share(self, **binding: Any) -> "MemoryPlatform":
        """Another platform on the same stores, bound to another task run/execution."""
        params = {"namespace": self.namespace, "flow_id": self.flow_id, "execution_id": self.execution_id,
                  "task_id": self.task_id, "taskrun_id": self.taskrun_id,
                  "related_executions": self.related_executions, **binding}
        return MemoryPlatform(**params, files=self.files, kv=self.kv, namespace_files=self.namespace_files,
                              logs=self.logs, executions=self.executions, metrics=self.metrics,
                              secrets=self.secrets, allowed_paths=self.allowed_paths, triggers=self.triggers)

    def allowed_local_paths(self) -> list[str]:
        return self.allowed_paths

    def set_trigger_disabled(self, namespace: str, flow_id: str, trigger_id: str, disabled: bool) -> None:
        key = (namespace, flow_id, trigger_id)
        if key not in self.triggers:
            raise TaskFailure(f"Trigger '{trigger_id}' not found in flow '{namespace}'.'{flow_id}'")
        self.triggers[key] = disabled

    def child_outputs(self, parent_task_id: str) -> list[dict[str, Any]]:
        return [dict(e.get("outputs") or {}) for e in self.executions
                if e.get("parentId") == self.execution_id and e.get("parentTaskId") == parent_task_id]

    # storage
    def _storage_put(self, path: str, content: bytes) -> None:
        self.files[path] = content

    def _storage_get(self, path: str) -> bytes | None:
        return self.files.get(path)

    def _storage_delete(self, path: str) -> bool:
        return self.files.pop(path, None) is not None

    def _storage_list(self, prefix: str) -> list[str]:
        return [p for p in self.files if p.startswith(prefix)]

    # KV
    def _kv_get(self, namespace: str, key: str) -> KVValue | None:
        return self.kv.get((namespace, key))

    def _kv_put(self, namespace: str, key: str, entry: KVValue) -> None:
        previous = self.kv.get((namespace, key))
        if previous is not None:
            entry.created = previous.created
        self.kv[(namespace, key)] = entry

    def _kv_delete(self, namespace: str, key: str) -> None:
        self.kv.pop((namespace, key), None)

    def _kv_items(self, namespace: str) -> list[tuple[str, KVValue]]:
        return [(key, entry) for (ns, key), entry in self.kv.items() if ns == namespace]

    # namespace files
    def _nsfile_list(self, namespace: str) -> list[str]:
        return [path for (ns, path) in self.namespace_files if ns == namespace]

    def _nsfile_get(self, namespace: str, path: str) -> bytes | None:
        return self.namespace_files.get((namespace, path))

    def _nsfile_put(self, namespace: str, path: str, content: bytes) -> None:
        self.namespace_files[(namespace, path)] = content

    def _nsfile_delete(self, namespace: str, path: str) -> bool:
        return self.namespace_files.pop((namespace, path), None) is not None

    # logs
    def _logs_of(self, execution_id: str) -> list[dict[str, Any]]:
        entries = [e for e in self.logs if e.get("executionId") == execution_id]
        return sorted(entries, key=lambda e: str(e.get("timestamp") or ""))

    def purge_logs(self, *, namespace: str | None = None, flow_id: str | None = None,
                   levels: list[str] | None = None, start: datetime | None = None,
                   end: datetime | None = None) -> int:
        def matches(entry: dict[str, Any]) -> bool:
            moment = parse_instant(entry.get("timestamp"))
            return ((namespace is None or in_namespace(entry.get("namespace") or "", namespace))
                    and (flow_id is None or entry.get("flowId") == flow_id)
                    and (not levels or entry.get("level") in levels)
                    and (start is None or (moment is not None and moment >= start))
                    and (end is None or (moment is not None and moment <= end)))

        kept = [e for e in self.logs if not matches(e)]
        count = len(self.logs) - len(kept)
        self.logs[:] = kept
        return count

    # executions
    def _executions(self, *, namespace: str | None, flow_id: str | None, states: list[str] | None,
                    start: datetime | None, end: datetime | None) -> list[dict[str, Any]]:
        selected = []
        for execution in self.executions:
            moment = parse_instant(execution.get("startDate"))
            if namespace is not None and not in_namespace(execution.get("namespace") or "", namespace):
                continue
            if flow_id is not None and execution.get("flowId") != flow_id:
                continue
            if states and execution.get("state") not in states:
                continue
            if start is not None and (moment is None or moment < start):
                continue
            if end is not None and (moment is None or moment > end):
                continue
            selected.append(execution)
        return selected

    def count_executions(self, *, flows: list[tuple[str, str]] | None = None, namespaces: list[str] | None = None,
                         states: list[str] | None = None, start: datetime | None = None,
                         end: datetime | None = None) -> list[dict[str, Any]]:
        if flows:
            return [{"namespace": ns, "flowId": fid,
                     "count": len([e for e in self._executions(namespace=None, flow_id=fid, states=states,
                                                               start=start, end=end) if e.get("namespace") == ns])}
                    for ns, fid in flows]
        counts: dict[tuple[str, str], int] = {}
        for namespace in namespaces or []:
            for execution in self._executions(namespace=namespace, flow_id=None, states=states, start=start, end=end):
                key = (execution["namespace"], execution["flowId"])
                counts[key] = counts.get(key, 0) + 1
        return [{"namespace": ns, "flowId": fid, "count": n} for (ns, fid), n in sorted(counts.items())]

    def purge_executions(self, *, namespace: str | None = None, flow_id: str | None = None,
                         start: datetime | None = None, end: datetime | None = None,
                         states: list[str] | None = None, purge_execution: bool = True, purge_log: bool = True,
                         purge_metric: bool = True, purge_storage: bool = True) -> dict[str, int]:
        wanted = [s for s in (states or TERMINATED) if s in TERMINATED]
        selected = [e for e in self._executions(namespace=namespace, flow_id=flow_id, states=wanted, start=start,
                                                end=end) if e.get("id") != self.execution_id]
        ids = {e["id"] for e in selected}
        result = {"executionsCount": 0, "logsCount": 0, "storagesCount": 0, "metricsCount": 0}
        if purge_log:
            kept = [l for l in self.logs if l.get("executionId") not in ids]
            result["logsCount"] = len(self.logs) - len(kept)
            self.logs[:] = kept
        if purge_metric:
            kept = [m for m in self.metrics if m.get("executionId") not in ids]
            result["metricsCount"] = len(self.metrics) - len(kept)
            self.metrics[:] = kept
        if purge_storage:
            for execution in selected:
                result["storagesCount"] += len(self.purge_execution_files(
                    execution["id"], namespace=execution["namespace"], flow_id=execution["flowId"]))
        if purge_execution:
            self.executions[:] = [e for e in self.executions if e.get("id") not in ids]
            result["executionsCount"] = len(ids)
        return result

    # secrets
    def secret(self, key: str, namespace: str | None = None) -> str:
        namespace = namespace or self.namespace
        check_read(self.namespace, namespace, "secrets")
        parts = namespace.split(".")
        for candidate in [".".join(parts[:i]) for i in range(len(parts), 0, -1)]:
            if (candidate, key) in self.secrets:
                return self.secrets[(candidate, key)]
        if key in self.secrets:
            return self.secrets[key]
        raise TaskFailure(f"Cannot find secret for key '{key}'.")


_platform_factory: Callable[[Any], PlatformBase] | None = None


def set_platform_factory(factory: Callable[[Any], PlatformBase] | None) -> None:
    """The runtime registers how a run context that carries no platform gets one (the database
    platform); the engine never imports the runtime."""
    global _platform_factory
    _platform_factory = factory


def platform_of(ctx: Any) -> PlatformBase:
    """``ctx.platform``; a context that carries none gets one from the registered factory."""
    platform: PlatformBase | None = getattr(ctx, "platform", None)
    if platform is not None:
        return platform
    if _platform_factory is None:
        raise TaskFailure("This task needs the platform services (storage, KV, logs), "
                          "which this run context does not provide")
    platform = _platform_factory(ctx)
    try:
        ctx.platform = platform
    except AttributeError:  # pragma: no cover - read-only contexts
        pass
    return platform


def matches_any(patterns: Iterable[str], path: str) -> bool:
    """``path`` (``/a/b``) matches one of the globs; a pattern without leading slash is relative to root."""
    for pattern in patterns:
        pattern = str(pattern)
        anchored = pattern if pattern.startswith("/") else "/" + pattern
        if glob_match(anchored, path):
            return True
    return False

