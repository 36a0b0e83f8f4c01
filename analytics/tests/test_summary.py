"""/api/routing/analytics/summary/: totals from the log (short ranges) or the rollups (long)."""

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts.services import api_key_create
from analytics.selectors import SummaryQuery, analytics_summary, histogram_percentiles
from analytics.services import analytics_rollup, period_floor
from routing.models import RoutingPolicy

from .factories import RequestLogFactory

pytestmark = pytest.mark.django_db

SUMMARY = "/api/routing/analytics/summary/"
START = period_floor(datetime.now(UTC) - timedelta(hours=3), 3600)
END = START + timedelta(hours=1)


@pytest.fixture
def policy():
    return RoutingPolicy.objects.create(name="cheap", actions={})


@pytest.fixture
def log(policy):
    """Ten successes at 0.1 .. 1.0 s on openai under a policy, saving a quarter of the
    baseline; one error and one cancelled stream; two successes on anthropic, no policy."""
    for i in range(1, 11):
        RequestLogFactory(
            created_at=START + timedelta(minutes=i),
            policy=policy,
            latency=i / 10,
            cost=Decimal("0.03"),
            baseline_cost=Decimal("0.04"),
        )
    RequestLogFactory(
        created_at=START,
        policy=policy,
        status="error",
        error_type="timeout",
        cost=0,
        baseline_cost=0,
        latency=30,
    )
    RequestLogFactory(created_at=START, policy=policy, status="cancelled", cost=0, baseline_cost=0)
    for _ in range(2):
        RequestLogFactory(
            created_at=START + timedelta(minutes=30),
            provider_id="anthropic",
            latency=2.0,
            cost=Decimal("0.05"),
            baseline_cost=Decimal("0.05"),
        )


def summary(**kwargs):
    return analytics_summary(SummaryQuery(START, END, **kwargs))


def test_log_summary_totals(log):
    result = summary()

    assert result["source"] == "request_log"
    assert result["request_count"] == 14
    assert (result["success_count"], result["error_count"], result["cancelled_count"]) == (
        12,
        1,
        1,
    )
    assert result["success_rate"] == pytest.approx(100 * 12 / 13, abs=0.01)
    assert result["cost_usd"] == Decimal("0.4")
    assert result["baseline_cost_usd"] == Decimal("0.5")
    assert result["savings_usd"] == Decimal("0.1")
    assert result["savings_percent"] == 20.0
    # nearest rank over the twelve successes: 0.1 .. 1.0, 2.0, 2.0
    assert result["latency_p50_s"] == 0.6
    assert result["latency_p95_s"] == 2.0
    assert result["groups"] is None


def test_log_summary_filters_and_groups(log, policy):
    only_openai = summary(provider_id="openai")
    assert only_openai["request_count"] == 12
    assert (only_openai["latency_p50_s"], only_openai["latency_p95_s"]) == (0.5, 1.0)

    under_policy = summary(policy_id=str(policy.id))
    assert under_policy["request_count"] == 12

    grouped = summary(group_by=("policy", "provider"))["groups"]
    assert [(g["policy_name"], g["provider_id"], g["request_count"]) for g in grouped] == [
        ("cheap", "openai", 12),
        ("(no policy)", "anthropic", 2),
    ]
    assert grouped[0]["policy_id"] == str(policy.id)
    assert grouped[0]["savings_percent"] == 25.0
    assert grouped[1]["latency_p95_s"] == 2.0


def test_rollup_summary_agrees_with_the_log(log, policy):
    analytics_rollup(since=START, until=END, now=END)
    from_log = summary(group_by=("policy", "provider"))
    from_rollups = summary(group_by=("policy", "provider"), source="rollups")

    assert from_rollups["source"] == "rollups"
    for key in ("request_count", "success_count", "cost_usd", "baseline_cost_usd", "savings_usd"):
        assert from_rollups[key] == from_log[key], key
    assert from_rollups["success_rate"] == from_log["success_rate"]
    assert from_rollups["avg_latency_s"] == pytest.approx(from_log["avg_latency_s"], abs=0.001)
    openai = next(g for g in from_rollups["groups"] if g["provider_id"] == "openai")
    assert openai["policy_name"] == "cheap"
    assert openai["request_count"] == 12
    # percentiles from the histogram: inside the bucket holding the exact value
    assert openai["latency_p50_s"] == pytest.approx(0.5)
    assert 0.75 < openai["latency_p95_s"] <= 1.0


def test_long_ranges_read_the_rollups(settings, log):
    settings.ANALYTICS_SUMMARY_LOG_MAX_HOURS = 48
    analytics_rollup(since=START, until=END, now=END)

    week = analytics_summary(SummaryQuery(END - timedelta(days=7), END))

    assert week["source"] == "rollups"
    assert week["request_count"] == 14


def test_ranges_past_retention_read_the_rollups(settings):
    settings.REQUEST_LOG_RETENTION_DAYS = 1
    assert summary(source="auto")["source"] == "request_log"
    old = analytics_summary(SummaryQuery(START - timedelta(days=2), END - timedelta(days=2)))
    assert old["source"] == "rollups"


def test_empty_range():
    result = summary()
    assert result["request_count"] == 0
    assert result["success_rate"] is None
    assert result["savings_percent"] is None
    assert result["latency_p50_s"] is None


def test_histogram_percentiles_interpolate_and_cap_the_overflow():
    assert histogram_percentiles([]) == {"p50": None, "p95": None}
    assert histogram_percentiles([(1.0, 10)]) == {"p50": 0.5, "p95": 0.95}
    assert histogram_percentiles([(120.0, 1), (math.inf, 99)])["p95"] == 120.0


