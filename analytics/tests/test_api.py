from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.models import RoutingAnalytics
from routing.models import RoutingPolicy

pytestmark = pytest.mark.django_db

ANALYTICS = "/api/routing/analytics/"


@pytest.fixture
def rollups():
    policy = RoutingPolicy.objects.create(name="p", actions={})
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    rows = []
    for i, provider in enumerate(["openai", "anthropic", "openai"]):
        period_start = start + timedelta(minutes=5 * i)
        rows.append(
            RoutingAnalytics.objects.create(
                policy=policy if provider == "openai" else None,
                provider_id=provider,
                request_count=10,
                total_cost="0.5",
                success_rate="99.5",
                avg_response_time="0.8",
                period_start=period_start,
                period_end=period_start + timedelta(minutes=5),
            )
        )
    return policy, rows


def test_analytics_filters(admin_client_api, rollups):
    policy, rows = rollups
    by_provider = admin_client_api.get(ANALYTICS, {"provider": "anthropic"}).json()
    assert by_provider["count"] == 1
    by_policy = admin_client_api.get(ANALYTICS, {"policy": str(policy.id)}).json()
    assert by_policy["count"] == 2
    assert by_policy["results"][0]["policy_name"] == "p"
    window = admin_client_api.get(
        ANALYTICS,
        {"start": rows[1].period_start.isoformat(), "end": rows[2].period_start.isoformat()},
    ).json()
    assert [r["id"] for r in window["results"]] == [str(rows[1].id)]


def test_analytics_is_read_only(admin_client_api, rollups):
    _, rows = rollups
    response = admin_client_api.post(ANALYTICS, {"provider_id": "x"}, format="json")
    assert response.status_code == 405
    assert admin_client_api.delete(f"{ANALYTICS}{rows[0].id}/").status_code == 405


def test_bad_time_filter_is_a_400(admin_client_api, rollups):
    response = admin_client_api.get(ANALYTICS, {"start": "yesterday"})
    assert response.status_code == 400
    assert "start" in response.json()


def test_rollup_rows_carry_their_outcome_counts_and_latency_histogram(admin_client_api):
    from analytics.services import analytics_rollup

    from .factories import RequestLogFactory

    RequestLogFactory(latency=0.3)
    RequestLogFactory(status="cancelled")
    analytics_rollup()

    row = admin_client_api.get(ANALYTICS).json()["results"][0]
    assert (row["request_count"], row["success_count"], row["cancelled_count"]) == (2, 1, 1)
    assert row["latency_le"]["le_0.2"] == 0
    assert row["latency_le"]["le_0.3"] == row["latency_le"]["le_inf"] == 1
