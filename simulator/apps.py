from django.apps import AppConfig


class SimulatorConfig(AppConfig):
    """The provider simulator's Django face: only the `run_simulator` command.

    The simulator is a development tool standing in for real providers; it has no models and
    imports nothing from the product's apps.
    """

    name = "simulator"
    verbose_name = "Provider simulator (development)"
