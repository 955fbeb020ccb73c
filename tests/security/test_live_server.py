"""A live server with authentication on: Kestra's Python SDK (kestrapy, 1.3 line) with basic auth and
with a bearer token; the production web server (gunicorn gthread) keeps answering while ``follow``
streams are open and does not cut them at its worker timeout."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
FLOW = """
id: sdk
namespace: company.sdk
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: hello from the SDK
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "CELESTRA_SECRETS_KEYS")}
    return {**env, "CELESTRA_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1", "CELESTRA_FLOWS_DIR": "", **extra}


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if requests.get(url + "/api/v1/health", timeout=10).status_code == 200:
                return
        except requests.RequestException:
            pass  # not listening yet, or still importing the application
        time.sleep(0.2)
    raise RuntimeError("the server did not answer in time")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def local_server(tmp_path):
    """``manage.py server local`` on a free port; its first start prints the admin's password."""
    env = local_env(tmp_path / "var")
    port = free_port()
    log = open(tmp_path / "server.log", "w+")
    proc = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "server", "local", "--port", str(port),
                             "--flows", ""], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc)
        log.seek(0)
        match = re.search(r"Created the admin account 'admin' with password: (\S+)", log.read())
        assert match, "the first start prints the admin password"
        yield {"url": url, "password": match.group(1), "env": env}
    finally:
        stop(proc)
        log.close()


def test_kestrapy_with_basic_auth_and_a_bearer_token(local_server):
    from kestrapy import KestraClient
    from kestrapy.exceptions import ApiException

    url = local_server["url"]
    basic = KestraClient(host=url, username="admin", password=local_server["password"])

    created = basic.flows.create_flow(tenant="main", body=FLOW)
    execution = basic.executions.create_execution(tenant="main", namespace="company.sdk", id="sdk", wait=True)

    assert created.id == "sdk" and created.namespace == "company.sdk"
    assert str(execution.state.current.value if hasattr(execution.state.current, "value")
               else execution.state.current) == "SUCCESS"

    token = manage(local_server["env"], "token", "create", "admin", "sdk").strip()
    bearer = KestraClient(host=url, token=token)
    found = bearer.flows.search_flows(tenant="main")
    assert [f.id for f in found.results] == ["sdk"]

    anonymous = KestraClient(host=url)
    with pytest.raises(ApiException) as refused:
        anonymous.flows.search_flows(tenant="main")
    assert refused.value.status == 401

    manage(local_server["env"], "token", "revoke", token[:10])
    with pytest.raises(ApiException) as revoked:
        bearer.flows.search_flows(tenant="main")
    assert revoked.value.status == 401


def test_gthread_serves_requests_while_follow_streams_are_open(tmp_path):
    """One gunicorn worker of 4 threads, two ``follow`` streams held open past the worker timeout
    (2 s here): other requests are answered meanwhile and the streams are not cut."""
    env = local_env(tmp_path / "var", CELESTRA_WEB_WORKERS="1", CELESTRA_WEB_THREADS="4", CELESTRA_WEB_TIMEOUT="2")
    manage(env, "migrate", "-v0")
    password = re.search(r"password: (\S+)", manage(env, "ensure_admin", "--no-input")).group(1)
    token = manage(env, "token", "create", "admin", "bench").strip()
    port = free_port()
    log = open(tmp_path / "web.log", "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "server", "webserver", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {token}"}
    streams = []
    try:
        wait_until_up(url, proc)
        assert requests.post(f"{url}/api/v1/main/flows", data=FLOW, auth=("admin", password),
                             headers={"Content-Type": "application/x-yaml"}, timeout=30).status_code == 200
        # no executor runs here: the executions stay CREATED and their streams stay open
        ids = [requests.post(f"{url}/api/v1/main/executions/company.sdk/sdk", headers=auth, timeout=30).json()["id"]
               for _ in range(2)]
        for execution_id in ids:
            stream = requests.get(f"{url}/api/v1/main/executions/{execution_id}/follow", headers=auth,
                                  stream=True, timeout=30)
            lines = stream.iter_lines(decode_unicode=True)
            assert next(lines) == "id: progress"
            streams.append((stream, lines))

        started = time.monotonic()
        answered = 0
        while time.monotonic() - started < 4:  # past the 2 s worker timeout
            answer = requests.get(f"{url}/api/v1/main/executions/search", headers=auth, timeout=10)
            assert answer.status_code == 200 and answer.json()["total"] == 2
            answered += 1
        assert answered >= 2
        assert proc.poll() is None
        for stream, _ in streams:
            # still the same connection, not closed by a worker restart
            assert not stream.raw.closed
        assert "WORKER TIMEOUT" not in (tmp_path / "web.log").read_text()
    finally:
        for stream, _ in streams:
            stream.close()
        stop(proc)
        log.close()
