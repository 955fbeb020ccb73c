from django.apps import AppConfig


class StorageAppConfig(AppConfig):
    name = "storage_app"
    verbose_name = "Storage, namespace files and KV"
    default_auto_field = "django.db.models.BigAutoField"
