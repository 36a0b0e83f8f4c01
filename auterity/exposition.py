"""GET /metrics: the Prometheus exposition of the whole service (docs/observability.md).

Under gunicorn with several workers each worker counts into its own files in
`PROMETHEUS_MULTIPROC_DIR` (set by deploy/gunicorn.conf.py before any worker imports
prometheus_client); whichever worker answers the scrape adds up every worker's files, so the
numbers are the service's, not one worker's. Without that variable (manage.py runserver, the
test server) the process's own registry is served. Either way the collectors that read the
database (provider status, cost savings) are added at scrape time.

Open by default, like django-prometheus; set METRICS_TOKEN to require
`Authorization: Bearer <token>` (Prometheus: `authorization.credentials_file`).
"""

from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from routing import gateway
from routing import metrics as routing_metrics


def multiprocess_enabled() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def scrape_registry() -> CollectorRegistry:
    """A registry holding everything one scrape reports."""
    registry = CollectorRegistry()
    if multiprocess_enabled():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)
    for collector in routing_metrics.SCRAPE_COLLECTORS:
        registry.register(collector)
    return registry


def _authorized(request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


@never_cache
@require_GET
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
    routing_metrics.live_stats_observed(gateway.provider_stats.snapshot_view)
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
