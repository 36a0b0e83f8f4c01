"""What /metrics reads from the catalogue when scraped: `ai_provider_status`."""

from prometheus_client.core import GaugeMetricFamily

from core.metrics import STATUS_VALUE
from routing.catalog import catalogue_peek


class ProviderStatusCollector:
    """`ai_provider_status` from the catalogue snapshot (the database's provider status).

    Probes run in the Celery worker and write the status; the write bumps the catalogue
    version, and this process's background thread rebuilds its snapshot when it changed, so a
    scrape shows the stored status within `ROUTING_SNAPSHOT_CHECK_SECONDS`. A scrape reads the
    snapshot from memory (`catalogue_peek()`): it never waits on the database, and while the
    database is down it shows the last status known.
    """

    name = "ai_provider_status"
    documentation = "Provider health as stored: 1 healthy, 0.5 degraded, 0 down."

    def describe(self):
        # Registering must not touch the database (it may happen at import time).
        return [GaugeMetricFamily(self.name, self.documentation, labels=["provider"])]

    def collect(self):
        family = GaugeMetricFamily(self.name, self.documentation, labels=["provider"])
        catalogue = catalogue_peek()
        if catalogue is None:
            return  # not loaded yet (a background load has started); readiness reports why
        providers = catalogue.snapshot.providers
        for provider_id, info in sorted(providers.items()):
            family.add_metric([provider_id], STATUS_VALUE.get(info.status, 0.0))
        yield family


provider_status_collector = ProviderStatusCollector()
