"""Outside local mode, Celestra refuses to start on unsafe defaults.

Registered as a Django system check (so every ``manage.py`` command, ``server`` roles included,
stops with the message) and called by ``orchestrator.wsgi`` for a web server started on its own.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


def unsafe_defaults() -> list[tuple[str, str]]:
    """(check id, message) for each unsafe setting; empty in local mode."""
    problems: list[tuple[str, str]] = []
    problems.extend(_bad_secrets_keys())
    if settings.CELESTRA_LOCAL_MODE:
        return problems
    key = settings.SECRET_KEY or ""
    if key == settings.CELESTRA_DEFAULT_SECRET_KEY or len(key) < 50:
        problems.append(("celestra.E001", "SECRET_KEY (or SECRET_KEY_FILE) must be set to a random value of 50 "
                                          "characters or more outside local mode"))
    if not settings.CELESTRA_SECRETS_KEYS_FROM_ENV:
        problems.append(("celestra.E002", "CELESTRA_SECRETS_KEYS (or CELESTRA_SECRETS_KEYS_FILE) must be set outside "
                                          "local mode: comma-separated Fernet keys, the first one encrypts "
                                          "(create one with `manage.py secrets generate-key`)"))
    if settings.CELERY_BROKER_URL.startswith("memory://"):
        problems.append(("celestra.E003", "CELERY_BROKER_URL must name a real broker (redis://…) outside local mode: "
                                          "the in-process broker reaches no executor or worker"))
    if "*" in settings.ALLOWED_HOSTS or any(h.startswith(".") and h.count(".") == 1 for h in settings.ALLOWED_HOSTS):
        problems.append(("celestra.E004", "ALLOWED_HOSTS must list this server's host names outside local mode "
                                          "('*' lets any DNS name reach it: DNS rebinding)"))
    return problems


def _bad_secrets_keys() -> list[tuple[str, str]]:
    from cryptography.fernet import Fernet

    for index, key in enumerate(settings.CELESTRA_SECRETS_KEYS):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            return [("celestra.E005", f"CELESTRA_SECRETS_KEYS: key #{index + 1} is not a Fernet key "
                                      "(32 url-safe base64-encoded bytes)")]
    return []


@checks.register(checks.Tags.security)
def celestra_security(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    return [checks.Error(message, id=check_id) for check_id, message in unsafe_defaults()]


def refuse_unsafe_defaults() -> None:
    problems = unsafe_defaults()
    if problems:
        raise ImproperlyConfigured("Celestra refuses to start:\n" + "\n".join(f"  {i}: {m}" for i, m in problems))
