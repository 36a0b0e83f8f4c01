"""Abuse limits: requests per minute/hour, tokens per minute and budgets, per key, refused
before any provider is called, logged as refused, and shared by every worker process."""

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest
import redis
import requests
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from accounts import limits
from accounts.limits import KeyLimits, LimitExceeded, RedisCounterStore
from accounts.models import UsageCounter
from accounts.principal import Principal, principal_from_api_key
from analytics.models import RequestLog
from tests.stores import PrivateRedis
from tests.subprocess_env import subprocess_env

ROOT = Path(__file__).resolve().parents[2]
HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there."}]}


def away_from_the_minute_edge():
    """Start a minute-window test with time to spare, so the window cannot roll over mid-test."""
    second = time.time() % 60
    if second > 50:
        time.sleep(60 - second + 0.5)


def gateway(raw_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def chat(client, **body):
    return client.post("/v1/chat/completions", {**HELLO, **body}, format="json")


def upstream_calls(sim) -> int:
    return sum(stats["requests"] for stats in sim.all_stats().values())


def stores_used(redis_url: str = "") -> set[str]:
    """Where the limit counters went: the usage_counters table, Redis at `redis_url`, both."""
    used = {"database"} if UsageCounter.objects.exists() else set()
    if redis_url and redis.Redis.from_url(redis_url).keys(RedisCounterStore.PREFIX + "*"):
        used.add("redis")
    return used


pytestmark = pytest.mark.django_db


# --- request windows -------------------------------------------------------------------------


def test_a_key_over_its_minute_limit_gets_429_with_headers_and_no_provider_call(
    make_key, demo_catalogue
):
    away_from_the_minute_edge()
    raw, _ = make_key(rate_limit_per_minute=3)
    client = gateway(raw)
    remaining = []
    for _ in range(3):
        response = chat(client)
        assert response.status_code == 200
        assert response["X-RateLimit-Limit"] == "3"
        remaining.append(response["X-RateLimit-Remaining"])
        assert 0 < int(response["X-RateLimit-Reset"]) <= 60
    assert remaining == ["2", "1", "0"]
    assert upstream_calls(demo_catalogue) == 3

    refused = chat(client)

    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "requests"
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert "3 requests per minute" in refused.json()["error"]["message"]
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["X-RateLimit-Remaining"] == "0"
    assert refused["X-RateLimit-Limit-Minute"] == "3"
    assert upstream_calls(demo_catalogue) == 3
    row = RequestLog.objects.get(status="refused")
    assert (row.http_status, row.error_type, row.provider_id) == (429, "rate_limit_exceeded", "")
    assert row.requested_model == "gpt-4o-mini"
    assert row.request_id == refused["X-Request-ID"]


def test_defaults_come_from_settings_and_zero_means_no_limit(settings, make_key, sim):
    away_from_the_minute_edge()
    settings.RATE_LIMIT_PER_MINUTE = 2
    settings.RATE_LIMIT_PER_HOUR = 0
    default_key, _ = make_key(username="defaulted")
    unlimited_key, _ = make_key(username="unlimited", rate_limit_per_minute=0)
    principal = principal_from_api_key(default_key)
    free = principal_from_api_key(unlimited_key)

    assert limits.admit(principal)["X-RateLimit-Remaining"] == "1"
    limits.admit(principal)
    with pytest.raises(LimitExceeded):
        limits.admit(principal)
    for _ in range(5):
        assert limits.admit(free) == {}  # no window at all: no headers, no counting


def test_the_tightest_window_is_reported_and_the_longest_exceeded_one_sets_retry_after():
    principal = Principal(
        user_id=1,
        username="u",
        groups=frozenset(),
        scopes=frozenset(),
        api_key_id=99,
        limits=KeyLimits(per_minute=10, per_hour=2),
    )
    now = 1_800_000_000.0 + 30  # 30 s into a minute, 30 s into an hour
    first = limits.admit(principal, now=now)
    assert first["X-RateLimit-Limit"] == "2"  # the hour window is the tighter one
    assert first["X-RateLimit-Remaining-Minute"] == "9"
    assert first["X-RateLimit-Remaining-Hour"] == "1"
    limits.admit(principal, now=now)
    with pytest.raises(LimitExceeded) as refused:
        limits.admit(principal, now=now)
    assert refused.value.retry_after == 3600 - 30
    # the next hour is a new window
    assert limits.admit(principal, now=now + 3600)["X-RateLimit-Remaining-Hour"] == "1"


def test_the_rest_api_counts_in_the_same_windows(make_key, sim):
    away_from_the_minute_edge()
    raw, _ = make_key(["ai:execute", "routing:view"], rate_limit_per_minute=2)
    client = gateway(raw)
    assert client.get("/v1/models").status_code == 200  # not counted: lists, calls nothing
    assert chat(client).status_code in (200, 404)  # counted (no catalogue: 404 is fine)
    listed = client.get("/api/providers/")
    assert listed.status_code == 200
    assert listed["X-RateLimit-Remaining"] == "0"
    refused = client.get("/api/providers/")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert refused["X-RateLimit-Limit"] == "2"


# --- tokens per minute -----------------------------------------------------------------------


def test_tokens_per_minute_refuses_before_the_provider(make_key, demo_catalogue):
    away_from_the_minute_edge()
    raw, _ = make_key(tokens_per_minute=1000)
    client = gateway(raw)
    first = chat(client, max_tokens=20)
    assert first.status_code == 200
    used = first.json()["usage"]["total_tokens"]
    principal = principal_from_api_key(raw)
    tokens_key = limits._tokens_key(principal.caller_key, time.time())
    assert limits.counter_store().add([(tokens_key, 0, 120)])[tokens_key] == used

    limits.usage_record(principal, tokens=1000 - used, cost=Decimal(0))
    refused = chat(client)

    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "tokens"
    assert refused["X-RateLimit-Remaining-Tokens"] == "0"
    assert upstream_calls(demo_catalogue) == 1
    assert RequestLog.objects.filter(status="refused", http_status=429).count() == 1


def test_a_request_larger_than_the_token_limit_is_told_not_to_retry(make_key, demo_catalogue):
    raw, _ = make_key(tokens_per_minute=5)
    refused = chat(gateway(raw), messages=[{"role": "user", "content": "word " * 200}])
    assert refused.status_code == 429
    assert refused["x-should-retry"] == "false"
    assert "more than the key's limit of 5 tokens per minute" in refused.json()["error"]["message"]
    assert upstream_calls(demo_catalogue) == 0


# --- budgets ---------------------------------------------------------------------------------


def test_a_key_over_budget_is_refused_before_any_provider_is_called(make_key, demo_catalogue):
    raw, api_key = make_key(budget_usd=Decimal("0.001"), budget_period="day")
    client = gateway(raw)
    # gpt-4o: $10 per million output tokens; 200 of them cost $0.002, over the budget
    first = chat(client, model="gpt-4o", max_tokens=200)
    assert first.status_code == 200
    cost = Decimal(first["X-Auterity-Cost-USD"])
    assert cost > Decimal("0.001")
    assert abs(limits.api_key_spend(api_key) - cost) < Decimal("1e-8")

    refused = chat(client, model="gpt-4o", max_tokens=5)

    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "budget_exceeded")
    assert "of its $0.001 budget per day" in error["message"]
    assert refused["x-should-retry"] == "false"
    assert int(refused["Retry-After"]) <= 86400
    assert upstream_calls(demo_catalogue) == 1
    row = RequestLog.objects.get(status="refused")
    assert (row.error_type, row.http_status, row.cost) == ("budget_exceeded", 429, 0)
    refused_metric = REGISTRY.get_sample_value(
        "ai_routing_requests_total",
        {"provider": "none", "model": "none", "policy": "none", "status": "refused"},
    )
    assert refused_metric is not None and refused_metric >= 1


