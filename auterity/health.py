"""Liveness and readiness probes for load balancers and orchestrators (no auth, no session).

`/healthz`: the process answers. `/readyz`: it can serve (200, "ok" or "degraded") or not
(503); see `readyz` for the three answers.
"""

import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from core.api_errors import require_get_json
from core.cache import FailSoftRedisCache
from core.snapshot import StoreUnavailable
from routing.catalog import catalogue_outage, catalogue_warm
from routing.flags import flags_outage, flags_warm

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
@require_get_json
def healthz(request):
    """The process is up and serving requests."""
    return JsonResponse({"status": "ok"})


def _pending_migrations(connection) -> int:
    executor = MigrationExecutor(connection)
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def _database_check() -> str:
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "unreachable"
        return f"error: {type(exc).__name__}"
    return "ok"


def _cache_check() -> str | None:
    """The shared cache, when it is Redis (None for a local cache: nothing to reach)."""
    if not isinstance(cache, FailSoftRedisCache):
        return None
    try:
        # Straight to Redis, past the fail-soft layer (which would answer "empty").
        cache._cache.get_client(write=False).ping()
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


def _snapshot_check(warm, outage) -> tuple[str, bool]:
    """(what to report, whether this process can serve from it)."""
    try:
        warm()
    except StoreUnavailable:
        return "not loaded (its store is unreachable)", False
    stale = outage.stale_seconds()
    return ("ok" if not stale else f"stale for {stale:.0f} s (its store is unreachable)"), True


@never_cache
@require_get_json
def readyz(request):
    """Can this process serve traffic, and is every dependency there?

    - 200 `{"status": "ok"}`: everything answers.
    - 200 `{"status": "degraded"}`: a dependency (database, cache, broker) is unreachable but
      this process serves from its last good catalogue, flags and callers (core/snapshot.py);
      an orchestrator must keep it in rotation: restarting it would only lose that state.
    - 503 `{"status": "unavailable"}`: it cannot serve: migrations are pending, or the
      catalogue or the flags were never loaded and their store is unreachable.

    `checks` says which is which (docs/deployment.md, "Health checks and outages").
    """
    global _migrations_checked
    checks = {}
    checks["database"] = _database_check()
    database_up = checks["database"] == "ok"
    if database_up:
        # Migrations only change on deploy: once all are applied, stop re-reading the graph.
        if _migrations_checked:
            checks["migrations"] = "ok"
        else:
            pending = _pending_migrations(connections[DEFAULT_DB_ALIAS])
            checks["migrations"] = "ok" if pending == 0 else f"{pending} pending"
            _migrations_checked = pending == 0
    cache_state = _cache_check()
    if cache_state is not None:
        checks["cache"] = cache_state
    broker_url = settings.CELERY_BROKER_URL
    if broker_url and not broker_url.startswith(_EMBEDDED_BROKERS):
        checks["broker"] = broker_probe.check(broker_url)
    checks["catalogue"], catalogue_ok = _snapshot_check(catalogue_warm, catalogue_outage())
    checks["flags"], flags_ok = _snapshot_check(flags_warm, flags_outage())
    serving = catalogue_ok and flags_ok and checks.get("migrations", "ok") == "ok"
    degraded = any(value != "ok" for value in checks.values())
    status = "unavailable" if not serving else "degraded" if degraded else "ok"
    return JsonResponse({"status": status, "checks": checks}, status=200 if serving else 503)
