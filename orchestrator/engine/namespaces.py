"""Which namespaces a flow may reach (Kestra's namespace inheritance).

A flow reads and writes the KV store and secrets of its own namespace and of its parents
(``company.team.etl`` → ``company.team`` → ``company``), as Kestra lets it without an allow-list;
a Subflow may also start the flows of the namespaces below its own. Any other namespace is refused
while isolation is on (the default; Kestra OSS lets every namespace through, its Enterprise edition
checks an allow-list). The shell switches isolation off with ``CELESTRA_NAMESPACE_ISOLATION=0``.
"""
from __future__ import annotations

from .errors import CelestraError

_isolation = {"enabled": True}


def configure(*, isolation: bool) -> None:
    _isolation["enabled"] = bool(isolation)


def isolation() -> bool:
    return _isolation["enabled"]


def is_same_or_parent(target: str, namespace: str) -> bool:
    """``target`` is ``namespace`` or one of its parents (by dot segments)."""
    return target == namespace or namespace.startswith(target + ".")


def may_read(namespace: str, target: str) -> bool:
    """May a flow of ``namespace`` use the KV store and secrets of ``target``?"""
    return not _isolation["enabled"] or is_same_or_parent(target, namespace)


def may_start(namespace: str, target: str) -> bool:
    """May a flow of ``namespace`` start (Subflow) a flow of ``target``?"""
    return may_read(namespace, target) or target.startswith(namespace + ".")


def may_manage(namespace: str, target: str) -> bool:
    """May a maintenance task (PurgeKV) of ``namespace`` act on ``target``: its own namespace, its
    parents' and the namespaces below it (a ``company`` flow keeps ``company.*`` tidy)."""
    return may_start(namespace, target)


class NamespaceAccessDenied(CelestraError):
    pass


def check_read(namespace: str, target: str, what: str) -> None:
    if not may_read(namespace, target):
        raise NamespaceAccessDenied(
            f"Namespace '{namespace}' cannot access the {what} of namespace '{target}': a flow reaches its own "
            "namespace and its parents' only")


def check_start(namespace: str, target: str) -> None:
    if not may_start(namespace, target):
        raise NamespaceAccessDenied(
            f"Namespace '{namespace}' cannot start a flow of namespace '{target}': a Subflow reaches its own "
            "namespace, its parents and the namespaces below it only")
