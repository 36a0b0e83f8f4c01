"""gunicorn settings for the Auterity web process (`gunicorn -c deploy/gunicorn.conf.py`).

The gateway spends most of a request waiting on an upstream provider, and streams can last
minutes, so each worker runs many threads (gthread): a waiting request costs a thread, not a
process, and the gthread worker keeps heartbeating to the arbiter while requests run long.
Every value can be overridden from the environment.
"""

import glob
import multiprocessing
import os
from pathlib import Path

from gunicorn.glogging import Logger

# Prometheus multiprocess mode (docs/observability.md): every worker writes its metrics to files
# in this directory and /metrics adds them up. prometheus_client chooses its storage when first
# imported, which happens in each worker after the fork, so setting the variable here (in the
# arbiter, before any worker exists) reaches them all. One directory per gunicorn instance.
PROMETHEUS_MULTIPROC_DIR = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR",
    str(Path(__file__).resolve().parent.parent / "var" / "prometheus-multiproc"),
)

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# One process per core: the GIL lets a process use one core, and the gateway's CPU per request
# does not change with the thread count (bench/README.md). workers x threads is how many
# requests and streams run at once; each thread may hold a database connection, so raising it
# past PostgreSQL's max_connections needs a pooler in front.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
# Seconds a worker may go silent before it is restarted; requests themselves may run longer.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "60"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "15"))
# Recycle workers now and then so a slow leak cannot grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "2000"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG", None)
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# gunicorn's own lines (worker boots, timeouts) in the same format as the app's, so a JSON log
# pipeline never meets a plain line. Same default as settings.LOG_FORMAT: json unless DEBUG.
_debug = os.environ.get("DEBUG", "false").lower() in ("1", "true", "yes", "on")
if os.environ.get("LOG_FORMAT", "plain" if _debug else "json") == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(levelname)s %(name)s %(message)s",
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": "time",
            }
        },
        "handlers": {
            "error_console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "gunicorn.error": {"handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"handlers": ["console"], "propagate": False},
        },
    }
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


class AccessLogOnRequest(Logger):
    """gunicorn writes its own access line whenever a logging config is given (as above), on
    top of the app's `auterity.access` line: a second log line and ~5% of the gateway's CPU
    per request. Here it writes one only when GUNICORN_ACCESSLOG asks for it."""

    def access(self, resp, req, environ, request_time):
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)


logger_class = AccessLogOnRequest


def on_starting(server):
    """Start from empty metric files: a previous run's would be added to this one's."""
    os.makedirs(PROMETHEUS_MULTIPROC_DIR, exist_ok=True)
    # Only prometheus_client's files, in case the variable points at a shared directory.
    for path in glob.glob(os.path.join(PROMETHEUS_MULTIPROC_DIR, "*.db")):
        os.remove(path)


def child_exit(server, worker):
    """Drop a dead worker's live gauges (in-flight, breakers); its counters keep counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, PROMETHEUS_MULTIPROC_DIR)


def worker_exit(server, worker):
    """Write the request-log rows this worker still holds before it goes (they are written in
    the background, analytics/log_writer.py). atexit would too; this runs even when gunicorn
    ends the worker without a normal interpreter exit."""
    import sys

    if "analytics.log_writer" in sys.modules:  # a worker that never loaded the app has none
        sys.modules["analytics.log_writer"].drain_at_exit()
