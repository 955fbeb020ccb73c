"""The console's one permission decision.

Every button the console shows and every action its views carry out asks :func:`console_can`: an
active staff user (what the Django admin itself requires) holding, on the namespace, the role the
action needs (``accounts_app.permissions``: the same rules as the REST API). Lists show only the
rows of the namespaces the user may read.
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

from accounts_app.permissions import namespace_q, user_can

#: actions that only read
READ_ACTIONS = frozenset({"view"})
#: every action the console can carry out
ACTIONS = frozenset({
    "view", "execute", "kill", "restart", "replay", "resume", "pause", "set_state", "change_status",
    "set_labels", "force_run", "unqueue", "delete", "flow_edit", "flow_restore", "trigger_edit",
    "backfill", "kv_edit", "file_edit", "secret_edit",
})


#: console action → the API's action (and so the weakest namespace role allowed to do it)
ROLE_ACTIONS = {
    "view": "namespace.read",
    **{action: "execution.run" for action in (
        "execute", "kill", "restart", "replay", "resume", "pause", "set_state", "change_status",
        "set_labels", "force_run", "unqueue")},
    "delete": "execution.delete",
    "flow_edit": "flow.edit", "flow_restore": "flow.edit",
    "trigger_edit": "trigger.run", "backfill": "trigger.run",
    "kv_edit": "kv.edit", "file_edit": "file.edit", "secret_edit": "secret.edit",
}
assert set(ROLE_ACTIONS) == ACTIONS


def console_can(user: Any, action: str, namespace: str | None = None) -> bool:
    """May ``user`` do ``action`` (one of :data:`ACTIONS`) in ``namespace`` (None: in at least one)?"""
    if action not in ACTIONS:
        raise ValueError(f"Unknown console action '{action}'")
    if user is None or not user.is_active or not user.is_staff:
        return False
    return user_can(user, ROLE_ACTIONS[action], namespace)


def visible(request: Any, queryset: Any, role_action: str = "namespace.read") -> Any:
    """The rows of ``queryset`` in namespaces where the user may ``role_action``."""
    if not any(field.name == "namespace" for field in queryset.model._meta.get_fields()):
        return queryset
    return queryset.filter(namespace_q(request.user, role_action))


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
    #: the API action that lets a user see a row (secrets: only namespace admins see their keys)
    read_action = "namespace.read"

    @staticmethod
    def _namespace(obj: Any) -> str | None:
        return getattr(obj, "namespace", None) if obj is not None else None

    def has_module_permission(self, request) -> bool:
        return console_can(request.user, "view")

    def has_view_permission(self, request, obj=None) -> bool:
        return console_can(request.user, "view", self._namespace(obj)) and user_can(
            request.user, self.read_action, self._namespace(obj))

    def get_queryset(self, request):
        return visible(request, super().get_queryset(request), self.read_action)  # type: ignore[misc]

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
