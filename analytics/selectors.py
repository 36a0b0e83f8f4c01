"""Reads of the analytics app: summaries over a time range and time series for the dashboard.

A summary comes from the request log when the range is short (exact percentiles, no lag) and
from the rollups when it is long or reaches past the log's retention (cheap at any range,
latency percentiles interpolated from per-period histograms). docs/jobs.md has the details.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    CharField,
    Count,
    F,
    FloatField,
    Func,
    IntegerField,
    Q,
    Sum,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, TruncDay, TruncHour
from django.utils import timezone

from routing.engine import ERROR_TYPES
from routing.models import RoutingPolicy

from .choices import RequestStatus
from .models import LATENCY_BUCKETS, NO_POLICY, RequestLog, RoutingAnalytics, latency_key
from .services import (
    fallback_served_sql,
    period_floor,
    retention_horizon,
    route_provider_sql,
)

SOURCE_LOG = "request_log"
SOURCE_ROLLUPS = "rollups"
GROUP_FIELDS = ("policy", "provider")
NO_POLICY_NAME = "(no policy)"
DELETED_POLICY_NAME = "(deleted policy)"
NO_PROVIDER_NAME = "(none reached)"  # refused, or failed before any provider was tried
# What an attempt can end with besides "ok": the adapters' error types, and a target the
# circuit breaker did not let through.
ATTEMPT_FAILURES = tuple(sorted(ERROR_TYPES | {"circuit_open"}))


class PercentileDisc(Aggregate):
    """PostgreSQL's nearest-rank percentile: the first value whose cumulative share >= p."""

    function = "percentile_disc"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


class RouteProvider(Func):
    """The provider a request-log row counts against: the one that served it or, for a request
    that failed, the last one tried. "" when none was tried. Same SQL as the rollup's."""

    output_field = CharField()

    def __init__(self):
        super().__init__(F("provider_id"), F("attempts_detail"))

    def as_sql(self, compiler, connection, **extra):
        provider, provider_params = compiler.compile(self.source_expressions[0])
        attempts, attempts_params = compiler.compile(self.source_expressions[1])
        sql = route_provider_sql(connection.vendor, provider, attempts)
        return sql, [*provider_params, *attempts_params]


class FallbackServed(Func):
    """1 for a successful request served by a fallback (its first attempt went elsewhere),
    else 0. Same SQL as the rollup's."""

    output_field = IntegerField()

    def __init__(self):
        super().__init__(F("provider_id"), F("model"), F("attempts_detail"), F("status"))

    def as_sql(self, compiler, connection, **extra):
        parts = [compiler.compile(e) for e in self.source_expressions]
        provider, model, attempts, status = (sql for sql, _ in parts)
        served = fallback_served_sql(connection.vendor, provider, model, attempts)
        success = f"{status} = '{RequestStatus.SUCCESS}'"
        return f"CASE WHEN {success} AND {served} THEN 1 ELSE 0 END", [
            p for _, params in parts for p in params
        ]


def log_with_route(queryset):
    """The log rows annotated with `route_provider` (see RouteProvider)."""
    return queryset.annotate(route_provider=RouteProvider())


@dataclass(frozen=True)
class SummaryQuery:
    start: datetime
    end: datetime
    policy_id: str | None = None
    provider_id: str | None = None
    group_by: tuple[str, ...] = ()
    source: str = "auto"


def summary_source(start: datetime, end: datetime, requested: str = "auto") -> str:
    """Which table answers a summary of [start, end): see the module docstring."""
    if requested in (SOURCE_LOG, SOURCE_ROLLUPS):
        return requested
    short = end - start <= timedelta(hours=settings.ANALYTICS_SUMMARY_LOG_MAX_HOURS)
    return SOURCE_LOG if short and start >= retention_horizon() else SOURCE_ROLLUPS


def analytics_summary(query: SummaryQuery) -> dict:
    """Totals over [start, end) with the filters, plus one entry per group when asked.

    Figures: request/success/error/refused/cancelled counts, success_rate (percent of the
    requests the client waited for), cost_usd, baseline_cost_usd, savings_usd,
    savings_percent (of the baseline; None without one), avg/p50/p95 latency of successful
    requests (seconds; None without any), prompt and completion tokens.
    """
    source = summary_source(query.start, query.end, query.source)
    if source == SOURCE_LOG:
        totals, groups = _from_log(query)
    else:
        totals, groups = _from_rollups(query)
    return {
        "start": query.start,
        "end": query.end,
        "source": source,
        **totals,
        "groups": groups if query.group_by else None,
    }


