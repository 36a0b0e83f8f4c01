"""The admin pages of routing economics render what the services compute: model quality, the
impact preview, the canaries."""

import pytest
from django.urls import reverse

from analytics.tests.factories import RequestLogFactory
from routing.canary import policy_canary_start
from routing.models import ModelQuality, RoutingPolicy
from routing.quality import model_quality_sync

pytestmark = pytest.mark.django_db


def test_model_quality_lists_tiers_and_an_edit_marks_the_row_overridden(admin_client):
    model_quality_sync()
    page = admin_client.get(reverse("admin:routing_modelquality_changelist"))
    assert page.status_code == 200
    assert b"gemini-2.5-pro" in page.content and b"frontier" in page.content
    row = ModelQuality.objects.get(model="gpt-4o")
    response = admin_client.post(
        reverse("admin:routing_modelquality_change", args=[row.pk]),
        {"model": "gpt-4o", "score": "1290", "tier": "standard", "tier_basis": "our evals"},
    )
    assert response.status_code == 302, response.content
    row.refresh_from_db()
    assert (row.tier, row.overridden) == ("standard", True)


def test_the_impact_preview_page_shows_the_figures(admin_client, demo_catalogue):
    RequestLogFactory(
        requested_model="gpt-4o",
        model="gpt-4o",
        flags={"routing_policies": True, "cost_optimization": True},
        route_attributes={"input_tokens": 900, "max_tokens": 100, "capabilities": []},
    )
    policy = RoutingPolicy.objects.create(
        name="Draft to 4.1",
        conditions={"model": "gpt-4o"},
        actions={"targets": [{"provider": "openai", "model": "gpt-4.1"}]},
    )
    page = admin_client.get(
        reverse("admin:analytics_policyimpact_preview", args=[policy.pk]), {"days": 1, "sample": 5}
    )
    assert page.status_code == 200
    result = page.context["result"]
    assert result["requests_matched"] == 1 and result["decisions_changed"] == 1
    assert b"openai/gpt-4.1" in page.content and b"1 requests matched" in page.content


def test_the_canary_list_shows_state_and_last_comparison(admin_client):
    policy = RoutingPolicy.objects.create(name="Canary", conditions={}, actions={})
    policy_canary_start(policy=policy, percent=20)
    page = admin_client.get(reverse("admin:routing_policycanary_changelist"))
    assert page.status_code == 200
    assert b"Canary" in page.content and b"Running" in page.content
