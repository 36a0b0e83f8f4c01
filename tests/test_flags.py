"""Feature flags: the seed's rollout, sticky per caller, and rollback by switching them off."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from waffle.models import Flag, Sample, Switch

from accounts.models import AuditEvent
from accounts.principal import Principal
from analytics.models import RequestLog
from core.flags import SWITCHES
from routing import flags
from routing.flags import install_seed_flags
from routing.models import FlagRollback
from routing.services import flag_states, routing_rollforward
from tests.subprocess_env import free_port, subprocess_env

ROOT = Path(__file__).resolve().parent.parent

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


def runbook_commands(section: str) -> list[str]:
    """The `python manage.py ...` lines of docs/flags.md's sh blocks in `section`, as written."""
    text = (ROOT / "docs" / "flags.md").read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", body, flags=re.S):
        commands += [line for line in block.splitlines() if line.startswith("python manage.py")]
    return commands


def run_as_written(command: str, **env) -> subprocess.CompletedProcess:
    """A runbook line run in a shell from the project's root, with this test run's Python."""
    return subprocess.run(
        command.replace("python ", f"{sys.executable} ", 1),
        shell=True,
        cwd=ROOT,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.django_db(transaction=True)
def test_the_runbook_rolls_back_to_the_default_route_and_forward_again(
    live_server, routed_key, cost_optimization_everywhere, tmp_path, settings
):
    # given (fixtures): an enterprise caller (policies always on), cost optimisation everywhere;
    # one cache shared with the commands, as Redis is in production
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    }
    cache_url = f"filecache://{tmp_path / 'cache'}"
    rollback, rollforward = runbook_commands("Rollback")
    assert rollback == "python manage.py routing_rollback"
    assert rollforward == "python manage.py routing_rollforward"

    def served(model, **extra):
        response = requests.post(
            f"{live_server.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {routed_key}"},
            json={"model": model, "messages": [{"role": "user", "content": "hi"}], **extra},
            timeout=10,
        )
        return response.headers["X-Auterity-Provider"], response.headers["X-Auterity-Model"]

    # routed: gpt-4o goes to a cheaper equivalent
    Flag.objects.get(name="routing_policies").flush()
    flags.flags_reset()
    assert served("gpt-4o") != ("openai", "gpt-4o")

    # when: the rollback, exactly as the runbook writes it
    last_event = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    done = run_as_written(rollback, CACHE_URL=cache_url)
    assert done.returncode == 0, done.stderr
    assert "flag routing_policies: everyone None -> False" in done.stdout
    assert "sample cost_optimization: percent 100.0 -> 0" in done.stdout
    assert "switch intelligent_routing: active True -> False" in done.stdout
    flags.flags_reset()  # this process's copy; a web worker's expires within 1 s

    # then: every request takes its model's default provider and model
    defaults = {
        "gpt-4o": "openai",
        "gpt-4o-mini": "openai",
        "claude-sonnet-4-5": "anthropic",
        "gemini-2.5-flash": "google",
        "gpt-4.1": "openai",
    }
    for model, provider in defaults.items():
        assert served(model, metadata={"priority": "batch"}) == (provider, model)
    rows = RequestLog.objects.filter(flags__routing_policies=False)
    assert rows.count() == len(defaults)
    assert all(row.policy_id is None and row.cost == row.baseline_cost for row in rows)
    # one audited step: each change in the trail, attributed to the command
    events = AuditEvent.objects.filter(id__gt=last_event, object_type__startswith="waffle.")
    assert events.count() == 5
    assert all("manage.py routing_rollback" in e.actor_label for e in events)

    # when: roll forward, as written
    done = run_as_written(rollforward, CACHE_URL=cache_url)
    assert done.returncode == 0, done.stderr
    assert "switch intelligent_routing: active False -> True" in done.stdout
    flags.flags_reset()

    # then: routed again, the sample back at 100 %
    assert Sample.objects.get(name="cost_optimization").percent == 100
    assert served("gpt-4o") != ("openai", "gpt-4o")
    assert FlagRollback.objects.get().rolled_forward_at is not None


def test_rollback_works_while_the_cache_is_down(transactional_db):
    # given: a cache URL nothing listens on (Redis down)
    install_seed_flags(apps)
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"

    # when
    done = run_as_written("python manage.py routing_rollback", CACHE_URL=dead_redis)

    # then: committed, and the cache failure said, not raised
    assert done.returncode == 0, done.stderr
    assert "waffle's cache could not be cleared" in done.stderr
    assert flag_states_now() == {
        "flags": {"routing_policies": False},
        "samples": {"cost_optimization": 0},
        "switches": dict.fromkeys(SWITCHES, False),
    }
    again = run_as_written("python manage.py routing_rollback", CACHE_URL=dead_redis)
    assert "Nothing to change" in again.stdout
    assert FlagRollback.objects.count() == 1


def test_rollforward_without_a_rollback_changes_nothing(db):
    result = routing_rollforward(actor_label="t")
    assert result.rollback is None and result.changes == ()


def test_the_admin_rollback_page_shows_states_and_changes_them(admin_client):
    page = admin_client.get("/admin/routing/flagrollback/run/")
    assert page.status_code == 200
    assert b"only the first target is tried" in page.content  # the switches say what they do

    done = admin_client.post("/admin/routing/flagrollback/run/", {"rollback": "1"})
    assert done.status_code == 200
    assert b"Rolled back: 5 changes" in done.content
    assert b"switch intelligent_routing_fallback: active True -&gt; False" in done.content
    assert not Switch.objects.get(name="intelligent_routing").active
    event = AuditEvent.objects.filter(object_type="waffle.Switch").latest("id")
    assert event.via == "admin"

    forward = admin_client.post("/admin/routing/flagrollback/run/", {"rollforward": "1"})
    assert b"Rolled forward: 5 changes" in forward.content
    assert Switch.objects.get(name="intelligent_routing").active
    assert Flag.objects.get(name="routing_policies").everyone is None


def test_the_rollback_page_needs_the_permission_to_change_flags(client, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="pw-123456", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_flagrollback"))
    client.force_login(viewer)
    assert client.get("/admin/routing/flagrollback/run/").status_code == 200
    assert client.post("/admin/routing/flagrollback/run/", {"rollback": "1"}).status_code == 403
    assert Switch.objects.get(name="intelligent_routing").active


def test_waffle_lists_say_what_each_switch_does(admin_client):
    page = admin_client.get("/admin/waffle/switch/")
    assert b"only the first target is tried" in page.content
    assert b"probes do nothing" in page.content


def flag_states_now():
    return flag_states()
