"""``manage.py role grant|revoke|list``: namespace roles of users and groups."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from accounts_app.audit import record_cli
from accounts_app.cli import actor_option, resolve_actor
from accounts_app.models import ROLES, NamespaceRole


class Command(BaseCommand):
    help = "Grant, revoke and list namespace roles (viewer, operator, editor, admin)"

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        for name in ("grant", "revoke"):
            p = sub.add_parser(name)
            p.add_argument("role", choices=ROLES)
            p.add_argument("namespace", help="namespace (and everything below it); '*' for all")
            who = p.add_mutually_exclusive_group(required=True)
            who.add_argument("--to-user", dest="username")
            who.add_argument("--to-group", dest="groupname")
            actor_option(p)
        sub.add_parser("list")

    def handle(self, *args, **opts):
        if opts["action"] == "list":
            for r in NamespaceRole.objects.select_related("user", "group"):
                who = f"user:{r.user.username}" if r.user_id else f"group:{r.group.name}"
                self.stdout.write(f"{r.role}\t{r.namespace or '*'}\t{who}")
            return
        namespace = "" if opts["namespace"] == "*" else opts["namespace"]
        actor = resolve_actor(opts, "role.manage", namespace or None)
        if opts["username"]:
            subject = get_user_model().objects.filter(username=opts["username"]).first()
            if subject is None:
                raise CommandError(f"Unknown user '{opts['username']}'")
            who = {"user": subject}
        else:
            subject, _ = Group.objects.get_or_create(name=opts["groupname"])
            who = {"group": subject}
        if opts["action"] == "grant":
            NamespaceRole.objects.get_or_create(namespace=namespace, role=opts["role"], **who)
        else:
            NamespaceRole.objects.filter(namespace=namespace, role=opts["role"], **who).delete()
        record_cli(f"role.{opts['action']}", actor, namespace=namespace,
                   target=f"{opts['role']} on {namespace or '*'} for {subject}")
        self.stdout.write(f"{opts['action']}: {opts['role']} on {namespace or '*'} for {subject}")
