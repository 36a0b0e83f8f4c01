"""What /metrics reads from the catalogue when scraped: `ai_provider_status`."""

import logging

from prometheus_client.core import GaugeMetricFamily

from core.metrics import STATUS_VALUE
from routing.catalog import catalogue_get

logger = logging.getLogger(__name__)


class ProviderStatusCollector:
    """`ai_provider_status` from the catalogue snapshot (the database's provider status).

    Probes run in the Celery worker and write the status; the write bumps the catalogue
    version, and `catalogue_get()` rebuilds this process's snapshot when it changed, so a
    scrape shows the stored status within `ROUTING_SNAPSHOT_CHECK_SECONDS`.
    """

    name = "ai_provider_status"
    documentation = "Provider health as stored: 1 healthy, 0.5 degraded, 0 down."

    def describe(self):
        # Registering must not touch the database (it may happen at import time).
        return [GaugeMetricFamily(self.name, self.documentation, labels=["provider"])]

    def collect(self):
        family = GaugeMetricFamily(self.name, self.documentation, labels=["provider"])
        try:
            providers = catalogue_get().snapshot.providers
        except Exception:
            # A scrape must not fail because the database is away; readiness reports that.
            logger.warning("provider status unavailable for /metrics", exc_info=True)
            return
        for provider_id, info in sorted(providers.items()):
            family.add_metric([provider_id], STATUS_VALUE.get(info.status, 0.0))
        yield family


provider_status_collector = ProviderStatusCollector()
