"""Writes and rules of the providers app: the health probes (docs/jobs.md).

Each run asks every provider for its model list (the cheapest authenticated call every wire
format has) with a short timeout, all providers at once. A probe is `ok`, `slow` (answered
after PROVIDER_PROBE_SLOW_SECONDS, or rate limited) or `failed`. The provider's status follows
the recent run of outcomes with hysteresis, so one slow or failed probe never flips it:

    healthy/degraded --(FAILURES_TO_DOWN failed in a row)--> down
    healthy --(SLOW_TO_DEGRADED not-ok in a row)--> degraded
    degraded --(SUCCESSES_TO_RECOVER ok in a row)--> healthy
    down --(SUCCESSES_TO_RECOVER answered in a row)--> healthy, or degraded if any was slow

A status change is saved on the Provider row, which bumps the catalogue version: every
gateway process routes with the new status within ROUTING_SNAPSHOT_CHECK_SECONDS, and
`ai_provider_status` on /metrics (read from the same snapshot) follows. The routing
engine gives a `down` provider no traffic (only its circuit breaker's half-open trials once
it is healthy again). Nothing a provider does makes a probe raise.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from waffle import switch_is_active

from accounts.audit import audit_actor
from core.flags import INTELLIGENT_ROUTING_MONITORING
from providers.adapters import adapter_for
from providers.adapters.errors import ProviderError, RateLimited
from providers.adapters.types import ProviderEndpoint
from vocabulary import ProviderStatus

from .choices import ProbeOutcome
from .models import Provider, ProviderHealthCheck

logger = logging.getLogger(__name__)

_RUN_LOCK_KEY = "auterity:provider-probes-running"
# avg_response_time is rewritten (and the catalogue rebuilt everywhere) only when it moves
# by more than this share or this many seconds, whichever is larger.
_AVG_CHANGE_SHARE = Decimal("0.10")
_AVG_CHANGE_FLOOR = Decimal("0.050")
_AVG_SAMPLES = 5  # successful probes averaged into avg_response_time


@dataclass(frozen=True)
class Hysteresis:
    failures_to_down: int = 3
    slow_to_degraded: int = 2
    successes_to_recover: int = 2

    @classmethod
    def from_settings(cls) -> Hysteresis:
        return cls(
            failures_to_down=max(1, settings.PROVIDER_PROBE_FAILURES_TO_DOWN),
            slow_to_degraded=max(1, settings.PROVIDER_PROBE_SLOW_TO_DEGRADED),
            successes_to_recover=max(1, settings.PROVIDER_PROBE_SUCCESSES_TO_RECOVER),
        )

    @property
    def memory(self) -> int:
        """How many recent outcomes the rules look at."""
        return max(self.failures_to_down, self.slow_to_degraded, self.successes_to_recover)


def provider_status_next(current: str, outcomes: list[str], rules: Hysteresis) -> str:
    """The status after the probe whose outcome is `outcomes[0]` (newest first)."""

    def streak(matches) -> int:
        count = 0
        for outcome in outcomes:
            if not matches(outcome):
                break
            count += 1
        return count

    if streak(lambda o: o == ProbeOutcome.FAILED) >= rules.failures_to_down:
        return ProviderStatus.DOWN
    fast = streak(lambda o: o == ProbeOutcome.OK)
    if current == ProviderStatus.DOWN:
        if streak(lambda o: o != ProbeOutcome.FAILED) < rules.successes_to_recover:
            return ProviderStatus.DOWN
        if fast >= rules.successes_to_recover:
            return ProviderStatus.HEALTHY
        return ProviderStatus.DEGRADED
    if streak(lambda o: o != ProbeOutcome.OK) >= rules.slow_to_degraded:
        return ProviderStatus.DEGRADED
    if current == ProviderStatus.DEGRADED and fast >= rules.successes_to_recover:
        return ProviderStatus.HEALTHY
    return current


@dataclass(frozen=True)
class ProbeAnswer:
    """What one probe saw, before any rule is applied."""

    outcome: str
    latency: float
    error_type: str = ""
    error_message: str = ""
    models_listed: int = 0


def provider_probe(endpoint: ProviderEndpoint, *, timeout: float, slow_s: float) -> ProbeAnswer:
    """Time one model-list call to `endpoint`, bounded by `timeout` (connect and read).
    Never raises: every failure is an answer."""
    probe_endpoint = dataclasses.replace(
        endpoint,
        timeout=min(endpoint.timeout, timeout),
        connect_timeout=min(endpoint.connect_timeout, timeout),
    )
    started = time.monotonic()
    try:
        models = adapter_for(probe_endpoint).list_models()
    except RateLimited as exc:
        # It answered, so it is up; a provider throttling us is one to send less to.
        return ProbeAnswer(
            ProbeOutcome.SLOW, time.monotonic() - started, exc.error_type, exc.message[:500]
        )
    except ProviderError as exc:
        return ProbeAnswer(
            ProbeOutcome.FAILED, time.monotonic() - started, exc.error_type, exc.message[:500]
        )
    except Exception as exc:  # an adapter bug must not stop the other probes
        logger.exception("probe of %s failed unexpectedly", endpoint.provider_id)
        return ProbeAnswer(
            ProbeOutcome.FAILED, time.monotonic() - started, "probe_error", repr(exc)[:500]
        )
    latency = time.monotonic() - started
    outcome = ProbeOutcome.SLOW if latency > slow_s else ProbeOutcome.OK
    return ProbeAnswer(outcome, latency, models_listed=len(models))


@dataclass(frozen=True)
class ProbeResult:
    provider_id: str
    outcome: str
    latency: float
    error_type: str
    status_before: str
    status_after: str
    avg_response_time: float | None

    @property
    def changed(self) -> bool:
        return self.status_before != self.status_after


@dataclass(frozen=True)
class ProbeRun:
    checked_at: datetime
    results: tuple[ProbeResult, ...] = ()
    skipped: str = ""  # why nothing was probed, or ""

    def as_dict(self) -> dict:
        return {
            "checked_at": self.checked_at.isoformat(),
            "skipped": self.skipped,
            "results": [dataclasses.asdict(r) for r in self.results],
        }


def provider_probe_all(*, now: datetime | None = None) -> ProbeRun:
    """Probe every provider once and apply the status rules; see the module docstring.

    Does nothing (and says so in the log) while the `intelligent_routing_monitoring` switch
    is off, or while another probe run is still going.
    """
    now = now or timezone.now()
    if not switch_is_active(INTELLIGENT_ROUTING_MONITORING):
        logger.info(
            "provider probes skipped: switch %s is off; providers keep their last status",
            INTELLIGENT_ROUTING_MONITORING,
        )
        return ProbeRun(now, skipped=f"switch {INTELLIGENT_ROUTING_MONITORING} is off")
    token = uuid.uuid4().hex
    lock_seconds = int(settings.PROVIDER_PROBE_TIMEOUT_SECONDS * 2 + 30)
    if not cache.add(_RUN_LOCK_KEY, token, timeout=lock_seconds):
        logger.info("provider probes skipped: the previous run is still going")
        return ProbeRun(now, skipped="previous run still going")
    try:
        return ProbeRun(now, tuple(_probe_all(now)))
    finally:
        if cache.get(_RUN_LOCK_KEY) == token:
            cache.delete(_RUN_LOCK_KEY)


def _probe_all(now: datetime) -> list[ProbeResult]:
    endpoints = {p.id: e for p in Provider.objects.all() if (e := p.endpoint()) is not None}
    if not endpoints:
        return []
    timeout = settings.PROVIDER_PROBE_TIMEOUT_SECONDS
    slow_s = settings.PROVIDER_PROBE_SLOW_SECONDS
    # Threads do only HTTP; every database write happens below, on this thread.
    with ThreadPoolExecutor(max_workers=min(16, len(endpoints))) as pool:
        answers = list(
            pool.map(
                lambda e: provider_probe(e, timeout=timeout, slow_s=slow_s), endpoints.values()
            )
        )
    rules = Hysteresis.from_settings()
    results = [
        _apply(provider_id, answer, rules, now)
        for provider_id, answer in zip(endpoints, answers, strict=True)
    ]
    return [r for r in results if r is not None]


def _apply(provider_id: str, answer: ProbeAnswer, rules: Hysteresis, now) -> ProbeResult | None:
    """Record one probe and apply the status rules; None if the provider was deleted
    meanwhile. The row is locked and read afresh, so a concurrent edit is not overwritten
    with a stale copy."""
    with transaction.atomic():
        provider = Provider.objects.select_for_update().filter(pk=provider_id).first()
        if provider is None:
            return None
        recent = list(
            ProviderHealthCheck.objects.filter(provider=provider)
            .order_by("-checked_at", "-id")
            .values_list("outcome", "latency")[: max(rules.memory, _AVG_SAMPLES) - 1]
        )
        outcomes = [answer.outcome, *(o for o, _ in recent)][: rules.memory]
        before = provider.status
        after = provider_status_next(before, outcomes, rules)
        answered = [
            latency
            for outcome, latency in [(answer.outcome, answer.latency), *recent]
            if outcome != ProbeOutcome.FAILED
        ][:_AVG_SAMPLES]
        average = (
            Decimal(sum(answered) / len(answered)).quantize(Decimal("0.001")) if answered else None
        )
        ProviderHealthCheck.objects.create(
            provider=provider,
            checked_at=now,
            outcome=answer.outcome,
            latency=answer.latency,
            error_type=answer.error_type,
            error_message=answer.error_message,
            models_listed=answer.models_listed,
            status_before=before,
            status_after=after,
        )
        fields = []
        if after != before:
            provider.status = after
            fields.append("status")
        if average is not None and _moved(provider.avg_response_time, average):
            provider.avg_response_time = average
            fields.append("avg_response_time")
        if fields:
            # save(), not update(): post_save bumps the catalogue version (every gateway
            # process reroutes) and writes the status change to the audit trail.
            with audit_actor("provider health probe", via="system"):
                provider.save(update_fields=[*fields, "updated_at"])
    if after != before:
        logger.warning(
            "provider %s: %s -> %s (probe %s%s)",
            provider.id,
            before,
            after,
            answer.outcome,
            f": {answer.error_type}: {answer.error_message}" if answer.error_type else "",
        )
    return ProbeResult(
        provider_id=provider.id,
        outcome=answer.outcome,
        latency=round(answer.latency, 4),
        error_type=answer.error_type,
        status_before=before,
        status_after=after,
        avg_response_time=float(provider.avg_response_time)
        if provider.avg_response_time is not None
        else None,
    )


def _moved(old: Decimal | None, new: Decimal) -> bool:
    if old is None:
        return True
    return abs(new - old) > max(_AVG_CHANGE_FLOOR, old * _AVG_CHANGE_SHARE)


# --- drain ---------------------------------------------------------------------------------


def provider_drain(*, provider: Provider, reason: str, actor_label: str) -> Provider:
    """Take a provider out of routing: no request goes to it, not even as a last resort,
    until `provider_undrain`. The probes go on updating its status. Saved with the model's
    save(), so the change reaches every process's catalogue and the audit trail."""
    provider.drained_at = timezone.now()
    provider.drained_by = actor_label[:255]
    provider.drain_reason = (reason or "").strip()[:500]
    provider.save(update_fields=["drained_at", "drained_by", "drain_reason", "updated_at"])
    return provider


def provider_undrain(*, provider: Provider) -> Provider:
    provider.drained_at = None
    provider.drained_by = ""
    provider.drain_reason = ""
    provider.save(update_fields=["drained_at", "drained_by", "drain_reason", "updated_at"])
    return provider
