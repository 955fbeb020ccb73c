"""Celestra settings, driven by environment variables.

Defaults give the zero-config local mode: SQLite under ``var/``, an in-process broker.
Production sets ``DATABASE_URL`` (Postgres) and ``CELERY_BROKER_URL`` (Redis).
"""
from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
# A source checkout keeps its data beside manage.py; an installed package (`pip install .`, the
# `celestra` command) keeps it under the current directory, never inside site-packages.
WORK_DIR = BASE_DIR if (BASE_DIR / "manage.py").exists() else Path.cwd()
VAR_DIR = Path(os.environ.get("CELESTRA_VAR_DIR", WORK_DIR / "var"))


def envbool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def envsecret(name: str, default: str = "") -> str:
    """Read NAME, or the file named by NAME_FILE (Docker/Kubernetes secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


CELESTRA_DEFAULT_SECRET_KEY = "celestra-local-development-key-change-me-in-production"
SECRET_KEY = envsecret("SECRET_KEY", CELESTRA_DEFAULT_SECRET_KEY)
DEBUG = envbool("DEBUG", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    "flows_app",
    "storage_app",
    "secrets_app",
    "accounts_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts_app.audit.AuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "orchestrator.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
WSGI_APPLICATION = "orchestrator.wsgi.application"

VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'celestra.sqlite3'}"),
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Worker and executor threads write concurrently in local mode: WAL lets readers go on
    # while one writer holds the lock, IMMEDIATE takes the write lock at BEGIN so that a
    # read-then-write transaction (our "lock the execution" step) cannot deadlock.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"].setdefault("TEST", {})["NAME"] = str(VAR_DIR / "test-celestra.sqlite3")

else:
    # The test run uses the configured database itself (created and dropped by the test runner),
    # so that worker processes started by the tests, given the same DATABASE_URL, see its rows.
    DATABASES["default"].setdefault("TEST", {})["NAME"] = DATABASES["default"]["NAME"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS: list[dict] = []
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = Path(os.environ.get("CELESTRA_STORAGE_DIR", VAR_DIR / "storage"))

# Internal storage (kestra:// files): the filesystem under MEDIA_ROOT, or with CELESTRA_STORAGE=s3 a bucket
# of any S3-compatible server through django-storages.
if os.environ.get("CELESTRA_STORAGE", "local").strip().lower() == "s3":
    STORAGES = {
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
            "bucket_name": os.environ.get("CELESTRA_S3_BUCKET", "celestra"),
            "location": os.environ.get("CELESTRA_S3_PREFIX", ""),
            "endpoint_url": os.environ.get("CELESTRA_S3_ENDPOINT") or None,
            "region_name": os.environ.get("CELESTRA_S3_REGION") or None,
            "access_key": envsecret("CELESTRA_S3_ACCESS_KEY") or None,
            "secret_key": envsecret("CELESTRA_S3_SECRET_KEY") or None,
            "addressing_style": "path" if envbool("CELESTRA_S3_PATH_STYLE", False) else None,
            "file_overwrite": True,
            "querystring_auth": False,
        }},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "flows_app.api.parsers.LimitedJSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "UNAUTHENTICATED_USER": None,
    # Basic first: an anonymous request gets 401 with `WWW-Authenticate: Basic` (Kestra's clients send
    # basic auth); session authentication enforces CSRF for the browser.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.BasicAuthentication",
        "accounts_app.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # closed by default: an authenticated user holding the role that the view's rule names
    "DEFAULT_PERMISSION_CLASSES": ["accounts_app.permissions.NamespacePermission"],
    "EXCEPTION_HANDLER": "flows_app.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The OpenAPI document of the REST API (``/api/openapi.yaml``; committed as docs/openapi.yaml).
SPECTACULAR_SETTINGS = {
    "TITLE": "Celestra API",
    "DESCRIPTION": "Kestra's REST API (OSS), served by Celestra under /api/v1/{tenant} and /api/v1.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "DISABLE_ERRORS_AND_WARNINGS": True,
}

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "memory://localhost/")
CELERY_RESULT_BACKEND = None  # completion travels as messages; nothing waits on results
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "executor"
CELERY_WORKER_PREFETCH_MULTIPLIER = envint("CELERY_WORKER_PREFETCH_MULTIPLIER", 4)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker that dies mid-task has its message redelivered after this many seconds (Redis).
_visibility = envint("CELESTRA_VISIBILITY_TIMEOUT", 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": _visibility,
    # Scan for abandoned (unacknowledged) messages every few seconds, not every ~100 s.
    "unacked_restore_interval": max(1, min(10, _visibility // 3)),
    "unacked_restore_throttle": 1,
}
if CELERY_BROKER_URL.startswith("redis://"):
    # kombu's Redis transport, without its crash on a lost connection (orchestrator/runtime/broker.py)
    CELERY_BROKER_TRANSPORT = "orchestrator.runtime.broker:Transport"
if CELERY_BROKER_URL.startswith("memory://"):
    # The in-process transport polls its queues; the default (1 s) would add a second per hop.
    CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] = 0.005
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# --- Celestra -----------------------------------------------------------------------------
CELESTRA = {
    # kestra.variables.globals
    "GLOBALS": {},
    # kestra.url: used for the execution "url" in API answers
    "URL": os.environ.get("CELESTRA_URL", "http://localhost:8080/"),
    "ENVIRONMENT": os.environ.get("CELESTRA_ENVIRONMENT", ""),
    # Prefix of environment variables exposed as {{ envs.* }}
    "ENV_VARS_PREFIX": os.environ.get("CELESTRA_ENV_VARS_PREFIX", "ENV_"),
    # Flow directory loaded by `server local` and `make run`
    "FLOWS_DIR": os.environ.get("CELESTRA_FLOWS_DIR", str(WORK_DIR / "flows")),
    # Seconds between two sweeps for due timers (retries, sleeps, pauses) and stuck executions
    "SWEEP_INTERVAL": float(os.environ.get("CELESTRA_SWEEP_INTERVAL", "1")),
    # A worker applies its task's result itself (one executor step under the execution's lock)
    # instead of sending it to the executor queue: one broker hop less per task run.
    "INLINE_RESULTS": envbool("CELESTRA_INLINE_RESULTS", True),
    # Global plugin defaults (kestra.plugins.defaults)
    "PLUGIN_DEFAULTS": [],
    # kestra.encryption.secret-key: SECRET inputs/outputs and encryptBody (16, 24 or 32 characters)
    "ENCRYPTION_KEY": envsecret("CELESTRA_ENCRYPTION_KEY") or None,
    # A flow reaches the KV store and secrets of its namespace and its parents only, and starts
    # subflows of those and of the namespaces below it (off: every namespace, as Kestra OSS)
    "NAMESPACE_ISOLATION": envbool("CELESTRA_NAMESPACE_ISOLATION", True),
    # Before CELESTRA_SECRETS_KEYS: the material of the key secrets were written with (SECRET_KEY when
    # unset); still read, until `manage.py secrets rotate` rewrites them
    "SECRETS_KEY": envsecret("CELESTRA_SECRET_KEY") or None,
    # Time zone of Schedule triggers that name none (Kestra's kestra.scheduler time zone: UTC)
    "SCHEDULE_TIME_ZONE": os.environ.get("CELESTRA_SCHEDULE_TIME_ZONE", "UTC"),
    # `server` defaults: listen address and port, worker concurrency and pool
    "SERVER_HOST": os.environ.get("HOST", "127.0.0.1"),
    "SERVER_PORT": envint("PORT", 8080),
    "SERVER_CONCURRENCY": envint("CELESTRA_CONCURRENCY", 8),
    "SERVER_POOL": os.environ.get("CELESTRA_POOL", "prefork"),
    # kestra.local-files.allowed-paths: host paths tasks may read with file:// URIs
    "LOCAL_FILES_ALLOWED_PATHS": [
        p for p in os.environ.get("CELESTRA_LOCAL_FILES_ALLOWED_PATHS", "").split(os.pathsep) if p],
    # Script tasks (io.kestra.plugin.scripts.*, docs/scripts.md)
    "SCRIPTS": {
        # dependency venvs (python-deps/<hash>), uv's download cache, the `python` shims
        "CACHE_DIR": os.environ.get("CELESTRA_SCRIPTS_CACHE_DIR", str(VAR_DIR / "scripts-cache")),
        # parent of the per-attempt working directories (the system's temporary directory if empty)
        "WORK_DIR": os.environ.get("CELESTRA_SCRIPTS_WORK_DIR", "") or None,
        "KEEP_FAILED_WORKDIR": envbool("CELESTRA_SCRIPTS_KEEP_FAILED_WORKDIR", False),
        # "process": run tasks asking for a container (containerImage, Docker runner) as local processes
        "CONTAINER_FALLBACK": os.environ.get("CELESTRA_SCRIPTS_CONTAINER_FALLBACK", ""),
        # user (name or uid) the scripts run as; the worker's own user when empty (needs root to change)
        "RUN_AS": os.environ.get("CELESTRA_SCRIPTS_RUN_AS", "") or None,
        "PATH": os.environ.get("CELESTRA_SCRIPTS_PATH", "/usr/local/bin:/usr/bin:/bin"),
        # interpreter behind `python` in scripts; the worker's own Python when empty
        "PYTHON": os.environ.get("CELESTRA_SCRIPTS_PYTHON", "") or None,
        "KILL_GRACE": float(os.environ.get("CELESTRA_SCRIPTS_KILL_GRACE", "0.5")),
        "DOCKER_HOST": os.environ.get("DOCKER_HOST", ""),
    },
}

# --- Limits on hostile input (docs/security.md, "Hostile input") ----------------------------
# Request bodies read into memory (JSON, YAML, form fields; file parts are streamed to disk): 413 above.
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("CELESTRA_MAX_BODY_BYTES", 2621440)
CELESTRA_LIMITS = {
    # Seconds one rendering may run (never beyond the task's timeout); 0 disables the budget.
    "EXPRESSION_TIMEOUT": float(os.environ.get("CELESTRA_EXPRESSION_TIMEOUT", "5")),
    # Characters of one rendered value (and of any text built while rendering).
    "EXPRESSION_MAX_OUTPUT_CHARS": envint("CELESTRA_EXPRESSION_MAX_OUTPUT_CHARS", 10 * 1024 * 1024),
    # YAML: uses of an alias to a mapping/sequence per document, characters per document.
    "YAML_MAX_ALIASES": envint("CELESTRA_YAML_MAX_ALIASES", 50),
    "YAML_MAX_CHARS": envint("CELESTRA_YAML_MAX_CHARS", 3 * 1024 * 1024),
    # Webhook calls per key and minute (0: no limit); above it, 429 with Retry-After.
    "WEBHOOK_RATE_LIMIT": envint("CELESTRA_WEBHOOK_RATE_LIMIT", 0),
    "WEBHOOK_RATE_WINDOW": envint("CELESTRA_WEBHOOK_RATE_WINDOW", 60),
}
# Outbound HTTP of tasks (HTTP Request, Download...): addresses refused after DNS resolution and after
# every redirect. Link-local and cloud metadata addresses are always refused unless listed in ALLOW.
# Local mode is the zero-config one (SQLite and the in-process broker); everywhere else the
# processes refuse unsafe defaults (accounts_app/checks.py).
CELESTRA_LOCAL_MODE = envbool(
    "CELESTRA_LOCAL_MODE",
    DATABASES["default"]["ENGINE"].endswith("sqlite3") and CELERY_BROKER_URL.startswith("memory://"))
CELESTRA_EGRESS = {
    "ALLOW_PRIVATE": envbool("CELESTRA_EGRESS_ALLOW_PRIVATE", CELESTRA_LOCAL_MODE),
    "ALLOW_LOOPBACK": envbool("CELESTRA_EGRESS_ALLOW_LOOPBACK", CELESTRA_LOCAL_MODE),
    "ALLOW_LINK_LOCAL": envbool("CELESTRA_EGRESS_ALLOW_LINK_LOCAL", False),
    # Networks always allowed / always refused (comma-separated CIDRs), checked before the rules above.
    "ALLOW": [c for c in os.environ.get("CELESTRA_EGRESS_ALLOW", "").split(",") if c.strip()],
    "DENY": [c for c in os.environ.get("CELESTRA_EGRESS_DENY", "").split(",") if c.strip()],
}

# --- Durability (docs/reliability.md) ------------------------------------------------------
# Every value in seconds (or a count), from the environment, with the default used in production.
DURABILITY = {
    # a worker process renews the lease of the task runs it runs this often (and reads kill flags)
    "HEARTBEAT_INTERVAL": float(os.environ.get("CELESTRA_HEARTBEAT_INTERVAL", "1")),
    # a running task run whose lease was not renewed for this long is resubmitted as a new attempt
    "LEASE_TIMEOUT": float(os.environ.get("CELESTRA_LEASE_TIMEOUT", "15")),
    # a job or a step whose wake-up message was sent this long ago without effect is sent again
    "REPUBLISH_AFTER": float(os.environ.get("CELESTRA_REPUBLISH_AFTER", "10")),
    # seconds between two reconciler passes (scheduler role, local mode)
    "RECONCILE_INTERVAL": float(os.environ.get("CELESTRA_RECONCILE_INTERVAL", "2")),
    # a job whose worker died this many times (lease expired) ends FAILED instead of running again
    "MAX_WORKER_DEATHS": envint("CELESTRA_MAX_WORKER_DEATHS", 3),
    # transient database or broker errors: first retry delay, its cap, and how long to keep trying
    "RETRY_BACKOFF": float(os.environ.get("CELESTRA_RETRY_BACKOFF", "0.2")),
    "RETRY_BACKOFF_MAX": float(os.environ.get("CELESTRA_RETRY_BACKOFF_MAX", "5")),
    "RETRY_FOR": float(os.environ.get("CELESTRA_RETRY_FOR", "600")),
    # rows looked at per reconciler pass and per kind of work
    "RECONCILE_BATCH": envint("CELESTRA_RECONCILE_BATCH", 500),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {"celestra": {"level": os.environ.get("CELESTRA_LOG_LEVEL", "INFO"), "propagate": True}},
}

# --- Security (accounts_app, secrets_app) ---------------------------------------------------------
# Local mode (CELESTRA_LOCAL_MODE, above) is the zero-config one; everywhere else the processes refuse
# unsafe defaults (accounts_app/checks.py).


def _url_parts(url: str) -> tuple[str, str, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme or "http", parts.hostname or "localhost", parts.netloc or "localhost"


def envlist(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


_scheme, _host, _netloc = _url_parts(CELESTRA["URL"])
# Local mode answers localhost names only, which closes DNS rebinding; elsewhere the host of
# CELESTRA_URL unless ALLOWED_HOSTS lists them.
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS") or (
    ["localhost", "127.0.0.1", "[::1]"] if CELESTRA_LOCAL_MODE else [_host])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS") or [f"{_scheme}://{_netloc}"]
CELESTRA_HTTPS = envbool("CELESTRA_HTTPS", _scheme == "https")
if CELESTRA_HTTPS:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = envbool("CELESTRA_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = envint("CELESTRA_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("CELESTRA_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = envbool("CELESTRA_HSTS_PRELOAD", False)
# the health check of a load balancer talks plain HTTP to the web role
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health$"]
if envbool("CELESTRA_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CELESTRA_TRUST_X_FORWARDED_FOR = envbool("CELESTRA_TRUST_X_FORWARDED_FOR", False)
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = envint("CELESTRA_SESSION_AGE", 12 * 3600)
AUTH_PASSWORD_VALIDATORS = [] if CELESTRA_LOCAL_MODE else [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]


def _secrets_keys() -> tuple[list[str], bool]:
    """CELESTRA_SECRETS_KEYS (comma-separated Fernet keys, the first one encrypts), else the key file
    under var/, generated on first use. The key file is for local mode: elsewhere the system check
    refuses to start without the environment variable."""
    keys = [k.strip() for k in envsecret("CELESTRA_SECRETS_KEYS").split(",") if k.strip()]
    if keys:
        return keys, True
    path = VAR_DIR / "secrets.key"
    if not path.exists():
        import base64
        import secrets as _random

        key = base64.urlsafe_b64encode(_random.token_bytes(32))
        # written aside then linked: another process of this host never reads a half-written file
        scratch = VAR_DIR / f".secrets.key.{os.getpid()}"
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key + b"\n")
        try:
            os.link(scratch, path)
        except FileExistsError:
            pass  # created first by another process
        finally:
            scratch.unlink()
    return [path.read_text().strip()], False


CELESTRA_SECRETS_KEYS, CELESTRA_SECRETS_KEYS_FROM_ENV = _secrets_keys()

# the web role: gunicorn threaded workers (a wait=true request or a follow stream holds a thread)
CELESTRA.update({
    "WEB_WORKERS": envint("CELESTRA_WEB_WORKERS", 0),  # 0: 2 to 4 by CPU count
    "WEB_THREADS": envint("CELESTRA_WEB_THREADS", 32),
    "WEB_TIMEOUT": envint("CELESTRA_WEB_TIMEOUT", 60),  # the worker's heartbeat, not a request limit
})