# --- from the request log --------------------------------------------------------------------


def _log_queryset(query: SummaryQuery):
    qs = RequestLog.objects.filter(created_at__gte=query.start, created_at__lt=query.end)
    if query.provider_id is not None or "provider" in query.group_by:
        qs = log_with_route(qs)  # only then: an annotation makes aggregate() use a subquery
    if query.policy_id:
        qs = qs.filter(policy_id=query.policy_id)
    if query.provider_id is not None:
        qs = qs.filter(route_provider=query.provider_id)
    return qs.order_by()


_LOG_SUMS = {
    "request_count": Count("id"),
    "success_count": Count("id", filter=Q(status=RequestStatus.SUCCESS)),
    "error_count": Count("id", filter=Q(status=RequestStatus.ERROR)),
    "refused_count": Count("id", filter=Q(status=RequestStatus.REFUSED)),
    "cancelled_count": Count("id", filter=Q(status=RequestStatus.CANCELLED)),
    "cost": Sum("cost"),
    "baseline": Sum("baseline_cost"),
    "avg_latency": Avg("latency", filter=Q(status=RequestStatus.SUCCESS)),
    "prompt_tokens": Sum("prompt_tokens"),
    "completion_tokens": Sum("completion_tokens"),
    "fallback_count": Sum(FallbackServed()),
}
_LOG_GROUP_COLUMNS = {"policy": ("policy_id",), "provider": ("route_provider",)}


def _from_log(query: SummaryQuery):
    qs = _log_queryset(query)
    successes = qs.filter(status=RequestStatus.SUCCESS)
    exact = connection.vendor == "postgresql"
    percentiles = {"p50": PercentileDisc("latency", 0.5), "p95": PercentileDisc("latency", 0.95)}

    totals = qs.aggregate(**_LOG_SUMS)
    if exact:
        totals.update(successes.aggregate(**percentiles))
    else:
        totals.update(_nearest_rank(successes, totals["success_count"]))
    groups = []
    if query.group_by:
        columns = [c for g in query.group_by for c in _LOG_GROUP_COLUMNS[g]]
        rows = list(qs.values(*columns).annotate(**_LOG_SUMS))
        if exact:
            ranks = {
                tuple(r[c] for c in columns): r
                for r in successes.values(*columns).annotate(**percentiles)
            }
        for row in rows:
            key = tuple(row[c] for c in columns)
            if exact:
                row.update({k: ranks.get(key, {}).get(k) for k in ("p50", "p95")})
            else:
                row.update(
                    _nearest_rank(
                        successes.filter(**dict(zip(columns, key, strict=True))),
                        row["success_count"],
                    )
                )
        attempts = _log_attempts(query, query.group_by)
        by_key = {tuple(row[c] for c in columns): row for row in rows}
        for key, figures in attempts.items():
            row = by_key.get(key)
            if row is None:  # tried, but served or failed last for no request
                row = by_key[key] = dict(zip(columns, key, strict=True))
                row.update({"p50": None, "p95": None})
                rows.append(row)
            row.update(figures)
        names = _policy_names(r.get("policy_id") for r in rows)
        groups = [_group_entry(row, query.group_by, names) for row in rows]
    totals.update(_log_attempts(query, ()).get((), {}))
    return _figures(totals), _sorted(groups)


