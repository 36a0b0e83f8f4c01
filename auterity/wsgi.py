"""WSGI entry point (served in production by `python -m auterity.server`, granian)."""

import os

from django.core.wsgi import get_wsgi_application

from providers.adapters import tokens

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auterity.settings")


def warm_snapshots() -> None:
    """Load the catalogue and the flags now (at worker start), logging rather than failing."""
    import logging

    from core.snapshot import StoreUnavailable
    from routing.catalog import catalogue_warm
    from routing.flags import flags_warm

    for warm in (catalogue_warm, flags_warm):
        try:
            warm()
        except StoreUnavailable as exc:
            logging.getLogger(__name__).warning("%s; the first requests will try again", exc)


# What a server puts in every request's environ itself (PEP 3333); anything else not HTTP_*.
_SERVER_KEYS = frozenset(
    {
        "REQUEST_METHOD",
        "SCRIPT_NAME",
        "PATH_INFO",
        "QUERY_STRING",
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
        "SERVER_SOFTWARE",
        "GATEWAY_INTERFACE",
        "REMOTE_ADDR",
        "REMOTE_PORT",
        "REMOTE_HOST",
    }
)


def process_environment() -> dict[str, str]:
    """The process environment a server copies into each environ, less the server's own keys."""
    return {key: value for key, value in os.environ.items() if key not in _SERVER_KEYS}


def without_process_environment(environ: dict, process_env: dict | None = None) -> dict:
    """Remove the process environment from a request's environ.

    granian (like wsgiref, manage.py runserver) starts every environ from a copy of os.environ,
    as CGI did. The database URL, SECRET_KEY and provider settings would then sit in
    request.META, where an error report or a debugging aid could show them, and a variable such
    as HTTP_PROXY would read as a header the client sent ("httpoxy"). A key the process
    environment has is dropped when the request carries the same value for it: a header the
    client really sent with exactly that value is the only thing lost."""
    for key, value in (_PROCESS_ENV if process_env is None else process_env).items():
        if environ.get(key) == value:
            del environ[key]
    return environ


_django_application = get_wsgi_application()
# The tokenizer's vocabulary loads in about a second: at start, not on the first request.
tokens.warm_up()
# The hot path's first, blocking loads, before the first request (core/snapshot.py); if a store
# is down now, the first requests try again and get a clear 503 until it is back.
warm_snapshots()
# Taken once the settings have read .env into os.environ (what granian copies, later still):
# a snapshot, because each os.environ read decodes the value again (~0.4 us a key, per request).
_PROCESS_ENV = process_environment()


def application(environ, start_response):
    return _django_application(without_process_environment(environ), start_response)
