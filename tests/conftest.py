"""Shared fixtures.

``runtime`` gives a running Celestra: with the in-process broker (the default), a Celery worker
in a thread of the test process; with a real broker (``make test-services``: Postgres + Redis), real
Celery worker processes started with ``manage.py server executor|worker``. Tests that run
executions use ``transactional_db`` so that the workers see committed rows.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def services_mode() -> bool:
    """True when the broker is a real one (Redis): workers then run as separate processes."""
    from django.conf import settings

    return settings.CELERY_BROKER_URL.split(":", 1)[0] != "memory"


def pytest_configure(config):
    _allow_loopback_egress()
    if os.environ.get("CELESTRA_REQUIRE_SERVICES"):
        _require_services()
    _production_keys_for_subprocesses()


def _production_keys_for_subprocesses() -> None:
    """Processes started by the tests (``manage.py server executor``...) outside local mode refuse
    the default SECRET_KEY and a missing secrets key: give them a random SECRET_KEY and this
    process's secrets keys, so that both sides decrypt the same secrets."""
    import secrets

    from django.conf import settings

    os.environ.setdefault("CELESTRA_SECRETS_KEYS", ",".join(settings.CELESTRA_SECRETS_KEYS))
    if settings.SECRET_KEY == settings.CELESTRA_DEFAULT_SECRET_KEY:
        os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))


# --- HTTP clients ----------------------------------------------------------------------------------------
# Every endpoint but webhooks and health needs a user: the clients tests use are logged in as a
# superuser unless they ask for ``anonymous_client``.

SUPERUSER = "pytest-superuser"


@pytest.fixture
def superuser(django_user_model, db):
    user, created = django_user_model.objects.get_or_create(
        username=SUPERUSER, defaults={"is_superuser": True, "is_staff": True})
    if created:
        user.set_unusable_password()
        user.save()
    return user


@pytest.fixture
def api_client(superuser):
    """DRF's APIClient with a superuser's session (CSRF checks off, as Django's test clients have them)."""
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_login(superuser)
    return api


@pytest.fixture
def client(superuser):
    """pytest-django's ``client``, logged in as a superuser."""
    from django.test import Client

    browser = Client()
    browser.force_login(superuser)
    return browser


@pytest.fixture
def anonymous_client():
    """An APIClient that sends no credentials (see ``_api_clients_default_to_superuser``)."""
    from rest_framework.test import APIClient

    api = APIClient()
    api.celestra_anonymous = True
    return api


@pytest.fixture(autouse=True)
def _api_clients_default_to_superuser(monkeypatch):
    """Tests written before authentication build ``APIClient()`` themselves and call the API without
    credentials: such a client acts as the test superuser, unless it logged in, set credentials or
    forced a user itself, or is an ``anonymous_client``."""
    from django.conf import settings
    from rest_framework.test import APIClient

    original = APIClient.request

    def request(self, **kwargs):
        if not (getattr(self, "celestra_anonymous", False) or self.handler._force_user is not None
                or "HTTP_AUTHORIZATION" in self._credentials or "HTTP_AUTHORIZATION" in kwargs
                or settings.SESSION_COOKIE_NAME in self.cookies):
            from django.contrib.auth import get_user_model

            user, _ = get_user_model().objects.get_or_create(
                username=SUPERUSER, defaults={"is_superuser": True, "is_staff": True})
            self.force_authenticate(user)
        return original(self, **kwargs)

    monkeypatch.setattr(APIClient, "request", request)

    from django.test import Client

    original_client = Client.request

    def client_request(self, **environ):
        # the same for Django's own test Client on API paths (APIClient instances are handled above)
        if (not isinstance(self, APIClient) and str(environ.get("PATH_INFO", "")).startswith("/api/")
                and not getattr(self, "celestra_anonymous", False) and "HTTP_AUTHORIZATION" not in environ
                and settings.SESSION_COOKIE_NAME not in self.cookies):
            from django.contrib.auth import get_user_model

            user, _ = get_user_model().objects.get_or_create(
                username=SUPERUSER, defaults={"is_superuser": True, "is_staff": True})
            self.force_login(user)
        return original_client(self, **environ)

    monkeypatch.setattr(Client, "request", client_request)


def _allow_loopback_egress() -> None:
    """Test servers listen on 127.0.0.1, and outside local mode the egress policy refuses loopback:
    allow it for this process and the worker processes it starts (tests/security sets its own policy)."""
    if "CELESTRA_EGRESS_ALLOW_LOOPBACK" in os.environ:
        return
    from django.conf import settings

    from orchestrator.plugins.core import http

    os.environ["CELESTRA_EGRESS_ALLOW_LOOPBACK"] = "true"
    settings.CELESTRA_EGRESS["ALLOW_LOOPBACK"] = True
    http.configure_egress(allow_loopback=True)