def test_streamed_spend_counts_towards_the_budget(make_key, demo_catalogue):
    raw, api_key = make_key(budget_usd=Decimal("0.001"))
    client = gateway(raw)
    streamed = chat(client, model="gpt-4o", max_tokens=200, stream=True)
    assert streamed.status_code == 200
    b"".join(streamed.streaming_content)  # the spend is recorded when the stream ends
    assert limits.api_key_spend(api_key) > Decimal("0.001")
    assert chat(client, model="gpt-4o").status_code == 429


def test_spend_is_counted_per_calendar_period():
    principal = Principal(
        user_id=1,
        username="u",
        groups=frozenset(),
        scopes=frozenset(),
        api_key_id=7,
        limits=KeyLimits(budget_usd=Decimal("1"), budget_period="month", per_minute=0, per_hour=0),
    )
    end_of_january = 1_769_903_999.0  # 2026-01-31 23:59:59 UTC
    limits.usage_record(principal, tokens=0, cost=Decimal("1.5"), now=end_of_january)
    with pytest.raises(LimitExceeded) as refused:
        limits.admit(principal, now=end_of_january)
    assert refused.value.retry_after == 1  # February starts in a second
    assert limits.admit(principal, now=end_of_january + 1) == {}


# --- across processes ------------------------------------------------------------------------

WORKER = """
import os, sys, time
import django
django.setup()
from accounts.limits import KeyLimits, LimitExceeded, admit
from accounts.principal import Principal

limit, attempts, start_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
principal = Principal(user_id=1, username="p", groups=frozenset(), scopes=frozenset(),
                      api_key_id=4242, limits=KeyLimits(per_minute=limit, per_hour=0))
while not os.path.exists(start_file):  # both processes start hammering together
    time.sleep(0.005)
admitted = 0
for _ in range(attempts):
    try:
        admit(principal, now=1_800_000_000.0)
        admitted += 1
    except LimitExceeded:
        pass
print(admitted)
"""


def run_two_workers(tmp_path, env, *, limit=50, attempts=60) -> list[int]:
    start = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(limit), str(attempts), str(start)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(1.5)  # let both import Django before the start signal
    start.touch()
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        results.append(int(out.strip().splitlines()[-1]))
    return results


