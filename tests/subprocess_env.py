"""What a process a test starts (the web server, a Celery worker) needs to reach the test's
own database, and a port to listen on."""

import os
import socket
import tempfile
from urllib.parse import quote

from django.db import connection


def database_url() -> str:
    """The test database (pytest-django's), as a URL the subprocess's settings read."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


def subprocess_env(**extra) -> dict[str, str]:
    """This process's environment, pointed at the test database with a private in-process
    cache and a request-log spool of its own; `extra` adds to it or overrides it (e.g.
    CACHE_URL, REQUEST_LOG_SPOOL_DIR to share a spool on purpose).

    The spool must be private: the test database is emptied between tests, so rows left in a
    shared spool by an earlier test's process (a worker it killed, say) would be adopted into
    a later test's request log (analytics/spool.py ships orphans to their database)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "auterity.settings",
        "DATABASE_URL": database_url(),
        "CACHE_URL": "locmemcache://",
        "REQUEST_LOG_SPOOL_DIR": tempfile.mkdtemp(prefix="auterity-test-spool-"),
        **extra,
    }


def free_port() -> int:
    """A port no one listens on now, chosen by the OS."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