def _require_services() -> None:
    """Fail the run (never skip) when PostgreSQL or Redis is unreachable."""
    import psycopg
    import redis
    from django.conf import settings

    db = settings.DATABASES["default"]
    if "postgresql" not in db["ENGINE"]:
        raise pytest.UsageError("CELESTRA_REQUIRE_SERVICES is set but DATABASE_URL is not PostgreSQL")
    try:
        with psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"] or "postgres",
                             dbname="postgres", connect_timeout=5):
            pass
    except Exception as exc:
        raise pytest.UsageError(f"PostgreSQL is unreachable: {exc}") from exc
    try:
        redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=5).ping()
    except Exception as exc:
        raise pytest.UsageError(f"Redis is unreachable at {settings.CELERY_BROKER_URL}: {exc}") from exc


class ProcessRuntime:
    """Real Celery worker processes: one executor, one default worker, one per extra group."""

    def __init__(self, groups: list[str]):
        self.groups = groups
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def start_role(self, name: str, *args: str) -> subprocess.Popen:
        log = open(ROOT / "var" / f"test-{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "server", *args], cwd=ROOT,
                                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def start(self) -> "ProcessRuntime":
        from orchestrator.celery import app

        with app.connection_for_write() as conn:  # purge leftovers of an earlier run
            for queue in ["executor", "worker.default", *[f"worker.{g}" for g in self.groups]]:
                conn.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False)
                conn.default_channel.queue_purge(queue)
        self.start_role("executor", "executor", "--concurrency", "2", "--pool", "threads")
        self.start_role("worker", "worker", "--concurrency", "2", "--pool", "prefork")
        for group in self.groups:
            self.start_role(f"worker-{group}", "worker", "--groups", group, "--no-default-group",
                            "--concurrency", "1", "--pool", "prefork")
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        from orchestrator.celery import app

        expected = len(self.procs)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            replies = app.control.ping(timeout=1.0) or []
            if len(replies) >= expected:
                return
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see var/test-{name}.log")
        raise RuntimeError("Celery workers did not answer a ping in time")

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def runtime(django_db_setup, django_db_blocker):
    """A running executor + workers (groups: default and gpu) for the whole session."""
    from orchestrator.runtime.local import LocalRuntime

    groups = ["gpu"]
    if services_mode():
        proc_runtime = ProcessRuntime(groups).start()
        sweeper = LocalSweeper(django_db_blocker).start()
        yield proc_runtime
        sweeper.stop()
        proc_runtime.stop()
    else:
        with django_db_blocker.unblock():
            local = LocalRuntime(groups=groups, concurrency=8, sweep_interval=0.2).start()
            yield local
            local.stop()


class LocalSweeper:
    """The timer sweep and the reconciler (the scheduler role's jobs) in a thread of the test process."""

    def __init__(self, blocker):
        import threading

        self.blocker = blocker
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def start(self) -> "LocalSweeper":
        self.thread.start()
        return self

    def loop(self) -> None:
        from django.db import close_old_connections

        from orchestrator.runtime.durable import reconcile
        from orchestrator.runtime.tasks import sweep

        with self.blocker.unblock():
            while not self.stop_event.wait(0.2):
                try:
                    sweep()
                    reconcile()
                except Exception:  # noqa: BLE001 - tables may be flushed between tests
                    pass
                finally:
                    close_old_connections()
            from django.db import connections

            connections.close_all()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(5)


@pytest.fixture
def run_flow(runtime, transactional_db):
    """Deploy a flow source, run it with inputs, wait for the end; returns the engine Execution."""
    from flows_app.services import create_execution, deploy_flow, wait_for
    from orchestrator.runtime.flows import clear_cache

    def _run(source: str, inputs: dict | None = None, timeout: float = 60, **kwargs):
        clear_cache()
        deployed = deploy_flow(source)
        execution = create_execution(deployed.parsed.namespace, deployed.parsed.id, inputs or {}, **kwargs)
        return wait_for(execution.id, timeout=timeout)

    return _run


@pytest.fixture(autouse=True)
def _idle_before_flush(request):
    """Tests with a running runtime wait for their executions to settle before the flush."""
    if "runtime" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("transactional_db")  # set up first, so torn down after this waits
    yield
    wait_until_idle()


def wait_until_idle(timeout: float = 30) -> None:
    """Let executions started by a test (fire-and-forget subflows...) end before its tables are
    flushed: a worker still writing would otherwise deadlock with the flush."""
    from flows_app.models import Execution
    from orchestrator.engine import states

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Execution.objects.exclude(state__in=list(states.TERMINATED)).exclude(
                state__in=[states.PAUSED, states.QUEUED, states.CREATED]).exists():
            time.sleep(0.2)  # a last result may still be on its way
            return
        time.sleep(0.1)
