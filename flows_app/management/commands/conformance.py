"""``manage.py conformance --corpus DIR --manifest FILE``: run the Kestra conformance corpus.

Prints ``PASS <case>`` / ``FAIL <case>: <first mismatch>`` per case, the pass rate and a final
``N passed, N failed`` line (``--json``: one JSON report instead). The exit status is 0 whatever the
pass rate, unless ``--fail-under RATE`` is given and the rate is below it.

The cases run on a scratch SQLite database and storage directory of their own
(``var/conformance/run-<pid>/``, removed at the end unless ``--keep-scratch``): the command starts
itself again in a child process configured with them, and that child migrates, starts the local
runtime and runs the cases.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

CHILD_FLAG = "CELESTRA_CONFORMANCE_CHILD"


class Command(BaseCommand):
    help = "Run the cases of a Kestra conformance manifest and report each one"

    def add_arguments(self, parser):
        parser.add_argument("--corpus", required=True, help="corpus directory (flows, fixtures)")
        parser.add_argument("--manifest", required=True, help="manifest file")
        parser.add_argument("--json", action="store_true", help="print a JSON report instead of text")
        parser.add_argument("--case", default=None, help="only cases whose id matches (glob, or substring)")
        parser.add_argument("--kind", default=None,
                            choices=["engine", "parse", "invalid", "api", "cli", "no-assertion"])
        parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each execution")
        parser.add_argument("--stall", type=float, default=20.0,
                            help="give up on an execution that made no progress for this many seconds "
                                 "(no pending timer); 0 waits for the whole timeout")
        parser.add_argument("--fail-under", type=float, default=None, dest="fail_under",
                            help="exit with status 1 when the pass rate (percent) is below this")
        parser.add_argument("--reasons", action="store_true",
                            help="also print the failure categories with their counts")
        parser.add_argument("--keep-scratch", action="store_true", dest="keep_scratch",
                            help="keep the run's scratch database and storage under var/conformance/")

    def handle(self, *args, **opts):
        corpus = Path(opts["corpus"]).resolve()
        manifest = Path(opts["manifest"]).resolve()
        if not corpus.is_dir():
            raise CommandError(f"{corpus}: not a directory")
        if not manifest.is_file():
            raise CommandError(f"{manifest}: no such file")
        if os.environ.get(CHILD_FLAG) == "1":
            return self.run_cases(corpus, manifest, opts)
        return self.spawn(corpus, manifest, opts)

    # -- parent: re-run in a child process on a scratch database --------------------------------------

    def spawn(self, corpus: Path, manifest: Path, opts: dict) -> None:
        # One scratch directory per run, so that two runs at the same time cannot share a database.
        scratch = Path(settings.BASE_DIR) / "var" / "conformance" / f"run-{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        database = scratch / "conformance.sqlite3"
        storage = scratch / "storage"
        env = {**os.environ, CHILD_FLAG: "1", "DATABASE_URL": f"sqlite:///{database}",
               "CELESTRA_STORAGE_DIR": str(storage), "CELERY_BROKER_URL": "memory://",
               "PYTHONUNBUFFERED": "1"}
        argv = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "conformance",
                "--corpus", str(corpus), "--manifest", str(manifest),
                "--timeout", str(opts["timeout"]), "--stall", str(opts["stall"])]
        for flag in ("json", "reasons"):
            if opts[flag]:
                argv.append(f"--{flag}")
        for name in ("case", "kind"):
            if opts[name]:
                argv += [f"--{name}", opts[name]]
        if opts["fail_under"] is not None:
            argv += ["--fail-under", str(opts["fail_under"])]
        if opts["verbosity"] != 1:
            argv += ["--verbosity", str(opts["verbosity"])]
        try:
            process = subprocess.Popen(argv, cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, text=True)
            assert process.stdout is not None
            for line in process.stdout:
                self.stdout.write(line.rstrip("\n"))
            code = process.wait()
        finally:
            if not opts["keep_scratch"]:
                shutil.rmtree(scratch, ignore_errors=True)
        if code == 1 and opts["fail_under"] is not None:
            sys.exit(1)
        if code != 0:
            raise CommandError(f"the conformance run stopped with status {code}")

    # -- child: run the cases ---------------------------------------------------------------------------

    def run_cases(self, corpus: Path, manifest_path: Path, opts: dict) -> None:
        import logging

        from django.core.management import call_command

        from conformance.manifest import ManifestError, load_manifest
        from conformance.runner import ConformanceRunner, conformance_environment, summarize

        try:
            manifest = load_manifest(manifest_path)
        except ManifestError as exc:
            raise CommandError(str(exc)) from None
        cases = manifest.select(opts["case"], opts["kind"])
        if opts["verbosity"] < 2:  # engine errors are part of the report, not of the console
            logging.disable(logging.CRITICAL)
        call_command("migrate", verbosity=0)
        runner = ConformanceRunner(corpus, manifest, timeout=opts["timeout"], stall=opts["stall"])
        as_json = opts["json"]

        def report(result) -> None:
            if as_json:
                return
            if result.passed:
                self.stdout.write(f"PASS {result.case}")
            else:
                self.stdout.write(f"FAIL {result.case}: {result.reason}")

        with conformance_environment():
            from orchestrator.runtime.local import LocalRuntime

            runtime = LocalRuntime(groups=[], concurrency=8, sweep_interval=0.2).start()
            try:
                results = runner.run(cases, on_result=report)
            finally:
                runtime.stop()
        totals = summarize(results)
        if as_json:
            self.stdout.write(json.dumps({
                "corpus": str(corpus), "manifest": str(manifest_path),
                "cases": [result.to_json() for result in results], "totals": totals,
            }, indent=2))
        else:
            if opts["reasons"]:
                self.stdout.write("failure categories:")
                for category, count in totals["failureCategories"].items():
                    self.stdout.write(f"  {count:4d}  {category}")
            self.stdout.write(f"pass rate: {totals['passRate']:.1f}% ({totals['passed']}/{totals['total']})")
            self.stdout.write(f"{totals['passed']} passed, {totals['failed']} failed")
        if opts["fail_under"] is not None and totals["passRate"] < opts["fail_under"]:
            sys.exit(1)
