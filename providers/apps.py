from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = "AI providers"

    def ready(self):
        from . import signals

        signals.connect()
