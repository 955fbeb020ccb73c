"""Encryption at rest for secrets: AES-GCM with a key derived from CELESTRA_SECRET_KEY (or SECRET_KEY)."""
from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings


def _key() -> bytes:
    material = (getattr(settings, "CELESTRA", None) or {}).get("SECRETS_KEY") or settings.SECRET_KEY
    return hashlib.sha256(material.encode()).digest()


def encrypt(plaintext: str) -> str:
    nonce = os.urandom(12)
    return base64.b64encode(nonce + AESGCM(_key()).encrypt(nonce, plaintext.encode(), None)).decode()


def decrypt(token: str) -> str:
    raw = base64.b64decode(token)
    return AESGCM(_key()).decrypt(raw[:12], raw[12:], None).decode()
