"""``manage.py load_flows [DIR]``: deploy every flow of a directory (default: CELESTRA flows dir)."""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from orchestrator.engine.errors import CelestraError


class Command(BaseCommand):
    help = "Deploy the flows of a directory (a new revision only for changed sources)"

    def add_arguments(self, parser):
        parser.add_argument("directory", nargs="?", default=settings.CELESTRA["FLOWS_DIR"])

    def handle(self, *args, directory, **opts):
        from flows_app.services import deploy_directory

        try:
            deployed = deploy_directory(directory)
        except CelestraError as exc:
            raise CommandError(str(exc)) from None
        changed = sum(1 for d in deployed if d.changed)
        self.stdout.write(f"Loaded {len(deployed)} flow(s) from {directory} ({changed} new or changed)")
