"""Services behind expression functions: secret(), kv(), read(), errorLogs()."""
from __future__ import annotations

import base64
import os
from typing import Any

from orchestrator.engine.errors import CelestraError


class Services:
    """Bound to a namespace (and an execution when known); created per step or per task run."""

    def __init__(self, namespace: str, execution_id: str | None = None):
        self.namespace = namespace
        self.execution_id = execution_id

    def secret(self, key: str, namespace: str | None = None, subkey: str | None = None) -> Any:
        from orchestrator.engine.namespaces import check_read
        from secrets_app.store import get_secret

        if namespace:
            check_read(self.namespace, namespace, "secrets")
        value = get_secret(namespace or self.namespace, key)
        if value is None:
            raw = os.environ.get(f"SECRET_{key.upper()}")
            if raw is None:
                raise CelestraError(f"Cannot find secret for key '{key}'.")
            try:
                value = base64.b64decode(raw.replace("\n", ""), validate=False).decode()
            except (ValueError, UnicodeDecodeError):
                value = raw
        if subkey:
            import json

            try:
                return json.loads(value)[subkey]
            except (ValueError, KeyError, TypeError):
                raise CelestraError(f"Cannot find secret for key '{key}' and subkey '{subkey}'.") from None
        return value

    def kv(self, key: str, namespace: str | None = None, error_on_missing: bool = True) -> Any:
        from django.db.models import Q
        from django.utils import timezone

        from storage_app.models import KVEntry

        from orchestrator.engine.namespaces import check_read

        if namespace:
            check_read(self.namespace, namespace, "KV store")
            candidates = [namespace]
        else:
            parts = self.namespace.split(".")
            candidates = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
        live = KVEntry.objects.filter(key=key, namespace__in=candidates).filter(
            Q(expires__isnull=True) | Q(expires__gt=timezone.now()))
        found = {e.namespace: e.value for e in live}
        for candidate in candidates:
            if candidate in found:
                return found[candidate]
        if error_on_missing:
            raise CelestraError(f"The key '{key}' does not exist in the namespace '{namespace or self.namespace}'.")
        return None

    def read(self, path: str) -> str:
        from storage_app.storage import read_text

        return read_text(path, self.namespace)

    def file_exists(self, path: str) -> bool:
        from storage_app.storage import exists

        return exists(path, self.namespace)

    def file_size(self, path: str) -> int:
        from storage_app.storage import size

        return size(path, self.namespace)

    def error_logs(self) -> list[dict[str, Any]]:
        from flows_app.models import LogEntry

        if not self.execution_id:
            return []
        return [entry.to_json() for entry in LogEntry.objects.filter(execution_id=self.execution_id, level="ERROR")]
