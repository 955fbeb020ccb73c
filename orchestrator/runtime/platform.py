"""The platform services of a worker: internal storage, KV store, namespace files, logs, executions, secrets.

:class:`Platform` is the database/storage backend of
:class:`orchestrator.engine.memory_platform.PlatformBase` (which holds the shared logic): files on
Django's default storage (``kestra:///a/b/flow/executions/<id>/...`` is the storage path
``a/b/flow/executions/<id>/...``), KV entries and namespace files in ``storage_app``, logs, metrics and
executions in ``flows_app``, secrets through :class:`orchestrator.runtime.services.Services`.

Also here, the worker-side helpers:

* :func:`prepare_run_context`: gives a run context its platform, decrypts SECRET inputs and encrypted
  outputs in its variables, and collects the secret values to mask in its logs;
* :func:`attempt_log_file`: ``logToFile``: the attempt's log lines written to a storage file.

Django is imported lazily, so that importing this module stays cheap.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

from orchestrator.engine.memory_platform import TERMINATED, KVValue, PlatformBase, slugify
from orchestrator.engine.secrets_codec import SecretMasker, decrypt_encrypted_values, decrypt_secret_inputs

__all__ = ["Platform", "MaskingServices", "prepare_run_context", "attempt_log_file", "format_log_file", "mask"]


class Platform(PlatformBase):
    """Storage, KV, namespace files, logs and executions of the Celestra database for one task run."""

    @classmethod
    def for_context(cls, ctx: Any) -> "Platform":
        """The platform of a run context (``WorkerRunContext``, ``MemoryRunContext`` or alike)."""
        variables = getattr(ctx, "variables", None) or {}
        taskrun = variables.get("taskrun") if isinstance(variables.get("taskrun"), dict) else {}
        job = getattr(ctx, "job", None)
        taskrun_id = getattr(ctx, "taskrun_id", None)
        if not taskrun_id and isinstance(job, dict):
            taskrun_id = job.get("taskrun_id")
        return cls(ctx.namespace, ctx.flow_id, ctx.execution_id, getattr(ctx, "task_id", None),
                   taskrun_id or (taskrun or {}).get("id"))

    @classmethod
    def for_job(cls, job: dict[str, Any]) -> "Platform":
        return cls(job["namespace"], job["flow_id"], job["execution_id"], job.get("task_id"), job.get("taskrun_id"))

    # -- storage ---------------------------------------------------------------------------------------

    def _storage_put(self, path: str, content: bytes) -> None:
        from storage_app.storage import put

        put(path, content)

    def _storage_get(self, path: str) -> bytes | None:
        from django.core.files.storage import default_storage

        try:
            with default_storage.open(path, "rb") as handle:
                return handle.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def _storage_exists(self, path: str) -> bool:
        from django.core.files.storage import default_storage

        return bool(path) and default_storage.exists(path)

    def _storage_delete(self, path: str) -> bool:
        from django.core.files.storage import default_storage

        if not default_storage.exists(path):
            return False
        try:
            default_storage.delete(path)
        except (IsADirectoryError, PermissionError, FileNotFoundError):
            return False
        return True

    def _storage_list(self, prefix: str) -> list[str]:
        from django.core.files.storage import default_storage

        found: list[str] = []
        pending = [prefix.rstrip("/")]
        while pending:
            directory = pending.pop()
            try:
                directories, files = default_storage.listdir(directory)
            except (FileNotFoundError, NotADirectoryError):
                continue
            found.extend(f"{directory}/{name}" for name in files)
            pending.extend(f"{directory}/{name}" for name in directories)
        return found

    def allowed_local_paths(self) -> list[str]:
        from django.conf import settings

        return list((getattr(settings, "CELESTRA", {}) or {}).get("LOCAL_FILES_ALLOWED_PATHS") or [])

    def _related_execution(self, execution_id: str | None) -> bool:
        """Files of parent executions (any level up) and of child executions may be read."""
        if not execution_id:
            return False
        from flows_app.models import Execution

        if Execution.objects.filter(pk=execution_id, parent_id=self.execution_id).exists():
            return True
        current, seen = self.execution_id, set()
        while current and current not in seen:
            seen.add(current)
            current = Execution.objects.filter(pk=current).values_list("parent_id", flat=True).first()
            if current == execution_id:
                return True
        return False

    # -- KV --------------------------------------------------------------------------------------------

    @staticmethod
    def _kv_value(entry: Any) -> KVValue:
        return KVValue(entry.value, entry.type, entry.expires, entry.description or "", entry.created, entry.updated)

    def _kv_get(self, namespace: str, key: str) -> KVValue | None:
        from storage_app.models import KVEntry

        entry = KVEntry.objects.filter(namespace=namespace, key=key).first()
        return self._kv_value(entry) if entry is not None else None

    def _kv_put(self, namespace: str, key: str, entry: KVValue) -> None:
        from storage_app.models import KVEntry

        defaults = {"value": entry.value, "type": entry.type, "expires": entry.expires}
        if entry.description:
            defaults["description"] = entry.description
        KVEntry.objects.update_or_create(namespace=namespace, key=key, defaults=defaults)

    def _kv_delete(self, namespace: str, key: str) -> None:
        from storage_app.models import KVEntry

        KVEntry.objects.filter(namespace=namespace, key=key).delete()

    def _kv_items(self, namespace: str) -> list[tuple[str, KVValue]]:
        from storage_app.models import KVEntry

        return [(entry.key, self._kv_value(entry)) for entry in KVEntry.objects.filter(namespace=namespace)]

    # -- namespace files -------------------------------------------------------------------------------

    def _nsfile_list(self, namespace: str) -> list[str]:
        from storage_app.models import NamespaceFile

        return list(NamespaceFile.objects.filter(namespace=namespace).values_list("path", flat=True))

    def _nsfile_get(self, namespace: str, path: str) -> bytes | None:
        from storage_app.models import NamespaceFile

        row = NamespaceFile.objects.filter(namespace=namespace, path=path).first()
        return bytes(row.content) if row is not None else None

    def _nsfile_put(self, namespace: str, path: str, content: bytes) -> None:
        from storage_app.models import NamespaceFile

        NamespaceFile.objects.update_or_create(namespace=namespace, path=path, defaults={"content": content})

    def _nsfile_delete(self, namespace: str, path: str) -> bool:
        from storage_app.models import NamespaceFile

        deleted, _ = NamespaceFile.objects.filter(namespace=namespace, path=path).delete()
        return bool(deleted)

    # -- logs ------------------------------------------------------------------------------------------

    def _logs_of(self, execution_id: str) -> list[dict[str, Any]]:
        from flows_app.models import LogEntry

        return [entry.to_json() for entry in LogEntry.objects.filter(execution_id=execution_id)
                .order_by("timestamp", "id")]

    def purge_logs(self, *, namespace: str | None = None, flow_id: str | None = None,
                   levels: list[str] | None = None, start: datetime | None = None,
                   end: datetime | None = None) -> int:
        from django.db.models import Q

        from flows_app.models import LogEntry

        rows = LogEntry.objects.all()
        if namespace:
            rows = rows.filter(Q(namespace=namespace) | Q(namespace__startswith=namespace + "."))
        if flow_id:
            rows = rows.filter(flow_id=flow_id)
        if levels:
            rows = rows.filter(level__in=levels)
        if start is not None:
            rows = rows.filter(timestamp__gte=start)
        if end is not None:
            rows = rows.filter(timestamp__lte=end)
        deleted, _ = rows.delete()
        return deleted

    # -- executions ------------------------------------------------------------------------------------

    @staticmethod
    def _execution_rows(*, namespace: str | None = None, flow_id: str | None = None,
                        states: list[str] | None = None, start: datetime | None = None,
                        end: datetime | None = None) -> Any:
        from django.db.models import Q

        from flows_app.models import Execution

        rows = Execution.objects.filter(deleted=False)
        if namespace:
            rows = rows.filter(Q(namespace=namespace) | Q(namespace__startswith=namespace + "."))
        if flow_id:
            rows = rows.filter(flow_id=flow_id)
        if states:
            rows = rows.filter(state__in=states)
        if start is not None:
            rows = rows.filter(Q(start_date__gte=start) | Q(start_date__isnull=True, created__gte=start))
        if end is not None:
            rows = rows.filter(Q(start_date__lte=end) | Q(start_date__isnull=True, created__lte=end))
        return rows

    def set_trigger_disabled(self, namespace: str, flow_id: str, trigger_id: str, disabled: bool) -> None:
        from orchestrator.engine.errors import TaskFailure

        from .schedules import TriggerNotFound, set_trigger_disabled

        try:
            set_trigger_disabled(namespace, flow_id, trigger_id, disabled)
        except TriggerNotFound as exc:
            raise TaskFailure(str(exc)) from None

    def child_outputs(self, parent_task_id: str) -> list[dict[str, Any]]:
        from flows_app.models import Execution

        rows = (Execution.objects.filter(parent_id=self.execution_id).order_by("created")
                .values("internal", "outputs"))
        return [dict(row["outputs"] or {}) for row in rows
                if (row["internal"] or {}).get("parentTaskId") == parent_task_id]

    def count_executions(self, *, flows: list[tuple[str, str]] | None = None, namespaces: list[str] | None = None,
                         states: list[str] | None = None, start: datetime | None = None,
                         end: datetime | None = None) -> list[dict[str, Any]]:
        from django.db.models import Count

        if flows:
            results = []
            for namespace, flow_id in flows:
                count = self._execution_rows(flow_id=flow_id, states=states, start=start, end=end) \
                    .filter(namespace=namespace).count()
                results.append({"namespace": namespace, "flowId": flow_id, "count": count})
            return results
        counts: dict[tuple[str, str], int] = {}
        for namespace in namespaces or []:
            grouped = (self._execution_rows(namespace=namespace, states=states, start=start, end=end)
                       .order_by().values("namespace", "flow_id").annotate(n=Count("id")))
            for row in grouped:
                counts[(row["namespace"], row["flow_id"])] = row["n"]
        return [{"namespace": ns, "flowId": fid, "count": n} for (ns, fid), n in sorted(counts.items())]

    def purge_executions(self, *, namespace: str | None = None, flow_id: str | None = None,
                         start: datetime | None = None, end: datetime | None = None,
                         states: list[str] | None = None, purge_execution: bool = True, purge_log: bool = True,
                         purge_metric: bool = True, purge_storage: bool = True) -> dict[str, int]:
        from django.db import transaction

        from flows_app.models import Execution, LogEntry, MetricEntry

        wanted = [s for s in (states or TERMINATED) if s in TERMINATED]
        selected = list(self._execution_rows(namespace=namespace, flow_id=flow_id, states=wanted, start=start,
                                             end=end).exclude(pk=self.execution_id)
                        .values_list("id", "namespace", "flow_id"))
        ids = [row[0] for row in selected]
        result = {"executionsCount": 0, "logsCount": 0, "storagesCount": 0, "metricsCount": 0}
        if not ids:
            return result
        with transaction.atomic():
            if purge_log:
                result["logsCount"] = LogEntry.objects.filter(execution_id__in=ids).delete()[0]
            if purge_metric:
                result["metricsCount"] = MetricEntry.objects.filter(execution_id__in=ids).delete()[0]
            if purge_execution:
                Execution.objects.filter(pk__in=ids).delete()
                result["executionsCount"] = len(ids)
        if purge_storage:
            for execution_id, execution_namespace, execution_flow in selected:
                result["storagesCount"] += len(self.purge_execution_files(
                    execution_id, namespace=execution_namespace, flow_id=execution_flow))
        return result

    # -- secrets ---------------------------------------------------------------------------------------

    def secret(self, key: str, namespace: str | None = None) -> str:
        from .services import Services

        return Services(namespace or self.namespace, self.execution_id).secret(key)

    # -- flows (Git sync and push) ---------------------------------------------------------------------

    def flow_sources(self, namespace: str, include_children: bool = False) -> list[dict[str, Any]]:
        """``{namespace, id, revision, source}`` of the live flows of a namespace (and its children)."""
        from django.db.models import Q

        from flows_app.models import Flow

        scope = Q(namespace=namespace) | (Q(namespace__startswith=namespace + ".") if include_children else Q(pk=None))
        rows = Flow.objects.filter(scope, deleted=False).order_by("namespace", "flow_id")
        return [{"namespace": f.namespace, "id": f.flow_id, "revision": f.revision, "source": f.source} for f in rows]

    def deploy_flow(self, source: str) -> dict[str, Any]:
        """Validate and save a flow through the deploy service; ``{namespace, id, revision, created, changed}``."""
        from flows_app.services import deploy_flow

        deployed = deploy_flow(source)
        return {"namespace": deployed.flow.namespace, "id": deployed.flow.flow_id, "revision": deployed.flow.revision,
                "created": deployed.created, "changed": deployed.changed}

    def delete_flow(self, namespace: str, flow_id: str) -> None:
        from flows_app.services import delete_flow

        delete_flow(namespace, flow_id)


# --- worker helpers ---------------------------------------------------------------------------------------

class MaskingServices:
    """Wraps the expression services of a run context: values returned by ``secret()`` are masked in logs."""

    def __init__(self, services: Any, masker: SecretMasker):
        self._services = services
        self._masker = masker

    def secret(self, *args: Any, **kwargs: Any) -> Any:
        value = self._services.secret(*args, **kwargs)
        if isinstance(value, str):
            self._masker.add(value)
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._services, name)


def prepare_run_context(ctx: Any, flow: Any = None, platform: PlatformBase | None = None) -> SecretMasker:
    """Make a run context ready for a task: ``ctx.platform``, SECRET inputs and encrypted outputs
    decrypted in ``ctx.variables``, ``secret()`` results tracked; returns (and sets as
    ``ctx.secret_masker``) the masker that ``ctx.log`` must apply to each message."""
    masker = getattr(ctx, "secret_masker", None) or SecretMasker()
    if getattr(ctx, "platform", None) is None:
        ctx.platform = platform or Platform.for_context(ctx)
    variables = ctx.variables
    if flow is not None and variables.get("inputs") is not None:
        variables["inputs"] = decrypt_secret_inputs(getattr(flow, "inputs", None) or [], variables["inputs"], masker)
    if variables.get("outputs"):
        variables["outputs"] = decrypt_encrypted_values(variables["outputs"], masker)
    services = variables.get("__services__")
    if services is not None and not isinstance(services, MaskingServices):
        variables["__services__"] = MaskingServices(services, masker)
    ctx.secret_masker = masker
    return masker


def mask(ctx: Any, message: Any) -> str:
    """The message with the context's secrets masked (``ctx.secret_masker``, if any)."""
    masker = getattr(ctx, "secret_masker", None)
    text = message if isinstance(message, str) else str(message)
    return masker.mask(text) if masker else text


