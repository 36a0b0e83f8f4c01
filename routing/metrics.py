"""Prometheus metrics of the gateway (names from the seed; docs/observability.md).

The gateway calls `decision_observed()` once per routing decision and `request_finished()`
once per request (from the same place that writes the request-log row), so metrics and the
log always agree on what happened.
"""

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "ai_routing_requests_total",
    "Gateway requests, by outcome and by where they were routed.",
    ["provider", "model", "policy", "status"],
)
ERRORS = Counter(
    "ai_routing_errors_total",
    "Gateway requests that failed, by error type and last provider tried.",
    ["provider", "error_type"],
)
DURATION = Histogram(
    "ai_routing_duration_seconds",
    "Time to route: phase=decision (the routing engine alone) or request (the whole request).",
    ["phase"],
    buckets=(
        0.0005,
        0.001,
        0.0025,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1,
        2.5,
        5,
        10,
        30,
        60,
    ),
)
ATTEMPTS = Counter(
    "ai_upstream_attempts_total",
    "Calls to upstream providers, by outcome (ok or the error type).",
    ["provider", "outcome"],
)
FALLBACKS = Counter(
    "ai_routing_fallbacks_total",
    "Requests served by a target other than the decision's first.",
    ["provider"],
)
TOKENS = Counter(
    "ai_tokens_total", "Tokens used, by provider, model and kind.", ["provider", "model", "kind"]
)
COST = Counter("ai_cost_usd_total", "What requests cost (USD).", ["provider", "model"])
BASELINE_COST = Counter(
    "ai_baseline_cost_usd_total",
    "What the same requests would have cost on their requested model's default provider (USD).",
    ["provider", "model"],
)
PROVIDER_STATUS = Gauge(
    "ai_provider_status",
    "Provider health: 1 healthy, 0.5 degraded, 0 down.",
    ["provider"],
    multiprocess_mode="max",
)

STATUS_VALUE = {"healthy": 1.0, "degraded": 0.5, "down": 0.0}


def decision_observed(seconds: float) -> None:
    DURATION.labels("decision").observe(seconds)


def request_finished(
    *,
    provider: str,
    model: str,
    policy: str,
    status: str,
    error_type: str,
    seconds: float,
    attempts,
    prompt_tokens: int,
    completion_tokens: int,
    cost: float,
    baseline_cost: float,
    fallback: bool,
) -> None:
    provider = provider or "none"
    model = model or "none"
    REQUESTS.labels(provider, model, policy or "none", status).inc()
    DURATION.labels("request").observe(seconds)
    if error_type:
        last = attempts[-1].provider_id if attempts else provider
        ERRORS.labels(last, error_type).inc()
    for attempt in attempts:
        ATTEMPTS.labels(attempt.provider_id, attempt.outcome).inc()
    if fallback:
        FALLBACKS.labels(provider).inc()
    if prompt_tokens:
        TOKENS.labels(provider, model, "prompt").inc(prompt_tokens)
    if completion_tokens:
        TOKENS.labels(provider, model, "completion").inc(completion_tokens)
    if cost:
        COST.labels(provider, model).inc(cost)
    if baseline_cost:
        BASELINE_COST.labels(provider, model).inc(baseline_cost)


def provider_status_set(provider: str, status: str) -> None:
    PROVIDER_STATUS.labels(provider).set(STATUS_VALUE.get(status, 0.0))
