"""The production web server: granian serving `auterity.asgi` (`python -m auterity.server`).

granian parses HTTP and moves bytes in Rust; each worker process runs the ASGI application on
one uvloop event loop. The gateway spends most of a request waiting on an upstream provider,
and streams can last minutes, so a waiting call must cost a coroutine, not a thread: with the
former WSGI threads a worker served at most its thread count (32) at once and the rest
queued. Now a worker holds up to GATEWAY_MAX_CONCURRENT_REQUESTS calls and streams and answers
503 + Retry-After past that; granian accepts up to WEB_MAX_CONNECTIONS connections per worker
(its backpressure counts open connections, idle keep-alive ones included, so it is set well
above the request limit) and closes a connection whose request headers do not arrive within
WEB_HEADER_TIMEOUT seconds (which also ends idle keep-alive connections).

On SIGHUP (reload) and SIGTERM granian stops accepting, answers the requests in flight (with
`Connection: close`), streams included, for up to WEB_GRACEFUL_TIMEOUT seconds, then runs the
application's lifespan shutdown, which drains the request-log writer (auterity/asgi.py).
Everything is set from the environment or .env (docs/configuration.md); this module imports
neither Django nor the app (each worker loads them itself, after the fork).

What gunicorn's hooks did is done here and in the app:
- the Prometheus multiprocess directory is emptied here, before any worker starts;
- a worker writes the request-log rows it still holds when it exits
  (analytics/log_writer.py registers that with multiprocessing, which granian's workers run);
- a dead worker's live gauges are dropped at the next scrape (auterity/exposition.py).
"""

from __future__ import annotations

import contextlib
import glob
import multiprocessing
import os
import sys
from pathlib import Path

import environ

ROOT = Path(__file__).resolve().parent.parent

# Prometheus multiprocess mode (docs/observability.md): every worker writes its metrics to files
# in this directory and /metrics adds them up. prometheus_client chooses its storage when first
# imported, which happens in each worker after the fork, so setting the variable here (before
# any worker exists) reaches them all. One directory per server instance.
DEFAULT_MULTIPROC_DIR = ROOT / "var" / "prometheus-multiproc"


class ConfigError(ValueError):
    pass


def _int(env, name: str, default: int | None, minimum: int = 1) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


# The words django-environ (and so the settings, e.g. DEBUG) reads as true, and their opposites.
_TRUE = environ.Env.BOOLEAN_TRUE_STRINGS
_FALSE = ("0", "false", "no", "n", "off", "")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def _bool(env, name: str, default: bool) -> bool:
    raw = env.get(name, "true" if default else "false").strip().lower()
    if raw not in _TRUE + _FALSE:
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw in _TRUE


def _choice(env, name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, default).strip().lower()
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _bind(raw: str) -> tuple[str, int]:
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"WEB_BIND must be host:port, got {raw!r}")
    return host.strip("[]"), int(port)


def _log_config(env) -> dict | None:
    """granian's own lines (start, worker respawns) in the same format as the app's, so a JSON
    log pipeline never meets a plain line. Same default as settings.LOG_FORMAT: json unless
    DEBUG."""
    debug = env.get("DEBUG", "false").lower() in _TRUE
    if env.get("LOG_FORMAT", "plain" if debug else "json") != "json":
        return None
    formatter = {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "%(levelname)s %(name)s %(message)s",
        "rename_fields": {"levelname": "level", "name": "logger"},
        "timestamp": "time",
    }
    return {
        "formatters": {"generic": formatter, "access": formatter},
        # granian's access lines (WEB_ACCESSLOG) hold the request's path and query string.
        "filters": {"redact": {"()": "core.logs.SecretRedactionFilter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "generic",
                "stream": "ext://sys.stderr",
                "filters": ["redact"],
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "stream": "ext://sys.stdout",
                "filters": ["redact"],
            },
        },
    }


