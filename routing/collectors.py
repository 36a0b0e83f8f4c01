"""What /metrics reads from the database when scraped: `ai_provider_status`, the canaries."""

import logging

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from core.metrics import STATUS_VALUE
from routing.catalog import catalogue_peek
from routing.choices import CanaryState
from routing.models import PolicyCanary

logger = logging.getLogger(__name__)


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


class CanaryCollector:
    """`ai_routing_canary_rollbacks_total` (counter: canaries rolled back automatically, per
    policy that has run as a canary) and `ai_routing_canary_running` (gauge: the running
    canary's percent, per policy), read from the PolicyCanary rows when scraped, so every
    process shows what the Celery worker's evaluation decided
    (docs/observability.md#canaryrolledback)."""

    rollbacks = "ai_routing_canary_rollbacks"
    running = "ai_routing_canary_running"

    def _families(self):
        return (
            CounterMetricFamily(
                self.rollbacks,
                "Policy canaries rolled back automatically (worse than their control cohort).",
                labels=["policy"],
            ),
            GaugeMetricFamily(
                self.running,
                "Percent of callers a running policy canary routes.",
                labels=["policy"],
            ),
        )

    def describe(self):
        return list(self._families())

    def collect(self):
        rollbacks, running = self._families()
        try:
            rows = list(PolicyCanary.objects.values_list("policy__name", "state", "percent"))
        except Exception:
            logger.warning("canary figures unavailable for /metrics", exc_info=True)
            return
        # Every policy ever run as a canary has a series, at 0 until a rollback: a series that
        # first appears at 1 would show no increase() and the alert would never fire.
        counts: dict[str, int] = {}
        for name, state, percent in rows:
            counts[name] = counts.get(name, 0) + (state == CanaryState.ROLLED_BACK)
            if state == CanaryState.RUNNING:
                running.add_metric([name], percent)
        for name, n in sorted(counts.items()):
            rollbacks.add_metric([name], n)
        yield rollbacks
        yield running


canary_collector = CanaryCollector()
