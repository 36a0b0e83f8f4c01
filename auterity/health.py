"""Liveness and readiness probes for load balancers and orchestrators (no auth, no session)."""

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

_migrations_checked = False


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
    """Ready for traffic: the database answers and every migration is applied."""
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
    return JsonResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )
