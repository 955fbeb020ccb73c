"""Admin for secrets: values are written (encrypted on save), never displayed."""
from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db import transaction

from flows_app.admin.permissions import ConsolePermissions, require

from .models import Secret
from .store import set_secret


class SecretForm(forms.ModelForm):
    value = forms.CharField(
        widget=forms.PasswordInput(render_value=False), required=False, strip=False,
        help_text="Stored encrypted. Leave empty to keep the current value.")

    class Meta:
        model = Secret
        fields = ["namespace", "key", "description"]

    def clean(self):
        data = super().clean()
        if not self.instance.pk and not data.get("value"):
            self.add_error("value", "A value is required")
        return data


@admin.register(Secret)
class SecretAdmin(ConsolePermissions, admin.ModelAdmin):
    edit_action = "secret_edit"
    read_action = "secret.read"
    form = SecretForm
    list_display = ["key", "namespace", "description", "updated"]
    list_filter = ["namespace"]
    search_fields = ["key", "namespace", "description"]
    readonly_fields = ["created", "updated"]

    def save_model(self, request, obj, form, change) -> None:
        require(request, self.edit_action, obj.namespace)
        value = form.cleaned_data.get("value")
        with transaction.atomic():
            if change:
                obj.save()
            if value or not change:
                saved = set_secret(obj.namespace, obj.key, value or "", obj.description)
                obj.pk = saved.pk
                for field in saved._meta.concrete_fields:
                    setattr(obj, field.attname, getattr(saved, field.attname))