def server_options(env=None) -> dict:
    """granian's settings from the environment (docs/configuration.md, "Web server")."""
    env = os.environ if env is None else env
    host, port = _bind(env.get("WEB_BIND", "127.0.0.1:8000"))
    return {
        "target": "auterity.asgi:application",
        "interface": "asgi",
        "loop": "uvloop",
        "address": host,
        "port": port,
        # One process per core: the GIL lets a process use one core.
        "workers": _int(env, "WEB_CONCURRENCY", multiprocessing.cpu_count()),
        # Connections a worker holds open at once (granian's backpressure counts connections,
        # idle keep-alive ones too): past it, new ones wait in the listen backlog.
        "backpressure": _int(env, "WEB_MAX_CONNECTIONS", 10000),
        "backlog": _int(env, "WEB_BACKLOG", 1024, minimum=128),
        # A client has this long to send a request's headers, on a new connection and between
        # requests on a kept-alive one: slow or idle clients cannot hold connections forever.
        "http1_header_read_timeout": _int(env, "WEB_HEADER_TIMEOUT", 15, minimum=1),
        # A worker that dies is replaced; a stopping worker gets this long to finish its
        # requests and write its request-log rows before it is killed.
        "respawn_failed_workers": True,
        # A reload (SIGHUP) starts each replacement worker, waits this long, then stops the
        # worker it replaces. granian does not wait for the new worker to be ready: a worker
        # that takes longer to load the app than this leaves a moment with no worker accepting
        # (connections refused), so it is well above the app's load time (2-3 s, ~10 s on a
        # busy machine).
        "respawn_interval": _int(env, "WEB_RESPAWN_INTERVAL", 15),
        "workers_kill_timeout": _int(env, "WEB_GRACEFUL_TIMEOUT", 60),
        # Replace workers now and then (seconds, or past a memory size in MiB) so a slow leak
        # cannot grow without bound. Off unless set.
        "workers_lifetime": _int(env, "WEB_WORKER_LIFETIME", None, minimum=60),
        "workers_max_rss": _int(env, "WEB_WORKER_MAX_RSS_MB", None),
        "log_level": _choice(env, "WEB_LOGLEVEL", "info", LOG_LEVELS),
        "log_dictconfig": _log_config(env),
        # The app writes one access line per request (`auterity.access`, LOG_ACCESS) with the
        # request id, caller and routing; granian's own would repeat it.
        "log_access": _bool(env, "WEB_ACCESSLOG", False),
    }


def prepare_metrics_dir(env=None) -> str:
    """Point PROMETHEUS_MULTIPROC_DIR at its directory (default var/prometheus-multiproc) and
    start it empty: a previous run's files would be added to this one's."""
    env = os.environ if env is None else env
    path = env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(DEFAULT_MULTIPROC_DIR))
    os.makedirs(path, exist_ok=True)
    # Only prometheus_client's files, in case the variable points at a shared directory.
    for stale in glob.glob(os.path.join(path, "*.db")):
        os.remove(stale)
    return path


def _raise_open_files_limit() -> None:
    """Every connection is a file descriptor: allow as many as the system lets this process
    have (the soft limit is often 1024)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> int:
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server import Server

    # The same .env the app's settings read (variables already set win), so that the server's
    # own settings and PROMETHEUS_MULTIPROC_DIR can live there too.
    environ.Env.read_env(ROOT / ".env", overwrite=False)
    try:
        options = server_options()
    except ConfigError as exc:
        print(f"auterity.server: {exc}", file=sys.stderr)
        return 2
    prepare_metrics_dir()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auterity.settings")
    options["interface"] = Interfaces(options["interface"])
    options["loop"] = Loops(options["loop"])
    header_timeout_s = options.pop("http1_header_read_timeout")
    options["http1_settings"] = HTTP1Settings(header_read_timeout=min(header_timeout_s, 60) * 1000)
    _raise_open_files_limit()
    options["log_level"] = LogLevels(options["log_level"])
    options["working_dir"] = ROOT
    Server(**options).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
