"""The operator console on the Django admin (docs/console.md).

Model admins live in :mod:`.models_admin` (flows, revisions, logs...), the execution page in
:mod:`.executions`, the dashboard in :mod:`.dashboard`; every action asks :mod:`.permissions`.
"""
from __future__ import annotations

from django.contrib import admin

from .. import models
from . import executions, flows, models_admin, triggers  # noqa: F401 - registers the model admins
from .site import configure_site

admin.site.register(models.Execution, executions.ExecutionAdmin)
admin.site.register(models.Flow, flows.FlowAdmin)
admin.site.register(models.TriggerState, triggers.TriggerStateAdmin)
triggers.hide_internal_beat_models(admin.site)
configure_site(admin.site)
