"""Secrets under keys of their own, rotation, Kestra's SECRET_* environment form, masking."""
from __future__ import annotations

import base64
import io
import json
from urllib.parse import quote, quote_plus

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError

from orchestrator.engine.secrets_codec import MASK, SecretMasker
from secrets_app import crypto
from secrets_app.models import Secret
from secrets_app.store import get_secret, set_secret


@pytest.fixture
def keys(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CELESTRA_SECRETS_KEYS = [old]
    return old, new


@pytest.mark.django_db
def test_the_key_is_not_derived_from_secret_key(keys, settings):
    set_secret("ns", "A", "value-1")
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40

    assert get_secret("ns", "A") == "value-1"
    stored = Secret.objects.get().encrypted_value
    assert stored.startswith(crypto.FERNET_PREFIX) and "value-1" not in stored


@pytest.mark.django_db
def test_rotation_re_encrypts_every_secret(keys, settings):
    old, new = keys
    for i in range(3):
        set_secret("ns", f"K{i}", f"value-{i}")
    settings.CELESTRA_SECRETS_KEYS = [new, old]
    assert get_secret("ns", "K0") == "value-0"  # both keys read

    out = io.StringIO()
    call_command("secrets", "rotate", stdout=out)

    assert "Re-encrypted 3 secret(s)" in out.getvalue()
    settings.CELESTRA_SECRETS_KEYS = [new]
    assert [get_secret("ns", f"K{i}") for i in range(3)] == ["value-0", "value-1", "value-2"]
    settings.CELESTRA_SECRETS_KEYS = [old]
    with pytest.raises(crypto.SecretDecryptionError):
        get_secret("ns", "K0")


@pytest.mark.django_db
def test_rotation_rewrites_values_written_under_secret_key(keys, settings):
    import hashlib
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    legacy_key = hashlib.sha256(settings.SECRET_KEY.encode()).digest()
    legacy = base64.b64encode(nonce + AESGCM(legacy_key).encrypt(nonce, b"old-value", None)).decode()
    Secret.objects.create(namespace="ns", key="OLD", encrypted_value=legacy)
    assert get_secret("ns", "OLD") == "old-value"

    call_command("secrets", "rotate", stdout=io.StringIO())

    assert Secret.objects.get().encrypted_value.startswith(crypto.FERNET_PREFIX)
    settings.SECRET_KEY = "rotated-away-" + "y" * 40
    assert get_secret("ns", "OLD") == "old-value"


@pytest.mark.django_db
def test_rotation_changes_nothing_when_a_secret_cannot_be_read(keys, settings):
    set_secret("ns", "A", "a")
    before = Secret.objects.get().encrypted_value
    settings.CELESTRA_SECRETS_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(CommandError, match="cannot be decrypted"):
        call_command("secrets", "rotate", stdout=io.StringIO())

    assert Secret.objects.get().encrypted_value == before


def test_generate_key_prints_a_fernet_key():
    out = io.StringIO()
    call_command("secrets", "generate-key", stdout=out)
    Fernet(out.getvalue().strip())


@pytest.mark.django_db
def test_kestra_environment_form(monkeypatch):
    """``SECRET_<KEY>`` holds the base64 value, line breaks ignored, as Kestra reads it."""
    from orchestrator.runtime.services import Services

    encoded = base64.b64encode(b"from-the-environment").decode()
    monkeypatch.setenv("SECRET_MY_TOKEN", encoded[:8] + "\n" + encoded[8:])

    assert Services("company.team").secret("my_token") == "from-the-environment"


@pytest.mark.parametrize("printed", [
    lambda v: v,
    lambda v: json.dumps({"password": v}),
    lambda v: quote(v, safe=""),
    lambda v: quote_plus(v),
    lambda v: base64.b64encode(v.encode()).decode(),
    lambda v: base64.urlsafe_b64encode(v.encode()).decode().rstrip("="),
], ids=["clear", "json", "url", "url-plus", "base64", "base64url-unpadded"])
def test_masking_catches_the_forms_a_task_prints(printed):
    value = 'p@ss w/"quote"\\é?&=+~~~>'
    masker = SecretMasker([value])

    line = masker.mask(f"calling with {printed(value)} now")

    assert MASK in line and printed(value) not in line
