"""Encryption of SECRET inputs/outputs and ``encryptBody`` values, and masking of secrets in task logs.

Kestra encrypts SECRET input values with ``kestra.encryption.secret-key`` (AES/GCM/NoPadding, a random
12-byte IV written before the cipher text, a 128-bit tag, the whole base64-encoded), stores them
encrypted in the execution, decrypts them when a task renders its properties, and replaces their
values by a mask in the task's logs. Celestra does the same with the key its runtime provides
(:func:`set_key_provider`: ``settings.CELESTRA["ENCRYPTION_KEY"]``, from ``CELESTRA_ENCRYPTION_KEY``).

A key of 16, 24 or 32 bytes (UTF-8) is used as is, like Kestra does; any other key is stretched with
SHA-256 to a 32-byte key (Kestra refuses such keys).

Nothing here imports Django: the Django apps register the key provider when they are ready.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Mapping

from .errors import CelestraError, InputValidationError

__all__ = [
    "ENCRYPTED_TYPE", "MASK", "NOT_CONFIGURED", "EncryptionNotConfigured", "SecretMasker",
    "configured_key", "decrypt", "decrypt_encrypted_values", "decrypt_secret_inputs", "encrypt",
    "encrypt_secret_inputs", "encrypt_secret_outputs", "encrypted_string", "is_configured", "key_override",
    "set_key_override", "set_key_provider",
]

NOT_CONFIGURED = "Unable to use a `SECRET` input/output as encryption is not configured"
#: What a secret value becomes in a log line.
MASK = "********"
#: ``EncryptedString`` outputs (Request ``encryptBody``): ``{"type": ENCRYPTED_TYPE, "value": "<base64>"}``.
ENCRYPTED_TYPE = "io.kestra.datatype:aes_encrypted"
_IV_LENGTH = 12


class EncryptionNotConfigured(CelestraError):
    """No encryption key: SECRET inputs/outputs and ``encryptBody`` cannot be used."""

    def __init__(self, message: str = NOT_CONFIGURED):
        super().__init__(message)


class _Unset:
    pass


_NO_OVERRIDE: Any = _Unset()
_override: Any = _NO_OVERRIDE
_override_lock = threading.Lock()


def set_key_override(key: str | None | Any = _NO_OVERRIDE) -> None:
    """Force the key for the whole process (``None`` = not configured); without argument, remove the override."""
    global _override
    with _override_lock:
        _override = key


@contextmanager
def key_override(key: str | None) -> Iterator[None]:
    """Use ``key`` (``None``: encryption not configured) inside the block, whatever the settings say."""
    global _override
    with _override_lock:
        saved = _override
        _override = key
    try:
        yield
    finally:
        with _override_lock:
            _override = saved


_provider: Callable[[], str | None] | None = None


def set_key_provider(provider: Callable[[], str | None] | None) -> None:
    """Where the configured key comes from (the runtime reads its settings); ``None``: nowhere."""
    global _provider
    _provider = provider


def _provided_key() -> str | None:
    value = _provider() if _provider is not None else None
    return str(value) if value else None


def configured_key() -> str | None:
    """The encryption key in use, or ``None`` when encryption is not configured."""
    if not isinstance(_override, _Unset):
        return _override or None
    return _provided_key()


def is_configured() -> bool:
    return configured_key() is not None


def _aes(key: str | bytes | None) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    material = configured_key() if key is None else key
    if not material:
        raise EncryptionNotConfigured()
    raw = material.encode("utf-8") if isinstance(material, str) else bytes(material)
    if len(raw) not in (16, 24, 32):
        raw = hashlib.sha256(raw).digest()
    return AESGCM(raw)


def encrypt(plaintext: str, key: str | bytes | None = None) -> str:
    """``base64(iv + cipher text + tag)``, Kestra's ``EncryptionService.encrypt``."""
    aes = _aes(key)
    iv = os.urandom(_IV_LENGTH)
    return base64.b64encode(iv + aes.encrypt(iv, str(plaintext).encode("utf-8"), None)).decode("ascii")


def decrypt(token: str, key: str | bytes | None = None) -> str:
    """The clear text of :func:`encrypt`'s output; :class:`CelestraError` when it cannot be decrypted."""
    from cryptography.exceptions import InvalidTag

    aes = _aes(key)
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise CelestraError("Unable to decrypt the value: it is not base64 encoded") from None
    if len(raw) <= _IV_LENGTH:
        raise CelestraError("Unable to decrypt the value: it is too short")
    try:
        return str(aes.decrypt(raw[:_IV_LENGTH], raw[_IV_LENGTH:], None).decode("utf-8"))
    except (InvalidTag, ValueError, UnicodeDecodeError):
        raise CelestraError("Unable to decrypt the value: wrong key or corrupted value") from None


def encrypted_string(plaintext: str | None) -> dict[str, Any] | None:
    """An ``EncryptedString`` output value (``{"type": ..., "value": ...}``); ``None`` stays ``None``."""
    if plaintext is None:
        return None
    return {"type": ENCRYPTED_TYPE, "value": encrypt(plaintext)}


# --- SECRET inputs / outputs ------------------------------------------------------------------------------

def _ids(definitions: Iterable[Mapping[str, Any]] | Iterable[str] | None) -> list[str]:
    ids: list[str] = []
    for definition in definitions or ():
        if isinstance(definition, str):
            ids.append(definition)
        elif isinstance(definition, Mapping) and definition.get("type") == "SECRET":
            ident = definition.get("id") or definition.get("name")
            if ident:
                ids.append(str(ident))
    return ids


