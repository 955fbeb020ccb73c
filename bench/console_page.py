#!/usr/bin/env python
"""How long the console's execution page takes for a large execution (a ForEach of 1,000 values:
1,001 task runs, 1,000 log lines).

``.venv/bin/python bench/console_page.py [--values N]``: local mode (SQLite under a temporary
CELESTRA_VAR_DIR, in-process broker) unless DATABASE_URL is set; prints the median server time
and the size of the page, of its live fragment and of the first logs poll.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--values", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("CELESTRA_VAR_DIR", tempfile.mkdtemp(prefix="celestra-console-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from flows_app.services import create_execution, deploy_flow, wait_for
    from orchestrator.runtime.local import LocalRuntime

    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    runtime = LocalRuntime(groups=[], concurrency=4, sweep_interval=0.2).start()
    try:
        deploy_flow(f"""id: big
namespace: bench.console
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{{{ range(1, {args.values}) }}}}"
    concurrencyLimit: 0
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: "value {{{{ taskrun.value }}}}"
""")
        started = time.monotonic()
        execution = wait_for(create_execution("bench.console", "big", {}).id, timeout=600)
        ran = time.monotonic() - started
    finally:
        runtime.stop()
    from flows_app.models import TaskRun

    runs = TaskRun.objects.filter(execution_id=execution.id).count()
    user, _ = User.objects.get_or_create(username="bench", defaults={"is_staff": True, "is_superuser": True})
    client = Client()
    client.force_login(user)
    base = f"/admin/flows_app/execution/{execution.id}"
    print(f"execution {execution.id}: {execution.state.current}, {runs} task runs (ran in {ran:.1f} s)")
    for name, url in (("page", f"{base}/change/"), ("fragment", f"{base}/fragment/"),
                      ("logs poll", f"{base}/logs.json?after=0"), ("page, all expanded",
                                                                  f"{base}/change/?expand=" + next(
                          r.id for r in TaskRun.objects.filter(execution_id=execution.id, task_id="each")))):
        times, size = [], 0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - t0)
            assert response.status_code == 200, response.status_code
            size = len(response.content)
        print(f"{name:20s} median {statistics.median(times) * 1000:7.1f} ms   {size / 1024:8.1f} KiB")


if __name__ == "__main__":
    main()
