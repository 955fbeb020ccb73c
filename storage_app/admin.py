"""Admin for the KV store and namespace files.

A KV value is typed as Kestra types it: the value is written as text, and its type is either
chosen or, with "auto", read from the text as the API reads a ``PUT`` body (``42`` is a NUMBER,
``hello`` a STRING, ``{"a": 1}`` JSON). A STRING is the text itself, never a JSON literal.
Namespace files that are text are edited in the browser; any file can be uploaded.
"""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone
from typing import Any

from django import forms
from django.contrib import admin

from flows_app.admin.permissions import ConsolePermissions

from .models import KVEntry, NamespaceFile

KV_TYPES = ["STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON"]
KEY_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
#: text files up to this size are edited in the browser
EDITABLE_BYTES = 1_000_000


def kv_value(kv_type: str, text: str) -> tuple[str, Any]:
    """The stored ``(type, value)`` of the form's text; ValueError names what is wrong."""
    from orchestrator.engine.timeutil import instant_text, parse_duration

    from .api import typed_kv_value

    if kv_type == "AUTO":
        return typed_kv_value(text)
    stripped = text.strip()
    if kv_type == "STRING":
        return "STRING", text
    if kv_type == "NUMBER":
        try:
            return "NUMBER", int(stripped)
        except ValueError:
            try:
                return "NUMBER", float(stripped)
            except ValueError:
                raise ValueError(f"A NUMBER is expected, got '{stripped}'") from None
    if kv_type == "BOOLEAN":
        if stripped.lower() not in ("true", "false"):
            raise ValueError(f"A BOOLEAN is expected (true or false), got '{stripped}'")
        return "BOOLEAN", stripped.lower() == "true"
    if kv_type == "JSON":
        try:
            return "JSON", json.loads(stripped)
        except ValueError as exc:
            raise ValueError(f"Invalid JSON: {exc}") from None
    if kv_type == "DATETIME":
        try:
            moment = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"An ISO-8601 date-time is expected, got '{stripped}'") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return "DATETIME", instant_text(moment)
    if kv_type == "DATE":
        try:
            return "DATE", date.fromisoformat(stripped).isoformat()
        except ValueError:
            raise ValueError(f"An ISO-8601 date is expected, got '{stripped}'") from None
    if kv_type == "DURATION":
        try:
            parse_duration(stripped)
        except ValueError:
            raise ValueError(f"An ISO-8601 duration (PT5M) is expected, got '{stripped}'") from None
        return "DURATION", stripped.upper()
    raise ValueError(f"Unknown type '{kv_type}'")


def kv_text(kv_type: str, value: Any) -> str:
    """The form's text of a stored value (the inverse of :func:`kv_value`)."""
    if value is None:
        return ""
    if kv_type == "JSON" or isinstance(value, (dict, list)):
        return json.dumps(value, indent=2, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class KVEntryForm(forms.ModelForm):
    type = forms.ChoiceField(choices=[("AUTO", "auto (as the API types a value)")] + [(t, t) for t in KV_TYPES],
                             initial="STRING")
    value = forms.CharField(required=False, strip=False,
                            widget=forms.Textarea(attrs={"rows": 6, "style": "font-family: monospace; width: 95%;"}),
                            help_text="The value as text: a STRING is stored as typed, JSON is parsed.")

    class Meta:
        model = KVEntry
        fields = ["namespace", "key", "type", "value", "description", "expires"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["value"] = kv_text(self.instance.type, self.instance.value)
            self.initial["type"] = self.instance.type

    def clean_key(self) -> str:
        key = self.cleaned_data["key"]
        if not KEY_PATTERN.match(key):
            raise forms.ValidationError("Key must match the regex `[a-zA-Z0-9][a-zA-Z0-9._-]*`")
        return key

    def clean(self):
        data = super().clean()
        kv_type, text = data.get("type"), data.get("value") or ""
        if kv_type:
            try:
                data["type"], data["value"] = kv_value(kv_type, text)
            except ValueError as exc:
                self.add_error("value", str(exc))
        return data

    def save(self, commit: bool = True):
        self.instance.type = self.cleaned_data["type"]
        self.instance.value = self.cleaned_data["value"]
        return super().save(commit)


@admin.register(KVEntry)
class KVEntryAdmin(ConsolePermissions, admin.ModelAdmin):
    edit_action = "kv_edit"
    form = KVEntryForm
    list_display = ["key", "namespace", "type", "value_preview", "expires", "updated"]
    list_filter = ["type", "namespace"]
    search_fields = ["key", "namespace", "description"]
    readonly_fields = ["created", "updated"]

    @admin.display(description="Value")
    def value_preview(self, obj: KVEntry) -> str:
        text = kv_text(obj.type, obj.value)
        return text if len(text) <= 80 else text[:77] + "..."


class NamespaceFileForm(forms.ModelForm):
    text = forms.CharField(required=False, strip=False, label="Content",
                           widget=forms.Textarea(attrs={"rows": 24, "data-code": "", "spellcheck": "false",
                                                        "style": "font-family: monospace; width: 95%;"}),
                           help_text="The file's text (UTF-8); for binary content, upload a file instead.")
    upload = forms.FileField(required=False, help_text="Upload a file (replaces the content).")

    class Meta:
        model = NamespaceFile
        fields = ["namespace", "path"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        content = bytes(self.instance.content or b"") if self.instance.pk else b""
        self.binary = False
        if content:
            try:
                self.initial["text"] = content.decode("utf-8") if len(content) <= EDITABLE_BYTES else ""
                self.binary = len(content) > EDITABLE_BYTES
            except UnicodeDecodeError:
                self.binary = True
        if self.binary:
            self.fields["text"].disabled = True
            self.fields["text"].help_text = "A binary or large file: upload a new one to replace it."

    def clean_path(self) -> str:
        path = "/" + self.cleaned_data["path"].strip().lstrip("/")
        if ".." in path.split("/") or path == "/" or path.endswith("/"):
            raise forms.ValidationError("Invalid path: a file path such as /scripts/main.py is expected")
        return path

    def clean(self):
        data = super().clean()
        if not self.instance.pk and not data.get("upload") and not data.get("text"):
            self.add_error("text", "Write the file's content or upload a file")
        return data

    def save(self, commit: bool = True):
        upload = self.cleaned_data.get("upload")
        if upload:
            self.instance.content = upload.read()
        elif not self.binary:
            self.instance.content = (self.cleaned_data.get("text") or "").replace("\r\n", "\n").encode("utf-8")
        return super().save(commit)


@admin.register(NamespaceFile)
class NamespaceFileAdmin(ConsolePermissions, admin.ModelAdmin):
    edit_action = "file_edit"
    form = NamespaceFileForm
    list_display = ["path", "namespace", "size", "updated"]
    list_filter = ["namespace"]
    search_fields = ["path", "namespace"]
    readonly_fields = ["size", "created", "updated"]
    fields = ["namespace", "path", "text", "upload", "size", "created", "updated"]

    class Media:
        css = {"all": ["console/codemirror/codemirror.css", "console/console.css"]}
        js = ["console/codemirror/codemirror.js", "console/codemirror/mode/yaml/yaml.js", "console/console.js"]

    @admin.display(description="Size (bytes)")
    def size(self, obj) -> int:
        return len(obj.content or b"")

