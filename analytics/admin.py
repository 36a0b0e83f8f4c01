import uuid
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from core.admin_base import ReadOnlyAdmin, change_panel_register
from providers.models import Provider
from routing.models import RoutingPolicy

from . import charts, reports
from .models import AnalyticsReport, RequestLog, RoutingAnalytics
from .selectors import (
    FallbackServed,
    SummaryQuery,
    analytics_oldest,
    analytics_summary,
    analytics_timeseries,
    log_with_route,
)


class RouteProviderFilter(admin.SimpleListFilter):
    """By the provider a request counts against: the one that served it or, for a request
    whose every attempt failed, the last one tried (also for older rows that logged none)."""

    title = "provider"
    parameter_name = "provider"

    def lookups(self, request, model_admin):
        return [(p, p) for p in Provider.objects.order_by("id").values_list("id", flat=True)]

    def queryset(self, request, queryset):
        if self.value():
            return log_with_route(queryset).filter(route_provider=self.value())
        return queryset


class FallbackFilter(admin.SimpleListFilter):
    title = "served by a fallback"
    parameter_name = "fallback"

    def lookups(self, request, model_admin):
        return [("yes", "yes"), ("no", "no")]

    def queryset(self, request, queryset):
        if self.value() not in ("yes", "no"):
            return queryset
        marked = queryset.annotate(served_by_fallback=FallbackServed())
        return marked.filter(served_by_fallback=1 if self.value() == "yes" else 0)


def _usd_precise(value) -> str:
    """USD with the precision a value needs: cents from a cent up, three significant digits
    below ($0.0000123), never ten decimals or an exponent."""
    value = Decimal(value or 0)
    if value == 0:
        return "$0"
    if abs(value) >= Decimal("0.01"):
        return f"${value:,.2f}"
    places = 2 - value.adjusted()
    return f"${value:.{places}f}".rstrip("0").rstrip(".")


@admin.register(RequestLog)
class RequestLogAdmin(ReadOnlyAdmin):
    """The request log at 1280 px: what was asked, where it went, how it ended, in ms and
    USD; the full row (every attempt, flags, tokens) on its own page."""

    list_display = [
        "when",
        "route",
        "policy_name",
        "outcome",
        "latency_ms",
        "cost_usd",
        "saved_usd",
        "attempts_shown",
    ]
    list_display_links = ["when"]
    list_filter = [
        "status",
        RouteProviderFilter,
        "model",
        "policy",
        FallbackFilter,
        "stream",
        "error_type",
    ]
    search_fields = [
        "request_id",
        "client_request_id",
        "requested_model",
        "model",
        "api_key_name",
        "policy_name",
    ]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    list_select_related = ["policy"]
    show_full_result_count = False  # COUNT(*) over millions of rows is the slow part

    def get_search_fields(self, request):
        names = {f.name for f in RequestLog._meta.get_fields()}
        return [f for f in self.search_fields if f in names]

    @admin.display(description="when", ordering="created_at")
    def when(self, obj):
        return timezone.localtime(obj.created_at).strftime("%m-%d %H:%M:%S")

    @admin.display(description="requested → served")
    def route(self, obj):
        served = f"{obj.provider_id}/{obj.model}" if obj.provider_id else "(no provider)"
        return f"{obj.requested_model} → {served}"

    @admin.display(description="status", ordering="status")
    def outcome(self, obj):
        text = f"{obj.status} {obj.http_status}"
        if obj.error_type:
            text += f" ({obj.error_type})"
        css = "" if obj.status == "success" else "color: var(--error-fg, #ba2121)"
        return format_html('<span style="{}">{}</span>', css, text)

    @admin.display(description="latency", ordering="latency")
    def latency_ms(self, obj):
        return f"{obj.latency * 1000:,.0f} ms"

    @admin.display(description="cost", ordering="cost")
    def cost_usd(self, obj):
        return _usd_precise(obj.cost)

    @admin.display(description="saved")
    def saved_usd(self, obj):
        return _usd_precise(obj.baseline_cost - obj.cost)

    @admin.display(description="attempts", ordering="attempts")
    def attempts_shown(self, obj):
        detail = obj.attempts_detail if isinstance(obj.attempts_detail, list) else []
        first = detail[0] if detail and isinstance(detail[0], dict) else {}
        fallback = obj.status == "success" and (
            first.get("provider") != obj.provider_id or first.get("model") != obj.model
        )
        if fallback:
            return format_html("{} <b title='served by a fallback'>↪ fallback</b>", obj.attempts)
        return str(obj.attempts)


