"""The KV store and namespace files (spec §10.2, §10.4)."""
from __future__ import annotations

from django.db import models


class KVEntry(models.Model):
    namespace = models.CharField(max_length=150)
    key = models.CharField(max_length=512)
    value = models.JSONField(null=True, blank=True)
    type = models.CharField(max_length=16, default="STRING")
    description = models.TextField(blank=True, default="")
    expires = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "KV entry"
        verbose_name_plural = "KV entries"
        ordering = ["namespace", "key"]
        constraints = [models.UniqueConstraint(fields=["namespace", "key"], name="unique_kv_key")]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.key}"


class NamespaceFile(models.Model):
    namespace = models.CharField(max_length=150)
    path = models.CharField(max_length=1024)
    content = models.BinaryField()
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["namespace", "path"]
        constraints = [models.UniqueConstraint(fields=["namespace", "path"], name="unique_namespace_file")]

    def __str__(self) -> str:
        return f"{self.namespace}:{self.path}"
