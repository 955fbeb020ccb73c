"""A Celestra of its own for fault injection: a PostgreSQL cluster (``initdb`` into a temporary
directory) and a redis-server on free ports, the real roles (web, executor, worker, scheduler) as
separate ``manage.py server`` processes, and a side-effect server counting each task attempt.

Nothing here touches the machine's shared services: every server binds a free port of its own and
lives in a temporary directory removed at the end.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent.parent
TERMINATED = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED"}

#: recovery knobs of every role (and of nothing else): seconds, so that a scenario ends in seconds
FAST = {
    "CELESTRA_LEASE_TIMEOUT": "4", "CELESTRA_HEARTBEAT_INTERVAL": "0.5", "CELESTRA_REPUBLISH_AFTER": "3",
    "CELESTRA_RECONCILE_INTERVAL": "1", "CELESTRA_RETRY_BACKOFF": "0.2", "CELESTRA_RETRY_BACKOFF_MAX": "2",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - a server restarting: try again until the deadline
            last_error = exc
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_error})"
                                                                            if last_error else ""))


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its binaries as the ``postgres`` user then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class Postgres:
    """A PostgreSQL cluster of its own, restartable fast or immediately (crash-like)."""

    def __init__(self, base: Path):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin")
        self.bin = Path(found[-1]).parent
        self.dir = base / "pg"
        self.dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/celestra"

    def _ctl(self, *args: str) -> None:
        subprocess.run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), *args]), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

    def start(self) -> None:
        if not self.data.exists():
            subprocess.run(_as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A",
                                         "trust", "--no-sync"]), check=True, stdout=subprocess.DEVNULL, timeout=120)
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c max_connections=200")
        self._ctl("-l", str(self.dir / "log"), "-o", options, "-w", "start")
        wait_until(self._ready, 30, "PostgreSQL to accept connections")

    def _ready(self) -> bool:
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             connect_timeout=2, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'celestra'").fetchone():
                conn.execute("CREATE DATABASE celestra")
        return True

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "stop")

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="celestra",
                               connect_timeout=2, autocommit=True)


class Redis:
    """A redis-server of its own with AOF persistence, restartable."""

    def __init__(self, base: Path):
        self.dir = base / "redis"
        self.dir.mkdir()
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction",
             "--save", ""], stdout=open(self.dir / "log", "ab"), stderr=subprocess.STDOUT)
        wait_until(self._ready, 20, "redis-server to answer")

    def _ready(self) -> bool:
        import redis

        return bool(redis.Redis(port=self.port, socket_connect_timeout=1).ping())

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(20)
            self.proc = None


class SideEffects:
    """An HTTP server the flows call once per attempt (``/hit/<execution>/<task run>/<attempt>``):
    how many times each attempt's side effect ran. ``/silent`` accepts and never answers."""

    def __init__(self):
        self.hits: Counter[tuple[str, str, str]] = Counter()
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                parts = self.path.strip("/").split("/")
                if parts[0] == "silent":
                    time.sleep(3600)
                    return
                if parts[0] == "hit" and len(parts) == 4:
                    with owner.lock:
                        owner.hits[(parts[1], parts[2], parts[3])] += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def duplicates(self) -> dict[tuple[str, str, str], int]:
        with self.lock:
            return {k: v for k, v in self.hits.items() if v > 1}

    def executions_hit(self) -> set[str]:
        with self.lock:
            return {k[0] for k in self.hits}

    def close(self) -> None:
        self.server.shutdown()


