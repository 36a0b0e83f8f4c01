"""GET /metrics: the Prometheus exposition of the whole service (docs/observability.md).

Under the web server with several workers each worker counts into its own files in
`PROMETHEUS_MULTIPROC_DIR` (set by auterity/server.py before any worker imports
prometheus_client); whichever worker answers the scrape adds up every worker's files, so the
numbers are the service's, not one worker's. A worker that died (and was replaced) keeps its
counters, but its live gauges (in flight, breakers, rows held) are dropped at the next scrape.
Without that variable (manage.py runserver, the test server) the process's own registry is
served. Either way the collectors that read the database (provider status, cost savings) are
added at scrape time.

Open by default, like django-prometheus; set METRICS_TOKEN to require
`Authorization: Bearer <token>` (Prometheus: `authorization.credentials_file`).
"""

from __future__ import annotations

import glob
import hmac
import os
import re

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from analytics.collectors import cost_savings_collector
from core import metrics as core_metrics
from core.api_errors import require_get_json
from routing.collectors import canary_collector, provider_status_collector
from routing.decisions import provider_stats

# Collectors that read the database, added to every scrape's registry.
SCRAPE_COLLECTORS = (provider_status_collector, cost_savings_collector, canary_collector)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]*_(\d+)\.db$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def drop_dead_workers_live_gauges(directory: str) -> list[int]:
    """Remove the live-gauge files of processes that no longer run (a worker that crashed or
    was replaced) so that a scrape does not add up a dead worker's in-flight requests or
    breaker states. Their counters stay: counts must never go down. Returns the pids dropped."""
    dead = set()
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        match = _LIVE_GAUGE_FILE.search(path)
        if match and not _pid_alive(int(match[1])):
            dead.add(int(match[1]))
    for pid in dead:
        multiprocess.mark_process_dead(pid, directory)
    return sorted(dead)


def scrape_registry() -> CollectorRegistry:
    """A registry holding everything one scrape reports."""
    registry = CollectorRegistry()
    if multiprocess_enabled():
        drop_dead_workers_live_gauges(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)
    for collector in SCRAPE_COLLECTORS:
        registry.register(collector)
    return registry


def _authorized(request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


@never_cache
@require_get_json
def metrics(request):
    token = settings.METRICS_TOKEN
    if token and not _authorized(request, token):
        response = JsonResponse(
            {"detail": "Authentication credentials were not provided or are not valid."},
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    # The answering worker's live gauges are fresh; the others' date from their last request.
    core_metrics.live_stats_observed(provider_stats.snapshot_view)
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
