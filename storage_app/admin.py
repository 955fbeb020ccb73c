"""Admin for the KV store (JSON values) and namespace files (uploaded, never edited as bytes)."""
from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.html import format_html

from .models import KVEntry, NamespaceFile

KV_TYPES = ["STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON"]


class KVEntryForm(forms.ModelForm):
    type = forms.ChoiceField(choices=[(t, t) for t in KV_TYPES])

    class Meta:
        model = KVEntry
        fields = ["namespace", "key", "type", "value", "description", "expires"]
        widgets = {"value": forms.Textarea(attrs={"rows": 6, "style": "font-family: monospace; width: 95%;"})}

    def clean_key(self) -> str:
        import re

        key = self.cleaned_data["key"]
        if not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$", key):
            raise forms.ValidationError("Key must match the regex `[a-zA-Z0-9][a-zA-Z0-9._-]*`")
        return key

    def clean(self):
        data = super().clean()
        kv_type, value = data.get("type"), data.get("value")
        expected = {"NUMBER": (int, float), "BOOLEAN": (bool,), "JSON": (dict, list),
                    "STRING": (str,), "DATETIME": (str,), "DATE": (str,), "DURATION": (str,)}
        if kv_type and value is not None and not isinstance(value, expected[kv_type]):
            self.add_error("value", f"A {kv_type} value is expected (JSON: a quoted string for text types)")
        if kv_type == "NUMBER" and isinstance(value, bool):
            self.add_error("value", "A NUMBER value is expected")
        return data


@admin.register(KVEntry)
class KVEntryAdmin(admin.ModelAdmin):
    form = KVEntryForm
    list_display = ["key", "namespace", "type", "expires", "updated"]
    list_filter = ["type", "namespace"]
    search_fields = ["key", "namespace", "description"]
    readonly_fields = ["created", "updated"]


class NamespaceFileForm(forms.ModelForm):
    upload = forms.FileField(required=False, help_text="The file content (replaces the current one).")

    class Meta:
        model = NamespaceFile
        fields = ["namespace", "path"]

    def clean_path(self) -> str:
        path = "/" + self.cleaned_data["path"].strip().lstrip("/")
        if ".." in path.split("/") or path == "/":
            raise forms.ValidationError("Invalid path")
        return path

    def clean(self):
        data = super().clean()
        if not self.instance.pk and not data.get("upload"):
            self.add_error("upload", "A file is required")
        return data

    def save(self, commit: bool = True):
        upload = self.cleaned_data.get("upload")
        if upload:
            self.instance.content = upload.read()
        return super().save(commit)


@admin.register(NamespaceFile)
class NamespaceFileAdmin(admin.ModelAdmin):
    form = NamespaceFileForm
    list_display = ["path", "namespace", "size", "updated"]
    list_filter = ["namespace"]
    search_fields = ["path", "namespace"]
    readonly_fields = ["size", "preview", "created", "updated"]

    @admin.display(description="Size (bytes)")
    def size(self, obj) -> int:
        return len(obj.content or b"")

    @admin.display(description="Content")
    def preview(self, obj) -> str:
        content = bytes(obj.content or b"")
        try:
            text = content[:20000].decode("utf-8")
        except UnicodeDecodeError:
            return "(binary)"
        return format_html('<pre style="font-family: monospace; white-space: pre-wrap;">{}</pre>', text)
