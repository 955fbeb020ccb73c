"""Latency of ordinary API requests while ``follow`` streams are open, under the production web server.

    .venv/bin/python bench/web_streams.py [--streams 2] [--requests 50] [--worker-class gthread|sync]

Starts ``manage.py server webserver`` (local mode, a scratch var/ directory) with one worker, opens
the streams, then times sequential ``GET /api/v1/main/executions/search`` calls (bearer token).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
FLOW = "id: bench\nnamespace: company.bench\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: x\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=2)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--threads", default="4")
    parser.add_argument("--worker-class", default="gthread", choices=["gthread", "sync"])
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="celestra-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(CELESTRA_VAR_DIR=str(var), CELESTRA_WEB_WORKERS="1", CELESTRA_WEB_THREADS=args.threads)
    run = lambda *a: subprocess.run([sys.executable, str(ROOT / "manage.py"), *a], env=env, cwd=ROOT,
                                    capture_output=True, text=True, check=True).stdout
    run("migrate", "-v0")
    run("ensure_admin", "--no-input")
    token = run("token", "create", "admin", "bench").strip()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api/v1/main"
    if args.worker_class == "gthread":
        command = [sys.executable, str(ROOT / "manage.py"), "server", "webserver", "--port", str(port)]
    else:  # the former default, for comparison
        command = [sys.executable, "-m", "gunicorn", "orchestrator.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"]
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    auth = {"Authorization": f"Bearer {token}"}
    try:
        for _ in range(300):
            try:
                requests.get(url.replace("/main", "/health"), timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.1)
        requests.post(f"{url}/flows", data=FLOW, headers={**auth, "Content-Type": "application/x-yaml"}, timeout=10)
        streams = []
        for _ in range(args.streams):
            execution = requests.post(f"{url}/executions/company.bench/bench", headers=auth, timeout=10).json()["id"]
            stream = requests.get(f"{url}/executions/{execution}/follow", headers=auth, stream=True, timeout=10)
            next(stream.iter_lines())
            streams.append(stream)
        times, failures = [], 0
        for _ in range(args.requests):
            start = time.perf_counter()
            try:
                requests.get(f"{url}/executions/search", headers=auth, timeout=5).raise_for_status()
                times.append((time.perf_counter() - start) * 1000)
            except requests.RequestException:
                failures += 1
        if times:
            times.sort()
            print(f"{args.worker_class}: {args.streams} streams open, {len(times)} requests answered, "
                  f"{failures} timed out (5 s); p50 {statistics.median(times):.1f} ms, "
                  f"p95 {times[int(len(times) * 0.95) - 1]:.1f} ms")
        else:
            print(f"{args.worker_class}: {args.streams} streams open: all {failures} requests timed out (5 s)")
        for stream in streams:
            stream.close()
    finally:
        proc.send_signal(signal.SIGINT)  # gunicorn's quick shutdown: held streams are not waited for
        proc.wait(30)


if __name__ == "__main__":
    main()
