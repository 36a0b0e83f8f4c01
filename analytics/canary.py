"""The canary's verdict: its cohort against its control cohort, from the request log.

`canary_evaluate()` runs under Celery beat (`evaluate_canaries_task`, every
CANARY_EVALUATION_INTERVAL_SECONDS). For each running canary it compares, over the requests
logged since the canary started with its policy as `canary_policy_id`:

- error rate: failed requests (status error) / requests the client waited for;
- latency p95 of the successful ones;
- cost per request;
- downgrade share (requests served by a lower quality tier).

Once both cohorts have `min_requests`, a canary worse than its control by more than its guard
on any of them is rolled back at once (policy back to draft, audited, the alert metric
`ai_routing_canary_rollbacks_total` counts it, and the operators get an email); one that is
not, once `bake_minutes` have passed, is promoted (active for everyone). Defaults in
routing.models.CANARY_GUARD_DEFAULTS; docs/policies.md#canary-activation.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Avg, Count, Q, Sum
from django.utils import timezone

from accounts.audit import audit_actor
from routing.canary import policy_canary_finish, policy_canary_record
from routing.choices import CanaryState
from routing.engine.canary import CANARY, CONTROL
from routing.models import PolicyCanary

from .choices import RequestStatus
from .models import RequestLog

logger = logging.getLogger(__name__)
ACTOR = "canary evaluation"


def _p95(rows) -> float | None:
    latencies = sorted(rows.filter(status=RequestStatus.SUCCESS).values_list("latency", flat=True))
    if not latencies:
        return None
    return latencies[max(1, math.ceil(0.95 * len(latencies))) - 1]


def canary_cohorts(canary: PolicyCanary, *, now: datetime | None = None) -> dict:
    """{cohort: {requests, error_rate, latency_p95_s, cost_per_request_usd, downgrade_share}}"""
    now = now or timezone.now()
    rows = RequestLog.objects.filter(
        canary_policy_id=canary.policy_id, created_at__gte=canary.started_at, created_at__lte=now
    )
    figures = {}
    for cohort in (CANARY, CONTROL):
        mine = rows.filter(canary_cohort=cohort)
        totals = mine.aggregate(
            n=Count("id"),
            errors=Count("id", filter=Q(status=RequestStatus.ERROR)),
            cancelled=Count("id", filter=Q(status=RequestStatus.CANCELLED)),
            cost=Sum("cost"),
            downgrades=Count("id", filter=Q(downgrade=True)),
            latency=Avg("latency", filter=Q(status=RequestStatus.SUCCESS)),
        )
        n = totals["n"] or 0
        waited = n - (totals["cancelled"] or 0)
        figures[cohort] = {
            "requests": n,
            "error_rate": round(totals["errors"] / waited, 4) if waited else None,
            "latency_p95_s": _p95(mine),
            "cost_per_request_usd": float(totals["cost"] or 0) / n if n else None,
            "downgrade_share": round(totals["downgrades"] / n, 4) if n else None,
        }
    return figures


def canary_verdict(figures: dict, guard: dict) -> tuple[str, list[str]]:
    """("worse", why) / ("ok", []) / ("wait", why): the canary against the control."""
    canary, control = figures[CANARY], figures[CONTROL]
    need = int(guard["min_requests"])
    if canary["requests"] < need or control["requests"] < need:
        return "wait", [
            f"{canary['requests']} canary and {control['requests']} control requests so far; "
            f"{need} of each needed"
        ]
    worse = []
    if canary["error_rate"] - control["error_rate"] > guard["max_error_rate_increase"]:
        worse.append(
            f"error rate {canary['error_rate']:.1%} vs {control['error_rate']:.1%} "
            f"(more than +{guard['max_error_rate_increase']:.1%})"
        )
    c95, k95 = canary["latency_p95_s"], control["latency_p95_s"]
    if (
        c95 is not None
        and k95
        and c95 > k95 * (1 + guard["max_latency_p95_increase"])
        and c95 - k95 > guard["min_latency_p95_delta_s"]
    ):
        worse.append(
            f"latency p95 {c95:.3f}s vs {k95:.3f}s "
            f"(more than +{guard['max_latency_p95_increase']:.0%})"
        )
    ccost, kcost = canary["cost_per_request_usd"], control["cost_per_request_usd"]
    if ccost is not None and kcost and ccost > kcost * (1 + guard["max_cost_increase"]):
        worse.append(
            f"cost per request ${ccost:.6f} vs ${kcost:.6f} "
            f"(more than +{guard['max_cost_increase']:.0%})"
        )
    if (
        canary["downgrade_share"] - control["downgrade_share"]
        > guard["max_downgrade_share_increase"]
    ):
        worse.append(
            f"downgraded {canary['downgrade_share']:.1%} vs {control['downgrade_share']:.1%} "
            f"(more than +{guard['max_downgrade_share_increase']:.1%})"
        )
    return ("worse", worse) if worse else ("ok", [])


def canary_evaluate(*, now: datetime | None = None) -> list[dict]:
    """Judge every running canary once: roll back, promote, or keep waiting."""
    now = now or timezone.now()
    results = []
    running = PolicyCanary.objects.filter(state=CanaryState.RUNNING).select_related("policy")
    for canary in running:
        figures = canary_cohorts(canary, now=now)
        verdict, why = canary_verdict(figures, canary.guard_values())
        figures["verdict"] = verdict
        figures["evaluated_at"] = now.isoformat()
        baked = now >= canary.started_at + timedelta(minutes=canary.bake_minutes)
        outcome = "running"
        with audit_actor(ACTOR, via="task"):
            if verdict == "worse":
                reason = "rolled back: canary worse than control: " + "; ".join(why)
                policy_canary_finish(
                    canary=canary, state=CanaryState.ROLLED_BACK, reason=reason, figures=figures
                )
                outcome = "rolled_back"
                logger.warning("canary of policy %s %s", canary.policy.name, reason)
                _notify(canary, reason, figures)
            elif verdict == "ok" and baked:
                reason = f"promoted after {canary.bake_minutes} min: no worse than control"
                policy_canary_finish(
                    canary=canary, state=CanaryState.PROMOTED, reason=reason, figures=figures
                )
                outcome = "promoted"
                logger.info("canary of policy %s %s", canary.policy.name, reason)
            else:
                policy_canary_record(canary=canary, figures=figures)
        results.append(
            {"policy": canary.policy.name, "canary": canary.pk, "outcome": outcome, "why": why}
        )
    return results


def _notify(canary: PolicyCanary, reason: str, figures: dict) -> None:
    recipients = list(settings.CANARY_ALERT_RECIPIENTS or settings.ANALYTICS_REPORT_RECIPIENTS)
    if not recipients:
        logger.info("canary rollback not emailed: no CANARY_ALERT_RECIPIENTS")
        return
    lines = [
        f"The canary of routing policy '{canary.policy.name}' ({canary.percent:g} % of its "
        f"callers, started {canary.started_at:%Y-%m-%d %H:%M} UTC) was rolled back "
        "automatically; the policy is a draft again.",
        "",
        reason,
        "",
    ]
    for cohort in (CANARY, CONTROL):
        f = figures[cohort]
        lines.append(
            f"{cohort}: {f['requests']} requests, error rate {f['error_rate']}, latency p95 "
            f"{f['latency_p95_s']} s, cost per request {f['cost_per_request_usd']} USD, "
            f"downgraded {f['downgrade_share']}"
        )
    lines += ["", "docs/policies.md#canary-activation"]
    send_mail(
        subject=f"[Auterity] canary rolled back: {canary.policy.name}",
        message="\n".join(lines),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )
