"""The operator's pages: the analytics dashboard (server-side SVG), reports, health checks."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from analytics.charts import Series, line_chart, nice_ceiling
from analytics.models import AnalyticsReport, RequestLog
from analytics.reports import report_daily_run
from analytics.services import analytics_rollup
from providers.models import ProviderHealthCheck
from providers.tests.factories import ProviderFactory
from routing.models import RoutingPolicy

from .factories import RequestLogFactory

pytestmark = pytest.mark.django_db

DASHBOARD = "/admin/analytics/routinganalytics/dashboard/"


@pytest.fixture
def rolled_up():
    policy = RoutingPolicy.objects.create(name="Small models", actions={})
    now = timezone.now()
    for minutes in range(5, 180, 7):
        at = now - timedelta(minutes=minutes)
        RequestLogFactory(created_at=at, policy=policy, latency=0.3 + minutes / 1000)
        RequestLogFactory(
            created_at=at, provider_id="google", cost=Decimal("0.002"), baseline_cost=0.003
        )
    RequestLogFactory(created_at=now - timedelta(minutes=20), status="error", cost=0)
    analytics_rollup(since=now - timedelta(hours=4))
    return policy


def test_dashboard_draws_charts_per_provider(admin_client, rolled_up):
    response = admin_client.get(DASHBOARD)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('class="auterity-chart"') == 6
    assert "<polyline" in html
    assert "openai" in html and "google" in html  # one line and legend entry per provider
    assert "Cost vs baseline" in html and "Success rate" in html
    assert response.context["summary"]["request_count"] == 51
    # nothing fetched from elsewhere: every script, style and image is served by Auterity
    assert 'src="http' not in html and 'href="http' not in html


def test_the_dashboard_picks_a_range_that_fits_the_data(admin_client, rolled_up):
    # three hours of traffic: six hours, not a day squeezed into a corner
    assert admin_client.get(DASHBOARD).context["range_key"] == "6h"
    RequestLog.objects.filter(created_at__lt=timezone.now() - timedelta(minutes=30)).delete()
    # a fresh install: its first minutes, from the log at once (no rollup has run for them)
    fresh = admin_client.get(DASHBOARD)
    assert fresh.context["range_key"] == "1h"
    assert fresh.context["summary"]["source"] == "request_log"
    assert fresh.context["summary"]["request_count"] == RequestLog.objects.count() > 0
    # an explicit choice is kept
    assert admin_client.get(DASHBOARD, {"range": "30d"}).context["range_key"] == "30d"


def test_dashboard_per_policy_and_filtered(admin_client, rolled_up):
    response = admin_client.get(DASHBOARD, {"group": "policy", "range": "7d", "provider": "openai"})

    assert response.status_code == 200
    charts = response.context["charts"][1:]  # the first one is cost vs baseline
    legend_names = {name for c in charts for name, _, _ in c["chart"].legend}
    assert legend_names == {"Small models", "(no policy)"}
    assert response.context["summary"]["request_count"] == 26
    assert response.context["bucket_minutes"] == 60


def test_dashboard_ignores_unknown_choices(admin_client, rolled_up):
    response = admin_client.get(DASHBOARD, {"range": "forever", "policy": "nope"})
    assert response.status_code == 200
    assert response.context["range_key"] == "24h"


def test_dashboard_is_for_staff(client, django_user_model, rolled_up):
    assert client.get(DASHBOARD).status_code == 302  # to the login page
    django_user_model.objects.create_user("someone", password="pw-123456")
    assert client.login(request=HttpRequest(), username="someone", password="pw-123456")
    assert client.get(DASHBOARD).status_code == 302


def test_changelist_links_to_the_dashboard(admin_client):
    html = admin_client.get(reverse("admin:analytics_routinganalytics_changelist")).content
    assert DASHBOARD.encode() in html


@pytest.fixture
def report(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ANALYTICS_REPORT_RECIPIENTS = []
    day = timezone.localdate() - timedelta(days=1)
    RequestLogFactory(
        created_at=datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=3),
        error_type="timeout",
        status="error",
    )
    return report_daily_run(day=day)


def test_report_list_detail_and_csv(admin_client, report):
    changelist = admin_client.get(reverse("admin:analytics_analyticsreport_changelist"))
    assert changelist.status_code == 200
    assert f"{report.day:%b}".encode() in changelist.content

    detail = admin_client.get(reverse("admin:analytics_analyticsreport_change", args=[report.pk]))
    assert detail.status_code == 200
    html = detail.content.decode()
    assert "report-rows" in html and "timeout &times;1" in html and "Download CSV" in html

    download = admin_client.get(reverse("admin:analytics_analyticsreport_csv", args=[report.pk]))
    assert download["Content-Type"] == "text/csv"
    assert (
        f'filename="auterity-daily-report-{report.day:%Y-%m-%d}.csv"'
        in download["Content-Disposition"]
    )
    assert download.content.decode().startswith("day,policy,provider,requests,")


def test_report_action_emails_again(admin_client, report, settings):
    settings.ANALYTICS_REPORT_RECIPIENTS = ["ops@example.com"]
    response = admin_client.post(
        reverse("admin:analytics_analyticsreport_changelist"),
        {"action": "email_again", "_selected_action": [report.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert len(mail.outbox) == 1
    assert AnalyticsReport.objects.get().emailed_at is not None


def test_health_checks_are_listed(admin_client):
    provider = ProviderFactory(id="openai")
    ProviderHealthCheck.objects.create(
        provider=provider,
        checked_at=timezone.now(),
        outcome="failed",
        latency=0.01,
        error_type="connection_error",
        status_before="healthy",
        status_after="healthy",
    )
    response = admin_client.get(reverse("admin:providers_providerhealthcheck_changelist"))
    assert response.status_code == 200
    assert b"connection_error" in response.content


# --- the SVG charts --------------------------------------------------------------------------


def test_nice_ceiling():
    assert [nice_ceiling(v) for v in (0, 0.7, 1, 1.2, 3, 7, 42, 0.013)] == [
        1.0,
        1.0,
        1.0,
        2.0,
        5.0,
        10.0,
        50.0,
        0.02,
    ]


def test_chart_breaks_lines_at_gaps_and_escapes_names():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    points = [(start + timedelta(hours=h), v) for h, v in enumerate([1, 2, None, 3, 4, None, 5])]

    chart = line_chart(
        [Series("<script>alert(1)</script>", points)],
        start=start,
        end=start + timedelta(hours=6),
        label=str,
    )

    assert chart.svg.count("<polyline") == 2  # [1, 2] and [3, 4]
    assert chart.svg.count("<circle") == 1  # the lone 5
    assert "<script>" not in chart.svg
    assert "&lt;script&gt;" in chart.svg
    assert chart.legend[0][0] == "<script>alert(1)</script>"  # escaped by the template


def test_chart_without_data_says_so():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    chart = line_chart([], start=start, end=start + timedelta(days=1), label=str)
    assert "No data in this range" in chart.svg


def test_the_request_log_list_reads_in_units_and_filters_what_matters(admin_client):
    for provider_id in ("openai", "google"):
        ProviderFactory(id=provider_id)
    rescued = RequestLogFactory(
        provider_id="google",
        model="gemini-2.5-flash",
        latency=0.0022566589999541975,
        cost=Decimal("0.0000123400"),
        baseline_cost=Decimal("0.0000500000"),
        attempts=2,
        attempts_detail=[
            {"provider": "openai", "model": "gpt-4o-mini", "outcome": "upstream_error"},
            {"provider": "google", "model": "gemini-2.5-flash", "outcome": "ok"},
        ],
    )
    failed = RequestLogFactory(  # an old row: every attempt failed, no provider written
        provider_id="",
        model="",
        status="error",
        http_status=502,
        error_type="upstream_error",
        attempts=1,
        attempts_detail=[{"provider": "openai", "model": "gpt-4o-mini", "outcome": "timeout"}],
    )
    plain = RequestLogFactory()

    page = admin_client.get("/admin/analytics/requestlog/")

    html = page.content.decode()
    assert "2 ms" in html and "0.0022566589999541975" not in html
    assert "$0.0000123" in html and "$0.0000377" in html  # cost, and what routing saved
    assert "gpt-4o-mini → google/gemini-2.5-flash" in html
    assert "↪ fallback" in html
    ids = lambda response: {r.pk for r in response.context["cl"].result_list}  # noqa: E731
    # the provider filter finds the failed request by the provider it failed at
    assert ids(admin_client.get("/admin/analytics/requestlog/", {"provider": "openai"})) == {
        failed.pk,
        plain.pk,
    }
    assert ids(admin_client.get("/admin/analytics/requestlog/", {"fallback": "yes"})) == {
        rescued.pk
    }
