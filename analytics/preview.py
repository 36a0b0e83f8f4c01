"""Impact preview: what a draft (or edited) policy would have done to recorded traffic.

The request log keeps, per request, what routing read of it (`route_attributes`: the input
token estimate, max_tokens, capabilities, metadata, the caller's groups and team; the flags
that were on; when it came). The preview replays the last N days of those rows through the
routing engine twice, with the live catalogue and live provider statistics:

- **before**: the live snapshot as it is (the active policies);
- **after**: the same, with the previewed policy in place (as active; an active policy being
  edited is replaced by its edited version).

Rows the previewed policy cannot match (another model, routing policies off for that caller)
are left out in SQL; of the rest only those whose *after* decision the policy made count as
matched. Both primaries are priced on the row's recorded tokens as the request log prices a
request (gateway.service.price): the same prompt and visible answer, a thinking model's own
expected thinking, cached prompt tokens only where the same provider and model served the
row. Rows are streamed from a server-side cursor and aggregated as they come; nothing builds a
model instance per row, and identical decision inputs are decided once.
docs/policies.md#impact-preview has the figures' meanings.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from routing.catalog import catalogue_get
from routing.decisions import provider_stats
from routing.engine import (
    Caller,
    CompiledPolicy,
    Decision,
    DecisionOptions,
    ModelOffer,
    PolicyError,
    RequestContext,
    Snapshot,
    compile_policy,
    compile_snapshot,
    decide,
    is_downgrade,
)
from routing.engine.conditions import attribute_paths
from routing.engine.types import StatsView, UnknownModel
from routing.output_estimates import output_estimates_get

from .choices import RequestStatus

DEFAULT_DAYS = 7
MAX_DAYS = 90
DEFAULT_SAMPLE = 20
MAX_SAMPLE = 200
_FETCH = 20_000  # rows per round trip of the server-side cursor
_FRESH = StatsView()

# The columns read, in this order (the SQL below).
_COLUMNS = (
    "id",
    "request_id",
    "created_at",
    "user_id",
    "api_key_name",
    "requested_model",
    "provider_id",
    "model",
    "stream",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "flags",
    "route_attributes",
    "cost",
)


@dataclass
class _Side:
    """Running figures of one side (before or after) over the matched rows."""

    cost: float = 0.0
    mix: Counter = field(default_factory=Counter)
    downgrades: int = 0
    over_guard: int = 0
    no_target: int = 0
    latency_sum: float = 0.0
    latency_n: int = 0
    error_sum: float = 0.0

    def as_dict(self, matched: int, baseline: float) -> dict:
        return {
            "cost_usd": round(self.cost, 8),
            "savings_usd": round(baseline - self.cost, 8),
            "savings_percent": round(100 * (baseline - self.cost) / baseline, 2)
            if baseline
            else None,
            "mix": [
                {"target": target, "requests": n, "share": round(n / matched, 4)}
                for target, n in self.mix.most_common()
            ],
            "downgrades": self.downgrades,
            "over_cost_guard": self.over_guard,
            "no_eligible_target": self.no_target,
            "expected_latency_s": round(self.latency_sum / self.latency_n, 4)
            if self.latency_n
            else None,
            "error_exposure": round(self.error_sum / matched, 6) if matched else None,
        }


@dataclass(frozen=True)
class RowDecision:
    """One matched row's two decisions (what `preview_decisions` yields)."""

    log_id: int
    request_id: str
    created_at: datetime
    requested_model: str
    before: Decision
    after: Decision
    row: tuple  # the log columns read (_COLUMNS), for pricing on its recorded tokens


class PreviewError(ValueError):
    """The previewed policy does not compile; `issues` name the paths."""

    def __init__(self, issues):
        self.issues = issues
        super().__init__("; ".join(str(i) for i in issues))


def preview_snapshots(policy: CompiledPolicy) -> tuple[Snapshot, Snapshot]:
    """(before, after): the live snapshot, and the same with `policy` in place."""
    live = catalogue_get().snapshot
    others = [p for p in live.policies if p.id != policy.id]
    after = compile_snapshot(
        [*others, policy], live.providers.values(), live.offers.values(), version=live.version
    )
    return live, after