def _log_attempts(query: SummaryQuery, group_by) -> dict[tuple, dict]:
    """Attempt figures from the log's attempts_detail, in SQL: {group key: {attempt_count,
    attempt_error_count, attempt_errors}}, each attempt counted against the provider it went
    to. Group keys as _from_log's: (policy id?, provider?)."""
    if connection.vendor == "postgresql":
        elements = (
            "CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(l.attempts_detail)"
            " = 'array' THEN l.attempts_detail ELSE '[]'::jsonb END) AS a"
        )
        provider = "COALESCE(a.value ->> 'provider', '')"
        outcome = "COALESCE(a.value ->> 'outcome', '')"
    else:
        elements = (
            ", json_each(CASE WHEN json_type(l.attempts_detail) = 'array' "
            "THEN l.attempts_detail ELSE '[]' END) AS a"
        )
        provider = "COALESCE(json_extract(a.value, '$.provider'), '')"
        outcome = "COALESCE(json_extract(a.value, '$.outcome'), '')"
    keys = [{"policy": "l.policy_id", "provider": provider}[g] for g in group_by]
    where = ["l.created_at >= %s", "l.created_at < %s"]
    params = [connection.ops.adapt_datetimefield_value(v) for v in (query.start, query.end)]
    if query.policy_id:
        where.append("l.policy_id = %s")
        # as the UUID field stores it (SQLite: 32 hex digits)
        params.append(
            RequestLog._meta.get_field("policy").get_db_prep_value(query.policy_id, connection)
        )
    if query.provider_id is not None:
        where.append(f"{provider} = %s")
        params.append(query.provider_id)
    select = ", ".join([*keys, outcome, "COUNT(*)"])
    group = ", ".join([*keys, outcome])
    sql = (
        f"SELECT {select} FROM request_log l {elements} WHERE {' AND '.join(where)} "
        f"GROUP BY {group}"
    )
    found: dict[tuple, dict] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for *key, result, n in cursor.fetchall():
            if "policy" in group_by and key[0] is not None:
                key[0] = _uuid(key[0])
            figures = found.setdefault(
                tuple(key), {"attempt_count": 0, "attempt_error_count": 0, "attempt_errors": {}}
            )
            figures["attempt_count"] += n
            if result != "ok":
                figures["attempt_error_count"] += n
                figures["attempt_errors"][result] = n
    return found


def _uuid(value):
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _nearest_rank(successes, n: int) -> dict:
    """p50/p95 as PostgreSQL's percentile_disc gives them, for databases without it."""
    result = {}
    for name, fraction in (("p50", 0.5), ("p95", 0.95)):
        if not n:
            result[name] = None
            continue
        rank = max(1, math.ceil(fraction * n))
        result[name] = successes.order_by("latency").values_list("latency", flat=True)[rank - 1]
    return result


# --- from the rollups ------------------------------------------------------------------------


def _rollup_filter(query: SummaryQuery) -> Q:
    condition = Q(period_start__gte=query.start, period_start__lt=query.end)
    if query.policy_id:
        condition &= Q(policy_key=query.policy_id)
    if query.provider_id is not None:
        condition &= Q(provider_id=query.provider_id)
    return condition


# Named apart from the columns they sum (sum_<column>): an aggregate may not refer to
# another's name.
_ROLLUP_SUMS = {
    "sum_request_count": Sum("request_count"),
    "sum_success_count": Sum("success_count"),
    "sum_error_count": Sum("error_count"),
    "sum_refused_count": Sum("refused_count"),
    "sum_cancelled_count": Sum("cancelled_count"),
    "cost": Sum("total_cost"),
    "baseline": Sum("baseline_cost"),
    # per-period averages weighted by the successes they average over
    "latency_weighted": Sum(F("avg_response_time") * F("success_count"), output_field=FloatField()),
    "sum_prompt_tokens": Sum("prompt_tokens"),
    "sum_completion_tokens": Sum("completion_tokens"),
    "sum_fallback_count": Sum("fallback_count"),
    "sum_attempt_count": Sum("attempt_count"),
    "sum_attempt_error_count": Sum("attempt_error_count"),
    # failed attempts by error type, summed type by type
    **{
        f"failed_{name}": Sum(Cast(KT(f"attempt_errors__{name}"), IntegerField()))
        for name in ATTEMPT_FAILURES
    },
    # the cumulative latency histograms, summed bound by bound
    **{
        f"le_{i}": Sum(Cast(KT(f"latency_le__{latency_key(bound)}"), IntegerField()))
        for i, bound in enumerate((*LATENCY_BUCKETS, math.inf))
    },
}
_ROLLUP_GROUP_COLUMNS = {"policy": ("policy_key",), "provider": ("provider_id",)}


def _from_rollups(query: SummaryQuery):
    qs = RoutingAnalytics.objects.filter(_rollup_filter(query)).order_by()
    totals = qs.aggregate(**_ROLLUP_SUMS)
    totals.update(_rollup_percentiles(totals))
    groups = []
    if query.group_by:
        columns = [c for g in query.group_by for c in _ROLLUP_GROUP_COLUMNS[g]]
        rows = list(qs.values(*columns).annotate(**_ROLLUP_SUMS))
        names = _policy_names(r.get("policy_key") for r in rows)
        for row in rows:
            row.update(_rollup_percentiles(row))
            if "policy_key" in row:
                key = row.pop("policy_key")
                row["policy_id"] = None if key == NO_POLICY else key
        groups = [_group_entry(row, query.group_by, names) for row in rows]
    return _figures(totals), _sorted(groups)