class Cluster:
    """PostgreSQL, Redis, the side-effect server and the roles, in one temporary directory."""

    def __init__(self, flows_dir: Path, broker: str = "redis"):
        self.base = Path(tempfile.mkdtemp(prefix="celestra-faults-"))
        os.chmod(self.base, 0o755)
        self.pg = Postgres(self.base)
        self.redis = Redis(self.base)
        self.broker = broker
        self.effects = SideEffects()
        self.flows_dir = flows_dir
        self.roles: dict[str, subprocess.Popen] = {}
        self.web_port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CELESTRA_", "DATABASE_", "CELERY_"))},
            **FAST, "PYTHONUNBUFFERED": "1", "DJANGO_SETTINGS_MODULE": "orchestrator.settings",
            "DATABASE_URL": self.pg.url, "CELESTRA_VAR_DIR": str(self.base / "var"),
            "CELESTRA_STORAGE_DIR": str(self.base / "storage"), "DATABASE_CONN_MAX_AGE": "60",
            # production mode refuses default keys, and serves the host of its URL only
            "SECRET_KEY": secrets.token_urlsafe(50), "CELESTRA_SECRETS_KEYS": Fernet.generate_key().decode(),
            "CELESTRA_URL": f"http://127.0.0.1:{self.web_port}/",
            # the flows' side effects are calls to a server of the suite's own, on loopback
            "CELESTRA_EGRESS_ALLOW_LOOPBACK": "1",
        }
        self.token = ""

    @property
    def broker_url(self) -> str:
        return self.redis.url if self.broker == "redis" else os.environ.get(
            "CELESTRA_FAULTS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")

    def start(self) -> Cluster:
        self.pg.start()
        if self.broker == "redis":
            self.redis.start()
        self.env["CELERY_BROKER_URL"] = self.broker_url
        if self.broker != "redis":
            self._purge_queues()
        self.manage("migrate", "-v0")
        # the API needs a caller: a service account with a token, admin of every namespace
        self.token = self.manage("token", "create", "faults", "faults", "--create-user").strip()
        self.manage("role", "grant", "admin", "*", "--to-user", "faults")
        self.manage("load_flows", str(self.flows_dir))
        return self

    def _purge_queues(self) -> None:
        """A broker not of our own (RabbitMQ): drop what an earlier run of this suite left queued."""
        from kombu import Connection

        with Connection(self.broker_url, connect_timeout=5) as conn:
            channel = conn.default_channel
            for queue in ("executor", "worker.default"):
                channel.queue_declare(queue=queue, durable=True, auto_delete=False)
                channel.queue_purge(queue)

    def manage(self, *args: str) -> str:
        return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=self.env, check=True,
                              timeout=300, stdout=subprocess.PIPE, text=True).stdout

    def start_role(self, name: str, *args: str, **env: str) -> subprocess.Popen:
        log = open(self.base / f"{name}.log", "ab")
        # its own session: a role and its pool processes are signalled together
        proc = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "server", *args], cwd=ROOT,
                                env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.roles[name] = proc
        return proc

    def start_web(self) -> None:
        self.start_role("web", "webserver", "--host", "127.0.0.1", "--port", str(self.web_port))
        wait_until(lambda: self.api("GET", "/api/v1/main/flows/search")[0] == 200, 60, "the web role")

    def start_executor(self, name: str = "executor") -> subprocess.Popen:
        return self.start_role(name, "executor", "--concurrency", "2", "--pool", "threads")

    def start_worker(self, name: str = "worker", concurrency: int = 2) -> subprocess.Popen:
        return self.start_role(name, "worker", "--concurrency", str(concurrency), "--pool", "prefork")

    def start_scheduler(self) -> subprocess.Popen:
        return self.start_role("scheduler", "scheduler")

    def kill_role(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.roles.pop(name)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(30)

    def log_of(self, name: str) -> str:
        path = self.base / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def api(self, method: str, path: str, body: bytes | None = None, timeout: float = 30) -> tuple[int, Any]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.web_port}{path}", data=body, method=method,
                                         headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, error.read()[:500]

    def create(self, namespace: str, flow_id: str, label: str) -> tuple[int, str | None]:
        """POST an execution with a ``token`` label; (status, id or None). A refused request must
        leave no row: the token tells (see :meth:`rows_with_tokens`)."""
        boundary = "celestra-faults"
        body = f"--{boundary}--\r\n".encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.web_port}/api/v1/main/executions/{namespace}/{flow_id}?labels=token:{label}",
            data=body, method="POST", headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                                               "Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())["id"]
        except urllib.error.HTTPError as error:
            return error.code, None
        except (urllib.error.URLError, OSError):
            return 0, None

    def states(self, ids: list[str]) -> dict[str, str]:
        with self.pg.connect() as conn:
            rows = conn.execute("SELECT id, state FROM flows_app_execution WHERE id = ANY(%s)", [ids]).fetchall()
        return dict(rows)

    def rows_with_tokens(self, tokens: list[str]) -> set[str]:
        with self.pg.connect() as conn:
            rows = conn.execute("SELECT labels FROM flows_app_execution").fetchall()
        found = set()
        for (labels,) in rows:
            for label in labels or []:
                if label.get("key") == "token" and label.get("value") in tokens:
                    found.add(label["value"])
        return found

    def wait_terminal(self, ids: list[str], timeout: float) -> tuple[dict[str, str], float]:
        """Wait until every execution is terminal; (states, seconds it took)."""
        begun = time.monotonic()
        last: dict[str, str] = {}

        def done() -> bool:
            nonlocal last
            last = self.states(ids)
            return len(last) == len(ids) and all(s in TERMINATED for s in last.values())

        try:
            wait_until(done, timeout, f"{len(ids)} executions to end", every=0.25)
        except AssertionError as exc:
            stuck = Counter(s for s in last.values() if s not in TERMINATED)
            raise AssertionError(f"{exc}: still {dict(stuck)}") from None
        return last, time.monotonic() - begun

    def stop(self) -> None:
        for name in list(self.roles):
            proc = self.roles.pop(name)
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.effects.close()
        self.redis.stop()
        try:
            self.pg.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        if not os.environ.get("CELESTRA_FAULTS_KEEP"):
            shutil.rmtree(self.base, ignore_errors=True)
