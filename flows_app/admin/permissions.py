"""The console's one permission decision.

Every button the console shows and every action its views carry out asks :func:`console_can`.
Today it requires an active staff user (what the Django admin itself requires); it is the single
place to point at namespace roles (``accounts_app.permissions.user_can``) when they exist.
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

#: actions that only read
READ_ACTIONS = frozenset({"view"})
#: every action the console can carry out
ACTIONS = frozenset({
    "view", "execute", "kill", "restart", "replay", "resume", "pause", "set_state", "change_status",
    "set_labels", "force_run", "unqueue", "delete", "flow_edit", "flow_restore", "trigger_edit",
    "backfill", "kv_edit", "file_edit", "secret_edit",
})


def console_can(user: Any, action: str, namespace: str | None = None) -> bool:
    """May ``user`` do ``action`` (one of :data:`ACTIONS`) in ``namespace``?"""
    if action not in ACTIONS:
        raise ValueError(f"Unknown console action '{action}'")
    return bool(user is not None and user.is_active and user.is_staff)


def require(request: Any, action: str, namespace: str | None = None) -> None:
    """Refuse (HTTP 403) what the user may not do: the server decides, not the hidden button."""
    if not console_can(request.user, action, namespace):
        raise PermissionDenied(f"You may not {action.replace('_', ' ')} in namespace '{namespace or '*'}'")


def allowed(user: Any, namespace: str | None, actions: list[str] | tuple[str, ...] | frozenset[str] = ACTIONS
            ) -> dict[str, bool]:
    """``{action: bool}`` for templates (which buttons to show)."""
    return {action: console_can(user, action, namespace) for action in actions}
