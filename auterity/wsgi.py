"""WSGI entry point (served in production by `python -m auterity.server`, granian)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auterity.settings")

application = get_wsgi_application()
