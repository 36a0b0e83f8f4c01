from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and API keys"

    def ready(self):
        from . import audit, checks, schema  # noqa: F401  (checks and schema register themselves)

        audit.connect()
