"""The daily report: built from the log, stored, emailed once as HTML + CSV (locmem backend)."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail

from analytics.models import AnalyticsReport
from analytics.reports import day_bounds, report_csv, report_daily_run, report_send
from analytics.tasks import send_analytics_report_task
from routing.models import RoutingPolicy

from .factories import RequestLogFactory

pytestmark = pytest.mark.django_db

DAY = date.today() - timedelta(days=1)


@pytest.fixture(autouse=True)
def mail_settings(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ANALYTICS_REPORT_RECIPIENTS = ["ops@example.com", "lead@example.com"]
    settings.TIME_ZONE = "UTC"
    settings.DEFAULT_FROM_EMAIL = "auterity@example.com"


@pytest.fixture
def policy():
    return RoutingPolicy.objects.create(name="GPT-4o class", actions={})


def at(day, hour):
    start, _ = day_bounds(day)
    return start + timedelta(hours=hour)


@pytest.fixture
def two_days(policy):
    """Yesterday: 4 requests under the policy on openai (one a timeout), 1 on google without
    a policy. The day before: 2 requests on openai under the policy."""
    for latency in (0.2, 0.4, 0.6):
        RequestLogFactory(
            created_at=at(DAY, 9),
            policy=policy,
            latency=latency,
            cost=Decimal("0.030"),
            baseline_cost=Decimal("0.040"),
        )
    RequestLogFactory(
        created_at=at(DAY, 10),
        policy=policy,
        status="error",
        http_status=504,
        error_type="timeout",
        cost=0,
        baseline_cost=0,
    )
    RequestLogFactory(
        created_at=at(DAY, 23) + timedelta(minutes=59),
        provider_id="google",
        cost=Decimal("0.010"),
        baseline_cost=Decimal("0.010"),
    )
    for _ in range(2):
        RequestLogFactory(
            created_at=at(DAY - timedelta(days=1), 12),
            policy=policy,
            latency=0.5,
            cost=Decimal("0.045"),
            baseline_cost=Decimal("0.050"),
        )
    # the day after is not part of the report
    RequestLogFactory(created_at=at(DAY + timedelta(days=1), 0), cost=Decimal("9"))


def test_report_is_stored_with_rows_errors_and_the_day_before(two_days, policy):
    report = report_daily_run(day=DAY)

    assert report.day == DAY
    assert report.request_count == 5
    assert report.total_cost == Decimal("0.1")
    assert report.baseline_cost == Decimal("0.13")
    totals = report.data["totals"]
    assert totals["savings_percent"] == pytest.approx(23.08, abs=0.01)
    assert totals["top_errors"] == [{"error_type": "timeout", "count": 1}]
    assert totals["previous"]["request_count"] == 2
    assert totals["change"]["request_count"] == 150.0
    rows = {(r["policy_name"], r["provider_id"]): r for r in report.data["rows"]}
    assert set(rows) == {("GPT-4o class", "openai"), ("(no policy)", "google")}
    openai = rows["GPT-4o class", "openai"]
    assert openai["request_count"] == 4
    assert openai["success_rate"] == 75.0
    assert openai["latency_p50_s"] == 0.4
    assert openai["latency_p95_s"] == 0.6
    assert openai["top_errors"] == [{"error_type": "timeout", "count": 1}]
    assert openai["previous"]["request_count"] == 2
    assert openai["change"]["cost_usd"] == pytest.approx((0.09 - 0.09) / 0.09 * 100)
    assert openai["change"]["success_rate"] == -25.0
    assert rows["(no policy)", "google"]["previous"] is None


def test_report_email_has_html_text_and_csv(two_days):
    report = report_daily_run(day=DAY)

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@example.com", "lead@example.com"]
    assert message.from_email == "auterity@example.com"
    assert message.subject == (
        f"Auterity daily report {DAY:%Y-%m-%d}: 5 requests, $0.10, 23.1% saved"
    )
    assert "GPT-4o class / openai: 4 requests (+100.0%)" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert "<table" in html and "GPT-4o class" in html and "timeout &times;1" in html
    assert "$0.09" in html and "$0.01" in html
    name, content, mimetype = message.attachments[0]
    assert (name, mimetype) == (f"auterity-daily-report-{DAY:%Y-%m-%d}.csv", "text/csv")
    lines = list(csv.DictReader(io.StringIO(content)))
    assert [(r["policy"], r["provider"], r["requests"]) for r in lines] == [
        ("GPT-4o class", "openai", "4"),
        ("(no policy)", "google", "1"),
        ("TOTAL", "", "5"),
    ]
    assert lines[0]["top_errors"] == "timeout x1"
    assert Decimal(lines[0]["cost_usd"]) == Decimal("0.09")
    assert lines[0]["prev_requests"] == "2"
    report.refresh_from_db()
    assert report.emailed_at is not None
    assert report.recipients == ["ops@example.com", "lead@example.com"]


def test_running_again_rebuilds_without_emailing_twice(two_days):
    first = report_daily_run(day=DAY)
    RequestLogFactory(created_at=at(DAY, 15))  # a late row

    again = send_analytics_report_task.apply(kwargs={"day": DAY.isoformat()}).get()

    report = AnalyticsReport.objects.get()
    assert report.pk == first.pk
    assert report.request_count == 6
    assert again["request_count"] == 6
    assert len(mail.outbox) == 1

    report_daily_run(day=DAY, resend=True)
    assert len(mail.outbox) == 2


def test_without_recipients_the_report_is_only_stored(settings, two_days):
    settings.ANALYTICS_REPORT_RECIPIENTS = []

    report = report_daily_run(day=DAY)

    assert AnalyticsReport.objects.filter(pk=report.pk).exists()
    assert report.emailed_at is None
    assert mail.outbox == []


def test_a_mail_server_failure_is_recorded_and_raised(settings, two_days):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    report = report_daily_run(day=DAY, email=False)

    with pytest.raises(ConnectionError):
        report_send(report)

    report.refresh_from_db()
    assert report.emailed_at is None
    assert report.email_error.startswith("ConnectionRefusedError")


def test_an_empty_day_still_reports(settings):
    report = report_daily_run(day=DAY)
    assert report.request_count == 0
    assert "No requests on" in mail.outbox[0].body
    assert report_csv(report).splitlines()[-1].startswith(f"{DAY.isoformat()},TOTAL,,0,")


def test_days_follow_the_time_zone(settings):
    settings.TIME_ZONE = "Europe/Paris"
    start, end = day_bounds(date(2026, 10, 25))  # clocks go back: a 25-hour day
    assert end - start == timedelta(hours=25)
    assert start == datetime(2026, 10, 24, 22, tzinfo=UTC)


def test_a_day_past_retention_is_reported_from_the_rollups(settings, two_days):
    from analytics.services import analytics_rollup, old_rows_purge

    settings.REQUEST_LOG_RETENTION_DAYS = 5
    analytics_rollup(since=at(DAY - timedelta(days=1), 0))
    settings.REQUEST_LOG_RETENTION_DAYS = 1
    old_rows_purge()

    report = report_daily_run(day=DAY)

    assert report.data["source"] == "rollups"
    assert report.request_count == 5
    assert report.data["totals"]["top_errors"] == []  # error types live only in the log
    assert report.data["totals"]["latency_p95_s"] is not None


def test_report_command(two_days, capsys):
    from django.core.management import call_command

    call_command("send_analytics_report", "--day", DAY.isoformat())
    out = capsys.readouterr().out
    assert f"Daily report {DAY:%Y-%m-%d}: 5 requests, cost $0.1000" in out
    assert "emailed" in out and "ops@example.com" in out
    assert len(mail.outbox) == 1

    call_command("send_analytics_report", "--day", DAY.isoformat(), "--no-email", "--resend")
    assert len(mail.outbox) == 1
