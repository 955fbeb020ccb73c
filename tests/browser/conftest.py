"""Browser tests: Playwright drives Debian's Chromium against a Celestra local server started in a
subprocess (its own SQLite under a temporary CELESTRA_VAR_DIR, a free port).

Chromium is installed from the OS packages when missing (``install_chromium.sh``); the tests fail,
never skip, when it cannot be.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
USER, PASSWORD = "operator", "operator-password"


def basic_auth() -> str:
    import base64

    return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ensure_chromium() -> None:
    if os.access(CHROMIUM, os.X_OK):
        return
    result = subprocess.run(["sh", str(Path(__file__).with_name("install_chromium.sh"))], capture_output=True,
                            text=True, timeout=900)
    if result.returncode != 0 or not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Chromium is missing and could not be installed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


class Server:
    def __init__(self, base: str, proc: subprocess.Popen, log: Path):
        self.base, self.proc, self.log = base, proc, log

    def url(self, path: str) -> str:
        return self.base + path

    def api(self, method: str, path: str, body: bytes | str | None = None, content_type: str = "application/x-yaml"):
        data = body.encode() if isinstance(body, str) else body
        headers = {"Authorization": basic_auth()}  # the API asks who is calling (docs/security.md)
        if data is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base + "/api/v1/main" + path, data=data, method=method,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None
        return json.loads(raw) if raw else None

    def wait_state(self, execution_id: str, states: set[str], timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        data: dict = {}
        while time.monotonic() < deadline:
            data = self.api("GET", f"/executions/{execution_id}")
            if data["state"]["current"] in states:
                return data
            time.sleep(0.2)
        raise AssertionError(f"execution {execution_id} is {data.get('state')} after {timeout}s")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A local-mode Celestra (SQLite, in-process broker, beat) on a free port, with an admin user."""
    var = tmp_path_factory.mktemp("celestra-var")
    flows = tmp_path_factory.mktemp("no-flows")
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CELESTRA_REQUIRE_SERVICES")}
    env.update({"CELESTRA_VAR_DIR": str(var), "PYTHONUNBUFFERED": "1", "DJANGO_SUPERUSER_USERNAME": USER,
                "DJANGO_SUPERUSER_PASSWORD": PASSWORD, "DJANGO_SUPERUSER_EMAIL": "operator@example.com"})
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    subprocess.run([*manage, "createsuperuser", "--noinput"], cwd=ROOT, env=env, check=True, timeout=120,
                   capture_output=True)
    port = _free_port()
    log = var / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*manage, "server", "local", "--port", str(port), "--flows", str(flows),
                                 "--concurrency", "4"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(base + "/admin/login/", timeout=2):
                break
        except (urllib.error.URLError, ConnectionError, OSError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
    yield Server(base, proc, log)
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def browser():
    _ensure_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def context(browser, server):
    """A browser context logged in once through Django's admin login."""
    ctx = browser.new_context(viewport={"width": 1000, "height": 900}, base_url=server.base)
    page = ctx.new_page()
    page.goto("/admin/login/")
    page.fill("#id_username", USER)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#dashboard", timeout=15000)
    page.close()
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    page.set_default_timeout(20000)
    # confirmations of destructive actions are accepted, as the operator would
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    page.close()
