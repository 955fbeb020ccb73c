"""Encryption at rest for secrets: Fernet with keys of their own (``CELESTRA_SECRETS_KEYS``).

The first key encrypts; every key decrypts (:class:`~cryptography.fernet.MultiFernet`), so a new key
is put first, ``manage.py secrets rotate`` re-encrypts every row with it, then the old key is
dropped. Values written before these keys existed (AES-GCM under a key derived from
``SECRET_KEY``) are still read, and rewritten by ``rotate``.
"""
from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

FERNET_PREFIX = "gAAAAA"  # base64 of Fernet's version byte 0x80 and the start of its timestamp


class SecretDecryptionError(Exception):
    """No configured key opens this value."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("No secrets key: set CELESTRA_SECRETS_KEYS")
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"CELESTRA_SECRETS_KEYS holds an invalid Fernet key: {exc}") from None


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.CELESTRA_SECRETS_KEYS))


def generate_key() -> str:
    return Fernet.generate_key().decode()


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def is_legacy(token: str) -> bool:
    return not token.startswith(FERNET_PREFIX)


def _legacy_decrypt(token: str) -> str:
    material = settings.CELESTRA.get("SECRETS_KEY") or settings.SECRET_KEY
    key = hashlib.sha256(material.encode()).digest()
    raw = base64.b64decode(token)
    return AESGCM(key).decrypt(raw[:12], raw[12:], None).decode()


def decrypt(token: str) -> str:
    if is_legacy(token):
        try:
            return _legacy_decrypt(token)
        except (InvalidTag, ValueError) as exc:
            raise SecretDecryptionError("This secret was written under another SECRET_KEY") from exc
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretDecryptionError("No key of CELESTRA_SECRETS_KEYS decrypts this secret") from None


def rotate(token: str) -> str:
    """The value encrypted with the first key (a legacy value is decrypted first)."""
    if is_legacy(token):
        return encrypt(_legacy_decrypt(token))
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretDecryptionError("No key of CELESTRA_SECRETS_KEYS decrypts this secret") from None
