from django.apps import AppConfig


class AccountsAppConfig(AppConfig):
    name = "accounts_app"
    verbose_name = "Accounts and audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # system checks (unsafe production defaults) and the admin's audit signal
        from django.conf import settings

        from orchestrator.engine import namespaces

        from . import audit, checks, schema  # noqa: F401

        namespaces.configure(isolation=settings.CELESTRA.get("NAMESPACE_ISOLATION", True))
