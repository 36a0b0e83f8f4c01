"""What /metrics reads from the request log when scraped: `ai_cost_savings_percentage`."""

import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from .models import RequestLog

logger = logging.getLogger(__name__)


class CostSavingsCollector:
    """`ai_cost_savings_percentage` over the last `METRICS_SAVINGS_WINDOW_SECONDS`.

    savings = 1 - cost / baseline_cost, summed over every request logged in the window, where
    baseline_cost prices the same usage on the requested model's default provider. 0.15 means
    routing spent 15 % less than sending everything to the defaults; below 0 it spent more.
    With no spend in the window the value is 0. One indexed range query on
    request_log.created_at, cached `METRICS_SAVINGS_CACHE_SECONDS` per process, so scrapes of
    any worker or host agree and cost nothing under load.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._cached: tuple[float, float, float] | None = None
        self._at = float("-inf")

    def reset(self) -> None:
        with self._lock:
            self._cached, self._at = None, float("-inf")

    def describe(self):
        return list(self._families(0.0, 0.0, 0.0))

    def _families(self, savings, cost, baseline):
        yield GaugeMetricFamily(
            "ai_cost_savings_percentage",
            "Share of the baseline cost saved by routing over the recent window "
            "(0.15 = 15 % saved, negative = spent more).",
            value=savings,
        )
        window = GaugeMetricFamily(
            "ai_cost_window_usd",
            "Spend over the savings window: actual cost and the baseline it is compared with.",
            labels=["kind"],
        )
        window.add_metric(["actual"], cost)
        window.add_metric(["baseline"], baseline)
        yield window

    def _query(self) -> tuple[float, float, float]:
        since = timezone.now() - timedelta(seconds=settings.METRICS_SAVINGS_WINDOW_SECONDS)
        sums = RequestLog.objects.filter(created_at__gte=since).aggregate(
            cost=Sum("cost"), baseline=Sum("baseline_cost")
        )
        cost = float(sums["cost"] or 0)
        baseline = float(sums["baseline"] or 0)
        savings = 1.0 - cost / baseline if baseline > 0 else 0.0
        return savings, cost, baseline

    def collect(self):
        now = time.monotonic()
        with self._lock:
            if self._cached is None or now - self._at >= settings.METRICS_SAVINGS_CACHE_SECONDS:
                try:
                    self._cached, self._at = self._query(), now
                except Exception:
                    logger.warning("cost savings unavailable for /metrics", exc_info=True)
                    if self._cached is None:
                        return
            cached = self._cached
        yield from self._families(*cached)


cost_savings_collector = CostSavingsCollector()
