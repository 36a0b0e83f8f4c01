"""Quality tiers and the cost guard kept honest, end to end: the OpenAI SDK -> live gateway ->
simulator, then the request log, the rollups and the summary (docs/policies.md#quality-tiers,
docs/api.md#savings)."""

from datetime import timedelta

import openai
import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.principal import principal_from_api_key
from analytics.log_writer import request_log_writer
from analytics.models import RequestLog
from analytics.selectors import SummaryQuery, analytics_summary
from analytics.services import analytics_rollup
from providers.models import ProviderModel
from routing.choices import PolicyStatus
from routing.decisions import request_simulate, simulation_request
from routing.models import ModelQuality, RoutingPolicy
from routing.output_estimates import output_estimates_reset

pytestmark = pytest.mark.django_db(transaction=True)


def sdk(live_server, key):
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0)


def rows():
    request_log_writer().flush(10)
    return list(RequestLog.objects.order_by("created_at"))


def summary():
    now = timezone.now()
    analytics_rollup(now=now)
    return analytics_summary(
        SummaryQuery(now - timedelta(hours=1), now + timedelta(minutes=5), source="rollups")
    )


def test_a_downgrade_the_policy_allows_is_marked_in_header_log_and_rollups(
    live_server, routed_key, cost_optimization_everywhere
):
    # given: the demo's batch policy allows economy targets for any request
    client = sdk(live_server, routed_key)
    # when: a frontier model is asked for as a batch job
    raw = client.chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5",
        messages=[{"role": "user", "content": "Tag this ticket."}],
        max_tokens=10,
        metadata={"priority": "batch"},
    )
    # then
    assert raw.headers["X-Auterity-Model"] in {"gpt-4.1-nano", "gemini-2.5-flash-lite"}
    assert raw.headers["X-Auterity-Downgrade"] == "frontier->economy"
    (row,) = rows()
    assert (row.requested_tier, row.served_tier, row.downgrade) == ("frontier", "economy", True)
    assert row.route_attributes["metadata"] == {"priority": "batch"}
    assert row.route_attributes["max_tokens"] == 10
    figures = summary()
    assert figures["downgrade_count"] == 1
    assert figures["guard_violation_count"] == 0


def test_without_leave_a_lower_tier_target_is_dropped_with_its_reason(
    live_server, routed_key, cost_optimization_everywhere
):
    RoutingPolicy.objects.create(
        name="Sonnet to nano, no leave",
        priority=1,
        status=PolicyStatus.ACTIVE,
        conditions={"model": "claude-sonnet-4-5"},
        actions={
            "targets": [
                {"provider": "openai", "model": "gpt-4.1-nano"},
                {"provider": "anthropic", "model": "claude-sonnet-4-5"},
            ],
            "strategy": "cheapest",
        },
    )
    raw = sdk(live_server, routed_key).chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "Hi"}], max_tokens=5
    )
    assert raw.headers["X-Auterity-Model"] == "claude-sonnet-4-5"
    assert raw.headers["X-Auterity-Downgrade"] == "none"
    (row,) = rows()
    assert (row.requested_tier, row.served_tier, row.downgrade) == ("frontier", "frontier", False)
    # the dry run's decision says why (the function behind POST /api/routing/simulate)
    dry = request_simulate(
        principal=principal_from_api_key(routed_key),
        request=simulation_request(
            {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]}
        ),
        request_id="dry-1",
        headers={},
    )
    dropped = {(d["provider_id"], d["model"]): d["reason"] for d in dry["decision"]["dropped"]}
    assert dropped[("openai", "gpt-4.1-nano")] == (
        "quality tier economy below the requested model's frontier (the policy allows no downgrade)"
    )


def test_a_request_that_really_costs_more_than_the_guard_allows_is_counted(
    live_server, routed_key, cost_optimization_everywhere, settings
):
    # given: gpt-5-mini is cheaper per input token than gpt-4.1-mini but dearer per output
    # token (both standard tier); the guard expects a 1-token answer, the simulator writes 16
    settings.ROUTING_EXPECTED_OUTPUT_DEFAULT = 1
    output_estimates_reset()
    ProviderModel.objects.filter(model="gpt-5-mini").update(expected_thinking_tokens=0)
    RoutingPolicy.objects.create(
        name="GPT-4.1 mini or GPT-5 mini, cheapest",
        priority=1,
        status=PolicyStatus.ACTIVE,
        conditions={"model": "gpt-4.1-mini"},
        actions={
            "targets": [
                {"provider": "openai", "model": "gpt-4.1-mini"},
                {"provider": "openai", "model": "gpt-5-mini"},
            ],
            "strategy": "cheapest",
        },
    )
    # when
    raw = sdk(live_server, routed_key).chat.completions.with_raw_response.create(
        model="gpt-4.1-mini", messages=[{"role": "user", "content": "Hi there"}]
    )
    # then
    assert raw.headers["X-Auterity-Model"] == "gpt-5-mini"
    (row,) = rows()
    assert row.cost > row.baseline_cost * 105 / 100
    assert row.guard_violation is True and row.downgrade is False
    figures = summary()
    assert figures["guard_violation_count"] == 1


def test_sync_quality_keeps_what_an_operator_overrode(db):
    ModelQuality.objects.update_or_create(
        model="gpt-4o", defaults={"score": 1500, "tier": "frontier", "overridden": True}
    )
    call_command("sync_quality", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert ModelQuality.objects.get(model="gpt-4o").tier == "frontier"
    sonnet = ModelQuality.objects.get(model="claude-sonnet-4-5")
    assert (sonnet.tier, sonnet.score) == ("frontier", None)
    nano = ModelQuality.objects.get(model="gpt-4.1-nano")
    assert (nano.tier, nano.score, nano.as_of.isoformat()) == ("economy", 1287, "2025-08-03")