def preview_compile(policy_id, name, priority, conditions, actions) -> CompiledPolicy:
    try:
        return compile_policy(policy_id, name, priority, conditions, actions)
    except PolicyError as exc:
        raise PreviewError(exc.issues) from exc


def _billed(offer: ModelOffer, row, thinking_median) -> float:
    """What the row's recorded call would have cost on `offer`: the same prompt and visible
    answer; the recorded thinking and cache use where `offer` is what served the row, else the
    model's own expected thinking and no cache hit (gateway.service's baseline rule)."""
    provider_id, model = row[6], row[7]
    prompt, completion, cached, cache_write, reasoning = row[9:14]
    if offer.provider_id == provider_id and offer.model == model:
        return offer.pricing.cost(prompt, completion, cached, cache_write, reasoning)
    visible = max(completion - reasoning, 0)
    thinking = (
        reasoning
        if offer.model == model
        else thinking_median.get(offer.model, offer.thinking_tokens)
    )
    return offer.pricing.cost(prompt, visible + thinking, 0, 0, thinking)


def _rows_sql(models: list[str]) -> str:
    """The rows a policy of these models could route, with the decision's inputs extracted
    as key columns (16-22): what decides alike, whatever the rest of the row."""
    placeholders = ", ".join(["%s"] * len(models))
    if connection.vendor == "postgresql":
        flags = "l.flags ->> 'routing_policies' = 'true'"
        attrs = "l.route_attributes::text"
        flags_text = "l.flags::text"

        def part(name):
            return f"(l.route_attributes -> '{name}')::text"
    else:
        flags = "json_extract(l.flags, '$.routing_policies') = 1"
        attrs = "l.route_attributes"
        flags_text = "l.flags"

        def part(name):
            return f"json_extract(l.route_attributes, '$.{name}')"

    keys = ", ".join(
        part(name)
        for name in (
            "input_tokens",
            "max_tokens",
            "expected_output_tokens",
            "capabilities",
            "metadata",
            "username",
            "groups",
            "team",
        )
    )
    return f"""
        SELECT l.id, l.request_id, l.created_at, l.user_id, l.api_key_name, l.requested_model,
               l.provider_id, l.model, l.stream, l.prompt_tokens, l.completion_tokens,
               l.cached_tokens, l.cache_write_tokens, l.reasoning_tokens, {flags_text}, {attrs},
               l.cost, {keys}
        FROM request_log l
        WHERE l.created_at >= %s AND l.created_at < %s
          AND l.status <> '{RequestStatus.REFUSED}'
          AND l.requested_model IN ({placeholders})
          AND {flags}
    """


def _stream_rows(sql: str, params: list):
    """Rows from a server-side cursor on PostgreSQL (memory stays flat at any size)."""
    if connection.vendor == "postgresql":
        # A named cursor lives in a transaction (read-only here).
        name = f"preview_{time.monotonic_ns()}"
        with transaction.atomic(), connection.connection.cursor(name=name) as cursor:
            cursor.itersize = _FETCH
            cursor.execute(sql, params)
            yield from cursor
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(_FETCH):
            yield from batch