def _rollup_percentiles(row: dict) -> dict:
    """p50/p95 from the summed cumulative histograms of rollup rows (the le_<i> sums).
    Rows without a histogram add nothing to any bound, so they are left out, not guessed."""
    buckets, below = [], 0
    for i, bound in enumerate((*LATENCY_BUCKETS, math.inf)):
        within = row.pop(f"le_{i}", None) or 0
        buckets.append((bound, within - below))
        below = within
    return histogram_percentiles(buckets)


def _policy_names(ids) -> dict:
    keys = set(ids) - {NO_POLICY, None}
    if not keys:
        return {}
    return dict(RoutingPolicy.objects.filter(id__in=keys).values_list("id", "name"))


def histogram_percentiles(buckets: list[tuple[float, int]]) -> dict:
    """p50/p95 from (upper bound, count) buckets, interpolated linearly inside the bucket
    that holds the rank; a rank in the +Inf bucket reports the last finite bound."""
    merged: dict[float, int] = {}
    for le, n in buckets:
        merged[le] = merged.get(le, 0) + (n or 0)
    ordered = sorted(merged.items())
    total = sum(n for _, n in ordered)
    result = {}
    for name, fraction in (("p50", 0.5), ("p95", 0.95)):
        if not total:
            result[name] = None
            continue
        rank = fraction * total
        seen, lower = 0, 0.0
        for le, n in ordered:
            if seen + n >= rank:
                if math.isinf(le):
                    result[name] = lower
                else:
                    result[name] = lower + (le - lower) * (rank - seen) / n
                break
            seen += n
            lower = le
    return result


# --- shared shaping --------------------------------------------------------------------------


def _figures(row: dict) -> dict:
    for key in [k for k in row if k.startswith("sum_")]:
        row[key.removeprefix("sum_")] = row.pop(key)
    count = row.get("request_count") or 0
    successes = row.get("success_count") or 0
    cancelled = row.get("cancelled_count") or 0
    cost = Decimal(row.get("cost") or 0)
    baseline = Decimal(row.get("baseline") or 0)
    if "latency_weighted" in row:
        avg = row["latency_weighted"] / successes if successes and row["latency_weighted"] else None
    else:
        avg = row.get("avg_latency")
    finished = count - cancelled
    return {
        "request_count": count,
        "success_count": successes,
        "error_count": row.get("error_count") or 0,
        "refused_count": row.get("refused_count") or 0,
        "cancelled_count": cancelled,
        "success_rate": round(100 * successes / finished, 2) if finished else None,
        "cost_usd": cost,
        "baseline_cost_usd": baseline,
        "savings_usd": baseline - cost,
        "savings_percent": (
            round(float((baseline - cost) / baseline * 100), 2) if baseline else None
        ),
        "avg_latency_s": _seconds(avg),
        "latency_p50_s": _seconds(row.get("p50")),
        "latency_p95_s": _seconds(row.get("p95")),
        "prompt_tokens": row.get("prompt_tokens") or 0,
        "completion_tokens": row.get("completion_tokens") or 0,
        "attempt_count": row.get("attempt_count") or 0,
        "attempt_error_count": row.get("attempt_error_count") or 0,
        "attempt_errors": row.get("attempt_errors")
        or {name: row[f"failed_{name}"] for name in ATTEMPT_FAILURES if row.get(f"failed_{name}")},
        "fallback_count": row.get("fallback_count") or 0,
    }


def _seconds(value) -> float | None:
    return None if value is None else round(float(value), 4)


def _group_entry(row: dict, group_by, names: dict) -> dict:
    entry = {}
    if "policy" in group_by:
        policy_id = row.get("policy_id")
        entry["policy_id"] = str(policy_id) if policy_id is not None else None
        entry["policy_name"] = (
            NO_POLICY_NAME if policy_id is None else names.get(policy_id, DELETED_POLICY_NAME)
        )
    if "provider" in group_by:
        entry["provider_id"] = row.get("route_provider", row.get("provider_id"))
    entry.update(_figures(row))
    return entry


