"""``manage.py server ROLE``: run Celestra's process roles, modelled on ``kestra server``.

* ``local``: SQLite and the in-process broker by default; executor, worker, sweep and beat
  threads plus the web server, in one process. Loads ``flows/`` first.
* ``standalone``: every role on this host as separate processes (Postgres + Redis from env).
* ``executor``, ``worker [--groups a,b]``, ``webserver``, ``scheduler``: one role each.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

ROLES = ("local", "standalone", "executor", "worker", "webserver", "scheduler")


def gunicorn_options(opts: dict) -> list[str]:
    """Threaded workers (gthread): a ``wait=true`` request or a ``follow`` stream holds one thread, not
    a whole process, and the worker keeps answering its other threads' requests and the arbiter's
    heartbeat, so no request is cut at the sync worker's 30 s timeout (docs/security.md)."""
    conf = settings.CELESTRA
    workers = str(conf["WEB_WORKERS"] or max(2, min(4, os.cpu_count() or 2)))
    return ["-b", f"{opts['host']}:{opts['port']}", "-k", "gthread", "-w", workers,
            "--threads", str(conf["WEB_THREADS"]), "--timeout", str(conf["WEB_TIMEOUT"]), "--graceful-timeout", "30",
            "--keep-alive", "5", "--access-logfile", "-"]


class Command(BaseCommand):
    help = "Run a Celestra server role: " + ", ".join(ROLES)

    def add_arguments(self, parser):
        parser.add_argument("role", choices=ROLES)
        parser.add_argument("--port", type=int, default=settings.CELESTRA["SERVER_PORT"])
        parser.add_argument("--host", default=settings.CELESTRA["SERVER_HOST"])
        parser.add_argument("--groups", default="", help="worker groups to consume besides 'default' (comma list)")
        parser.add_argument("--no-default-group", action="store_true", help="worker: only the given groups")
        parser.add_argument("--concurrency", type=int, default=settings.CELESTRA["SERVER_CONCURRENCY"])
        parser.add_argument("--pool", default=settings.CELESTRA["SERVER_POOL"])
        parser.add_argument("--flows", default=settings.CELESTRA["FLOWS_DIR"], help="directory of flows to load")

    def handle(self, *args, **opts):
        role = opts["role"]
        groups = [g for g in opts["groups"].split(",") if g]
        if role == "local":
            return self.local(opts, groups)
        if role == "executor":
            return self.celery_worker(["executor"], opts["concurrency"], opts["pool"], "executor")
        if role == "worker":
            queues = [] if opts["no_default_group"] else ["worker.default"]
            queues += [f"worker.{g}" for g in groups]
            if not queues:
                raise CommandError("a worker needs at least one group")
            name = "worker-" + "-".join(groups) if groups else "worker"
            return self.celery_worker(queues, opts["concurrency"], opts["pool"], name)
        if role == "scheduler":
            return self.exec([sys.executable, "-m", "celery", "-A", "orchestrator", "beat", "-l", "INFO",
                              "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"])
        if role == "webserver":
            return self.webserver(opts)
        if role == "standalone":
            return self.standalone(opts, groups)

    def celery_worker(self, queues, concurrency, pool, name):
        self.exec([sys.executable, "-m", "celery", "-A", "orchestrator", "worker", "-l", "INFO",
                   "-Q", ",".join(queues), "-c", str(concurrency), "-P", pool, "-n", f"{name}@%h",
                   "-O", "fair", "--without-gossip", "--without-mingle"])

    def webserver(self, opts):
        try:
            import gunicorn  # noqa: F401
        except ImportError:
            call_command("runserver", f"{opts['host']}:{opts['port']}", "--noreload")
            return
        self.exec([sys.executable, "-m", "gunicorn", "orchestrator.wsgi", *gunicorn_options(opts)])

    def exec(self, argv):
        os.execv(argv[0], argv)

    def local(self, opts, groups):
        from flows_app.services import deploy_directory
        from orchestrator.runtime.local import LocalRuntime

        call_command("migrate", verbosity=0)
        # first start: an admin account to log in with (asked for on a terminal, else printed once)
        call_command("ensure_admin", url=f"http://{opts['host']}:{opts['port']}/")
        if opts["flows"] and os.path.isdir(opts["flows"]):
            deployed = deploy_directory(opts["flows"])
            self.stdout.write(f"Loaded {len(deployed)} flow(s) from {opts['flows']}")
        runtime = LocalRuntime(groups=groups, concurrency=opts["concurrency"], beat=True,
                               sweep_interval=settings.CELESTRA["SWEEP_INTERVAL"]).start()
        self.stdout.write(f"Celestra local server on http://{opts['host']}:{opts['port']}/ "
                          f"(API /api/v1/main, admin /admin)")
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        from django.core.servers.basehttp import ThreadedWSGIServer, get_internal_wsgi_application

        class QuietHandler(WSGIRequestHandler):
            def log_message(self, format, *args):
                pass

        from django.contrib.staticfiles.handlers import StaticFilesHandler

        # the admin's CSS and scripts, served by the same process in local mode
        application = StaticFilesHandler(get_internal_wsgi_application())
        httpd = make_server(opts["host"], opts["port"], application,
                            server_class=ThreadedWSGIServer, handler_class=QuietHandler)
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            runtime.stop()

    def standalone(self, opts, groups):
        """Every role as a child process; stops them all on SIGINT/SIGTERM."""
        manage = [sys.executable, sys.argv[0]]
        children = [
            subprocess.Popen([*manage, "server", "executor", "--concurrency", "2"]),
            subprocess.Popen([*manage, "server", "worker", "--groups", ",".join(groups),
                              "--concurrency", str(opts["concurrency"])]),
            subprocess.Popen([*manage, "server", "scheduler"]),
            subprocess.Popen([*manage, "server", "webserver", "--host", opts["host"], "--port", str(opts["port"])]),
        ]

        def stop(*_):
            for child in children:
                child.terminate()

        signal.signal(signal.SIGTERM, stop)
        try:
            for child in children:
                child.wait()
        except KeyboardInterrupt:
            stop()
