"""The audit trail: one :class:`~accounts_app.models.AuditLog` row per change.

* API: :class:`~accounts_app.permissions.NamespacePermission` tells :func:`remember_need` what a
  request touches; the object is snapshotted before the view runs and :class:`AuditMiddleware`
  writes the row, with the snapshot after, once a change succeeded (status < 400).
* Admin: every ``django.contrib.admin`` LogEntry (add, change, delete) is copied with the request's
  address, which the middleware keeps for the thread.
* CLI and system: :func:`record` with ``source="cli"`` (the ``--user`` given, else the system actor).

Secret values are never recorded: their snapshot is ``{"key", "description", "value": "******"}``.
"""
from __future__ import annotations

import contextvars
import logging
from typing import Any, Callable

from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import AuditLog

log = logging.getLogger("celestra.audit")

MASK = "******"
SYSTEM_ACTOR = "system"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

#: (ip, user agent) of the request being served on this thread, for the admin's LogEntry copies
_origin: contextvars.ContextVar[tuple[str | None, str]] = contextvars.ContextVar("celestra_origin", default=(None, ""))


def client_ip(request: Any) -> str | None:
    """REMOTE_ADDR; the first X-Forwarded-For hop only when settings trust the proxy in front."""
    from django.conf import settings

    if getattr(settings, "CELESTRA_TRUST_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip() or None
    return request.META.get("REMOTE_ADDR") or None


def record(action: str, *, user: Any = None, source: str = AuditLog.API, namespace: str = "", target: str = "",
           before: Any = None, after: Any = None, ip: str | None = None, user_agent: str = "",
           method: str = "", path: str = "", status: int | None = None) -> AuditLog:
    """Write one audit row; ``user=None`` is the system actor."""
    name = getattr(user, "get_username", lambda: None)() if user is not None else None
    return AuditLog.objects.create(
        actor=user if user is not None and getattr(user, "pk", None) else None, actor_name=name or SYSTEM_ACTOR,
        source=source, action=action, namespace=namespace or "", target=target[:500], ip=ip,
        user_agent=(user_agent or "")[:300], method=method, path=path[:500], status=status,
        before=before, after=after)


def record_cli(action: str, user: Any = None, **fields: Any) -> AuditLog:
    return record(action, user=user, source=AuditLog.CLI, user_agent="cli", **fields)


# --- snapshots of what a request changes ------------------------------------------------------------

def _flow(namespace: str, flow_id: str) -> Any:
    from flows_app.models import Flow

    flow = Flow.objects.filter(namespace=namespace, flow_id=flow_id).first()
    if flow is None:
        return None
    return {"revision": flow.revision, "deleted": flow.deleted, "disabled": flow.disabled, "source": flow.source}


def _kv(namespace: str, key: str) -> Any:
    from storage_app.models import KVEntry

    entry = KVEntry.objects.filter(namespace=namespace, key=key).first()
    if entry is None:
        return None
    return {"type": entry.type, "value": entry.value,
            "expirationDate": entry.expires.isoformat() if entry.expires else None}


def _secret(namespace: str, key: str) -> Any:
    from secrets_app.models import Secret

    secret = Secret.objects.filter(namespace=namespace, key=key).first()
    if secret is None:
        return None
    # the ciphertext changes with each write: its fingerprint tells that the value changed, not what it is
    import hashlib

    return {"key": key, "description": secret.description, "value": MASK,
            "fingerprint": hashlib.sha256(secret.encrypted_value.encode()).hexdigest()[:12]}


def _trigger(namespace: str, flow_id: str, trigger_id: str) -> Any:
    from flows_app.trigger_models import TriggerState

    row = TriggerState.objects.filter(namespace=namespace, flow_id=flow_id, trigger_id=trigger_id).first()
    if row is None:
        return None
    return {"disabled": row.disabled, "executionId": row.execution_id, "backfill": row.backfill}


def _file(namespace: str, path: str) -> Any:
    from storage_app.models import NamespaceFile

    if not path:
        return None
    path = "/" + path.lstrip("/")
    row = NamespaceFile.objects.filter(namespace=namespace, path=path).first()
    if row is None:
        return None
    return {"path": row.path, "size": len(row.content), "updated": row.updated.isoformat()}


def _execution(execution_id: str) -> Any:
    from flows_app.models import Execution

    row = Execution.objects.filter(pk=execution_id).values("state", "deleted", "labels").first()
    return dict(row) if row else None


SNAPSHOTS: dict[str, Callable[..., Any]] = {
    "flow": _flow, "kv": _kv, "secret": _secret, "trigger": _trigger, "file": _file, "execution": _execution,
}


def snapshot(family: str, key: tuple) -> Any:
    function = SNAPSHOTS.get(family)
    if function is None or not key or any(k in (None, "") for k in key):
        return None
    try:
        return function(*key)
    except Exception:
        log.exception("audit snapshot of %s %s failed", family, key)
        return None


def remember_need(request: Any, need: Any) -> None:
    """Called by the permission class: keep what the request touches (and its state before) on the
    Django request, for :class:`AuditMiddleware`."""
    if request.method in SAFE_METHODS:
        return
    django_request = getattr(request, "_request", request)
    django_request._celestra_audit = (need, snapshot(need.family, need.key), request.user)


def _response_summary(response: Any) -> Any:
    """What a change answered, kept small: ids, states, counts."""
    data = getattr(response, "data", None)
    if isinstance(data, dict):
        keep = {k: data[k] for k in ("id", "namespace", "flowId", "revision", "count", "deleted") if k in data}
        state = data.get("state")
        if isinstance(state, dict) and "current" in state:
            keep["state"] = state["current"]
        return keep or None
    if isinstance(data, list):
        return {"count": len(data)}
    return None


class AuditMiddleware:
    """Writes the audit row of each successful API change, and keeps the request's origin for the
    admin's entries."""

    def __init__(self, get_response: Callable[[Any], Any]):
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        token = _origin.set((client_ip(request), request.META.get("HTTP_USER_AGENT", "")))
        try:
            response = self.get_response(request)
        finally:
            _origin.reset(token)
        pending = getattr(request, "_celestra_audit", None)
        if pending is not None and response.status_code < 400:
            need, before, user = pending
            after = snapshot(need.family, need.key) if need.family else None
            if after is None and not need.family:
                after = _response_summary(response)
            try:
                record(need.action, user=user, source=AuditLog.API, namespace=need.namespace or "",
                       target=need.target or request.path, before=before, after=after, ip=client_ip(request),
                       user_agent=request.META.get("HTTP_USER_AGENT", ""), method=request.method,
                       path=request.get_full_path(), status=response.status_code)
            except Exception:
                log.exception("could not write the audit row of %s %s", request.method, request.path)
        return response


@receiver(post_save, sender="admin.LogEntry")
def _admin_entry(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """Each admin add/change/delete is also an audit row (with who, from where, what changed)."""
    if not created:
        return
    verb = {1: "add", 2: "change", 3: "delete"}.get(instance.action_flag, "change")
    model = instance.content_type.model if instance.content_type_id else "object"
    namespace = ""
    try:
        obj = instance.get_edited_object() if verb != "delete" else None
        namespace = getattr(obj, "namespace", "") or ""
    except Exception:  # noqa: BLE001 - the object may be gone
        pass
    ip, agent = _origin.get()
    record(f"{model}.{verb}", user=instance.user, source=AuditLog.ADMIN, namespace=namespace,
           target=f"{model} {instance.object_repr}", after={"change": instance.get_change_message()},
           ip=ip, user_agent=agent, method="POST")