# The dashboard's ranges, ending now.
DASHBOARD_RANGES = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}


@admin.register(RoutingAnalytics)
class RoutingAnalyticsAdmin(ReadOnlyAdmin):
    list_display = [
        "period_start",
        "period_end",
        "policy",
        "provider_id",
        "request_count",
        "cost_usd",
        "baseline_usd",
        "latency_ms",
        "success_rate",
        "attempt_count",
        "attempt_error_count",
        "fallback_count",
    ]
    list_filter = ["provider_id", "policy"]
    date_hierarchy = "period_start"
    ordering = ["-period_start"]
    list_select_related = ["policy"]
    change_list_template = "admin/analytics/routinganalytics/change_list.html"

    @admin.display(description="cost", ordering="total_cost")
    def cost_usd(self, obj):
        return _usd_precise(obj.total_cost)

    @admin.display(description="baseline", ordering="baseline_cost")
    def baseline_usd(self, obj):
        return _usd_precise(obj.baseline_cost)

    @admin.display(description="avg latency", ordering="avg_response_time")
    def latency_ms(self, obj):
        return f"{float(obj.avg_response_time) * 1000:,.0f} ms"

    def get_urls(self):
        dashboard = self.admin_site.admin_view(self.dashboard_view)
        return [
            path("dashboard/", dashboard, name="analytics_dashboard"),
            *super().get_urls(),
        ]

    def dashboard_view(self, request):
        """Cost, savings, request rate, latency and success rate over time, per provider or
        policy, drawn from the rollups as server-side SVG (docs/jobs.md)."""
        if not self.has_view_permission(request):
            raise PermissionDenied  # admin_view already sent anonymous users to the login
        end = timezone.now()
        range_key = request.GET.get("range") or _fitting_range(end)
        if range_key not in DASHBOARD_RANGES:
            range_key = "24h"
        group = "policy" if request.GET.get("group") == "policy" else "provider"
        policy_id = request.GET.get("policy") or None
        provider_id = request.GET.get("provider") or None
        if policy_id and not RoutingPolicy.objects.filter(pk=_uuid_or_none(policy_id)).exists():
            policy_id = None
        start = end - DASHBOARD_RANGES[range_key]

        filters = {"policy_id": policy_id, "provider_id": provider_id}
        summary = analytics_summary(SummaryQuery(start, end, group_by=(group,), **filters))
        minutes, series = analytics_timeseries(start=start, end=end, group_by=group, **filters)
        context = {
            **self.admin_site.each_context(request),
            "title": "Routing analytics dashboard",
            "opts": self.model._meta,
            "ranges": list(DASHBOARD_RANGES),
            "range_key": range_key,
            "group": group,
            "policy_id": policy_id or "",
            "provider_id": provider_id or "",
            "policies": RoutingPolicy.objects.order_by("name").values_list("id", "name"),
            "providers": Provider.objects.order_by("id").values_list("id", flat=True),
            "summary": summary,
            "bucket_minutes": minutes,
            "charts": _dashboard_charts(series, start, end, minutes),
            "changelist_url": reverse("admin:analytics_routinganalytics_changelist"),
        }
        return TemplateResponse(request, "admin/analytics/dashboard.html", context)


def _fitting_range(now) -> str:
    """The shortest range that holds all the traffic of the longest one, so that a fresh
    install's first minutes fill the charts instead of one pixel of a day."""
    longest = max(DASHBOARD_RANGES.values())
    oldest = analytics_oldest(now - longest)
    if oldest is None:
        return "24h"
    return next(key for key, span in DASHBOARD_RANGES.items() if now - span <= oldest)


