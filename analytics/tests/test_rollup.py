"""The rollup job: request log -> routing_analytics, in SQL, idempotent, late rows counted."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from analytics.models import RequestLog, RoutingAnalytics
from analytics.services import analytics_rollup, period_floor
from analytics.tasks import aggregate_analytics_task
from routing.models import RoutingPolicy

from .factories import RequestLogFactory

pytestmark = pytest.mark.django_db

# An hour ago, so the task and the command (which read the clock) see the same world.
HOUR = period_floor(datetime.now(UTC) - timedelta(hours=1), 3600)
NOW = HOUR + timedelta(minutes=7, seconds=30)
P0 = HOUR - timedelta(minutes=5)  # a complete 5-minute period ...
P1 = P0 + timedelta(minutes=5)  # ... the one after it ...
P2 = P1 + timedelta(minutes=5)  # ... and the current one, still filling (NOW is in it)


def snapshot():
    """Every rollup row, every column with its id: what "nothing changed" is checked against."""
    columns = [f.attname for f in RoutingAnalytics._meta.concrete_fields]
    return sorted(tuple(str(v) for v in r) for r in RoutingAnalytics.objects.values_list(*columns))


@pytest.fixture
def policy():
    return RoutingPolicy.objects.create(name="small models", actions={})


@pytest.fixture
def traffic(policy):
    """Two periods of traffic over two providers, one policy, and every outcome."""
    at = P0 + timedelta(seconds=10)
    RequestLogFactory(created_at=at, policy=policy, latency=0.2, cost=Decimal("0.01"))
    RequestLogFactory(created_at=at, policy=policy, latency=0.6, cost=Decimal("0.03"))
    RequestLogFactory(created_at=at, policy=policy, status="error", cost=0, latency=2.5)
    RequestLogFactory(created_at=at, policy=policy, status="cancelled", latency=9.0)
    RequestLogFactory(
        created_at=at + timedelta(minutes=1), provider_id="google", baseline_cost=Decimal("0.05")
    )
    RequestLogFactory(created_at=P1 + timedelta(seconds=1), provider_id="google", latency=1.2)
    RequestLogFactory(
        created_at=P1, provider_id="", status="refused", http_status=429, cost=0, latency=0.001
    )


def rollup(**kwargs):
    return analytics_rollup(now=NOW, **kwargs)


def test_period_floor_aligns_to_the_period():
    assert period_floor(NOW, 300) == P2
    assert period_floor(P1, 300) == P1
    assert period_floor(NOW, 3600) == HOUR


def test_rollup_aggregates_per_period_policy_and_provider(traffic, policy):
    result = rollup()

    assert result.start <= P0 and result.end == P2 + timedelta(minutes=5)
    assert result.groups == result.written == 4
    row = RoutingAnalytics.objects.get(period_start=P0, provider_id="openai")
    assert row.policy == policy
    assert row.period_end == P1
    assert (row.request_count, row.success_count, row.error_count, row.cancelled_count) == (
        4,
        2,
        1,
        1,
    )
    assert row.total_cost == Decimal("0.04") + Decimal("0.000027")  # the cancelled stream
    assert row.baseline_cost == Decimal("0.00003") * 4
    assert row.savings == row.baseline_cost - row.total_cost
    # latency and success rate speak of finished requests: the cancelled stream is left out
    assert row.avg_response_time == Decimal("0.400")
    assert row.success_rate == Decimal("66.67")
    assert row.prompt_tokens == 400 and row.completion_tokens == 80
    google = RoutingAnalytics.objects.get(period_start=P0, provider_id="google")
    assert google.policy is None
    assert google.baseline_cost == Decimal("0.05")
    refused = RoutingAnalytics.objects.get(period_start=P1, provider_id="")
    assert (refused.request_count, refused.refused_count, refused.success_rate) == (
        1,
        1,
        Decimal("0.00"),
    )
    # successes only (0.2 s and 0.6 s), counted at every bound they are within
    assert row.latency_le["le_0.1"] == 0
    assert row.latency_le["le_0.2"] == row.latency_le["le_0.5"] == 1
    assert row.latency_le["le_0.75"] == row.latency_le["le_120"] == row.latency_le["le_inf"] == 2


def test_running_twice_changes_nothing(traffic):
    rollup()
    before = snapshot()

    again = rollup()

    assert again.written == again.deleted == 0
    assert snapshot() == before


def test_late_rows_update_recent_periods(traffic):
    rollup()
    first = RoutingAnalytics.objects.get(period_start=P0, provider_id="openai")

    # given: a row written after its period was rolled up (a slow commit, a clock behind)
    RequestLogFactory(created_at=P0 + timedelta(minutes=4), policy=first.policy, latency=0.9)
    result = rollup()

    assert result.written == 1
    row = RoutingAnalytics.objects.get(period_start=P0, provider_id="openai")
    assert row.id == first.id
    assert (row.request_count, row.success_count) == (5, 3)
    assert row.avg_response_time == Decimal("0.567")
    assert (row.latency_le["le_0.75"], row.latency_le["le_1"]) == (2, 3)


def test_rows_the_log_no_longer_has_are_removed(traffic):
    rollup()
    RequestLog.objects.filter(provider_id="google", created_at__gte=P1).delete()

    result = rollup()

    assert result.deleted == 1
    assert not RoutingAnalytics.objects.filter(period_start=P1, provider_id="google").exists()


def test_deleted_policy_keeps_its_history_apart(traffic, policy):
    rollup()
    key = RoutingAnalytics.objects.get(period_start=P0, provider_id="openai").policy_key
    assert key == policy.id

    policy.delete()  # the log and the rollups keep their rows, policy set to NULL

    row = RoutingAnalytics.objects.get(period_start=P0, provider_id="openai", policy_key=key)
    assert row.policy is None
    assert row.request_count == 4


def test_old_periods_are_left_alone_unless_asked(traffic):
    # given: a request from yesterday, beyond the default lookback
    RequestLogFactory(created_at=NOW - timedelta(days=1))

    rollup()
    assert not RoutingAnalytics.objects.filter(period_start__lt=P0 - timedelta(hours=2)).exists()

    rollup(since=NOW - timedelta(days=2))
    assert RoutingAnalytics.objects.filter(period_start=P2 - timedelta(days=1)).exists()


def test_periods_beyond_retention_are_never_recomputed(settings, traffic):
    # given: a rollup whose raw rows retention has already deleted
    settings.REQUEST_LOG_RETENTION_DAYS = 30
    old = NOW - timedelta(days=40)
    kept = RoutingAnalytics.objects.create(
        period_start=period_floor(old, 300),
        period_end=period_floor(old, 300) + timedelta(minutes=5),
        provider_id="openai",
        request_count=7,
    )

    result = rollup(since=NOW - timedelta(days=60))

    assert result.clamped
    assert result.start > NOW - timedelta(days=30)
    assert RoutingAnalytics.objects.filter(pk=kept.pk, request_count=7).exists()


def test_a_new_period_length_replaces_the_window(settings, traffic):
    rollup()
    settings.ANALYTICS_ROLLUP_PERIOD_MINUTES = 15

    rollup()

    rows = RoutingAnalytics.objects.filter(period_start__gte=NOW - timedelta(minutes=30))
    assert {(r.period_end - r.period_start) for r in rows} == {timedelta(minutes=15)}
    assert sum(r.request_count for r in rows) == RequestLog.objects.count()


def test_task_and_command_run_the_same_rollup(traffic, capsys):
    since, until = (NOW - timedelta(hours=1)).isoformat(), NOW.isoformat()
    aggregate_analytics_task.apply(kwargs={"since": since, "until": until})
    assert RoutingAnalytics.objects.count() == 4

    call_command("aggregate_analytics", "--since", since, "--until", until)
    assert "0 rows written" in capsys.readouterr().out


def test_a_failed_request_counts_against_the_last_provider_tried():
    # given: the gateway logs no provider when every attempt failed; its attempts say who did
    at = P0 + timedelta(seconds=5)
    RequestLogFactory(
        created_at=at,
        provider_id="",
        status="error",
        error_type="upstream_error",
        cost=0,
        attempts=2,
        attempts_detail=[
            {"provider": "openai", "model": "gpt-4.1", "outcome": "upstream_error"},
            {"provider": "google", "model": "gemini-2.5-pro", "outcome": "upstream_error"},
        ],
    )
    RequestLogFactory(created_at=at, provider_id="", status="error", attempts=0, cost=0)

    rollup()

    google = RoutingAnalytics.objects.get(period_start=P0, provider_id="google")
    assert (google.request_count, google.error_count, google.success_rate) == (1, 1, 0)
    nobody = RoutingAnalytics.objects.get(period_start=P0, provider_id="")
    assert nobody.error_count == 1


def attempt(provider, outcome, model="gpt-4o-mini", status=None):
    detail = {"provider": provider, "model": model, "outcome": outcome, "latency_ms": 12.0}
    if status:
        detail["status"] = status
    return detail


@pytest.fixture
def failing_openai(policy):
    """openai answers 503 to everything: requests are rescued by google, or fail for good."""
    at = P0 + timedelta(seconds=20)
    rescued = [attempt("openai", "upstream_error", status=503), attempt("google", "ok")]
    for _ in range(3):
        RequestLogFactory(
            created_at=at, policy=policy, provider_id="google", attempts=2, attempts_detail=rescued
        )
    # every attempt failed: the gateway writes the last provider tried ...
    RequestLogFactory(
        created_at=at,
        policy=policy,
        provider_id="openai",
        status="error",
        http_status=502,
        attempts=2,
        attempts_detail=[attempt("openai", "upstream_error", status=503)] * 2,
    )
    # ... and older rows have none: the attempts say who failed
    RequestLogFactory(
        created_at=at,
        policy=policy,
        provider_id="",
        status="error",
        http_status=502,
        attempts=1,
        attempts_detail=[attempt("openai", "timeout")],
    )
    # a retry of the same target is not a fallback
    RequestLogFactory(
        created_at=at,
        provider_id="google",
        attempts=2,
        attempts_detail=[attempt("google", "rate_limited", status=429), attempt("google", "ok")],
    )


def test_attempts_count_against_the_provider_they_went_to(failing_openai, policy):
    rollup()

    rows = {
        (r.policy_id, r.provider_id): r for r in RoutingAnalytics.objects.filter(period_start=P0)
    }
    openai = rows[(policy.pk, "openai")]
    # no request was served by openai, both failed ones count against it, and every attempt
    assert (openai.request_count, openai.error_count, openai.success_count) == (2, 2, 0)
    assert openai.attempt_count == 3 + 2 + 1
    assert openai.attempt_error_count == 6
    assert openai.attempt_errors == {"upstream_error": 5, "timeout": 1}
    google = rows[(policy.pk, "google")]
    assert (google.request_count, google.success_rate) == (3, Decimal("100.00"))
    assert (google.attempt_count, google.attempt_error_count, google.attempt_errors) == (3, 0, {})
    assert google.fallback_count == 3
    unrouted = rows[(None, "google")]
    assert (unrouted.attempt_count, unrouted.attempt_error_count) == (2, 1)
    assert unrouted.attempt_errors == {"rate_limited": 1}
    assert unrouted.fallback_count == 0

    # idempotent with the attempt figures too
    before = snapshot()
    assert rollup().written == 0
    assert snapshot() == before


def test_a_provider_only_tried_gets_a_row_of_its_own(policy):
    at = P0 + timedelta(seconds=30)
    RequestLogFactory(
        created_at=at,
        policy=policy,
        provider_id="google",
        attempts=2,
        attempts_detail=[attempt("anthropic", "connection_error"), attempt("google", "ok")],
    )
    rollup()
    tried = RoutingAnalytics.objects.get(period_start=P0, provider_id="anthropic")
    assert (tried.request_count, tried.attempt_count, tried.attempt_error_count) == (0, 1, 1)
    assert tried.attempt_errors == {"connection_error": 1}
    assert tried.latency_le["le_inf"] == 0
    assert rollup().written == 0
