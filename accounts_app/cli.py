"""The actor of a CLI command that changes things: ``--user NAME``, else the system actor."""
from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError


def actor_option(parser: Any) -> None:
    parser.add_argument("--user", dest="actor", default=None,
                        help="user the change is made as (checked against its roles, audited); "
                             "default: the system actor")


def resolve_actor(opts: dict[str, Any], action: str | None = None, namespace: str | None = None) -> Any:
    """The ``--user`` given (which must hold ``action`` on ``namespace`` when both are given), else
    None for the system actor."""
    name = opts.get("actor")
    if not name:
        return None
    from django.contrib.auth import get_user_model

    from .permissions import user_can

    user = get_user_model().objects.filter(username=name, is_active=True).first()
    if user is None:
        raise CommandError(f"--user: unknown or inactive user '{name}'")
    if action and not user_can(user, action, namespace):
        raise CommandError(f"--user: '{name}' may not {action} on namespace '{namespace}'")
    return user
