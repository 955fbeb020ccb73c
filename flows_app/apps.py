from __future__ import annotations

from django.apps import AppConfig


class FlowsAppConfig(AppConfig):
    name = "flows_app"
    verbose_name = "Flows and executions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The engine is pure and never imports Django: it is told here where the encryption key
        # and the platform services (storage, KV, logs...) of a run context come from.
        from django.conf import settings

        from orchestrator.engine import memory_platform, secrets_codec
        from orchestrator.runtime.platform import Platform

        secrets_codec.set_key_provider(lambda: (getattr(settings, "CELESTRA", None) or {}).get("ENCRYPTION_KEY"))
        memory_platform.set_platform_factory(Platform.for_context)

        from .limits import apply_limits

        apply_limits()
