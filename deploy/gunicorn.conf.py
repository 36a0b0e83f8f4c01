"""gunicorn settings for the Auterity web process (`gunicorn -c deploy/gunicorn.conf.py`).

The gateway spends most of a request waiting on an upstream provider, and streams can last
minutes, so each worker runs many threads (gthread): a waiting request costs a thread, not a
process, and the gthread worker keeps heartbeating to the arbiter while requests run long.
Every value can be overridden from the environment.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
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
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
