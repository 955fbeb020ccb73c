"""The admin site as the console: titles, the dashboard as home, no "View site" link, clean names."""
from __future__ import annotations

from typing import Any


def configure_site(site: Any) -> None:
    from .. import models

    site.site_header = "Celestra"
    site.site_title = "Celestra console"
    site.index_title = "Dashboard"
    # there is no public site to view: the link would be a 404
    site.site_url = None
    site.index_template = "admin/console/dashboard.html"
    base_index = site.index

    def index(request, extra_context=None):
        from .dashboard import dashboard_context

        return base_index(request, {**dashboard_context(request), **(extra_context or {})})

    # the home page gets the dashboard's data (an attribute of this site, read by get_urls)
    site.index = index
    # human names for the models' pages (set here, not in Meta: no migration for a label)
    names = {
        models.LogEntry: ("log entry", "log entries"),
        models.MetricEntry: ("metric", "metrics"),
        models.TaskRun: ("task run", "task runs"),
        models.FlowRevision: ("flow revision", "flow revisions"),
        models.FlowLabel: ("flow label", "flow labels"),
        models.TriggerState: ("trigger", "triggers"),
    }
    for model, (singular, plural) in names.items():
        model._meta.verbose_name = singular
        model._meta.verbose_name_plural = plural
