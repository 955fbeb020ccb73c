"""Secrets, per namespace, encrypted at rest."""
from __future__ import annotations

from django.db import models


class Secret(models.Model):
    namespace = models.CharField(max_length=150)
    key = models.CharField(max_length=256)
    #: the value, encrypted with CELESTRA_SECRETS_KEYS (see secrets_app.crypto)
    encrypted_value = models.TextField()
    description = models.TextField(blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["namespace", "key"]
        constraints = [models.UniqueConstraint(fields=["namespace", "key"], name="unique_secret")]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.key}"
