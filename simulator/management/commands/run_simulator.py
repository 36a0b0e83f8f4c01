"""Run the provider simulator: OpenAI, Azure OpenAI, Anthropic and Gemini wire formats."""

from django.core.management.base import BaseCommand, CommandError

from simulator import cli


class Command(BaseCommand):
    help = (
        "Serve simulated AI providers over HTTP (http://HOST:PORT/<name>/...) with faults "
        "controllable at /_sim/faults/<name> and an optional default latency profile; see "
        "simulator/README.md."
    )

    def add_arguments(self, parser):
        cli.add_arguments(parser)

    def handle(self, *args, **options):
        def error(message):
            raise CommandError(message)

        cli.run(options, error)
