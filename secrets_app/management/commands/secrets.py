"""``manage.py secrets rotate|generate-key``.

Rotation: put a new key first in ``CELESTRA_SECRETS_KEYS`` (keep the old ones after it), run
``secrets rotate`` (every secret is re-encrypted with the first key, in one transaction), then drop
the old keys.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts_app.audit import record_cli
from accounts_app.cli import actor_option, resolve_actor
from secrets_app import crypto
from secrets_app.models import Secret


class Command(BaseCommand):
    help = "Re-encrypt every secret with the first key of CELESTRA_SECRETS_KEYS, or print a new key"

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        actor_option(sub.add_parser("rotate", help="re-encrypt every secret with the first key"))
        sub.add_parser("generate-key", help="print a new Fernet key")

    def handle(self, *args, **opts):
        if opts["action"] == "generate-key":
            self.stdout.write(crypto.generate_key())
            return
        actor = resolve_actor(opts)
        if actor is not None and not actor.is_superuser:
            raise CommandError("--user: rotating every secret needs a superuser")
        done = 0
        failed: list[str] = []
        with transaction.atomic():
            for secret in Secret.objects.select_for_update().order_by("pk"):
                try:
                    rotated = crypto.rotate(secret.encrypted_value)
                except crypto.SecretDecryptionError:
                    failed.append(str(secret))
                    continue
                Secret.objects.filter(pk=secret.pk).update(encrypted_value=rotated)
                done += 1
            if failed:
                # nothing is half-done: the transaction is rolled back
                raise CommandError(f"{len(failed)} secret(s) cannot be decrypted with the configured keys: "
                                   + ", ".join(failed[:20]))
        record_cli("secret.rotate", actor, target="all secrets", after={"count": done})
        self.stdout.write(f"Re-encrypted {done} secret(s) with the first key")
