"""The daily cost report: built from the analytics summary, stored, emailed as HTML + CSV.

One report per day (in TIME_ZONE): per policy and provider, requests, cost, baseline cost,
savings, latency p50/p95, success rate and top errors, each compared with the day before.
Building a day again replaces its report; it is emailed once unless asked to resend.
"""

from __future__ import annotations

import csv
import io
import logging
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import Count
from django.template.loader import render_to_string
from django.utils import timezone

from .choices import ReportKind, RequestStatus
from .models import AnalyticsReport, RequestLog
from .selectors import (
    SOURCE_LOG,
    SOURCE_ROLLUPS,
    SummaryQuery,
    analytics_summary,
    log_with_route,
)
from .services import retention_horizon
from .templatetags.analytics_format import usd

logger = logging.getLogger(__name__)

TOP_ERRORS = 5
# The figures compared with the day before, and how: relative change or difference in points.
_COMPARED = (
    ("request_count", "pct"),
    ("cost_usd", "pct"),
    ("baseline_cost_usd", "pct"),
    ("savings_usd", "pct"),
    ("latency_p50_s", "pct"),
    ("latency_p95_s", "pct"),
    ("success_rate", "points"),
    ("savings_percent", "points"),
)
CSV_COLUMNS = (
    "day",
    "policy",
    "provider",
    "requests",
    "success_rate_pct",
    "cost_usd",
    "baseline_cost_usd",
    "savings_usd",
    "savings_pct",
    "latency_p50_s",
    "latency_p95_s",
    "errors",
    "top_errors",
    "prev_requests",
    "prev_cost_usd",
    "prev_savings_usd",
    "prev_latency_p95_s",
    "prev_success_rate_pct",
    "requests_change_pct",
    "cost_change_pct",
    "savings_change_pct",
    "latency_p95_change_pct",
    "success_rate_change_points",
)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of `day` in TIME_ZONE, in UTC (23 or 25 hours on daylight-saving days)."""
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def yesterday() -> date:
    return timezone.localdate() - timedelta(days=1)


def report_daily_build(day: date) -> AnalyticsReport:
    """Compute `day`'s report and store it, replacing an earlier build of the same day."""
    start, end = day_bounds(day)
    previous_start, previous_end = day_bounds(day - timedelta(days=1))
    group_by = ("policy", "provider")
    # A daily batch can afford the log's exact figures (and only the log has error types);
    # a day past the log's retention comes from the rollups.
    current = analytics_summary(SummaryQuery(start, end, group_by=group_by, source=_source(start)))
    previous = analytics_summary(
        SummaryQuery(
            previous_start, previous_end, group_by=group_by, source=_source(previous_start)
        )
    )
    # Error types live only in the log: a day past its retention reports none.
    errors, all_errors = _top_errors(start, end) if current["source"] == SOURCE_LOG else ({}, [])
    earlier = {_key(g): g for g in previous["groups"]}

    rows = []
    for group in current["groups"]:
        prior = earlier.get(_key(group))
        rows.append(
            {
                **_jsonable(group),
                "top_errors": errors.get(_key(group), []),
                "previous": _jsonable(prior) if prior else None,
                "change": _change(group, prior),
            }
        )
    totals = {
        **_jsonable(_figures_only(current)),
        "top_errors": all_errors,
        "previous": _jsonable(_figures_only(previous)),
        "change": _change(current, previous),
    }
    data = {
        "kind": ReportKind.DAILY,
        "day": day.isoformat(),
        "time_zone": settings.TIME_ZONE,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "previous_day": (day - timedelta(days=1)).isoformat(),
        "source": current["source"],
        "totals": totals,
        "rows": rows,
    }
    report, _ = AnalyticsReport.objects.update_or_create(
        kind=ReportKind.DAILY,
        day=day,
        defaults={
            "period_start": start,
            "period_end": end,
            "request_count": current["request_count"],
            "total_cost": current["cost_usd"],
            "baseline_cost": current["baseline_cost_usd"],
            "success_rate": current["success_rate"],
            "data": data,
        },
    )
    return report


