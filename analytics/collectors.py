"""What /metrics reads from the request log when scraped: `ai_cost_savings_percentage`."""

from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from core.snapshot import LastGoodSnapshot

from .models import RequestLog


class CostSavingsCollector:
    """`ai_cost_savings_percentage` over the last `METRICS_SAVINGS_WINDOW_SECONDS`.

    savings = 1 - cost / baseline_cost, summed over every request logged in the window, where
    baseline_cost prices the same usage on the requested model's default provider. 0.15 means
    routing spent 15 % less than sending everything to the defaults; below 0 it spent more.
    With no spend in the window the value is 0. One indexed range query on
    request_log.created_at, run by the process's snapshot thread every
    `METRICS_SAVINGS_CACHE_SECONDS` (core/snapshot.py), never by a scrape: a scrape answers
    from memory, so it costs nothing under load and never waits on a slow or locked
    request_log; while the database is down it shows the last value computed.
    """

    def __init__(self):
        self._snapshot = LastGoodSnapshot(
            "cost_savings",
            lambda _current: self._query(),
            lambda: settings.METRICS_SAVINGS_CACHE_SECONDS,
        )

    def reset(self) -> None:
        self._snapshot.reset()

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
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # A locked request_log must not hold the snapshot thread (it also reloads the
                # catalogue and flags): give up, keep the last value, try again next time.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL statement_timeout = 5000")
            sums = RequestLog.objects.filter(created_at__gte=since).aggregate(
                cost=Sum("cost"), baseline=Sum("baseline_cost")
            )
        cost = float(sums["cost"] or 0)
        baseline = float(sums["baseline"] or 0)
        savings = 1.0 - cost / baseline if baseline > 0 else 0.0
        return savings, cost, baseline

    def collect(self):
        cached = self._snapshot.peek()
        if cached is None:
            return  # not computed yet (it is being, in the background)
        yield from self._families(*cached)


cost_savings_collector = CostSavingsCollector()
