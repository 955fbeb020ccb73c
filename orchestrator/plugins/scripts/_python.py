"""Python for script tasks: the interpreter behind ``python``, and ``dependencies`` installed with uv
into a directory cached on the worker.

``python`` and ``python3`` on a script's PATH are small wrappers (``<cache>/shims/<hash>/``) that
exec the chosen interpreter: the worker's own by default (``CELESTRA_SCRIPTS_PYTHON`` names
another), or the one ``pythonVersion`` asks for, which must be present on the worker (uv finds it
among the interpreters on the PATH and those it manages; nothing is downloaded).

``dependencies`` are installed with ``uv pip install --target`` into
``<cache>/python-deps/<key>``, ``key`` = hash of (interpreter version, package manager, sorted
requirements), and put first on the script's ``PYTHONPATH``. Tasks asking for the same set share
it. Two workers building it at once are serialised by a file lock; the build goes to a temporary
directory renamed into place when complete, so a crashed build leaves nothing half-installed.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from typing import Any

from orchestrator.engine.errors import TaskFailure

from . import _config

#: variables of the worker's environment that the installer (not the script) may need
INSTALLER_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy",
                 "https_proxy", "no_proxy", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_DEFAULT_INDEX",
                 "UV_NATIVE_TLS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")


def cache_dir(conf: dict[str, Any]) -> str:
    path = str(conf.get("CACHE_DIR") or _config.DEFAULTS["CACHE_DIR"])
    os.makedirs(path, exist_ok=True)
    return path


def shims_dir(interpreter: str, conf: dict[str, Any]) -> str:
    """A directory holding ``python``/``python3`` wrappers for ``interpreter`` (created once)."""
    digest = hashlib.sha256(interpreter.encode()).hexdigest()[:16]
    target = os.path.join(cache_dir(conf), "shims", digest)
    if os.path.isdir(target):
        return target
    staging = f"{target}.tmp-{uuid.uuid4().hex[:8]}"
    os.makedirs(staging)
    # a wrapper, not a symlink: a virtual environment's interpreter finds its site-packages from
    # the path it is started by
    quoted = interpreter.replace("'", "'\\''")
    for name in ("python", "python3"):
        path = os.path.join(staging, name)
        with open(path, "w") as handle:
            handle.write(f"#!/bin/sh\nexec '{quoted}' \"$@\"\n")
        os.chmod(path, 0o755)
    try:
        os.rename(staging, target)
    except OSError:  # another process made it first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def uv_binary() -> str:
    import uv

    return uv.find_uv_bin()


def installer_env(conf: dict[str, Any]) -> dict[str, str]:
    env = {"PATH": str(conf.get("PATH") or "/usr/local/bin:/usr/bin:/bin"), "HOME": cache_dir(conf),
           "LANG": "C.UTF-8", "UV_CACHE_DIR": os.path.join(cache_dir(conf), "uv-cache"),
           "UV_PYTHON_DOWNLOADS": "never", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for name in INSTALLER_ENV:
        if os.environ.get(name):
            env[name] = os.environ[name]
    if "SSL_CERT_FILE" not in env and os.environ.get("PIP_CERT"):
        env["SSL_CERT_FILE"] = os.environ["PIP_CERT"]
    return env


def find_python(version: str, conf: dict[str, Any]) -> str:
    """The interpreter of ``pythonVersion`` on this worker (``uv python find``, no download)."""
    env = installer_env(conf)
    env["PATH"] = os.environ.get("PATH", "") + os.pathsep + env["PATH"]
    proc = subprocess.run([uv_binary(), "python", "find", "--no-python-downloads", version], env=env,
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise TaskFailure(f"pythonVersion: no Python {version} interpreter is installed on this worker "
                          f"({(proc.stderr or proc.stdout).strip()})")
    return proc.stdout.strip().splitlines()[-1]


def interpreter_version(interpreter: str) -> str:
    proc = subprocess.run([interpreter, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    if proc.returncode != 0:
        raise TaskFailure(f"The Python interpreter {interpreter} does not start: {proc.stderr.strip()}")
    return proc.stdout.strip()


def dependencies_key(version: str, manager: str, requirements: list[str]) -> str:
    payload = json.dumps([version, manager, sorted(r.strip() for r in requirements)])
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def install(ctx: Any, interpreter: str, manager: str, requirements: list[str], target: str,
            conf: dict[str, Any]) -> None:
    """Install ``requirements`` into ``target``; a failure fails the task with the installer's message."""
    from ._process import run_process

    if manager == "PIP":
        argv = [interpreter, "-m", "pip", "install", "--quiet", "--no-input", "--target", target, *requirements]
    else:
        argv = [uv_binary(), "pip", "install", "--no-python-downloads", "--python", interpreter, "--target",
                target, *requirements]
    lines: list[str] = []
    result = run_process(ctx, argv, cwd=cache_dir(conf), env=installer_env(conf),
                         grace=float(conf.get("KILL_GRACE") or 0.5), on_line=lambda line, _: lines.append(line),
                         publish=False, label="dependencies")
    for line in lines[-50:]:
        ctx.log("DEBUG", line)
    if result.exit_code != 0:
        message = "\n".join(lines[-20:]).strip()
        raise TaskFailure(f"dependencies: installing {' '.join(requirements)} failed "
                          f"(exit code {result.exit_code}): {message}")


def ensure_dependencies(ctx: Any, interpreter: str, manager: str, requirements: list[str], cached: bool,
                        workdir: str, conf: dict[str, Any]) -> str:
    """The directory holding ``requirements`` for ``interpreter`` (installed now if needed)."""
    from filelock import FileLock

    started = time.monotonic()
    if not cached:
        target = os.path.join(workdir, ".kestra-packages")
        install(ctx, interpreter, manager, requirements, target, conf)
        ctx.log("INFO", f"Installed {len(requirements)} dependencies in {time.monotonic() - started:.1f}s "
                        "(cache disabled)")
        return target
    version = interpreter_version(interpreter)
    key = dependencies_key(version, manager, requirements)
    root = os.path.join(cache_dir(conf), "python-deps")
    os.makedirs(root, exist_ok=True)
    final = os.path.join(root, key)
    if os.path.isdir(final):
        ctx.log("INFO", f"Using the cached dependencies {key} (Python {version})")
        ctx.metric("counter", "dependencies.cache.hit", 1.0)
        return final
    with FileLock(os.path.join(root, f"{key}.lock")):
        if os.path.isdir(final):  # built by another worker while this one waited for the lock
            ctx.log("INFO", f"Using the cached dependencies {key} (Python {version})")
            ctx.metric("counter", "dependencies.cache.hit", 1.0)
            return final
        staging = os.path.join(root, f".{key}.{uuid.uuid4().hex[:8]}")
        try:
            install(ctx, interpreter, manager, requirements, staging, conf)
            with open(os.path.join(staging, ".celestra-requirements.json"), "w") as handle:
                json.dump({"python": version, "packageManager": manager, "dependencies": requirements}, handle)
            try:
                os.rename(staging, final)
            except OSError:
                if not os.path.isdir(final):
                    raise
                # built meanwhile by a worker that did not share this lock (another host): theirs is complete
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    ctx.log("INFO", f"Installed {len(requirements)} dependencies in {time.monotonic() - started:.1f}s "
                    f"into the cache {key} (Python {version})")
    ctx.metric("counter", "dependencies.cache.miss", 1.0)
    return final