def _get_path(values: Mapping[str, Any], ident: str) -> tuple[bool, Any]:
    """The value of a (possibly dotted, hence nested) input id."""
    if ident in values:
        return True, values[ident]
    current: Any = values
    for part in ident.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return False, None
        current = current[part]
    return True, current


def _set_path(values: dict[str, Any], ident: str, value: Any) -> dict[str, Any]:
    """A copy of ``values`` with the (possibly nested) input replaced."""
    if ident in values:
        return {**values, ident: value}
    head, _, rest = ident.partition(".")
    if not rest or not isinstance(values.get(head), Mapping):
        return {**values, ident: value}
    return {**values, head: _set_path(dict(values[head]), rest, value)}


def _transform(definitions: Any, values: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    result = dict(values or {})
    errors: list[tuple[str, str]] = []
    for ident in _ids(definitions):
        found, value = _get_path(result, ident)
        if not found or value is None:
            continue
        try:
            result = _set_path(result, ident, encrypt(value if isinstance(value, str) else str(value)))
        except EncryptionNotConfigured as exc:
            errors.append((ident, f"Invalid {what} for `{ident}`, {exc}, but received `{MASK}`"))
    if errors:
        raise InputValidationError(errors)
    return result


def encrypt_secret_inputs(definitions: Iterable[Mapping[str, Any]] | None,
                          inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Encrypt the values of the SECRET inputs of typed ``inputs`` (as returned by ``resolve_inputs``).

    Raises :class:`InputValidationError` ("Unable to use a `SECRET` input/output as encryption is not
    configured") when a SECRET input has a value and no key is configured. Absent/null values are kept.
    """
    return _transform(definitions, inputs, "input")


def encrypt_secret_outputs(definitions: Iterable[Mapping[str, Any]] | None,
                           outputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The same for flow ``outputs`` of type SECRET."""
    return _transform(definitions, outputs, "output")


def decrypt_secret_inputs(definitions: Iterable[Mapping[str, Any]] | Iterable[str] | None,
                          inputs: Mapping[str, Any] | None,
                          masker: "SecretMasker | None" = None) -> dict[str, Any]:
    """A copy of ``inputs`` whose SECRET values are in clear; each clear value is added to ``masker``.

    A value that cannot be decrypted (never encrypted: raw inputs of an internal caller, or no key
    configured) is kept as it is, and still masked in logs.
    """
    if inputs is None:
        return {}
    result = dict(inputs)
    for ident in _ids(definitions):
        found, value = _get_path(result, ident)
        if not found or not isinstance(value, str):
            continue
        clear = value
        if is_configured():
            try:
                clear = decrypt(value)
            except CelestraError:
                clear = value
        result = _set_path(result, ident, clear)
        if masker is not None:
            masker.add(clear)
    return result


def decrypt_encrypted_values(value: Any, masker: "SecretMasker | None" = None) -> Any:
    """Replace every ``EncryptedString`` (``{"type": ENCRYPTED_TYPE, "value": ...}``) by its clear text.

    Used on task outputs before rendering (Request ``encryptedBody``); clear values go to ``masker``.
    Values that cannot be decrypted are left untouched.
    """
    if isinstance(value, Mapping):
        if value.get("type") == ENCRYPTED_TYPE and isinstance(value.get("value"), str) and len(value) == 2:
            try:
                clear = decrypt(value["value"])
            except CelestraError:
                return dict(value)
            if masker is not None:
                masker.add(clear)
            return clear
        return {k: decrypt_encrypted_values(v, masker) for k, v in value.items()}
    if isinstance(value, list):
        return [decrypt_encrypted_values(v, masker) for v in value]
    return value


# --- masking ----------------------------------------------------------------------------------------------

def printed_forms(text: str) -> set[str]:
    """The forms a task is likely to print a value in: as is, base64 (standard and URL-safe, with
    and without padding), JSON-escaped (inside a JSON string), URL-encoded (``%20`` and ``+``)."""
    import json
    from urllib.parse import quote, quote_plus

    raw = text.encode("utf-8")
    forms = {text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1],
             quote(text, safe=""), quote_plus(text, safe="")}
    for encoded in (base64.b64encode(raw).decode("ascii"), base64.urlsafe_b64encode(raw).decode("ascii")):
        forms.add(encoded)
        # unpadded base64 of a short value is a short common string: only mask it when long enough
        if len(encoded.rstrip("=")) >= 8:
            forms.add(encoded.rstrip("="))
    return {f for f in forms if f}


class SecretMasker:
    """Replaces known secret values, and the forms they are printed in (:func:`printed_forms`), by
    :data:`MASK`."""

    def __init__(self, values: Iterable[str] = ()):
        self._values: set[str] = set()
        for value in values:
            self.add(value)

    def add(self, value: Any) -> None:
        if value is None:
            return
        text = value if isinstance(value, str) else str(value)
        if not text:
            return
        for form in printed_forms(text):
            self._values.add(form)

    def __bool__(self) -> bool:
        return bool(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def mask(self, message: Any) -> str:
        """The message with every known secret replaced (longest first, so that overlaps mask fully)."""
        text = message if isinstance(message, str) else str(message)
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, MASK)
        return text
