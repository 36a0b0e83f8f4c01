"""Liveness and readiness probes for load balancers and orchestrators (no auth, no session)."""

import threading
import time

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

_migrations_checked = False

# Brokers that live in this machine's files or memory: nothing to reach, nothing to check.
_EMBEDDED_BROKERS = ("filesystem://", "memory://")


class _BrokerProbe:
    """Connects to the Celery broker with a short timeout; one answer serves for a few seconds,
    so probes every second from several balancers cost one connection per interval."""

    def __init__(self):
        self._lock = threading.Lock()
        self._answer: tuple[str, str, float] | None = None  # (url, result, monotonic time)

    def reset(self):
        with self._lock:
            self._answer = None

    def check(self, url: str) -> str:
        now = time.monotonic()
        with self._lock:
            answer = self._answer
            if (
                answer is not None
                and answer[0] == url
                and now - answer[2] < settings.READINESS_BROKER_CACHE_SECONDS
            ):
                return answer[1]
            result = self._connect(url)
            self._answer = (url, result, time.monotonic())
            return result

    def _connect(self, url: str) -> str:
        from kombu import Connection

        timeout = settings.READINESS_BROKER_TIMEOUT_SECONDS
        try:
            with Connection(
                url, connect_timeout=timeout, transport_options={"socket_timeout": timeout}
            ) as connection:
                # Opening the transport connects (and, for Redis, PINGs); no retry loop.
                connection.ensure_connection(
                    max_retries=1, interval_start=0, interval_step=0, timeout=timeout
                )
        except Exception as exc:  # any transport error means "not ready"
            return f"error: {type(exc).__name__}"
        return "ok"


broker_probe = _BrokerProbe()


@never_cache
@require_GET
def healthz(request):
    """The process is up and serving requests."""
    return JsonResponse({"status": "ok"})


def _pending_migrations(connection) -> int:
    executor = MigrationExecutor(connection)
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


@never_cache
@require_GET
def readyz(request):
    """Ready for traffic: the database answers, every migration is applied and, when one is
    configured, the Celery broker answers (the embedded filesystem broker needs no check)."""
    global _migrations_checked
    checks = {}
    ok = True
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not ready"
        checks["database"] = f"error: {type(exc).__name__}"
        ok = False
    if ok:
        # Migrations only change on deploy: once all are applied, stop re-reading the graph.
        if _migrations_checked:
            checks["migrations"] = "ok"
        else:
            pending = _pending_migrations(connection)
            checks["migrations"] = "ok" if pending == 0 else f"{pending} pending"
            ok = pending == 0
            _migrations_checked = ok
    broker_url = settings.CELERY_BROKER_URL
    if broker_url and not broker_url.startswith(_EMBEDDED_BROKERS):
        checks["broker"] = broker_probe.check(broker_url)
        ok = ok and checks["broker"] == "ok"
    return JsonResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )
