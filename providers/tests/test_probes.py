"""Health probes: real HTTP to the provider simulator, statuses with hysteresis, and the
gateway's traffic following the status the probes set."""

import logging

import pytest
import requests
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.utils import timezone
from waffle.models import Sample, Switch

from accounts.services import api_key_create
from providers.models import Provider, ProviderHealthCheck
from providers.services import Hysteresis, provider_probe_all, provider_status_next
from providers.tasks import probe_providers_task
from routing import flags
from routing.catalog import catalogue_get

OK, SLOW, FAILED = "ok", "slow", "failed"
HEALTHY, DEGRADED, DOWN = "healthy", "degraded", "down"
RULES = Hysteresis(failures_to_down=3, slow_to_degraded=2, successes_to_recover=2)


@pytest.mark.parametrize(
    ("current", "outcomes", "expected"),
    [
        (HEALTHY, [FAILED], HEALTHY),  # one failure is not an outage
        (HEALTHY, [SLOW], HEALTHY),  # one slow answer is not a trend
        (HEALTHY, [FAILED, FAILED], DEGRADED),
        (HEALTHY, [SLOW, FAILED], DEGRADED),
        (HEALTHY, [FAILED, FAILED, FAILED], DOWN),
        (DEGRADED, [FAILED, FAILED, FAILED], DOWN),
        (HEALTHY, [FAILED, FAILED, OK], DEGRADED),
        (DEGRADED, [OK], DEGRADED),
        (DEGRADED, [OK, OK], HEALTHY),
        (DEGRADED, [OK, SLOW], DEGRADED),
        (DOWN, [OK], DOWN),
        (DOWN, [OK, FAILED], DOWN),
        (DOWN, [OK, OK], HEALTHY),
        (DOWN, [SLOW, OK], DEGRADED),
        (DOWN, [FAILED, FAILED, FAILED, OK], DOWN),
        (HEALTHY, [], HEALTHY),
    ],
)
def test_status_rules(current, outcomes, expected):
    assert provider_status_next(current, outcomes, RULES) == expected


def test_statuses_never_flap_on_alternating_probes():
    status, history = HEALTHY, []
    for outcome in [FAILED, OK] * 10:
        history.insert(0, outcome)
        status = provider_status_next(status, history[: RULES.memory], RULES)
        assert status == HEALTHY


@pytest.fixture
def fast_probes(settings):
    settings.PROVIDER_PROBE_TIMEOUT_SECONDS = 1.0
    settings.PROVIDER_PROBE_SLOW_SECONDS = 0.5
    settings.PROVIDER_PROBE_FAILURES_TO_DOWN = 3
    settings.PROVIDER_PROBE_SLOW_TO_DEGRADED = 2
    settings.PROVIDER_PROBE_SUCCESSES_TO_RECOVER = 2


def status(provider_id):
    return Provider.objects.get(pk=provider_id).status


@pytest.mark.django_db
def test_every_provider_is_probed_and_timed(demo_catalogue, fast_probes):
    run = probe_providers_task.apply().get()

    assert run["skipped"] == ""
    probed = {r["provider_id"]: r for r in run["results"]}
    assert set(probed) == set(Provider.objects.values_list("id", flat=True))
    assert {r["outcome"] for r in probed.values()} == {OK}
    # the simulator counted one model-list call per provider
    assert demo_catalogue.stats("anthropic")["requests"] == 1
    check = ProviderHealthCheck.objects.get(provider_id="anthropic")
    assert (check.outcome, check.status_before, check.status_after) == (OK, HEALTHY, HEALTHY)
    assert check.models_listed > 0
    assert Provider.objects.get(pk="anthropic").avg_response_time is not None


@pytest.mark.django_db
def test_a_provider_that_goes_down_is_marked_down_then_healthy(
    demo_catalogue, fast_probes, django_capture_on_commit_callbacks
):
    demo_catalogue.set_fault("openai", down=True)

    statuses = []
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):  # the catalogue bump
            provider_probe_all()
        statuses.append(status("openai"))

    assert statuses == [HEALTHY, DEGRADED, DOWN]
    assert status("anthropic") == HEALTHY
    check = ProviderHealthCheck.objects.filter(provider_id="openai").first()
    assert (check.outcome, check.error_type) == (FAILED, "upstream_error")
    # the gateway's snapshot follows the row
    assert catalogue_get().snapshot.providers["openai"].status == DOWN

    demo_catalogue.clear_faults("openai")
    provider_probe_all()
    assert status("openai") == DOWN  # one good answer is not a recovery
    with django_capture_on_commit_callbacks(execute=True):
        provider_probe_all()
    assert status("openai") == HEALTHY
    assert catalogue_get().snapshot.providers["openai"].status == HEALTHY


@pytest.mark.django_db
def test_status_changes_are_in_the_audit_trail(demo_catalogue, fast_probes):
    from accounts.models import AuditEvent

    demo_catalogue.set_fault("openai", down=True)
    provider_probe_all()
    provider_probe_all()

    event = AuditEvent.objects.get(
        object_type="providers.Provider", object_id="openai", changes__has_key="status"
    )
    assert (event.actor_label, event.via) == ("provider health probe", "system")
    assert event.changes["status"] == ["healthy", "degraded"]