def _uuid_or_none(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _bucket_name(minutes: int) -> str:
    if minutes >= 1440:
        return "day"
    if minutes >= 60:
        return "hour"
    return f"{minutes} min"


def _dashboard_charts(series: dict, start, end, minutes: int) -> list[dict]:
    def chart(title, lines, label, description, **options):
        return {
            "title": title,
            "chart": charts.line_chart(
                lines, start=start, end=end, label=label, description=description, **options
            ),
        }

    def per_group(attribute):
        return [
            charts.Series(name, [(p.at, getattr(p, attribute)) for p in points])
            for name, points in series.items()
        ]

    totals: dict = {}
    for points in series.values():
        for p in points:
            cost, baseline = totals.get(p.at, (0.0, 0.0))
            totals[p.at] = (cost + p.cost, baseline + p.baseline)
    moments = sorted(totals)
    bucket = _bucket_name(minutes)
    return [
        chart(
            f"Cost vs baseline (USD per {bucket}, all groups)",
            [
                charts.Series("cost", [(m, totals[m][0]) for m in moments]),
                charts.Series("baseline", [(m, totals[m][1]) for m in moments], dashed=True),
            ],
            _usd,
            "cost and baseline cost over time",
        ),
        chart(f"Cost (USD per {bucket})", per_group("cost"), _usd, "cost over time"),
        chart(
            "Request rate (requests per minute)",
            per_group("requests_per_minute"),
            lambda v: f"{v:g}",
            "requests per minute over time",
        ),
        chart(
            "Latency p95 of successful requests (seconds)",
            per_group("p95_latency"),
            lambda v: f"{v:g} s",
            "p95 latency over time",
        ),
        chart(
            "Failed upstream attempts per minute (retries and fallbacks included)",
            per_group("failed_attempts_per_minute"),
            lambda v: f"{v:g}",
            "failed upstream attempts per minute over time",
        ),
        chart(
            "Success rate (%)",
            per_group("success_rate"),
            lambda v: f"{v:g}%",
            "success rate over time",
            y_max=100.0,
        ),
    ]


def _usd(value: float) -> str:
    return f"${value:.4f}" if 0 < value < 1 else f"${value:,.2f}"


@admin.register(AnalyticsReport)
class AnalyticsReportAdmin(ReadOnlyAdmin):
    list_display = [
        "day",
        "kind",
        "request_count",
        "total_cost",
        "baseline_cost",
        "savings",
        "success_rate",
        "emailed_at",
    ]
    list_filter = ["kind"]
    date_hierarchy = "day"
    ordering = ["-day"]
    fields = [
        "kind",
        "day",
        "period_start",
        "period_end",
        "recipients",
        "emailed_at",
        "email_error",
        "created_at",
        "updated_at",
    ]
    change_form_template = "admin/analytics/analyticsreport/change_form.html"
    actions = ["email_again"]

    def get_urls(self):
        csv_view = self.admin_site.admin_view(self.csv_view)
        return [
            path("<int:report_id>/csv/", csv_view, name="analytics_analyticsreport_csv"),
            *super().get_urls(),
        ]

    def csv_view(self, request, report_id):
        report = get_object_or_404(AnalyticsReport, pk=report_id)
        if not self.has_view_permission(request, report):
            raise PermissionDenied
        response = HttpResponse(reports.report_csv(report), content_type="text/csv")
        response["Content-Disposition"] = (
            f'attachment; filename="{reports.report_filename(report)}"'
        )
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        report = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if report is not None:
            extra.update(reports.report_context(report))
            extra["csv_url"] = reverse("admin:analytics_analyticsreport_csv", args=[report.pk])
        return super().change_view(request, object_id, form_url, extra_context=extra)

    @admin.action(description="Email the selected reports to ANALYTICS_REPORT_RECIPIENTS")
    def email_again(self, request, queryset):
        sent = 0
        for report in queryset:
            try:
                if reports.report_send(report):
                    sent += 1
            except Exception as exc:
                self.message_user(request, f"{report}: {exc}", messages.ERROR)
        if sent:
            self.message_user(request, f"{sent} report(s) emailed.", messages.SUCCESS)
        elif not queryset.exists() or not settings.ANALYTICS_REPORT_RECIPIENTS:
            self.message_user(
                request, "Nothing sent: ANALYTICS_REPORT_RECIPIENTS is empty.", messages.WARNING
            )


# How far back the provider page's "now" looks.
PROVIDER_TRAFFIC_MINUTES = 5


def _provider_traffic_panel(request, provider):
    """The provider page's traffic now, from the request log (every process's requests):
    attempts and failures by error type, error rate, latency, fallbacks."""
    end = timezone.now()
    start = end - timedelta(minutes=PROVIDER_TRAFFIC_MINUTES)
    summary = analytics_summary(
        SummaryQuery(start, end, provider_id=provider.id, source="request_log")
    )
    attempts = summary["attempt_count"]
    return {
        "title": f"Traffic, last {PROVIDER_TRAFFIC_MINUTES} minutes (request log, all processes)",
        "template": "admin/analytics/provider_traffic_panel.html",
        "summary": summary,
        "error_rate": 100 * summary["attempt_error_count"] / attempts if attempts else None,
        "dashboard_url": reverse("admin:analytics_dashboard") + f"?range=1h&provider={provider.id}",
    }


change_panel_register("providers.Provider", _provider_traffic_panel)