# --- HTTP ------------------------------------------------------------------------------------


def test_summary_endpoint(admin_client_api, log, policy):
    response = admin_client_api.get(
        SUMMARY,
        {"start": START.isoformat(), "end": END.isoformat(), "group_by": "provider"},
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["source"] == "request_log"
    assert body["request_count"] == 14
    assert Decimal(body["cost_usd"]) == Decimal("0.4")
    assert body["savings_percent"] == 20.0
    assert {g["provider_id"]: g["request_count"] for g in body["groups"]} == {
        "openai": 12,
        "anthropic": 2,
    }


def test_summary_defaults_to_the_last_day(admin_client_api):
    body = admin_client_api.get(SUMMARY).json()
    start, end = (datetime.fromisoformat(body[k]) for k in ("start", "end"))
    assert end - start == timedelta(hours=24)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"group_by": "model"}, "group_by"),
        ({"start": "yesterday"}, "start"),
        ({"start": END.isoformat(), "end": START.isoformat()}, "start"),
        ({"policy": "not-a-uuid"}, "policy"),
        ({"source": "cache"}, "source"),
    ],
)
def test_summary_rejects_bad_parameters(admin_client_api, params, field):
    response = admin_client_api.get(SUMMARY, params)
    assert response.status_code == 400
    assert field in response.json()


def test_summary_needs_routing_view(django_user_model):
    anonymous = APIClient().get(SUMMARY)
    assert anonymous.status_code == 401

    user = django_user_model.objects.create_user("caller", password="pw-123456")
    _, executor = api_key_create(user=user, name="exec", scopes=["ai:execute"])
    _, viewer = api_key_create(user=user, name="view", scopes=["routing:view"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {executor}")
    assert client.get(SUMMARY).status_code == 403
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {viewer}")
    assert client.get(SUMMARY).status_code == 200


def test_timeline_buckets_follow_the_local_calendar(settings):
    from django.utils import timezone

    from analytics.selectors import _timeline

    settings.TIME_ZONE = "Europe/Paris"
    timezone.activate("Europe/Paris")
    try:
        start = datetime(2026, 10, 20, 12, tzinfo=UTC)
        days = _timeline(start, start + timedelta(days=10), 1440)
        assert [timezone.localtime(d).hour for d in days] == [0] * 11
        assert days[-1] - days[-2] == timedelta(days=1)
        night = datetime(2026, 10, 24, 22, tzinfo=UTC)
        hours = _timeline(night, night + timedelta(hours=6), 60)
        assert len(hours) == 6  # the hour the clocks go back is not lost or doubled
        periods = _timeline(START, START + timedelta(hours=1), 5)
        assert len(periods) == 12 and periods[0] == START
    finally:
        timezone.deactivate()


def test_failed_requests_count_against_the_last_provider_tried(log):
    RequestLogFactory(
        created_at=START + timedelta(minutes=5),
        provider_id="",
        status="error",
        error_type="rate_limited",
        attempts=1,
        attempts_detail=[{"provider": "anthropic", "outcome": "rate_limited"}],
    )
    anthropic = summary(provider_id="anthropic")
    assert (anthropic["request_count"], anthropic["error_count"]) == (3, 1)
    groups = {g["provider_id"]: g for g in summary(group_by=("provider",))["groups"]}
    assert groups["anthropic"]["success_rate"] == pytest.approx(66.67, abs=0.01)

    analytics_rollup(since=START, until=END, now=END)
    from_rollups = summary(provider_id="anthropic", source="rollups")
    assert (from_rollups["request_count"], from_rollups["error_count"]) == (3, 1)


def _attempt(provider, outcome):
    return {"provider": provider, "model": "gpt-4o-mini", "outcome": outcome, "latency_ms": 5.0}


@pytest.fixture
def rescued(policy):
    """openai fails every attempt: three requests rescued by google, one failed for good."""
    for i in range(3):
        RequestLogFactory(
            created_at=START + timedelta(minutes=i),
            policy=policy,
            provider_id="google",
            attempts=2,
            attempts_detail=[_attempt("openai", "upstream_error"), _attempt("google", "ok")],
        )
    RequestLogFactory(
        created_at=START,
        policy=policy,
        provider_id="",
        status="error",
        attempts=2,
        attempts_detail=[_attempt("openai", "upstream_error"), _attempt("openai", "timeout")],
    )


@pytest.mark.parametrize("source", ["request_log", "rollups"])
def test_a_failing_provider_shows_its_failed_attempts_in_either_source(rescued, source):
    analytics_rollup(since=START, until=END)

    summary = analytics_summary(SummaryQuery(START, END, group_by=("provider",), source=source))

    groups = {g["provider_id"]: g for g in summary["groups"]}
    openai, google = groups["openai"], groups["google"]
    assert (openai["request_count"], openai["success_rate"]) == (1, 0.0)
    assert (openai["attempt_count"], openai["attempt_error_count"]) == (5, 5)
    assert openai["attempt_errors"] == {"upstream_error": 4, "timeout": 1}
    assert (google["attempt_count"], google["attempt_error_count"], google["fallback_count"]) == (
        3,
        0,
        3,
    )
    assert summary["attempt_count"] == 8 and summary["attempt_error_count"] == 5
    assert summary["fallback_count"] == 3

    # filtered to openai: its failed attempts, though it served nothing
    only = analytics_summary(SummaryQuery(START, END, provider_id="openai", source=source))
    assert only["attempt_error_count"] == 5 and only["success_count"] == 0
