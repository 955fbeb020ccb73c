"""Hostile-input limits from the settings, handed to the pure engine and the HTTP plugin at start-up
(docs/security.md, "Hostile input")."""
from __future__ import annotations


def apply_limits() -> None:
    """Called once per process from ``FlowsAppConfig.ready``."""
    from django.conf import settings
    from django.db.backends.signals import connection_created

    from orchestrator.engine import expressions, yamlload

    from .api import regexdb

    limits = getattr(settings, "CELESTRA_LIMITS", {})
    expressions.configure_limits(time_budget=limits.get("EXPRESSION_TIMEOUT"),
                                 max_output_chars=limits.get("EXPRESSION_MAX_OUTPUT_CHARS"))
    yamlload.configure(max_aliases=limits.get("YAML_MAX_ALIASES"), max_code_points=limits.get("YAML_MAX_CHARS"))
    egress = getattr(settings, "CELESTRA_EGRESS", None)
    if egress is not None:
        from orchestrator.plugins.core import http

        http.configure_egress(allow_private=egress.get("ALLOW_PRIVATE"), allow_loopback=egress.get("ALLOW_LOOPBACK"),
                              allow_link_local=egress.get("ALLOW_LINK_LOCAL"), allow=egress.get("ALLOW"),
                              deny=egress.get("DENY"))
    # SQLite's REGEXP (REGEX search filters) under a timeout, on every new connection.
    connection_created.connect(regexdb.install, dispatch_uid="celestra-regexp-timeout")