def _logger_name(name: str, width: int = 36) -> str:
    """Logback's ``%logger{36}``: leading segments shortened to their first letter until it fits."""
    if len(name) <= width:
        return name
    parts = name.split(".")
    for index in range(len(parts) - 1):
        parts[index] = parts[index][:1]
        if len(".".join(parts)) <= width:
            break
    return ".".join(parts)


def format_log_file(logs: Iterable[dict[str, Any]], *, namespace: str, flow_id: str, task_id: str | None,
                    thread: str = "worker") -> bytes:
    """Kestra's log file layout: ``%d{ISO8601} %-5.5level %-12.36thread %-12.36logger{36} %msg%n``."""
    logger = _logger_name(".".join(p for p in ("flow", "main", namespace, flow_id, task_id) if p))
    lines = []
    for entry in logs:
        stamp = entry.get("timestamp")
        try:
            moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) if stamp else datetime.now(timezone.utc)
        except ValueError:
            moment = datetime.now(timezone.utc)
        moment = moment.astimezone(timezone.utc)
        when = moment.strftime("%Y-%m-%d %H:%M:%S") + f",{moment.microsecond // 1000:03d}"
        level = str(entry.get("level") or "INFO")[:5]
        lines.append(f"{when} {level:<5} {thread[:36]:<12} {logger[:36]:<12} {entry.get('message', '')}\n")
    return "".join(lines).encode("utf-8")


def attempt_log_file(ctx: Any, attempt: int, *, platform: PlatformBase | None = None) -> str:
    """``logToFile``: write the attempt's log lines (``ctx.logs``) to ``<task run prefix>/attempt<N>.log``
    in storage and return its URI (the attempt's ``logFile``)."""
    target = platform or getattr(ctx, "platform", None) or Platform.for_context(ctx)
    content = format_log_file(getattr(ctx, "logs", []) or [], namespace=ctx.namespace, flow_id=ctx.flow_id,
                              task_id=getattr(ctx, "task_id", None), thread=f"worker-{slugify(str(attempt))}")
    return target.put_file(content, f"attempt{attempt}.log")
