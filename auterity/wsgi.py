"""WSGI entry point (gunicorn auterity.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auterity.settings")

application = get_wsgi_application()
