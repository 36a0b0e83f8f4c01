"""Feature flags: the seed's rollout, sticky per caller, and rollback by switching them off."""

import pytest
import requests
from django.contrib.auth.models import Group
from django.core.management import call_command
from waffle.models import Flag, Sample, Switch

from accounts.principal import Principal
from analytics.models import RequestLog
from routing import flags

pytestmark = pytest.mark.django_db


def caller(user_id, groups=(), group_ids=()):
    return Principal(
        user_id=user_id,
        username=f"user{user_id}",
        groups=frozenset(groups),
        group_ids=frozenset(group_ids),
        scopes=frozenset({"ai:execute"}),
    )


def policies_on(principal, request_id="r"):
    return flags.decision_options(principal, request_id).use_policies


def test_routing_policies_reaches_a_quarter_of_callers_and_sticks():
    callers = [caller(user_id) for user_id in range(1, 10_001)]
    first = [policies_on(c, request_id=f"a{c.user_id}") for c in callers]
    share = sum(first) / len(first)
    assert 0.23 <= share <= 0.27, share
    # the same caller gets the same answer on 5 more requests, whatever the request
    for c, answer in zip(callers[:2000], first[:2000], strict=True):
        assert all(policies_on(c, request_id=f"r{c.user_id}-{i}") == answer for i in range(5))


def test_enterprise_and_beta_testers_are_always_in():
    enterprise = Group.objects.get(name="enterprise")
    beta = Group.objects.get(name="beta-testers")
    for user_id in range(1, 501):
        assert policies_on(caller(user_id, ["enterprise"], [enterprise.pk]))
        assert policies_on(caller(user_id, ["beta-testers"], [beta.pk]))


def test_raising_the_percentage_keeps_everyone_who_was_in():
    callers = [caller(user_id) for user_id in range(1, 4001)]
    before = {c.user_id for c in callers if policies_on(c)}
    Flag.objects.filter(name="routing_policies").update(percent=50)
    Flag.objects.get(name="routing_policies").flush()
    flags.flags_reset()
    after = {c.user_id for c in callers if policies_on(c)}
    assert before < after
    assert 0.47 <= len(after) / len(callers) <= 0.53


def test_cost_optimization_samples_a_tenth_of_requests():
    principal = caller(7)
    sampled = [
        flags.decision_options(principal, f"req-{i}").cost_optimization for i in range(10_000)
    ]
    assert 0.08 <= sum(sampled) / len(sampled) <= 0.12
    # a request id always gets the same answer (decisions are reproducible)
    assert [flags.decision_options(principal, f"req-{i}").cost_optimization for i in range(50)] == (
        sampled[:50]
    )


def test_switches_and_their_commands(django_capture_on_commit_callbacks):
    principal = caller(1)
    options = flags.decision_options(principal, "x")
    assert (options.intelligent, options.fallback) == (True, True)
    assert flags.monitoring_enabled()

    # waffle flushes its cache after commit, as in production
    with django_capture_on_commit_callbacks(execute=True):
        call_command("waffle_switch", "intelligent_routing_fallback", "off")
    flags.flags_reset()
    options = flags.decision_options(principal, "x")
    assert (options.intelligent, options.fallback) == (True, False)

    with django_capture_on_commit_callbacks(execute=True):
        call_command("waffle_switch", "intelligent_routing", "off")
        call_command("waffle_switch", "intelligent_routing_fallback", "on")
        call_command("waffle_switch", "intelligent_routing_monitoring", "off")
    flags.flags_reset()
    options = flags.decision_options(principal, "x")
    # fallback is part of intelligent routing: off with it
    assert (options.intelligent, options.fallback) == (False, False)
    assert not flags.monitoring_enabled()

    with django_capture_on_commit_callbacks(execute=True):
        call_command("waffle_flag", "routing_policies", "--everyone")
    flags.flags_reset()
    assert policies_on(caller(12345))


def test_a_warm_flag_check_costs_no_query(django_assert_num_queries):
    principal = caller(3)
    flags.decision_options(principal, "warm-up")
    with django_assert_num_queries(0):
        for i in range(100):
            flags.decision_options(principal, f"r{i}")


def test_flags_are_listed_and_editable_in_the_admin(admin_client):
    changelist = admin_client.get("/admin/waffle/flag/")
    assert changelist.status_code == 200
    assert b"routing_policies" in changelist.content
    flag = Flag.objects.get(name="routing_policies")
    assert admin_client.get(f"/admin/waffle/flag/{flag.pk}/change/").status_code == 200
    assert b"cost_optimization" in admin_client.get("/admin/waffle/sample/").content
    assert b"intelligent_routing" in admin_client.get("/admin/waffle/switch/").content


@pytest.mark.django_db(transaction=True)
def test_rollback_all_three_off_sends_every_request_to_the_default_route(
    live_server, routed_key, cost_optimization_everywhere
):
    # given (fixtures): an enterprise caller (policies always on), cost optimisation everywhere

    def served(model, **extra):
        response = requests.post(
            f"{live_server.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {routed_key}"},
            json={"model": model, "messages": [{"role": "user", "content": "hi"}], **extra},
            timeout=10,
        )
        return response.headers["X-Auterity-Provider"], response.headers["X-Auterity-Model"]

    # routed: gpt-4o goes to a cheaper equivalent
    assert served("gpt-4o") != ("openai", "gpt-4o")

    # when: the rollback
    flag = Flag.objects.get(name="routing_policies")
    flag.everyone = False
    flag.save()
    sample = Sample.objects.get(name="cost_optimization")
    sample.percent = 0
    sample.save()
    switch = Switch.objects.get(name="intelligent_routing")
    switch.active = False
    switch.save()
    flags.flags_reset()

    # then: every request takes its model's default provider and model
    requested = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "gpt-4.1"]
    defaults = {
        "gpt-4o": "openai",
        "gpt-4o-mini": "openai",
        "claude-sonnet-4-5": "anthropic",
        "gemini-2.5-flash": "google",
        "gpt-4.1": "openai",
    }
    for model in requested:
        assert served(model, metadata={"priority": "batch"}) == (defaults[model], model)
    rows = RequestLog.objects.filter(flags__routing_policies=False)
    assert rows.count() == len(requested)
    assert all(row.policy_id is None and row.cost == row.baseline_cost for row in rows)
