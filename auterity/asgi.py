"""ASGI entry point, for servers that prefer it; production serving uses WSGI
(`python -m auterity.server`, granian)."""

import os

from django.core.asgi import get_asgi_application

from providers.adapters import tokens

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auterity.settings")

application = get_asgi_application()
# The tokenizer's vocabulary loads in about a second: at start, not on the first request.
tokens.warm_up()
