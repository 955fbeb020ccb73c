"""SECRET inputs: encryption (Kestra's AES/GCM layout), decryption for tasks, masking in logs; logToFile."""
from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orchestrator.engine import secrets_codec
from orchestrator.engine.errors import CelestraError, InputValidationError
from orchestrator.engine.memory_platform import MemoryPlatform
from orchestrator.engine.secrets_codec import (
    MASK, NOT_CONFIGURED, SecretMasker, decrypt, decrypt_encrypted_values, decrypt_secret_inputs, encrypt,
    encrypt_secret_inputs, encrypt_secret_outputs, encrypted_string, is_configured, key_override,
)

KEY = "I6EGNzRESu3X3pKZidrqCGOHQFUFC0yK"  # the 32-character key of Kestra's test configuration
DEFINITIONS = [{"id": "secret", "type": "SECRET"}, {"id": "plain", "type": "STRING"},
               {"name": "nested.pwd", "type": "SECRET"}]


def test_layout_is_iv_then_cipher_text_then_tag() -> None:
    with key_override(KEY):
        token = encrypt("secret")
    raw = base64.b64decode(token)
    assert len(raw) == 12 + len("secret") + 16
    assert AESGCM(KEY.encode()).decrypt(raw[:12], raw[12:], None) == b"secret"
    iv = os.urandom(12)
    foreign = base64.b64encode(iv + AESGCM(KEY.encode()).encrypt(iv, "pässword".encode(), None)).decode()
    assert decrypt(foreign, KEY) == "pässword"


def test_round_trip_random_iv_and_other_key_lengths() -> None:
    with key_override(KEY):
        first, second = encrypt("value"), encrypt("value")
        assert first != second and decrypt(first) == decrypt(second) == "value"
    with key_override("short key"):  # stretched with SHA-256
        assert decrypt(encrypt("x")) == "x"
    with pytest.raises(CelestraError, match="wrong key"):
        decrypt(first, "another key of some length")
    with pytest.raises(CelestraError, match="not base64"):
        decrypt("%%%", KEY)


def test_key_sources_and_not_configured(settings) -> None:
    settings.CELESTRA = {**settings.CELESTRA, "ENCRYPTION_KEY": None}
    assert not is_configured()
    with pytest.raises(secrets_codec.EncryptionNotConfigured, match="encryption is not configured"):
        encrypt("x")
    settings.CELESTRA = {**settings.CELESTRA, "ENCRYPTION_KEY": "from-settings"}
    assert secrets_codec.configured_key() == "from-settings"
    with key_override(None):
        assert not is_configured()
    with key_override("forced"):
        assert secrets_codec.configured_key() == "forced"
    secrets_codec.set_key_override(None)
    try:
        assert secrets_codec.configured_key() is None
    finally:
        secrets_codec.set_key_override()
    assert secrets_codec.configured_key() == "from-settings"


def test_encrypt_and_decrypt_secret_inputs() -> None:
    inputs = {"secret": "pwd", "plain": "text", "nested": {"pwd": "deep"}, "absent": None}
    with key_override(KEY):
        encrypted = encrypt_secret_inputs(DEFINITIONS, inputs)
        assert encrypted["plain"] == "text" and encrypted["secret"] != "pwd"
        assert encrypted["nested"]["pwd"] != "deep" and inputs["secret"] == "pwd"
        masker = SecretMasker()
        clear = decrypt_secret_inputs(DEFINITIONS, encrypted, masker)
    assert clear == inputs
    assert masker.mask("pwd and deep and ZGVlcA==") == f"{MASK} and {MASK} and {MASK}"
    assert encrypt_secret_inputs(DEFINITIONS, {"plain": "x"}) == {"plain": "x"}  # no SECRET value, no key needed


def test_missing_key_is_an_input_error() -> None:
    with key_override(None), pytest.raises(InputValidationError) as caught:
        encrypt_secret_inputs(DEFINITIONS, {"secret": "pwd"})
    assert caught.value.errors == [("secret", f"Invalid input for `secret`, {NOT_CONFIGURED}, but received `{MASK}`")]
    with key_override(None), pytest.raises(InputValidationError, match="Invalid output for `secret`"):
        encrypt_secret_outputs(DEFINITIONS, {"secret": "pwd"})


def test_values_never_encrypted_are_kept_and_masked() -> None:
    masker = SecretMasker()
    with key_override(KEY):
        assert decrypt_secret_inputs(DEFINITIONS, {"secret": "raw value"}, masker) == {"secret": "raw value"}
    assert masker.mask("it is raw value") == f"it is {MASK}"


def test_encrypted_outputs_are_decrypted_for_rendering() -> None:
    with key_override(KEY):
        outputs = {"req": {"code": 200, "encryptedBody": encrypted_string("token=abc")}, "list": [1]}
        masker = SecretMasker()
        clear = decrypt_encrypted_values(outputs, masker)
    assert clear == {"req": {"code": 200, "encryptedBody": "token=abc"}, "list": [1]}
    assert masker.mask("body token=abc") == f"body {MASK}"


class Ctx:
    def __init__(self) -> None:
        self.task_id, self.taskrun_id, self.execution_id = "log-secret", "run1", "exec1"
        self.namespace, self.flow_id = "io.kestra.tests", "input-log-secret"
        self.variables: dict[str, Any] = {"inputs": {}, "outputs": {}, "__services__": Services()}
        self.logs: list[dict[str, Any]] = []


class Services:
    def secret(self, key: str, namespace: str | None = None, subkey: str | None = None) -> str:
        return "s3cr3t"

    def kv(self, key: str) -> str:
        return "kv value"


class Flow:
    inputs = [{"id": "secret", "type": "SECRET", "defaults": "password"}]


def test_prepare_run_context_decrypts_inputs_and_masks_logs() -> None:
    from orchestrator.engine import expressions
    from orchestrator.runtime.platform import mask, prepare_run_context

    ctx = Ctx()
    with key_override(KEY):
        ctx.variables["inputs"] = encrypt_secret_inputs(Flow.inputs, {"secret": "password"})
        prepare_run_context(ctx, Flow(), platform=MemoryPlatform())
    message = expressions.render_string("This is my secret: {{ inputs.secret }}", ctx.variables)
    assert message == "This is my secret: password"
    assert mask(ctx, message) == "This is my secret: ********"
    assert expressions.render_string("{{ secret('x') }}", ctx.variables) == "s3cr3t"
    assert mask(ctx, "s3cr3t!") == f"{MASK}!"
    assert ctx.variables["__services__"].kv("k") == "kv value"
    assert isinstance(ctx.platform, MemoryPlatform)


def test_attempt_log_file_layout() -> None:
    from orchestrator.runtime.platform import attempt_log_file

    ctx = Ctx()
    ctx.task_id = "hello"
    ctx.flow_id = "log-to-file"
    ctx.platform = MemoryPlatform("io.kestra.tests", "log-to-file", "exec1", "hello", "run1")
    ctx.logs = [{"level": "INFO", "message": "Hello World!", "timestamp": "2024-05-06T07:08:09.123456+00:00"}]
    uri = attempt_log_file(ctx, 1)
    assert uri == "kestra:///io/kestra/tests/log-to-file/executions/exec1/tasks/hello/run1/attempt1.log"
    lines = ctx.platform.read_file(uri).decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("2024-05-06 07:08:09,123 INFO  worker-1     ")
    assert lines[0].endswith(" Hello World!") and " f.m.i.kestra.tests.log-to-file.hello " in lines[0]
