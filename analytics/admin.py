from django.contrib import admin

from .models import RequestLog, RoutingAnalytics


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the gateway and the jobs: operators look, never edit."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RequestLog)
class RequestLogAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "request_id",
        "requested_model",
        "policy_name",
        "provider_id",
        "model",
        "status",
        "http_status",
        "attempts",
        "cost",
        "baseline_cost",
        "latency",
        "stream",
    ]
    list_filter = ["status", "provider_id", "stream", "error_type"]
    search_fields = ["request_id", "requested_model", "model", "api_key_name", "policy_name"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    show_full_result_count = False  # COUNT(*) over millions of rows is the slow part


@admin.register(RoutingAnalytics)
class RoutingAnalyticsAdmin(ReadOnlyAdmin):
    list_display = [
        "period_start",
        "period_end",
        "policy",
        "provider_id",
        "request_count",
        "total_cost",
        "baseline_cost",
        "avg_response_time",
        "success_rate",
    ]
    list_filter = ["provider_id", "policy"]
    date_hierarchy = "period_start"
    ordering = ["-period_start"]
    list_select_related = ["policy"]
