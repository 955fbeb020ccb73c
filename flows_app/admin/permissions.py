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


class ConsolePermissions:
    """Admin permissions from :func:`console_can`: viewing needs ``view``, every change
    :attr:`edit_action`, checked again with the namespace of the row being saved or deleted."""

    edit_action = "view"

    @staticmethod
    def _namespace(obj: Any) -> str | None:
        return getattr(obj, "namespace", None) if obj is not None else None

    def has_module_permission(self, request) -> bool:
        return console_can(request.user, "view")

    def has_view_permission(self, request, obj=None) -> bool:
        return console_can(request.user, "view", self._namespace(obj))

    def has_add_permission(self, request, *args) -> bool:
        return console_can(request.user, self.edit_action)

    def has_change_permission(self, request, obj=None) -> bool:
        return console_can(request.user, self.edit_action, self._namespace(obj))

    def has_delete_permission(self, request, obj=None) -> bool:
        return console_can(request.user, self.edit_action, self._namespace(obj))

    def save_model(self, request, obj, form, change) -> None:
        require(request, self.edit_action, self._namespace(obj))
        super().save_model(request, obj, form, change)  # type: ignore[misc]

    def delete_model(self, request, obj) -> None:
        require(request, self.edit_action, self._namespace(obj))
        super().delete_model(request, obj)  # type: ignore[misc]

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            require(request, self.edit_action, self._namespace(obj))
        super().delete_queryset(request, queryset)  # type: ignore[misc]
