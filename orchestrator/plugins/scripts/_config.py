"""Settings of the script tasks (``settings.CELESTRA["SCRIPTS"]``, read from the environment there).

Outside Django (the pure engine, a bare parser) the defaults below apply.
"""
from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
from typing import Any

DEFAULTS: dict[str, Any] = {
    "CACHE_DIR": os.path.join(tempfile.gettempdir(), "celestra-scripts-cache"),
    "WORK_DIR": None,                 # parent of the per-attempt working directories (system temp)
    "KEEP_FAILED_WORKDIR": False,     # keep the working directory of a failed attempt
    "CONTAINER_FALLBACK": "",         # "process": run container tasks with the Process runner
    "RUN_AS": None,                   # user name or uid the scripts run as (worker's user when unset)
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "PYTHON": None,                   # interpreter behind `python` (the worker's own when unset)
    "KILL_GRACE": 0.5,                # seconds between SIGTERM and SIGKILL
    "DOCKER_HOST": "",
}


def config() -> dict[str, Any]:
    try:
        from django.conf import settings

        if settings.configured:
            return {**DEFAULTS, **(getattr(settings, "CELESTRA", {}).get("SCRIPTS") or {})}
    except ImportError:  # pragma: no cover - Django is always installed with Celestra
        pass
    return dict(DEFAULTS)


def python_interpreter() -> str:
    return config().get("PYTHON") or sys.executable


def container_fallback() -> bool:
    return str(config().get("CONTAINER_FALLBACK") or "").strip().lower() == "process"


_docker_probe: tuple[float, str, bool] | None = None


def docker_reachable() -> tuple[bool, str]:
    """Whether a Docker daemon answers on DOCKER_HOST (or the default socket); cached for 10 s."""
    global _docker_probe
    host = str(config().get("DOCKER_HOST") or "") or "unix:///var/run/docker.sock"
    if _docker_probe is not None and _docker_probe[1] == host and time.monotonic() - _docker_probe[0] < 10:
        return _docker_probe[2], host
    reachable = False
    try:
        if host.startswith("unix://"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.5)
                sock.connect(host[len("unix://"):])
                reachable = True
        elif host.startswith("tcp://"):
            address, _, port = host[len("tcp://"):].rstrip("/").rpartition(":")
            with socket.create_connection((address, int(port)), timeout=0.5):
                reachable = True
    except (OSError, ValueError):
        reachable = False
    _docker_probe = (time.monotonic(), host, reachable)
    return reachable, host
