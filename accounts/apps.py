from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and API keys"

    def ready(self):
        from . import audit, checks  # noqa: F401  (checks registers the deploy checks)

        audit.connect()