def report_send(report: AnalyticsReport, recipients: list[str] | None = None) -> bool:
    """Email the report (HTML body, plain-text alternative, CSV attachment) through Django's
    email backend. False when there is nobody to send to. Mail-server errors are recorded on
    the report and raised, so the task can retry them."""
    if recipients is None:
        recipients = settings.ANALYTICS_REPORT_RECIPIENTS
    recipients = list(recipients)
    if not recipients:
        logger.info("report %s stored; not emailed: ANALYTICS_REPORT_RECIPIENTS is empty", report)
        return False
    context = report_context(report)
    message = EmailMultiAlternatives(
        subject=report_subject(report),
        body=render_to_string("analytics/report_email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
    )
    html = render_to_string("analytics/report_email.html", context)
    message.attach_alternative(html, "text/html")
    message.attach(report_filename(report), report_csv(report), "text/csv")
    try:
        message.send()
    except Exception as exc:
        report.email_error = f"{type(exc).__name__}: {exc}"[:500]
        report.save(update_fields=["email_error", "updated_at"])
        raise
    report.emailed_at = timezone.now()
    report.recipients = recipients
    report.email_error = ""
    report.save(update_fields=["emailed_at", "recipients", "email_error", "updated_at"])
    return True


def report_daily_run(
    day: date | None = None, *, resend: bool = False, email: bool = True
) -> AnalyticsReport:
    """What the schedule runs: build `day` (default yesterday) and email it unless it already
    went out. Safe to run again: the report is rebuilt, the email not repeated."""
    report = report_daily_build(day or yesterday())
    if email and (resend or report.emailed_at is None):
        report_send(report)
    return report


def report_subject(report: AnalyticsReport) -> str:
    totals = report.data.get("totals", {})
    saved = totals.get("savings_percent")
    saved_text = f", {saved:.1f}% saved" if saved is not None else ""
    return (
        f"Auterity daily report {report.day:%Y-%m-%d}: {totals.get('request_count', 0)} "
        f"requests, {usd(totals.get('cost_usd', 0))}{saved_text}"
    )


def report_filename(report: AnalyticsReport) -> str:
    return f"auterity-{report.kind}-report-{report.day:%Y-%m-%d}.csv"


def report_context(report: AnalyticsReport) -> dict:
    return {"report": report, "data": report.data, "totals": report.data.get("totals", {})}


def report_csv(report: AnalyticsReport) -> str:
    """One line per policy and provider, then a TOTAL line."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    data = report.data
    for row in [*data.get("rows", []), {**data.get("totals", {}), "policy_name": "TOTAL"}]:
        prev = row.get("previous") or {}
        change = row.get("change") or {}
        writer.writerow(
            [
                data.get("day"),
                row.get("policy_name", ""),
                row.get("provider_id", ""),
                row.get("request_count"),
                _cell(row.get("success_rate")),
                _cell(row.get("cost_usd")),
                _cell(row.get("baseline_cost_usd")),
                _cell(row.get("savings_usd")),
                _cell(row.get("savings_percent")),
                _cell(row.get("latency_p50_s")),
                _cell(row.get("latency_p95_s")),
                row.get("error_count"),
                "; ".join(f"{e['error_type']} x{e['count']}" for e in row.get("top_errors", [])),
                prev.get("request_count", ""),
                _cell(prev.get("cost_usd")),
                _cell(prev.get("savings_usd")),
                _cell(prev.get("latency_p95_s")),
                _cell(prev.get("success_rate")),
                _cell(change.get("request_count")),
                _cell(change.get("cost_usd")),
                _cell(change.get("savings_usd")),
                _cell(change.get("latency_p95_s")),
                _cell(change.get("success_rate")),
            ]
        )
    return out.getvalue()


# --- building blocks -------------------------------------------------------------------------


def _source(start: datetime) -> str:
    return SOURCE_LOG if start >= retention_horizon() else SOURCE_ROLLUPS


def _key(group: dict) -> tuple:
    return (group.get("policy_id"), group.get("provider_id"))


def _figures_only(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ("start", "end", "source", "groups")}


def _jsonable(figures: dict) -> dict:
    """Decimals (costs) become floats: the report is read by people and spreadsheets."""
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in figures.items()}


def _change(current: dict, previous: dict | None) -> dict:
    """Per compared figure: percent change (or points for rates); None without a base."""
    change = {}
    for name, how in _COMPARED:
        now = current.get(name)
        before = previous.get(name) if previous else None
        if now is None or before is None:
            change[name] = None
        elif how == "points":
            change[name] = round(float(now) - float(before), 2)
        else:
            change[name] = (
                round((float(now) - float(before)) / float(before) * 100, 1) if before else None
            )
    return change


def _top_errors(start: datetime, end: datetime) -> tuple[dict[tuple, list[dict]], list[dict]]:
    """The most frequent error types per (policy, provider), and over all, from the log."""
    failed = log_with_route(
        RequestLog.objects.filter(created_at__gte=start, created_at__lt=end)
        .exclude(status=RequestStatus.SUCCESS)
        .exclude(error_type="")
    )
    per_group: dict[tuple, list[dict]] = {}
    for row in (
        failed.values("policy_id", "route_provider", "error_type")
        .annotate(count=Count("id"))
        .order_by("-count", "error_type")
    ):
        policy = str(row["policy_id"]) if row["policy_id"] is not None else None
        bucket = per_group.setdefault((policy, row["route_provider"]), [])
        if len(bucket) < TOP_ERRORS:
            bucket.append({"error_type": row["error_type"], "count": row["count"]})
    overall = list(
        failed.values("error_type")
        .annotate(count=Count("id"))
        .order_by("-count", "error_type")[:TOP_ERRORS]
    )
    return per_group, overall


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.10f}".rstrip("0").rstrip(".") if value else "0"
    return value