@pytest.mark.django_db
def test_a_provider_deleted_while_probed_is_skipped(demo_catalogue):
    from providers.services import ProbeAnswer, _apply

    answer = ProbeAnswer("ok", 0.01, models_listed=3)
    assert _apply("no-such-provider", answer, RULES, timezone.now()) is None
    assert not ProviderHealthCheck.objects.exists()


@pytest.mark.django_db
def test_a_probe_that_hangs_times_out(demo_catalogue, fast_probes, settings):
    settings.PROVIDER_PROBE_TIMEOUT_SECONDS = 0.3
    demo_catalogue.set_fault("google", timeout_rate=1.0, hang_seconds=10)

    run = provider_probe_all()

    google = next(r for r in run.results if r.provider_id == "google")
    assert (google.outcome, google.error_type) == (FAILED, "timeout")
    assert google.status_after == HEALTHY


@pytest.mark.django_db
def test_slow_answers_degrade_and_fast_ones_recover(demo_catalogue, fast_probes, settings):
    settings.PROVIDER_PROBE_SLOW_SECONDS = 0.05
    demo_catalogue.set_fault("deepseek", latency_ms=150)
    provider_probe_all()
    provider_probe_all()
    assert status("deepseek") == DEGRADED
    assert ProviderHealthCheck.objects.filter(provider_id="deepseek", outcome=SLOW).count() == 2

    demo_catalogue.clear_faults("deepseek")
    provider_probe_all()
    provider_probe_all()
    assert status("deepseek") == HEALTHY


@pytest.mark.django_db
def test_rate_limited_answers_count_as_slow_not_failed(demo_catalogue, fast_probes):
    demo_catalogue.set_fault("mistral", error_rate=1.0, error_status=429)
    for _ in range(3):
        provider_probe_all()
    assert status("mistral") == DEGRADED


@pytest.mark.django_db
def test_an_unreachable_provider_fails_its_probe_without_raising(demo_catalogue, fast_probes):
    together = Provider.objects.get(pk="together")
    together.config = {**together.config, "base_url": "http://127.0.0.1:9/together"}
    together.save()

    for _ in range(3):
        run = probe_providers_task.apply().get()

    result = next(r for r in run["results"] if r["provider_id"] == "together")
    assert (result["outcome"], result["error_type"]) == (FAILED, "connection_error")
    assert status("together") == DOWN


@pytest.mark.django_db
def test_probes_do_nothing_while_monitoring_is_off(demo_catalogue, fast_probes, caplog):
    Switch.objects.filter(name=flags.INTELLIGENT_ROUTING_MONITORING).update(active=False)
    Switch.objects.get(name=flags.INTELLIGENT_ROUTING_MONITORING).flush()
    flags.flags_reset()
    demo_catalogue.set_fault("openai", down=True)

    with caplog.at_level(logging.INFO, logger="providers.services"):
        for _ in range(3):
            run = provider_probe_all()

    assert run.skipped == "switch intelligent_routing_monitoring is off"
    assert "provider probes skipped" in caplog.text
    assert not ProviderHealthCheck.objects.exists()
    assert demo_catalogue.stats("openai")["requests"] == 0
    assert status("openai") == HEALTHY


@pytest.mark.django_db
def test_probe_command_prints_each_provider(demo_catalogue, fast_probes, capsys):
    call_command("probe_providers")
    out = capsys.readouterr().out
    assert "openai" in out and "anthropic" in out and "healthy" in out


# --- the gateway follows the probes ----------------------------------------------------------


@pytest.fixture
def enterprise_key(django_user_model, demo_catalogue):
    """A caller routing policies always apply to; cost optimisation off, so the GPT-4o policy
    tries its targets in written order: openai first, google after it."""
    user = django_user_model.objects.create_user("ops", password="pw-123456")
    user.groups.add(Group.objects.get_or_create(name="enterprise")[0])
    Sample.objects.filter(name=flags.COST_OPTIMIZATION).update(percent=0)
    Sample.objects.get(name=flags.COST_OPTIMIZATION).flush()
    flags.flags_reset()
    _, raw_key = api_key_create(user=user, name="ops-key", scopes=["ai:execute"])
    return raw_key


def execute(live_server, key):
    response = requests.post(
        f"{live_server.url}/api/ai/execute",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "gpt-4o", "prompt": "Status check.", "max_tokens": 5},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["routing"]


@pytest.mark.django_db(transaction=True)
def test_traffic_leaves_a_down_provider_and_returns_when_it_recovers(
    live_server, enterprise_key, demo_catalogue, fast_probes
):
    sim = demo_catalogue
    assert execute(live_server, enterprise_key)["provider"] == "openai"

    # when: OpenAI goes down and the probes notice
    sim.set_fault("openai", down=True)
    for _ in range(3):
        provider_probe_all()
    assert status("openai") == DOWN
    chat_calls = sim.stats("openai")["requests"]

    # then: requests go to the next target without even trying OpenAI
    for _ in range(3):
        routing = execute(live_server, enterprise_key)
        assert routing["provider"] == "google"
        assert [a["provider"] for a in routing["attempts"]] == ["google"]
    assert sim.stats("openai")["requests"] == chat_calls

    # when: it comes back
    sim.clear_faults("openai")
    provider_probe_all()
    provider_probe_all()
    assert status("openai") == HEALTHY

    # then: it gets traffic again
    assert execute(live_server, enterprise_key)["provider"] == "openai"
