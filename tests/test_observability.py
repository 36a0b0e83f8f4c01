"""Observability end to end: /metrics after real traffic, health probes, request ids in logs.

The gateway runs in pytest-django's live server and calls the provider simulator over HTTP;
the exposition is parsed with prometheus_client's own parser. Nothing is mocked.
"""

import io
import json
import logging
import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml
from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from analytics.collectors import cost_savings_collector
from analytics.models import RequestLog
from auterity import health
from core.logs import RequestIdFilter, SecretRedactionFilter, redact
from providers.models import Provider
from routing.canary import policy_canary_start
from routing.models import RoutingPolicy
from tests.metrics_exposition import scrape, total

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
HELLO = [{"role": "user", "content": "A secret prompt about zebra migrations."}]

# PromQL words that are not metric names.
_PROMQL_WORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (functions, labels, ranges and keywords removed)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        word = match.group(0)
        if expr[match.end() :].lstrip().startswith("(") or word.lower() in _PROMQL_WORDS:
            continue
        names.add(word)
    return names


def alert_exprs() -> list[str]:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((ROOT / "deploy/grafana/auterity-overview.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def chat(live_server, key, **body):
    return requests.post(
        f"{live_server.url}/v1/chat/completions",
        json={"messages": HELLO, "max_tokens": 8, **body},
        headers={"Authorization": f"Bearer {key}"},
        timeout=20,
    )


@pytest.fixture
def fresh_savings(settings):
    settings.METRICS_SAVINGS_CACHE_SECONDS = 0
    cost_savings_collector.reset()
    yield
    cost_savings_collector.reset()


# --- /metrics ---------------------------------------------------------------------------------


def test_every_metric_in_the_alerts_and_the_dashboard_is_exported_after_traffic(
    live_server, routed_key, sim, fresh_savings
):
    # given: traffic that succeeds, streams, falls back and fails
    assert chat(live_server, routed_key, model="claude-haiku-4-5").status_code == 200
    streamed = chat(live_server, routed_key, model="claude-haiku-4-5", stream=True)
    assert streamed.status_code == 200 and b"[DONE]" in streamed.content
    sim.set_fault("openai", error_rate=1.0, error_status=503)
    fallback = chat(live_server, routed_key, model="gpt-4o-mini")
    assert fallback.status_code == 200
    assert fallback.headers["X-Auterity-Provider"] != "openai"
    for name in ("openai", "google", "deepseek"):
        sim.set_fault(name, error_rate=1.0, error_status=500)
    assert chat(live_server, routed_key, model="gpt-4o-mini").status_code == 502
    # and a policy running as a canary (its rollback counter's series starts at 0)
    policy_canary_start(
        policy=RoutingPolicy.objects.create(name="Canary", conditions={"model": "gpt-4o"}),
        percent=10,
    )
    # when
    samples = scrape(live_server.url)
    # then
    used = set().union(*map(promql_metric_names, alert_exprs() + dashboard_exprs()))
    assert {"ai_routing_errors_total", "ai_cost_savings_percentage", "ai_provider_status"} <= used
    assert "ai_routing_duration_seconds_bucket" in used
    missing = sorted(name for name in used if name not in samples)
    assert not missing, f"referenced but not exported: {missing}"


def test_routing_metrics_count_what_happened(live_server, routed_key, sim):
    before = scrape(live_server.url)
    ok = chat(live_server, routed_key, model="claude-haiku-4-5")
    sim.set_fault("openai", error_rate=1.0, error_status=503)
    fell_back = chat(live_server, routed_key, model="gpt-4o-mini")
    for name in ("openai", "google", "deepseek"):
        sim.set_fault(name, error_rate=1.0, error_status=500)
    failed = chat(live_server, routed_key, model="gpt-4o-mini")
    after = scrape(live_server.url)

    def delta(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    assert ok.status_code == 200 and fell_back.status_code == 200 and failed.status_code == 502
    served_by = fell_back.headers["X-Auterity-Provider"]
    assert delta("ai_routing_requests_total") == 3
    assert delta("ai_routing_requests_total", provider="anthropic", status="success") == 1
    assert delta("ai_routing_requests_total", status="error") == 1
    assert delta("ai_routing_errors_total", error_type="upstream_error") == 1
    assert delta("ai_routing_fallbacks_total", primary="openai", provider=served_by) == 1
    assert delta("ai_upstream_attempts_total", provider="openai", outcome="upstream_error") >= 1
    assert delta("ai_routing_duration_seconds_count", phase="request") == 3
    assert delta("ai_routing_duration_seconds_count", phase="decision") == 3
    usage = ok.json()["usage"]
    assert (
        delta("ai_tokens_total", provider="anthropic", kind="completion")
        == (usage["completion_tokens"])
    )
    assert delta("ai_cost_usd_total", provider="anthropic") == pytest.approx(usage["cost"])
    # nothing is in flight once the answers are back
    assert total(after, "ai_requests_in_flight") == 0
    assert total(after, "ai_provider_in_flight") == 0


def test_provider_status_is_exported_before_any_traffic_and_follows_the_database(
    live_server, demo_catalogue
):
    # given: no gateway request has been made
    samples = scrape(live_server.url)
    status = {labels["provider"]: value for labels, value in samples["ai_provider_status"]}
    assert status == {p.id: 1.0 for p in Provider.objects.all()}
    # when: a probe (or an operator) marks providers down and degraded
    google = Provider.objects.get(id="google")
    google.status = "down"
    google.save()
    mistral = Provider.objects.get(id="mistral")
    mistral.status = "degraded"
    mistral.save()
    # then: the next scrape (catalogue rebuilt on the version bump) says so
    samples = scrape(live_server.url)
    status = {labels["provider"]: value for labels, value in samples["ai_provider_status"]}
    assert status["google"] == 0.0
    assert status["mistral"] == 0.5
    assert status["openai"] == 1.0


def test_cost_savings_is_one_minus_cost_over_baseline_in_the_window(
    live_server, routed_key, cost_optimization_everywhere, fresh_savings
):
    # given: a routed request that saved money (the demo policy sends gpt-4o to gpt-4.1)
    response = requests.post(
        f"{live_server.url}/api/ai/execute",
        headers={"Authorization": f"Bearer {routed_key}"},
        json={"model": "gpt-4o", "prompt": "Write a haiku about routers.", "max_tokens": 40},
        timeout=20,
    )
    assert response.status_code == 200, response.text
    routing = response.json()["routing"]
    assert routing["cost_usd"] < routing["baseline_cost_usd"]
    # when
    samples = scrape(live_server.url)
    # then
    savings = total(samples, "ai_cost_savings_percentage")
    assert savings == pytest.approx(1 - routing["cost_usd"] / routing["baseline_cost_usd"])
    assert total(samples, "ai_cost_window_usd", kind="actual") == pytest.approx(routing["cost_usd"])
    # and rows older than the window no longer count
    RequestLog.objects.update(created_at="2000-01-01T00:00:00Z")
    assert total(scrape(live_server.url), "ai_cost_savings_percentage") == 0


def test_metrics_token_protects_the_exposition_when_set(live_server, settings):
    settings.METRICS_TOKEN = "scrape-me-please"
    assert requests.get(f"{live_server.url}/metrics", timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert requests.get(f"{live_server.url}/metrics", headers=wrong, timeout=10).status_code == 401
    right = {"Authorization": "Bearer scrape-me-please"}
    assert "ai_requests_in_flight" in scrape(live_server.url, headers=right)


# --- health -----------------------------------------------------------------------------------


@pytest.fixture
def broker_probe_reset():
    health.broker_probe.reset()
    yield
    health.broker_probe.reset()


def test_healthz_and_readyz_answer_without_auth(client, settings, broker_probe_reset):
    settings.CELERY_BROKER_URL = "filesystem://"
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    # the embedded broker has nothing to check
    assert ready.json()["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "catalogue": "ok",
        "flags": "ok",
    }


@pytest.mark.skipif(not os.environ.get("REDIS_TEST_URL"), reason="no Redis")
def test_readyz_checks_a_configured_broker(client, settings, broker_probe_reset):
    settings.CELERY_BROKER_URL = os.environ["REDIS_TEST_URL"]
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["broker"] == "ok"


class _RefusingBroker:
    """A TCP server that accepts a connection and closes it at once, counting connections."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.connections = 0
        self.url = f"redis://127.0.0.1:{self.sock.getsockname()[1]}/0"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self):
        self.sock.close()


def test_readyz_says_degraded_when_the_broker_is_unreachable_and_caches_the_answer(
    client, settings, broker_probe_reset
):
    broker = _RefusingBroker()
    try:
        settings.CELERY_BROKER_URL = broker.url
        settings.READINESS_BROKER_CACHE_SECONDS = 3600
        first = client.get("/readyz")
        # the process still serves requests: degraded, and kept in rotation (200)
        assert first.status_code == 200
        assert first.json()["status"] == "degraded"
        assert first.json()["checks"]["broker"].startswith("error")
        seen = broker.connections
        assert seen >= 1
        # within the cache period the answer is reused: no new connection
        assert client.get("/readyz").json()["status"] == "degraded"
        assert broker.connections == seen
        # with no caching every probe connects again
        settings.READINESS_BROKER_CACHE_SECONDS = 0
        assert client.get("/readyz").json()["status"] == "degraded"
        assert broker.connections > seen
    finally:
        broker.close()


# --- request ids and logs -----------------------------------------------------------------------


def test_every_response_has_its_own_request_id_and_echoes_a_sane_caller_id(client):
    traced = client.get("/healthz", headers={"X-Request-ID": "trace-abc-123"})
    assert re.fullmatch(r"[0-9a-f]{32}", traced["X-Request-ID"])
    assert traced["X-Client-Request-ID"] == "trace-abc-123"
    insane = client.get("/healthz", headers={"X-Request-ID": "has spaces in it"})
    assert re.fullmatch(r"[0-9a-f]{32}", insane["X-Request-ID"])
    assert not insane.has_header("X-Client-Request-ID")
    assert client.get("/healthz")["X-Request-ID"] != client.get("/healthz")["X-Request-ID"]


@pytest.fixture
def json_log():
    """Every log line, formatted as settings.LOGGING's json formatter and filters do."""
    options = {k: v for k, v in settings.LOGGING["formatters"]["json"].items() if k != "()"}
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(**options))
    handler.addFilter(RequestIdFilter(default=None))
    handler.addFilter(SecretRedactionFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


def test_json_log_lines_of_a_request_carry_its_id_and_no_prompt(
    live_server, routed_key, sim, json_log
):
    # given: a fallback, so the adapters log the upstream 503 during the request
    sim.set_fault("openai", error_rate=1.0, error_status=503)
    response = requests.post(
        f"{live_server.url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 8},
        headers={"Authorization": f"Bearer {routed_key}", "X-Request-ID": "obs-log-trace-1"},
        timeout=20,
    )
    assert response.status_code == 200
    assert response.headers["X-Client-Request-ID"] == "obs-log-trace-1"
    request_id = response.headers["X-Request-ID"]  # the gateway's own, on every line
    # then: the access line is written when the server closes the response, just after the
    # client has read it
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        line["logger"] == "auterity.access" and line.get("request_id") == request_id
        for line in json_log()
    ):
        time.sleep(0.02)
    lines = [line for line in json_log() if line.get("request_id") == request_id]
    loggers = {line["logger"] for line in lines}
    assert "auterity.access" in loggers  # the access line, written when the response closed
    assert any(name.startswith("providers.") for name in loggers)  # the upstream 503
    access = next(line for line in lines if line["logger"] == "auterity.access")
    assert (access["method"], access["path"], access["status"]) == (
        "POST",
        "/v1/chat/completions",
        200,
    )
    assert {"time", "level", "message"} <= access.keys()
    everything = json.dumps(json_log())
    assert "zebra" not in everything
    assert routed_key not in everything


def test_secrets_are_masked_in_messages_and_tracebacks():
    assert "sk-aut-abcdef123456" not in redact("bad key sk-aut-abcdef123456 used")
    assert redact("Authorization: Bearer eyJhbGciOi.abc.def") == "Authorization: Bearer [REDACTED]"
    assert "AIzaSyA1234567890abcdefghijkl" not in redact(
        "GET /v1beta/models/x:generateContent?key=AIzaSyA1234567890abcdefghijkl failed"
    )
    assert redact("prompt_tokens=12 max_tokens: 40") == "prompt_tokens=12 max_tokens: 40"

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretRedactionFilter())
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError("upstream said: invalid api_key=sk-live-1234567890abcdef")
        except RuntimeError:
            logger.exception("call failed with %s", "Bearer sk-aut-zzzzzzzzzzzz")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "call failed" in output and "RuntimeError" in output
    assert "sk-live-1234567890abcdef" not in output
    assert "sk-aut-zzzzzzzzzzzz" not in output
