"""Observed output lengths: computed from the request log off the request path, handed to
routing through the cache, and used by the cost guard per model and caller."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from accounts.services import api_key_create
from analytics import output_lengths
from analytics.tasks import refresh_output_estimates_task
from providers.demo import demo_catalogue_install
from routing.output_estimates import output_estimates_get, output_estimates_publish

from .factories import RequestLogFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def caller(django_user_model):
    user = django_user_model.objects.create_user("writer", password="pw-123456")
    _, raw_key = api_key_create(user=user, name="ci", scopes=["ai:execute", "routing:view"])
    return user, raw_key


@pytest.fixture
def log(caller, django_user_model):
    user, _ = caller
    other = django_user_model.objects.create_user("other", password="pw-123456")
    # The writer's 30 gpt-4o answers: 10, 20, ... 300 visible tokens (p90, rank 27: 270).
    for i in range(1, 31):
        RequestLogFactory(
            user=user, api_key_name="ci", requested_model="gpt-4o", model="gpt-4o",
            completion_tokens=10 * i,
        )  # fmt: skip
    # Another caller's 5 long answers: too few for a figure of their own, but the model's.
    for _ in range(5):
        RequestLogFactory(
            user=other, requested_model="gpt-4o", model="gpt-4o", completion_tokens=5000
        )
    # Routed to a thinking model: 20 answers of 100 visible tokens after 40, 80, ... 800 thinking.
    for i in range(1, 21):
        RequestLogFactory(
            user=user, api_key_name="ci", requested_model="gpt-4o-mini", model="gemini-2.5-pro",
            completion_tokens=100 + 40 * i, reasoning_tokens=40 * i,
        )  # fmt: skip
    # Not counted: failures, and requests older than the window.
    RequestLogFactory(user=user, requested_model="gpt-4o", status="error", completion_tokens=9999)
    RequestLogFactory(
        user=user, requested_model="gpt-4o", completion_tokens=9999,
        created_at=timezone.now() - timedelta(hours=25),
    )  # fmt: skip
    return user


def test_percentiles_per_caller_per_model_and_thinking(log):
    by_caller, by_model, thinking = output_lengths.output_lengths_observed()

    assert by_caller == {
        ("gpt-4o", str(log.pk), "ci"): 270,
        ("gpt-4o-mini", str(log.pk), "ci"): 100,
    }
    # gpt-4o over every caller: 35 answers, rank ceil(31.5) = 32 is one of the 5000-token ones.
    assert by_model == {"gpt-4o": 5000, "gpt-4o-mini": 100}
    # Thinking by the model that served: 20 answers, rank 18: 720.
    assert thinking == {"gemini-2.5-pro": 720, "gpt-4o": 0}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="compares SQL with Python")
def test_the_database_and_python_percentiles_agree(log):
    rows = output_lengths.RequestLog.objects.filter(status="success")
    for keys in (output_lengths._CALLER, ("requested_model",), ("model",)):
        for fraction in (0.5, 0.9, 0.99):
            in_sql = output_lengths._groups(
                rows, keys, output_lengths.F("completion_tokens"), fraction, 3
            )
            in_python = output_lengths._groups(
                rows, keys, output_lengths.F("completion_tokens"), fraction, 3, in_database=False
            )
            assert in_sql == in_python


def test_refresh_reaches_the_cost_guard_of_that_caller(log, caller, api_client, settings):
    demo_catalogue_install("http://127.0.0.1:9")
    _, raw_key = caller
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")

    before = api_client.post("/api/routing/simulate", body, format="json").json()
    assert before["output_tokens_expected"] == settings.ROUTING_EXPECTED_OUTPUT_DEFAULT

    assert refresh_output_estimates_task()["callers"] == 2

    after = api_client.post("/api/routing/simulate", body, format="json").json()
    assert after["output_tokens_expected"] == 270
    assert after["decision"]["baseline"]["expected_cost"] == pytest.approx(
        after["input_tokens_estimate"] * 2.5e-6 + 270 * 10e-6
    )
    with_max = api_client.post("/api/routing/simulate", {**body, "max_tokens": 7}, format="json")
    assert with_max.json()["output_tokens_expected"] == 7


def test_processes_keep_their_estimates_while_the_cache_is_down(settings):
    settings.ROUTING_OUTPUT_ESTIMATES_CHECK_SECONDS = 0
    output_estimates_publish({("m", "1", "k"): 33}, {"m": 44}, {"t": 55})
    assert output_estimates_get().output_tokens("m", "1", "k") == 33

    dead_redis = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                              "LOCATION": "redis://127.0.0.1:1/0"}}  # fmt: skip
    with override_settings(CACHES=dead_redis):
        estimates = output_estimates_get()

    assert estimates.output_tokens("m", "1", "k") == 33
    assert estimates.thinking == {"t": 55}
