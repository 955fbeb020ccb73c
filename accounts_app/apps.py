from django.apps import AppConfig


class AccountsAppConfig(AppConfig):
    name = "accounts_app"
    verbose_name = "Accounts and audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # system checks (unsafe production defaults) and the admin's audit signal
        from . import audit, checks  # noqa: F401
