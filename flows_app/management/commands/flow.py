"""``manage.py flow ...``: Kestra's flow commands.

* ``flow validate PATH...``: parse and validate files (or directories); every error with its path and line.
* ``flow namespace update NAMESPACE DIR``: deploy every flow of DIR (all must belong to NAMESPACE or below).
* ``flow test PATH [key=value...] [--also PATH...] [--json]``: deploy, run to a terminal state, print the
  execution (with child executions and logs); exit status 0 only on SUCCESS.
* ``flow migrate PATH... [--to 2|1] [--check|--write]``: lint and rewrite flows between Kestra 1.x
  and 2.0 syntax (docs/kestra-2.md); ``--check`` (the default) exits 1 when something would change.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts_app.audit import record_cli
from accounts_app.cli import actor_option, resolve_actor

from orchestrator.engine.errors import CelestraError


def _yaml_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml")))
        elif path.exists():
            files.append(path)
        else:
            raise CommandError(f"{raw}: no such file or directory")
    return files


class Command(BaseCommand):
    help = "Flow commands: validate, namespace update, test, migrate"

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        validate = sub.add_parser("validate", help="validate flow files")
        validate.add_argument("paths", nargs="+")
        namespace = sub.add_parser("namespace", help="namespace commands")
        ns_sub = namespace.add_subparsers(dest="ns_action", required=True)
        update = ns_sub.add_parser("update", help="deploy a directory of flows into a namespace")
        update.add_argument("namespace")
        update.add_argument("directory")
        actor_option(update)
        test = sub.add_parser("test", help="deploy and run a flow, print the execution")
        test.add_argument("path")
        test.add_argument("inputs", nargs="*", help="key=value inputs")
        test.add_argument("--also", action="append", default=[], help="other flows to deploy first")
        test.add_argument("--json", action="store_true", help="print the execution as JSON")
        test.add_argument("--timeout", type=float, default=300.0)
        migrate = sub.add_parser("migrate", help="lint and rewrite flows between Kestra 1.x and 2.0 syntax")
        migrate.add_argument("paths", nargs="+")
        migrate.add_argument("--to", type=int, choices=(1, 2), default=2, help="target generation (default 2)")
        mode = migrate.add_mutually_exclusive_group()
        mode.add_argument("--check", action="store_true", help="report what would change (the default)")
        mode.add_argument("--write", action="store_true", help="rewrite the files in place")

    def handle(self, *args, **opts):
        action = opts["action"]
        if action == "validate":
            return self.validate(opts["paths"])
        if action == "namespace":
            # --user must hold the editor role on the namespace; without it: the system actor
            self.actor = resolve_actor(opts, "flow.edit", opts["namespace"])
            return self.namespace_update(opts["namespace"], opts["directory"])
        if action == "test":
            return self.test(opts)
        if action == "migrate":
            return self.migrate(opts)

    def migrate(self, opts):
        from flows_app.flow_migrate import migrate_files

        changed, failed = migrate_files(_yaml_files(opts["paths"]), opts["to"], opts["write"],
                                        self.stdout.write, self.stderr.write)
        if failed:
            raise CommandError(f"{failed} flow(s) could not be migrated")
        if changed and not opts["write"]:
            raise CommandError(f"{changed} flow(s) would change", returncode=1)

    def validate(self, paths):
        from orchestrator.engine.flow import FlowValidationError
        from orchestrator.runtime.flows import parse

        failed = 0
        for path in _yaml_files(paths):
            try:
                flow = parse(path.read_text())
            except FlowValidationError as exc:
                failed += 1
                self.stderr.write(f"✘ - {path}")
                for error in exc.errors:
                    where = f" (line {error.line})" if error.line else ""
                    self.stderr.write(f"  - {error.path}: {error.message}{where}" if error.path
                                      else f"  - {error.message}{where}")
            else:
                self.stdout.write(f"✓ - {flow.namespace} / {flow.id}")
                for path in flow.deprecated_paths:
                    self.stdout.write(f"⚠ - {path} is deprecated")
                for warning in flow.warnings:
                    self.stdout.write(f"⚠ - {warning}")
                for info in flow.infos:
                    self.stdout.write(f"ℹ - {info}")
        if failed:
            raise CommandError(f"{failed} invalid flow(s)")

    def namespace_update(self, namespace, directory):
        from orchestrator.engine.flow import FlowValidationError
        from flows_app.services import deploy_directory

        try:
            deployed = deploy_directory(directory, namespace)
        except FlowValidationError as exc:
            raise CommandError(str(exc)) from None
        except CelestraError as exc:
            raise CommandError(str(exc)) from None
        for item in deployed:
            status = "created" if item.created else ("updated" if item.changed else "unchanged")
            if status != "unchanged":
                record_cli("flow.edit", getattr(self, "actor", None), namespace=item.parsed.namespace,
                           target=f"flow {item.parsed.namespace}.{item.parsed.id}",
                           after={"revision": item.flow.revision, "source": item.flow.source})
            self.stdout.write(f"{item.parsed.namespace}.{item.parsed.id} revision {item.flow.revision} ({status})")
        self.stdout.write(f"{len(deployed)} flow(s) successfully updated!")

    def test(self, opts):
        from django.core.management import call_command

        from flows_app.services import create_execution, deploy_flow, execution_json, wait_for
        from orchestrator.engine import states
        from orchestrator.engine.flow import FlowValidationError
        from orchestrator.runtime.local import local_runtime

        call_command("migrate", verbosity=0)
        inputs = {}
        for pair in opts["inputs"]:
            key, sep, value = pair.partition("=")
            if not sep:
                raise CommandError(f"input '{pair}' is not key=value")
            inputs[key] = value
        try:
            for other in opts["also"]:
                deploy_flow(Path(other).read_text())
            deployed = deploy_flow(Path(opts["path"]).read_text())
        except FlowValidationError as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(str(exc)) from None
        with local_runtime():
            try:
                execution = create_execution(deployed.parsed.namespace, deployed.parsed.id, inputs)
            except CelestraError as exc:
                raise CommandError(str(exc)) from None
            final = wait_for(execution.id, timeout=opts["timeout"])
        data = execution_json(final.id, with_children=True, with_logs=True)
        if opts["json"]:
            self.stdout.write(json.dumps(data, indent=2))
        else:
            self.stdout.write(f"Execution {final.id} {final.state.current}")
            for run in data.get("taskRunList") or []:
                self.stdout.write(f"  {run['taskId']}{'[' + run['value'] + ']' if run.get('value') else ''}: "
                                  f"{run['state']['current']}")
            for entry in data.get("logs") or []:
                self.stdout.write(f"  {entry['timestamp']} {entry['level']:5} {entry['taskId'] or '-'} {entry['message']}")
        if final.state.current != states.SUCCESS:
            sys.exit(1)