def preview_decisions(
    policy: CompiledPolicy, *, start: datetime, end: datetime, snapshots=None, stats=None
):
    """Every logged request in [start, end) that `policy` would route, with its decision
    before and after (a `RowDecision` each), in no particular order."""
    before_snap, after_snap = snapshots or preview_snapshots(policy)
    models = [
        m
        for m in after_snap.offers_by_model
        if policy.model_filter is None or policy.model_filter(m)
    ]
    if not models:
        return
    stats = provider_stats.live_view() if stats is None else stats
    estimates = output_estimates_get()
    cap = settings.COST_OPTIMIZATION_MAX_COST_INCREASE
    zone = settings.ROUTING_TIME_ZONE
    policies = (*before_snap.policies, *after_snap.policies)
    # Inputs that decide alike share one decision. The key holds what every decision reads
    # (model, sizes, capabilities, stream, flags) and, only when some policy reads them, the
    # metadata, the caller's attributes, the request id (a weighted order) and the moment.
    paths = set().union(*(attribute_paths(p.conditions) for p in policies))
    by_id = any(p.spec.strategy == "weighted" for p in policies)
    by_time = before_snap.uses_time or after_snap.uses_time
    by_metadata = any(path.startswith("metadata.") for path in paths)
    # A canary's cohort is the caller's, too.
    by_caller = any(path.startswith("caller.") for path in paths) or any(
        p.canary_percent is not None for p in policies
    )
    memo: dict = {}
    params = [
        connection.ops.adapt_datetimefield_value(start),
        connection.ops.adapt_datetimefield_value(end),
        *models,
    ]
    for row in _stream_rows(_rows_sql(models), params):
        (log_id, request_id, created_at, user_id, api_key, model, *_rest) = row
        flags_text, attrs_text = row[14], row[15]
        if not attrs_text or attrs_text == "{}":
            continue  # written before the log kept route attributes: nothing to replay
        key = (
            model,
            row[8],
            flags_text,
            row[17],
            row[18],
            row[19],
            row[20],
            row[21] if by_metadata else None,
            (user_id, api_key, row[22], row[23], row[24]) if by_caller else None,
            request_id if by_id else None,
            created_at if by_time else None,
        )
        found = memo.get(key)
        if found is None:
            found = memo[key] = _decide_row(
                row, before_snap, after_snap, policy, stats, estimates, cap, zone
            )
        if found is False:
            continue
        before, after = found
        yield RowDecision(log_id, request_id, created_at, model, before, after, row)


def _decide_row(row, before_snap, after_snap, policy, stats, estimates, cap, zone):
    """(before, after) decisions, or False when the policy does not route the row."""
    (_, request_id, created_at, user_id, api_key, model, _, _, stream) = row[:9]
    flags = json.loads(row[14]) if isinstance(row[14], str) else (row[14] or {})
    attrs = json.loads(row[15]) if isinstance(row[15], str) else row[15]
    user = "" if user_id is None else str(user_id)
    if isinstance(created_at, str):  # SQLite
        created_at = datetime.fromisoformat(created_at)
    if timezone.is_naive(created_at):
        created_at = created_at.replace(tzinfo=UTC)
    ctx = RequestContext(
        request_id=request_id,
        model=model,
        input_tokens=int(attrs.get("input_tokens") or 0),
        max_tokens=attrs.get("max_tokens"),
        stream=bool(stream),
        capabilities=frozenset(attrs.get("capabilities") or ()),
        metadata=attrs.get("metadata") or {},
        caller=Caller(
            user_id=user,
            username=attrs.get("username"),
            groups=frozenset(attrs.get("groups") or ()),
            api_key=api_key or None,
            team=attrs.get("team") or None,
        ),
        now=created_at,
        expected_output_tokens=attrs.get("expected_output_tokens"),
        thinking_tokens=estimates.thinking,
        cached_share=estimates.cached_share,
    )
    options = DecisionOptions(
        use_policies=bool(flags.get("routing_policies")),
        cost_optimization=bool(flags.get("cost_optimization")),
        intelligent=bool(flags.get("intelligent_routing", True)),
        fallback=bool(flags.get("intelligent_routing_fallback", True)),
        max_cost_increase=cap,
        time_zone=zone,
    )
    try:
        after = decide(ctx, after_snap, stats, options)
        if after.policy_id != policy.id:
            return False
        before = decide(ctx, before_snap, stats, options)
    except UnknownModel:
        return False
    return before, after


