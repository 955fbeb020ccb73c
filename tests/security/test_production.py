"""Outside local mode the processes refuse unsafe defaults; the documented production settings pass
``manage.py check --deploy``."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def production_env(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    """The production settings of docs/security.md (no service is contacted by these commands)."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "PYTHONUNBUFFERED": "1",
           "CELESTRA_VAR_DIR": str(tmp_path / "var"),
           "DATABASE_URL": "postgres://celestra:pw@127.0.0.1:5432/celestra_authz_unused",
           "CELERY_BROKER_URL": "redis://127.0.0.1:6379/2",
           "SECRET_KEY": secrets.token_urlsafe(50),
           "CELESTRA_SECRETS_KEYS": Fernet.generate_key().decode(),
           "CELESTRA_URL": "https://celestra.example.com/",
           "CELESTRA_HSTS_PRELOAD": "1"}
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_check_deploy_passes_on_the_documented_settings(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy")

    output = result.stderr + result.stdout
    assert result.returncode == 0, output
    # none of Django's deployment warnings (security.W…) nor ours; the OpenAPI generator's own
    # schema warnings are not about the deployment
    assert "security.W" not in output and "celestra." not in output, output


@pytest.mark.parametrize("overrides,check_id", [
    ({"SECRET_KEY": None}, "celestra.E001"),
    ({"SECRET_KEY": "short"}, "celestra.E001"),
    ({"CELESTRA_SECRETS_KEYS": None}, "celestra.E002"),
    ({"CELERY_BROKER_URL": None}, "celestra.E003"),
    ({"ALLOWED_HOSTS": "*"}, "celestra.E004"),
    ({"CELESTRA_SECRETS_KEYS": "not-a-key"}, "celestra.E005"),
], ids=["default-secret-key", "short-secret-key", "no-secrets-key", "no-broker", "any-host", "bad-key"])
def test_every_role_refuses_unsafe_defaults(tmp_path, overrides, check_id):
    result = manage(production_env(tmp_path, **overrides), "server", "webserver", "--port", "0")

    assert result.returncode != 0
    assert check_id in result.stderr, result.stderr


def test_a_web_server_started_on_its_own_refuses_too(tmp_path):
    env = production_env(tmp_path, SECRET_KEY=None)
    result = subprocess.run([sys.executable, "-c", "import orchestrator.wsgi"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)

    assert result.returncode != 0 and "celestra.E001" in result.stderr


def test_local_mode_starts_on_defaults_and_keeps_its_key(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
           "CELESTRA_VAR_DIR": str(tmp_path / "var")}

    first = manage(env, "check")
    key = (tmp_path / "var" / "secrets.key").read_text().strip()
    second = manage(env, "check")

    assert first.returncode == 0 and second.returncode == 0, first.stderr
    Fernet(key)
    assert (tmp_path / "var" / "secrets.key").read_text().strip() == key
    assert oct((tmp_path / "var" / "secrets.key").stat().st_mode & 0o777) == "0o600"


def test_configs_does_not_tell_which_secret_key_is_used(client, settings):
    first = client.get("/api/v1/configs").json()["uuid"]
    settings.SECRET_KEY = "x" * 60

    assert client.get("/api/v1/configs").json()["uuid"] == first


def test_compose_file_carries_no_literal_secret():
    text = (ROOT / "docker" / "compose.yaml").read_text()

    for needle in ("SECRET_KEY: change-me", "POSTGRES_PASSWORD: celestra", "celestra:celestra@"):
        assert needle not in text
    assert "CELESTRA_SECRETS_KEYS" in text
