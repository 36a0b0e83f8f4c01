"""Prometheus metrics of the gateway (names from the seed; docs/observability.md).

Three kinds of figures, each read where it is true:

- What happened (counters, histograms): the gateway calls `decision_observed()` once per
  routing decision and `request_finished()` once per request, from the same place that writes
  the request-log row, so metrics and the log always agree. Under granian (auterity/server.py)
  every worker writes its own file and a scrape adds them up (prometheus_client's multiprocess
  mode).
- What this process sees live (in-flight, circuit breakers): gauges refreshed from the
  gateway's `ProviderStats` whenever a request ends and when this process serves a scrape;
  multiprocess modes `livesum` / `livemax` aggregate over living workers only.
- What the database says (provider status, cost savings): collectors that read it when
  scraped (routing/collectors.py, analytics/collectors.py), so every worker, every host and a
  process that has served no traffic yet report the same value, and a provider deleted from
  the catalogue disappears from the exposition.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from vocabulary import ProviderStatus

logger = logging.getLogger(__name__)

_LATENCY_BUCKETS = (
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
)

REQUESTS = Counter(
    "ai_routing_requests_total",
    "Gateway requests, by outcome (success, error, refused, cancelled) and where they went.",
    ["provider", "model", "policy", "status"],
)
GATEWAY_RESPONSES = Counter(
    "ai_gateway_http_responses_total",
    "HTTP responses of the gateway application (gateway/app.py; Django's own paths are in "
    "django_http_*), by route, method and status.",
    ["route", "method", "status"],
)
ERRORS = Counter(
    "ai_routing_errors_total",
    "Gateway requests that failed (status error), by error type and last provider tried.",
    ["provider", "error_type"],
)
DURATION = Histogram(
    "ai_routing_duration_seconds",
    "Gateway time: phase=decision (flags + snapshot + engine), request (a whole non-streamed "
    "request) or stream (a whole streamed request, until its last event).",
    ["phase"],
    buckets=_LATENCY_BUCKETS,
)
UPSTREAM_DURATION = Histogram(
    "ai_upstream_duration_seconds",
    "One call to an upstream provider (for streams: until the stream opened).",
    ["provider"],
    buckets=_LATENCY_BUCKETS,
)
ATTEMPTS = Counter(
    "ai_upstream_attempts_total",
    "Calls to upstream providers, by outcome (ok, or the error type, or circuit_open).",
    ["provider", "outcome"],
)
FALLBACKS = Counter(
    "ai_routing_fallbacks_total",
    "Requests served by a provider other than the first one tried (primary).",
    ["primary", "provider"],
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
REQUEST_LOG_DROPPED = Counter(
    "auterity_request_log_dropped_total",
    "Request-log rows lost: the database refused them, the writer's queue was full during a "
    "database outage, or the process exited before writing them (analytics/log_writer.py).",
)
REQUEST_LOG_HELD = Gauge(
    "auterity_request_log_rows_held",
    "Request-log rows waiting in the web processes to be written, after the last write: a few "
    "in normal operation, growing while the database is unreachable (analytics/log_writer.py).",
    multiprocess_mode="livesum",
)
REQUEST_LOG_SHIPPED = Counter(
    "auterity_request_log_shipped_total",
    "Request-log rows shipped from spool files (rows the database could not take in time, or "
    "orphaned by a process that died) (analytics/spool.py).",
)
REQUEST_LOG_SPOOL_BYTES = Gauge(
    "auterity_request_log_spool_bytes",
    "Bytes in the request-log spool directory of this database, as last measured by a web "
    "process: ~0 in normal operation, growing while the database is unreachable.",
    multiprocess_mode="livemax",
)
REQUEST_LOG_SPOOL_USAGE = Gauge(
    "auterity_request_log_spool_usage_ratio",
    "auterity_request_log_spool_bytes over REQUEST_LOG_SPOOL_MAX_BYTES: at 1 new rows that "
    "cannot be written are dropped.",
    multiprocess_mode="livemax",
)
IN_FLIGHT = Gauge(
    "ai_requests_in_flight",
    "Gateway requests being served now (streams until their last event).",
    multiprocess_mode="livesum",
)
PROVIDER_IN_FLIGHT = Gauge(
    "ai_provider_in_flight",
    "Upstream calls in flight per provider, summed over worker processes.",
    ["provider"],
    multiprocess_mode="livesum",
)
CIRCUIT_STATE = Gauge(
    "ai_provider_circuit_state",
    "Circuit breaker per provider: 0 closed, 1 half-open, 2 open; the worst worker process's.",
    ["provider"],
    multiprocess_mode="livemax",
)
CIRCUIT_OPEN_WORKERS = Gauge(
    "ai_provider_circuit_open_workers",
    "Worker processes whose circuit breaker for the provider is open.",
    ["provider"],
    multiprocess_mode="livesum",
)

STATUS_VALUE = {ProviderStatus.HEALTHY: 1.0, ProviderStatus.DEGRADED: 0.5, ProviderStatus.DOWN: 0.0}
CIRCUIT_VALUE = {"closed": 0.0, "half_open": 1.0, "open": 2.0}


_children: dict[tuple, object] = {}


def _child(metric, *values):
    """`metric.labels(*values)`, remembered: labels() checks its arguments and takes a lock on
    every call, and a request touches a dozen series (bench/README.md). Label values come from
    the catalogue (providers, models, policies) and fixed outcomes, so the map stays small."""
    key = (metric, values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child


def decision_observed(seconds: float) -> None:
    _child(DURATION, "decision").observe(seconds)


def request_refused() -> None:
    """A request refused before routing (rate limit, budget, body size): counted, not timed."""
    _child(REQUESTS, "none", "none", "none", "refused").inc()


def request_log_rows_dropped(count: int) -> None:
    REQUEST_LOG_DROPPED.inc(count)


def request_log_rows_held(count: int) -> None:
    REQUEST_LOG_HELD.set(count)


def request_log_rows_shipped(count: int) -> None:
    if count:
        REQUEST_LOG_SHIPPED.inc(count)


def request_log_spool_bytes(total: int, limit: int) -> None:
    REQUEST_LOG_SPOOL_BYTES.set(total)
    REQUEST_LOG_SPOOL_USAGE.set(total / limit if limit else 0.0)


def gateway_response(route: str, method: str, status: int) -> None:
    """One response of the gateway application; `route` is a known path or "other"."""
    _child(GATEWAY_RESPONSES, route, method, str(status)).inc()


def request_started() -> None:
    """A request has a routing decision and will end with exactly one `request_finished()`."""
    IN_FLIGHT.inc()


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
    stream: bool = False,
    live_stats: Callable[[], Mapping] | None = None,
) -> None:
    IN_FLIGHT.dec()
    provider = provider or "none"
    model = model or "none"
    _child(REQUESTS, provider, model, policy or "none", status).inc()
    _child(DURATION, "stream" if stream else "request").observe(seconds)
    # A cancelled stream (the client left) or a refusal is not the router failing.
    if status == "error":
        last = attempts[-1].provider_id if attempts else provider
        _child(ERRORS, last, error_type or "unknown").inc()
    for attempt in attempts:
        _child(ATTEMPTS, attempt.provider_id, attempt.outcome).inc()
        if attempt.outcome != "circuit_open":
            _child(UPSTREAM_DURATION, attempt.provider_id).observe(attempt.latency_s)
    if fallback:
        primary = attempts[0].provider_id if attempts else "none"
        _child(FALLBACKS, primary, provider).inc()
    if prompt_tokens:
        _child(TOKENS, provider, model, "prompt").inc(prompt_tokens)
    if completion_tokens:
        _child(TOKENS, provider, model, "completion").inc(completion_tokens)
    if cost:
        _child(COST, provider, model).inc(cost)
    if baseline_cost:
        _child(BASELINE_COST, provider, model).inc(baseline_cost)
    if live_stats is not None:
        live_stats_observed(live_stats)


_live_lock = threading.Lock()
_live_written: dict[str, tuple[float, float]] = {}  # provider -> (in flight, circuit state)


def live_stats_observed(snapshot_view: Callable[[], Mapping]) -> None:
    """Copy this process's live provider figures (a `ProviderStats.snapshot_view`) to gauges.

    The view is taken under the lock so that two threads finishing at once cannot write an
    older view over a newer one. Only changed figures are written (most requests change
    none). A provider that left the view reads 0 rather than keeping a stale value
    (multiprocess files cannot drop a label).
    """
    with _live_lock:
        views = snapshot_view()
        for provider_id, view in views.items():
            figures = (float(view.inflight), CIRCUIT_VALUE.get(view.breaker_state, 0.0))
            if _live_written.get(provider_id) != figures:
                _live_write(provider_id, figures)
        for provider_id in _live_written.keys() - views.keys():
            if _live_written[provider_id] != (0.0, 0.0):
                _live_write(provider_id, (0.0, 0.0))


def _live_write(provider_id: str, figures: tuple[float, float]) -> None:
    inflight, state = figures
    PROVIDER_IN_FLIGHT.labels(provider_id).set(inflight)
    CIRCUIT_STATE.labels(provider_id).set(state)
    CIRCUIT_OPEN_WORKERS.labels(provider_id).set(1 if state == CIRCUIT_VALUE["open"] else 0)
    _live_written[provider_id] = figures


def circuit_states_by_process() -> tuple[str, dict[str, dict[str, str]]]:
    """(where the figures come from, {provider: {process: breaker state}}).

    Under the multiprocess web server every worker keeps its own breakers; each living
    worker's last written `ai_provider_circuit_state` is in its own gauge file, so this reads
    every worker's view (as of the last request it finished). Otherwise it is this process's.
    """
    names = {value: name for name, value in CIRCUIT_VALUE.items()}
    states: dict[str, dict[str, str]] = {}
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        for path in sorted(Path(directory).glob("gauge_livemax_*.db")):
            process = f"worker pid {path.stem.rsplit('_', 1)[1]}"
            for metric in MultiProcessCollector.merge([str(path)], accumulate=False):
                if metric.name != CIRCUIT_STATE._name:
                    continue
                for sample in metric.samples:
                    state = names.get(sample.value, f"{sample.value:g}")
                    states.setdefault(sample.labels["provider"], {})[process] = state
        return "every web worker (Prometheus multiprocess files)", states
    for metric in CIRCUIT_STATE.collect():
        for sample in metric.samples:
            state = names.get(sample.value, f"{sample.value:g}")
            states.setdefault(sample.labels["provider"], {})["this process"] = state
    return "this web process", states
