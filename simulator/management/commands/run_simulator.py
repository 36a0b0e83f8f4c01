"""Run the provider simulator: OpenAI, Azure OpenAI, Anthropic and Gemini wire formats."""

import contextlib

from django.core.management.base import BaseCommand

from simulator import DEFAULT_PORT, serve_forever


class Command(BaseCommand):
    help = (
        "Serve simulated AI providers over HTTP (http://HOST:PORT/<name>/...) with faults "
        "controllable at /_sim/faults/<name>; see docs/providers.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=DEFAULT_PORT)

    def handle(self, *args, **options):
        with contextlib.suppress(KeyboardInterrupt):
            serve_forever(options["host"], options["port"])