@pytest.mark.django_db(transaction=True)
def test_two_processes_share_the_database_counters(tmp_path):
    admitted = run_two_workers(tmp_path, subprocess_env())
    # alone, each would admit 50; together they admit 50 between them
    assert sum(admitted) == 50, admitted
    assert stores_used() == {"database"}


@pytest.mark.django_db(transaction=True)
def test_two_processes_share_the_redis_counters(tmp_path, redis_url):
    redis.Redis.from_url(redis_url).flushdb()
    env = subprocess_env(CACHE_URL=redis_url)
    assert sum(run_two_workers(tmp_path, env)) == 50
    assert stores_used(redis_url) == {"redis"}  # a Redis cache puts the counters there too


def test_the_redis_store_counts_and_expires(settings, redis_url):
    redis.Redis.from_url(redis_url).flushdb()
    settings.RATE_LIMIT_STORE = "redis"
    settings.RATE_LIMIT_REDIS_URL = redis_url
    limits.counter_store_reset()
    store = limits.counter_store()
    assert isinstance(store, limits.RedisCounterStore)
    assert store.add([("a", 1, 60), ("b", 5, 60)]) == {"a": 1, "b": 5}
    assert store.add([("a", 1, 60), ("b", 0, 60)]) == {"a": 2, "b": 5}
    ttl = store.client.ttl(store.PREFIX + "a")
    assert 0 < ttl <= 60


def test_a_redis_outage_lets_requests_through_with_one_line_each_way(settings, tmp_path, caplog):
    server = PrivateRedis(tmp_path).start()
    try:
        settings.RATE_LIMIT_STORE = "redis"
        settings.RATE_LIMIT_REDIS_URL = server.url
        limits.counter_store_reset()
        caller = Principal(user_id=1, username="u", groups=frozenset(), scopes=frozenset())
        assert limits.admit(caller)["X-RateLimit-Limit"]
        with caplog.at_level("INFO"):
            server.stop()
            # the limits fail open: every request goes through, with no headers to give
            assert [limits.admit(caller) for _ in range(30)] == [{}] * 30
            server.start()
            assert limits.admit(caller)["X-RateLimit-Limit"]
        lines = [r for r in caplog.records if "rate_limits" in r.getMessage()]
        assert [r.levelname for r in lines] == ["WARNING", "INFO"]
        assert "letting requests through unchecked" in lines[0].getMessage()
        assert not any(r.exc_info for r in caplog.records)
    finally:
        server.stop()
        limits.counter_store_reset()


def test_the_database_store_deletes_expired_counters():
    store = limits.DatabaseCounterStore()
    store.add([("old", 1, -10), ("fresh", 1, 60)])
    store._cleaned_at = 0.0
    store.add([("fresh", 1, 60)])
    assert set(UsageCounter.objects.values_list("key", flat=True)) == {"fresh"}


# --- over HTTP, two web-server workers ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("store", ["database", "redis"])
def test_rate_limits_hold_across_two_web_server_workers(
    store, request, make_key, demo_catalogue, web_server
):
    env = {}
    if store == "redis":
        redis_url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(redis_url).flushdb()
        env["CACHE_URL"] = redis_url
    # an hour window: a 1-minute window could roll over while the requests are in flight
    raw, _ = make_key(rate_limit_per_minute=0, rate_limit_per_hour=12)
    server = web_server(**env)
    url = server.url

    def call(_):
        return requests.post(
            f"{url}/v1/chat/completions",
            json={**HELLO, "max_tokens": 5},
            headers={"Authorization": f"Bearer {raw}"},
            timeout=30,
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(call, range(20)))

    assert statuses.count(200) == 12, statuses
    assert statuses.count(429) == 8, statuses
    served_by = server.counts_per_worker("ai_gateway_http_responses", route="/v1/chat/completions")
    assert len(served_by) == 2, served_by  # both workers served, and counted together
    assert stores_used(env.get("CACHE_URL", "")) == {store}
    assert upstream_calls(demo_catalogue) == 12
    # the workers write their rows in the background, within ~50 ms of each answer
    deadline = time.monotonic() + 10
    while RequestLog.objects.filter(status="refused").count() < 8:
        assert time.monotonic() < deadline, "the refusals' rows were not written"
        time.sleep(0.05)
    assert RequestLog.objects.filter(status="refused").count() == 8


@pytest.mark.django_db(transaction=True)
def test_the_openai_sdk_sees_a_budget_refusal_as_a_final_rate_limit_error(
    live_server, make_key, demo_catalogue
):
    import openai

    raw, _ = make_key(budget_usd=Decimal("0"))
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=raw, max_retries=2)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(**HELLO)
    assert refused.value.code == "budget_exceeded"
    assert refused.value.type == "insufficient_quota"
    # x-should-retry: false kept the SDK from retrying, and no provider was called
    assert RequestLog.objects.filter(status="refused").count() == 1
    assert upstream_calls(demo_catalogue) == 0
