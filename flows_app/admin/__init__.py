"""The operator console on the Django admin (docs/console.md).

Model admins live in :mod:`.models_admin` (flows, revisions, logs...), the execution page in
:mod:`.executions`, the dashboard in :mod:`.dashboard`; every action asks :mod:`.permissions`.
"""
from __future__ import annotations

from django.contrib import admin

from .. import models
from . import executions, models_admin  # noqa: F401 - registers the model admins
from .site import configure_site

admin.site.register(models.Execution, executions.ExecutionAdmin)
configure_site(admin.site)
