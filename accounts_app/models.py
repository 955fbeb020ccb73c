"""Namespace roles, API tokens for service accounts, and the audit trail."""
from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q
from django.utils import timezone

#: roles from the weakest to the strongest; each one includes what the previous ones may do
VIEWER, OPERATOR, EDITOR, ADMIN = "viewer", "operator", "editor", "admin"
ROLES = (VIEWER, OPERATOR, EDITOR, ADMIN)
ROLE_LEVEL = {role: index + 1 for index, role in enumerate(ROLES)}


class NamespaceRole(models.Model):
    """A role granted to a user or a group on a namespace and every namespace below it.

    An empty namespace grants the role on every namespace.
    """

    namespace = models.CharField(max_length=150, blank=True, default="",
                                 help_text="Namespace (and its children, by dot segments); empty for all")
    role = models.CharField(max_length=16, choices=[(r, r) for r in ROLES])
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="namespace_roles")
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="namespace_roles")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["namespace", "role"]
        constraints = [models.CheckConstraint(
            condition=(Q(user__isnull=False) & Q(group__isnull=True)) | (Q(user__isnull=True) & Q(group__isnull=False)),
            name="role_for_user_or_group")]

    def __str__(self) -> str:
        who = f"user {self.user}" if self.user_id else f"group {self.group}"
        return f"{self.role} on {self.namespace or '*'} for {who}"


TOKEN_PREFIX = "cel_"


def token_digest(raw: str) -> str:
    # A token carries 256 random bits: a plain SHA-256 cannot be reversed or guessed, and a fast
    # hash keeps the per-request lookup to one indexed query.
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self) -> "ApiTokenQuerySet":
        return self.filter(revoked__isnull=True).filter(Q(expires__isnull=True) | Q(expires__gt=timezone.now()))


class ApiToken(models.Model):
    """A bearer token of a (service account) user; only its SHA-256 digest is stored."""

    name = models.CharField(max_length=100)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    #: the first characters of the token, shown to tell tokens apart
    hint = models.CharField(max_length=16, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires")
    revoked = models.DateTimeField(null=True, blank=True)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @classmethod
    def issue(cls, user, name: str, expires=None) -> tuple["ApiToken", str]:
        """A new token; the clear value is returned once and never stored."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, digest=token_digest(raw), hint=raw[:10], expires=expires)
        return token, raw

    @property
    def state(self) -> str:
        if self.revoked:
            return "revoked"
        if self.expires and self.expires <= timezone.now():
            return "expired"
        return "active"


class AuditLog(models.Model):
    """One change: who, when, what, from where, before and after (secret values never in clear)."""

    API, ADMIN, CLI, SYSTEM = "api", "admin", "cli", "system"

    created = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    #: the user name at the time (kept when the user is deleted), or "system"
    actor_name = models.CharField(max_length=150, db_index=True)
    source = models.CharField(max_length=8, choices=[(s, s) for s in (API, ADMIN, CLI, SYSTEM)])
    action = models.CharField(max_length=64, db_index=True)
    namespace = models.CharField(max_length=150, blank=True, default="", db_index=True)
    target = models.CharField(max_length=500, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True, default="")
    method = models.CharField(max_length=8, blank=True, default="")
    path = models.CharField(max_length=500, blank=True, default="")
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.target}"

    def to_json(self) -> dict:
        return {
            "id": self.pk, "date": self.created.isoformat().replace("+00:00", "Z"), "user": self.actor_name,
            "source": self.source, "action": self.action, "namespace": self.namespace or None,
            "target": self.target, "ip": self.ip, "userAgent": self.user_agent, "method": self.method or None,
            "path": self.path or None, "status": self.status, "before": self.before, "after": self.after,
        }
