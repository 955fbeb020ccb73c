from django.apps import AppConfig


class FlowsAppConfig(AppConfig):
    name = "flows_app"
    verbose_name = "Flows and executions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .limits import apply_limits

        apply_limits()
