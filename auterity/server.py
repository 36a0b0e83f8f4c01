"""The production web server: granian serving `auterity.wsgi` (`python -m auterity.server`).

granian parses HTTP and moves bytes in Rust and runs the WSGI app in a pool of Python threads
per worker process. On this project's benchmark it added a third of gunicorn gthread's
latency per request and served about 30 % more requests per second with the same two cores
(bench/README.md), because gunicorn's own Python (parsing, its event loop, handing each
request and connection between threads) was a fifth of the gateway's CPU.

The gateway spends most of a request waiting on an upstream provider, and streams can last
minutes, so each worker runs many threads: a waiting request costs a thread, not a process.
Everything is set from the environment or .env (docs/configuration.md); this module imports
neither Django nor the app (each worker loads them itself, after the fork).

What gunicorn's hooks did is done here and in the app:
- the Prometheus multiprocess directory is emptied here, before any worker starts;
- a worker writes the request-log rows it still holds when it exits
  (analytics/log_writer.py registers that with multiprocessing, which granian's workers run);
- a dead worker's live gauges are dropped at the next scrape (auterity/exposition.py).
"""

from __future__ import annotations

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
    threads = _int(env, "WEB_THREADS", 32)
    return {
        "target": "auterity.wsgi:application",
        "interface": "wsgi",
        "address": host,
        "port": port,
        # One process per core: the GIL lets a process use one core.
        "workers": _int(env, "WEB_CONCURRENCY", multiprocessing.cpu_count()),
        # workers x threads is how many requests and streams run at once; each thread may hold
        # a database connection, so raising it past PostgreSQL's max_connections needs a pooler.
        "blocking_threads": threads,
        # A worker takes no more requests than it has threads; the rest wait in the listen
        # backlog (or go to the other workers) instead of in a worker's queue.
        "backpressure": threads,
        "backlog": _int(env, "WEB_BACKLOG", 1024, minimum=128),
        # A worker that dies is replaced; a stopping worker gets this long to finish its
        # requests and write its request-log rows before it is killed.
        "respawn_failed_workers": True,
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


def main() -> int:
    from granian.constants import Interfaces
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
    options["log_level"] = LogLevels(options["log_level"])
    options["working_dir"] = ROOT
    Server(**options).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
