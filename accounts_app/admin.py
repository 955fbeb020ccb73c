"""Admin: namespace roles, API tokens (the clear token is shown once, at creation), the audit trail;
and :class:`NamespaceScopedAdmin`, the mixin other apps' admins use to apply namespace roles."""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages

from .models import ApiToken, AuditLog, NamespaceRole
from .permissions import namespace_q, user_can


class NamespaceScopedAdmin:
    """Mixin for a ModelAdmin of objects with a ``namespace`` field: the change list shows the
    namespaces where the user may ``read_action``; adding, changing and deleting need ``edit_action``
    on the object's namespace. Superusers pass; Django's model permissions still apply on top.

    Usage: ``class FlowAdmin(NamespaceScopedAdmin, admin.ModelAdmin): read_action = "flow.read";
    edit_action = "flow.edit"``.
    """

    read_action = "flow.read"
    edit_action = "flow.edit"
    namespace_field = "namespace"

    def get_queryset(self, request: Any) -> Any:
        return super().get_queryset(request).filter(namespace_q(request.user, self.read_action, self.namespace_field))

    def _may(self, request: Any, action: str, obj: Any) -> bool:
        namespace = getattr(obj, self.namespace_field, None) if obj is not None else None
        return user_can(request.user, action, namespace)

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        return self._may(request, self.read_action, obj) or super().has_view_permission(request, obj)

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return self._may(request, self.edit_action, obj) and super().has_change_permission(request, obj)

    def has_add_permission(self, request: Any, *args: Any) -> bool:
        return self._may(request, self.edit_action, None) and super().has_add_permission(request, *args)

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return self._may(request, self.edit_action, obj) and super().has_delete_permission(request, obj)

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        # the namespace typed in the form must be one the user may edit too
        namespace = getattr(obj, self.namespace_field, None)
        if namespace is not None and not user_can(request.user, self.edit_action, namespace):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied(f"You may not {self.edit_action} on namespace '{namespace}'")
        super().save_model(request, obj, form, change)


@admin.register(NamespaceRole)
class NamespaceRoleAdmin(admin.ModelAdmin):
    list_display = ["namespace", "role", "user", "group", "created"]
    list_filter = ["role"]
    search_fields = ["namespace", "user__username", "group__name"]
    autocomplete_fields = ["user", "group"]

    def has_module_permission(self, request: Any) -> bool:
        return user_can(request.user, "role.manage", None)

    def get_queryset(self, request: Any) -> Any:
        return super().get_queryset(request).filter(namespace_q(request.user, "role.manage"))

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        return user_can(request.user, "role.manage", obj.namespace if obj else None)

    has_change_permission = has_delete_permission = has_view_permission

    def has_add_permission(self, request: Any) -> bool:
        return user_can(request.user, "role.manage", None)

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        if not user_can(request.user, "role.manage", obj.namespace) or (
                not obj.namespace and not request.user.is_superuser):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied(f"You may not grant roles on namespace '{obj.namespace or '*'}'")
        super().save_model(request, obj, form, change)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "hint", "user", "created", "expires", "revoked", "last_used", "state"]
    list_filter = ["revoked"]
    search_fields = ["name", "user__username", "hint"]
    fields = ["name", "user", "expires", "revoked", "hint", "created", "last_used"]
    readonly_fields = ["hint", "created", "last_used"]
    actions = ["revoke"]

    def has_module_permission(self, request: Any) -> bool:
        return request.user.is_superuser

    has_view_permission = has_change_permission = has_add_permission = has_delete_permission = (
        lambda self, request, obj=None: request.user.is_superuser)

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        token, raw = ApiToken.issue(obj.user, obj.name, obj.expires)
        obj.pk = token.pk
        for field in token._meta.concrete_fields:
            setattr(obj, field.attname, getattr(token, field.attname))
        messages.warning(request, f"Token '{token.name}': {raw} (copy it now, it is not shown again)")

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: Any, queryset: Any) -> None:
        from django.utils import timezone

        from .audit import record

        for token in queryset.filter(revoked__isnull=True):
            token.revoked = timezone.now()
            token.save(update_fields=["revoked"])
            record("token.revoke", user=request.user, source=AuditLog.ADMIN, target=f"token {token}")


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ["created", "actor_name", "source", "action", "namespace", "target", "ip", "status"]
    list_filter = ["source", "action"]
    search_fields = ["actor_name", "action", "namespace", "target", "path", "ip"]
    date_hierarchy = "created"

    def has_module_permission(self, request: Any) -> bool:
        return user_can(request.user, "audit.read", None)

    def get_queryset(self, request: Any) -> Any:
        queryset = super().get_queryset(request).filter(namespace_q(request.user, "audit.read"))
        return queryset if request.user.is_superuser else queryset.exclude(namespace="")

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        return user_can(request.user, "audit.read", obj.namespace if obj else None)

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