def _priced(item: RowDecision, snapshot: Snapshot, stats, thinking_median) -> dict:
    """Both sides' primary target of one row, priced on its recorded tokens, with the live
    latency and error rate of its provider; the baseline and what the row really cost."""
    row = item.row
    base_offer = snapshot.default_offers[item.requested_model]
    baseline = _billed(base_offer, row, thinking_median)
    result = {"baseline": baseline, "recorded": float(row[16] or 0)}
    for name, decision in (("before", item.before), ("after", item.after)):
        primary = decision.primary
        offer = snapshot.offers.get((primary.provider_id, primary.model)) if primary else None
        if offer is None:
            result[name] = {
                "target": "(no eligible target)",
                "cost": 0.0,
                "downgrade": False,
                "over_guard": False,
                "latency": None,
                "error_rate": 0.0,
            }
            continue
        cost = _billed(offer, row, thinking_median)
        view = stats.get(offer.provider_id, _FRESH)
        info = snapshot.providers.get(offer.provider_id)
        latency = view.latency_s
        if latency is None and info is not None:
            latency = info.avg_response_time
        result[name] = {
            "target": f"{offer.provider_id}/{offer.model}",
            "cost": cost,
            "downgrade": is_downgrade(base_offer.quality_tier, offer.quality_tier),
            "over_guard": primary.expected_cost > primary_limit(decision),
            "latency": latency,
            "error_rate": view.error_rate,
        }
    return result


def primary_limit(decision: Decision) -> float:
    """The cost guard's limit on the primary's expected cost (infinite without a guard)."""
    cap = settings.COST_OPTIMIZATION_MAX_COST_INCREASE
    if cap is None or decision.baseline is None:
        return float("inf")
    return decision.baseline.expected_cost * (1 + max(cap, 0.0)) * (1 + 1e-9)


def policy_preview(
    policy: CompiledPolicy,
    *,
    days: int = DEFAULT_DAYS,
    sample_size: int = DEFAULT_SAMPLE,
    now: datetime | None = None,
) -> dict:
    """The impact preview's figures (the API's and the admin page's answer)."""
    started = time.perf_counter()
    now = now or timezone.now()
    start = now - timedelta(days=days)
    before_snap, after_snap = preview_snapshots(policy)
    stats = provider_stats.live_view()
    estimates = output_estimates_get()
    matched = changed = 0
    baseline = recorded = 0.0
    sides = {"before": _Side(), "after": _Side()}
    sample: list[dict] = []
    thinking_median = estimates.thinking_median
    for item in preview_decisions(
        policy, start=start, end=now, snapshots=(before_snap, after_snap), stats=stats
    ):
        matched += 1
        figures = _priced(item, after_snap, stats, thinking_median)
        baseline += figures["baseline"]
        recorded += figures["recorded"]
        for name, side in sides.items():
            part = figures[name]
            side.cost += part["cost"]
            side.mix[part["target"]] += 1
            side.downgrades += part["downgrade"]
            side.over_guard += part["over_guard"]
            side.no_target += part["target"] == "(no eligible target)"
            if part["latency"] is not None:
                side.latency_sum += part["latency"]
                side.latency_n += 1
            side.error_sum += part["error_rate"]
        if figures["before"]["target"] != figures["after"]["target"]:
            changed += 1
            if len(sample) < sample_size:
                sample.append(
                    {
                        "request_id": item.request_id,
                        "created_at": item.created_at.isoformat(),
                        "requested_model": item.requested_model,
                        "before": figures["before"]["target"],
                        "after": figures["after"]["target"],
                        "after_reason": item.after.primary.reason if item.after.primary else "",
                        "reasons": list(item.after.reasons),
                    }
                )
    before_mix = sides["before"].as_dict(matched, baseline)["mix"]
    after_mix = sides["after"].as_dict(matched, baseline)["mix"]
    blank = {"target": "", "requests": None}
    return {
        "mix_rows": [
            (
                before_mix[i] if i < len(before_mix) else blank,
                after_mix[i] if i < len(after_mix) else blank,
            )
            for i in range(max(len(before_mix), len(after_mix)))
        ],
        "policy_id": policy.id,
        "policy_name": policy.name,
        "start": start,
        "end": now,
        "days": days,
        "requests_matched": matched,
        "decisions_changed": changed,
        "baseline_cost_usd": round(baseline, 8),
        "recorded_cost_usd": round(recorded, 8),
        "before": sides["before"].as_dict(matched, baseline),
        "after": sides["after"].as_dict(matched, baseline),
        "changed_sample": sample,
        "seconds": round(time.perf_counter() - started, 3),
    }
