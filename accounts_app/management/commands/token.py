"""``manage.py token create|list|revoke``: bearer API tokens for service accounts.

``create USER NAME [--expires-in DAYS | --expires ISO] [--create-user]`` prints the token once.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts_app.audit import record_cli
from accounts_app.models import ApiToken
from accounts_app.cli import actor_option, resolve_actor


class Command(BaseCommand):
    help = "Create, list and revoke API tokens (Authorization: Bearer <token>)"

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token and print it once")
        create.add_argument("username")
        create.add_argument("name")
        create.add_argument("--expires-in", type=float, default=90, metavar="DAYS",
                            help="days until it expires (default 90; 0: never)")
        create.add_argument("--expires", default=None, help="expiry as an ISO date-time (overrides --expires-in)")
        create.add_argument("--create-user", action="store_true", help="create USER as a service account first")
        actor_option(create)
        listing = sub.add_parser("list", help="list tokens (never their value)")
        listing.add_argument("username", nargs="?")
        revoke = sub.add_parser("revoke", help="revoke a token by id or by its first characters")
        revoke.add_argument("token")
        actor_option(revoke)

    def handle(self, *args, **opts):
        return getattr(self, "do_" + opts["action"])(opts)

    def do_create(self, opts):
        actor = resolve_actor(opts)
        User = get_user_model()
        user = User.objects.filter(username=opts["username"]).first()
        if user is None:
            if not opts["create_user"]:
                raise CommandError(f"Unknown user '{opts['username']}' (use --create-user for a service account)")
            user = User.objects.create_user(opts["username"])
            user.set_unusable_password()
            user.save()
            record_cli("user.add", actor, target=f"user {user.username}", after={"serviceAccount": True})
        if opts["expires"]:
            try:
                expires = datetime.fromisoformat(opts["expires"].replace("Z", "+00:00"))
            except ValueError:
                raise CommandError(f"--expires: not an ISO date-time: {opts['expires']}") from None
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=dt_timezone.utc)
        elif opts["expires_in"]:
            expires = timezone.now() + timedelta(days=opts["expires_in"])
        else:
            expires = None
        token, raw = ApiToken.issue(user, opts["name"], expires)
        record_cli("token.create", actor, target=f"token {token}",
                   after={"id": token.pk, "user": user.username, "expires": expires.isoformat() if expires else None})
        self.stdout.write(raw)
        self.stderr.write(f"Token #{token.pk} '{token.name}' for {user.username}, "
                          f"expires {expires.isoformat() if expires else 'never'}. Shown once: keep it now.")

    def do_list(self, opts):
        tokens = ApiToken.objects.select_related("user")
        if opts.get("username"):
            tokens = tokens.filter(user__username=opts["username"])
        for t in tokens:
            self.stdout.write(f"{t.pk}\t{t.hint}…\t{t.user.username}\t{t.name}\t{t.state}\t"
                              f"expires={t.expires.isoformat() if t.expires else 'never'}\t"
                              f"last_used={t.last_used.isoformat() if t.last_used else '-'}")

    def do_revoke(self, opts):
        actor = resolve_actor(opts)
        ref = opts["token"]
        tokens = ApiToken.objects.filter(pk=int(ref)) if ref.isdigit() else ApiToken.objects.filter(hint__startswith=ref[:10])
        tokens = list(tokens)
        if len(tokens) != 1:
            raise CommandError(f"'{ref}' matches {len(tokens)} tokens; give the id (see `token list`)")
        token = tokens[0]
        if token.revoked is None:
            token.revoked = timezone.now()
            token.save(update_fields=["revoked"])
            record_cli("token.revoke", actor, target=f"token {token}", before={"state": "active"},
                       after={"state": "revoked"})
        self.stdout.write(f"Token #{token.pk} '{token.name}' revoked")
