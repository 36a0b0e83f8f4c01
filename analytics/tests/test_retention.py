"""Retention: old raw rows go, in batches; rollups and reports stay."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from analytics.models import AnalyticsReport, RequestLog, RoutingAnalytics
from analytics.services import analytics_rollup, old_rows_purge
from analytics.tasks import purge_old_rows_task
from providers.models import ProviderHealthCheck
from providers.tests.factories import ProviderFactory

from .factories import RequestLogFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def aged(settings):
    settings.REQUEST_LOG_RETENTION_DAYS = 30
    settings.PROVIDER_PROBE_RETENTION_DAYS = 7
    now = timezone.now()
    for days in (31, 40, 45, 60, 90, 200, 365):  # older than 30 days
        RequestLogFactory(created_at=now - timedelta(days=days))
    for days in (0, 1, 29):
        RequestLogFactory(created_at=now - timedelta(days=days))
    provider = ProviderFactory(id="openai")
    for days in (1, 8, 30):
        ProviderHealthCheck.objects.create(
            provider=provider,
            checked_at=now - timedelta(days=days),
            outcome="ok",
            latency=0.1,
            status_before="healthy",
            status_after="healthy",
        )
    # rolled up while the rows existed (the log's whole history, as a backfill would)
    settings.REQUEST_LOG_RETENTION_DAYS = 400
    analytics_rollup(since=now - timedelta(days=366))
    settings.REQUEST_LOG_RETENTION_DAYS = 30
    AnalyticsReport.objects.create(
        day=(now - timedelta(days=100)).date(), period_start=now, period_end=now
    )
    return now


def test_old_rows_are_deleted_in_batches(aged):
    result = old_rows_purge(batch_size=3)

    assert result.request_log_deleted == 7
    assert RequestLog.objects.count() == 3
    assert not RequestLog.objects.filter(created_at__lt=aged - timedelta(days=30)).exists()
    assert result.health_checks_deleted == 2
    assert ProviderHealthCheck.objects.count() == 1


def test_rollups_and_reports_outlive_the_rows(aged):
    rollups_before = RoutingAnalytics.objects.count()

    old_rows_purge()
    analytics_rollup(since=aged - timedelta(days=366))  # even a backfill keeps them

    assert RoutingAnalytics.objects.count() == rollups_before == 10
    assert AnalyticsReport.objects.count() == 1


def test_purging_twice_deletes_nothing_more(aged):
    old_rows_purge()
    assert purge_old_rows_task.apply().get()["request_log_deleted"] == 0


def test_purge_command(aged, capsys):
    call_command("purge_old_rows")
    assert "7 request-log rows" in capsys.readouterr().out


def test_the_audit_trail_is_kept_unless_a_retention_is_set(settings, django_user_model):
    from accounts.models import AuditEvent

    now = timezone.now()
    for days in (1, 100, 400):
        AuditEvent.objects.create(
            created_at=now - timedelta(days=days),
            actor_label="root",
            via="admin",
            action="update",
            object_type="routing.routingpolicy",
            object_id="1",
            object_repr="cheap first",
        )
    settings.AUDIT_RETENTION_DAYS = 0
    result = old_rows_purge(now=now)
    assert (result.audit_events_deleted, result.audit_cutoff) == (0, None)
    assert AuditEvent.objects.count() == 3

    settings.AUDIT_RETENTION_DAYS = 90
    result = old_rows_purge(now=now, batch_size=1)
    assert result.audit_events_deleted == 2
    assert result.as_dict()["audit_cutoff"] == (now - timedelta(days=90)).isoformat()
    assert list(AuditEvent.objects.values_list("object_repr", flat=True)) == ["cheap first"]
    assert AuditEvent.objects.get().created_at == now - timedelta(days=1)
