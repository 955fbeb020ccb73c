"""``manage.py ensure_admin``: on first start, create an admin account (``make run`` calls it).

When no superuser exists: with a terminal attached, asks for a user name and a password; otherwise
creates ``admin`` with a random password and prints it once, with how to log in.
"""
from __future__ import annotations

import getpass
import secrets
import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from accounts_app.audit import record_cli


class Command(BaseCommand):
    help = "Create the first admin account if there is none"

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--no-input", action="store_true", help="never ask, even on a terminal")
        parser.add_argument("--url", default="http://127.0.0.1:8080/")

    def handle(self, *args, **opts):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username, password = opts["username"], None
        asked = False
        if not opts["no_input"] and sys.stdin.isatty():
            self.stdout.write("No admin account yet: create one (leave the password empty for a random one).")
            username = input(f"User name [{username}]: ").strip() or username
            password = getpass.getpass("Password: ") or None
            asked = password is not None
        password = password or secrets.token_urlsafe(12)
        user = User.objects.create_superuser(username, email="", password=password)
        record_cli("user.add", None, target=f"user {user.username}", after={"superuser": True})
        url = opts["url"].rstrip("/")
        lines = [f"Created the admin account '{username}'" + ("." if asked else f" with password: {password}"),
                 f"  Log in at {url}/admin/ ; API calls use basic auth, e.g.",
                 f"  curl -u {username}:{'<password>' if asked else password} {url}/api/v1/main/flows/search",
                 f"  Change the password with: manage.py changepassword {username}" +
                 ("" if asked else " (it is not shown again)")]
        self.stdout.write("\n".join(lines))
