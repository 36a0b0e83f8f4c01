"""The provider page: health read-only (status with its reason, probes, breakers, traffic now)
and the explicit, audited drain control that takes a provider out of routing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from analytics.tests.factories import RequestLogFactory
from providers.models import Provider, ProviderHealthCheck
from routing.catalog import catalogue_get

pytestmark = pytest.mark.django_db


def test_the_provider_page_shows_health_and_traffic_read_only(admin_client, demo_catalogue):
    # given: openai went down after three failed probes, and fails its attempts now
    now = timezone.now()
    for minutes, after in ((3, "healthy"), (2, "healthy"), (1, "down")):
        ProviderHealthCheck.objects.create(
            provider_id="openai",
            checked_at=now - timedelta(minutes=minutes),
            outcome="failed",
            latency=0.01,
            error_type="upstream_error",
            error_message="HTTP 503",
            status_before="healthy",
            status_after=after,
        )
    Provider.objects.filter(pk="openai").update(status="down")
    RequestLogFactory(
        provider_id="google",
        attempts=2,
        attempts_detail=[
            {"provider": "openai", "model": "gpt-4o-mini", "outcome": "upstream_error"},
            {"provider": "google", "model": "gpt-4o-mini", "outcome": "ok"},
        ],
    )

    page = admin_client.get("/admin/providers/provider/openai/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "healthy &rarr; down after a probe that was <b>failed</b>" in html
    assert "upstream_error: HTTP 503" in html
    assert 'id="provider-failed-attempts">1 (100.0 %)' in html
    assert "Circuit breaker" in html
    # the status is the probes': no field to edit it
    assert 'name="status"' not in html


def test_drain_takes_the_provider_out_of_routing_and_is_audited(
    admin_client, demo_catalogue, django_capture_on_commit_callbacks
):
    page = admin_client.get("/admin/providers/provider/openai/drain/")
    assert b"Drain openai" in page.content

    with django_capture_on_commit_callbacks(execute=True):  # every process's catalogue
        done = admin_client.post(
            "/admin/providers/provider/openai/drain/", {"reason": "incident 42: 503s"}
        )

    assert done.status_code == 302
    openai = Provider.objects.get(pk="openai")
    assert openai.drained_at is not None and openai.drain_reason == "incident 42: 503s"
    event = AuditEvent.objects.filter(object_type="providers.Provider", object_id="openai").latest(
        "id"
    )
    assert event.via == "admin" and "drained_at" in event.changes
    assert catalogue_get().snapshot.providers["openai"].status == "drained"

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post("/admin/providers/provider/openai/drain/")
    assert Provider.objects.get(pk="openai").drained_at is None
    assert catalogue_get().snapshot.providers["openai"].status != "drained"