def _sorted(groups: list[dict]) -> list[dict]:
    return sorted(
        groups,
        key=lambda g: (-g["request_count"], g.get("policy_name") or "", g.get("provider_id", "")),
    )


def _timeline(start: datetime, end: datetime, minutes: int) -> list[datetime]:
    """The bucket starts between `start` and `end`, as the rollup query labels them: rollup
    periods (aligned to the epoch), or hours and days of the current time zone."""
    if minutes < 60:
        moment = period_floor(start, minutes * 60)
        step = timedelta(minutes=minutes)
    else:
        local = timezone.localtime(start)
        local = local.replace(minute=0, second=0, microsecond=0)
        if minutes >= 1440:
            local = local.replace(hour=0)
        # Hours step in UTC: adding an hour to a local wall-clock time is wrong across a
        # daylight-saving change.
        moment, step = local.astimezone(UTC), timedelta(minutes=minutes)
    moments = []
    while moment < end:
        moments.append(moment)
        if minutes >= 1440:
            # calendar days: re-localise so a daylight-saving change keeps midnights
            moment = timezone.make_aware(
                datetime.combine(timezone.localtime(moment).date() + timedelta(days=1), time.min)
            )
        else:
            moment = moment + step
    return moments


# --- time series for the dashboard -----------------------------------------------------------


@dataclass(frozen=True)
class SeriesPoint:
    at: datetime
    requests: int
    requests_per_minute: float
    cost: float
    baseline: float
    success_rate: float | None
    avg_latency: float | None
    p95_latency: float | None
    failed_attempts_per_minute: float = 0.0


def analytics_oldest(since: datetime) -> datetime | None:
    """When the oldest request-log row since `since` was made (the dashboard's default range
    fits it); one indexed look-up."""
    return (
        RequestLog.objects.filter(created_at__gte=since)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )


def analytics_timeseries(
    *, start: datetime, end: datetime, group_by: str = "provider", policy_id=None, provider_id=None
) -> tuple[int, dict[str, list[SeriesPoint]]]:
    """Rollups over [start, end) per time bucket and per group (provider or policy).

    The bucket is the rollup period for ranges up to two days, an hour up to two weeks, and a
    day beyond. Returns (bucket minutes, {group label: points in time order}).
    """
    query = SummaryQuery(start, end, policy_id=policy_id, provider_id=provider_id)
    condition = _rollup_filter(query)
    span = end - start
    if span <= timedelta(days=2):
        minutes, bucket = settings.ANALYTICS_ROLLUP_PERIOD_MINUTES, F("period_start")
    elif span <= timedelta(days=14):
        minutes, bucket = 60, TruncHour("period_start")
    else:
        minutes, bucket = 60 * 24, TruncDay("period_start")
    group_column = _ROLLUP_GROUP_COLUMNS[group_by][0]
    rows = (
        RoutingAnalytics.objects.filter(condition)
        .annotate(at=bucket)
        .values("at", group_column)
        .annotate(**_ROLLUP_SUMS)
        .order_by("at")
    )
    rows = list(rows)
    names = _policy_names(r[group_column] for r in rows) if group_by == "policy" else {}
    found: dict[str, dict[datetime, SeriesPoint]] = {}
    for row in rows:
        key = row[group_column]
        if group_by == "policy":
            label = NO_POLICY_NAME if key == NO_POLICY else names.get(key, DELETED_POLICY_NAME)
        else:
            label = key or NO_PROVIDER_NAME
        figures = _figures(row)
        found.setdefault(label, {})[row["at"]] = SeriesPoint(
            at=row["at"],
            requests=figures["request_count"],
            requests_per_minute=figures["request_count"] / minutes,
            cost=float(figures["cost_usd"]),
            baseline=float(figures["baseline_cost_usd"]),
            success_rate=figures["success_rate"],
            avg_latency=figures["avg_latency_s"],
            p95_latency=_rollup_percentiles(row)["p95"],
            failed_attempts_per_minute=figures["attempt_error_count"] / minutes,
        )
    # A bucket without requests is a zero for counts and costs and a gap for rates and
    # latencies, never a straight line drawn across it.
    moments = _timeline(start, end, minutes)
    series = {
        label: [
            points.get(at) or SeriesPoint(at, 0, 0.0, 0.0, 0.0, None, None, None) for at in moments
        ]
        for label, points in found.items()
    }
    return minutes, series
