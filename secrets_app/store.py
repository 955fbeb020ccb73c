"""Secret lookup: a namespace's own secrets, then its parents' (``a.b.c`` → ``a.b`` → ``a``)."""
from __future__ import annotations

from .crypto import decrypt, encrypt
from .models import Secret


def get_secret(namespace: str, key: str) -> str | None:
    parts = namespace.split(".")
    candidates = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
    found = {s.namespace: s.encrypted_value for s in Secret.objects.filter(key=key, namespace__in=candidates)}
    for candidate in candidates:
        if candidate in found:
            return decrypt(found[candidate])
    return None


def set_secret(namespace: str, key: str, value: str, description: str = "") -> Secret:
    secret, _ = Secret.objects.update_or_create(
        namespace=namespace, key=key, defaults={"encrypted_value": encrypt(value), "description": description})
    return secret
