"""Benchmark of the routing engine's hot path: `decide()` against a large snapshot.

    python -m bench.bench_engine [--decisions 20000] [--policies 1000] [--trace CSV]

The world: 50 providers, 40 models, ~200 offers; 1,000 active policies written the way
operators write them (per-model rules, tenant and team rules, header and time windows, $or
combinations), almost all of which do not match, and the matching one ~95% of the way down
the list. Live stats come from a real `ProviderStats` fed with samples. Request sizes come
from the Azure LLM trace when `--trace` points at it (ContextTokens, GeneratedTokens), else
from a seeded synthetic mix. Target: p99 of one decide() <= 500 us.
"""

from __future__ import annotations

import argparse
import csv
import gc
import math
import os
import platform
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from routing.engine import (
    Caller,
    DecisionOptions,
    ModelOffer,
    ProviderInfo,
    ProviderStats,
    RequestContext,
    compile_policy,
    compile_snapshot,
    decide,
)
from routing.engine.conditions import facts_for

# (input, output) USD per token, from public list prices: small, mid and large models.
PRICE_TIERS = [
    (0.1e-6, 0.4e-6),
    (0.15e-6, 0.6e-6),
    (0.3e-6, 2.5e-6),
    (0.4e-6, 1.6e-6),
    (1.0e-6, 5.0e-6),
    (1.25e-6, 10e-6),
    (2.0e-6, 8.0e-6),
    (2.5e-6, 10e-6),
    (3.0e-6, 15e-6),
    (5.0e-6, 25e-6),
]
ALL_CAPS = frozenset({"streaming", "tools", "vision", "json_mode"})
HOT_MODELS = ("model-00", "model-01", "model-02")  # most traffic, most policies


def build_world(n_providers: int, n_models: int, offers_per_model: int, rng: random.Random):
    providers = [
        ProviderInfo(
            f"provider-{i:02d}",
            rng.choice(["openai", "anthropic", "gemini", "azure_openai", "mistral"]),
            rng.choices(["healthy", "degraded", "down"], weights=[90, 7, 3])[0],
            rng.choice([None, 50, 100, 500]),
            round(rng.uniform(0.3, 4.0), 2),
        )
        for i in range(n_providers)
    ]
    offers = []
    for m in range(n_models):
        model = f"model-{m:02d}"
        base_in, base_out = rng.choice(PRICE_TIERS)
        serving = rng.sample(providers, offers_per_model)
        for j, provider in enumerate(serving):
            markup = 1.0 if j == 0 else rng.uniform(0.8, 1.3)
            offers.append(
                ModelOffer(
                    provider.id,
                    model,
                    f"{model}-{provider.type}",
                    base_in * markup,
                    base_out * markup,
                    rng.choice([128_000, 200_000, 1_000_000]),
                    rng.choice([8_192, 16_384, 65_536]),
                    ALL_CAPS if rng.random() < 0.8 else frozenset({"streaming", "tools"}),
                    j == 0,
                )
            )
    return providers, offers


def policy_conditions(i: int, models: list[str], rng: random.Random) -> dict:
    """A non-matching policy; the mix decides how many survive the per-model index."""
    kind = i % 10
    hot = rng.choice(HOT_MODELS)
    if kind in (0, 1):  # a model-specific rule for a tenant that never calls
        return {"model": rng.choice(models), "metadata.tenant": f"tenant-{i}"}
    if kind == 2:  # the hot models, for a group nobody is in
        return {"model": {"$in": [hot, rng.choice(models)]}, "caller.groups": f"group-{i}"}
    if kind == 3:  # header-driven rule
        return {"header.x-team": {"$in": [f"team-{i}", f"team-{i + 1}"]}, "stream": True}
    if kind == 4:  # time window + weekday
        return {
            "time.hour": {"$gte": 2, "$lt": 4},
            "time.weekday": {"$in": ["sat", "sun"]},
            "metadata.batch": True,
        }
    if kind == 5:  # regex on a caller attribute
        return {"caller.team": {"$regex": f"^ops-{i}-"}, "input_tokens": {"$gt": 1000}}
    if kind == 6:  # $or of two impossible branches
        return {
            "$or": [
                {"metadata.tier": f"tier-{i}"},
                {"$and": [{"caller.api_key": f"key-{i}"}, {"max_tokens": {"$lt": 10}}]},
            ]
        }
    if kind == 7:  # big-prompt rule for a model family
        return {
            "model": {"$regex": "^model-0"},
            "input_tokens": {"$gt": 900_000},
        }
    if kind == 8:  # negation that fails
        return {"$not": {"metadata.region": {"$exists": False}}, "metadata.region": f"r{i}"}
    return {"model": hot, "metadata.priority": {"$in": [f"p{i}", f"q{i}"]}}


def policy_actions(offers: list[ModelOffer], rng: random.Random) -> dict:
    strategy = rng.choice(["priority", "cheapest", "fastest", "weighted", "balanced"])
    targets = [{"provider": o.provider_id, "model": o.model} for o in rng.sample(offers, 3)]
    return {"strategy": strategy, "targets": targets}


def build_policies(n: int, offers: list[ModelOffer], rng: random.Random):
    models = sorted({o.model for o in offers})
    policies = []
    match_at = int(n * 0.95)
    for i in range(n):
        if i == match_at:
            conditions = {
                "model": {"$in": list(HOT_MODELS)},
                "caller.groups": "enterprise",
                "metadata.tier": "gold",
                "$not": {"header.x-debug": "1"},
            }
            actions = {
                "strategy": "cheapest",
                "targets": [{"provider": "*", "model": m} for m in HOT_MODELS]
                + [{"provider": "*", "model": "model-05"}],
                "constraints": {"capabilities": ["tools"], "max_latency_s": 5},
                "retry": {"attempts": 2},
            }
            name = f"policy-{i:04d}-match"
        else:
            conditions = policy_conditions(i, models, rng)
            actions = policy_actions(offers, rng)
            name = f"policy-{i:04d}"
        policies.append(compile_policy(f"id-{i:04d}", name, i, conditions, actions))
    return policies


def request_sizes(trace: str | None, rng: random.Random, n: int) -> list[tuple[int, int]]:
    if trace:
        with open(trace, newline="") as f:
            rows = [(int(r["ContextTokens"]), int(r["GeneratedTokens"])) for r in csv.DictReader(f)]
        return [rng.choice(rows) for _ in range(n)]
    return [(int(rng.lognormvariate(7, 1.2)), int(rng.lognormvariate(5, 1))) for _ in range(n)]


def build_requests(n: int, sizes, rng: random.Random) -> list[RequestContext]:
    start = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    requests = []
    for i in range(n):
        matching = rng.random() < 0.5  # half hit the late policy, half match nothing
        input_tokens, output_tokens = sizes[i]
        requests.append(
            RequestContext(
                request_id=f"req-{i}",
                model=rng.choice(HOT_MODELS),
                input_tokens=input_tokens,
                max_tokens=output_tokens if rng.random() < 0.7 else None,
                stream=rng.random() < 0.6,
                capabilities=frozenset({"tools"}) if rng.random() < 0.3 else frozenset(),
                metadata={"tier": "gold" if matching else "silver", "tenant": "acme"},
                headers={"x-team": "search", "user-agent": "openai-python/1.0"},
                caller=Caller(
                    user_id=str(i % 500),
                    username=f"user{i % 500}",
                    groups=frozenset({"enterprise"} if matching else {"beta-testers"}),
                    api_key="prod-key",
                    team="search",
                ),
                now=start + timedelta(seconds=i),
            )
        )
    return requests


def feed_stats(stats: ProviderStats, providers: list[ProviderInfo], rng: random.Random) -> None:
    now = 1000.0
    for _ in range(5000):
        provider = rng.choice(providers)
        now += 0.01
        stats.begin(provider.id, now=now)
        ok = rng.random() > 0.03
        stats.end(
            provider.id,
            rng.uniform(0.2, 3.0),
            ok,
            None if ok else "upstream_error",
            now=now + rng.uniform(0.2, 3.0),
        )


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--policies", type=int, default=1_000)
    parser.add_argument("--providers", type=int, default=50)
    parser.add_argument("--models", type=int, default=40)
    parser.add_argument("--offers-per-model", type=int, default=5)
    parser.add_argument("--trace", help="Azure LLM trace CSV for request sizes")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    providers, offers = build_world(args.providers, args.models, args.offers_per_model, rng)
    t0 = time.perf_counter()
    policies = build_policies(args.policies, offers, rng)
    t1 = time.perf_counter()
    snapshot = compile_snapshot(policies, providers, offers, version=1)
    t2 = time.perf_counter()

    stats = ProviderStats()
    feed_stats(stats, providers, rng)
    t3 = time.perf_counter()
    view = stats.snapshot_view(now=1100.0)
    t4 = time.perf_counter()

    sizes = request_sizes(args.trace, rng, args.decisions)
    requests = build_requests(args.decisions, sizes, rng)
    options = DecisionOptions()

    def engine_only(ctx: RequestContext):
        return decide(ctx, snapshot, view, options)

    def gateway_path(ctx: RequestContext):
        # What the gateway does per request: a lazy live view (figures shared between
        # requests for up to 50 ms), then the decision.
        return decide(ctx, snapshot, stats.live_view(), options)

    def linear_scan(ctx: RequestContext):
        # Policy matching without the index: every active policy in order until one matches.
        facts = facts_for(ctx)
        return next((p for p in snapshot.policies if p.predicate(facts)), None)

    results = {
        "decide()": measure(engine_only, requests),
        "live_view() + decide()": measure(gateway_path, requests),
        "policy matching by linear scan (no index)": measure(linear_scan, requests),
    }
    matched = sum(decide(ctx, snapshot, view, options).policy_id is not None for ctx in requests)
    evaluated = statistics.fmean(
        len(snapshot.policy_index[ctx.model].candidates(facts_for(ctx))) for ctx in requests
    )
    unguarded = statistics.fmean(len(snapshot.policy_index[m].unguarded) for m in HOT_MODELS)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {load:.2f}; one empty Python call takes {call_cost_ns():.0f} ns "
        f"(~50 ns on a current laptop: scale the figures below accordingly)"
    )
    print(
        f"world: {len(providers)} providers, {len(offers)} offers, "
        f"{len(snapshot.policies)} active policies"
    )
    print(
        f"policies evaluated per request after the index: {evaluated:.0f} on average "
        f"(unguarded: {unguarded:.0f}); the matching one is #{int(args.policies * 0.95) + 1}"
    )
    print(f"compile {args.policies} policies: {(t1 - t0) * 1000:.1f} ms")
    print(f"compile_snapshot: {(t2 - t1) * 1000:.1f} ms")
    print(
        f"stats: 5,000 samples in {(t3 - t2) * 1000:.1f} ms; "
        f"snapshot_view of {len(view)} providers: {(t4 - t3) * 1e6:.0f} us"
    )
    print(f"decisions: {len(requests)} ({matched} matched the late policy)")
    print("times in microseconds; wall = elapsed, cpu = this thread's CPU time")
    for label, (wall, cpu) in results.items():
        print(f"{label}:")
        print(f"  wall {summary(wall)}")
        print(f"  cpu  {summary(cpu)}")
    wall_p99 = percentile(results["decide()"][0], 0.99)
    cpu_p99 = percentile(results["decide()"][1], 0.99)
    verdict = "OK" if wall_p99 <= 500 else "OVER TARGET"
    print(f"target p99 of decide() <= 500 us: {verdict} (wall {wall_p99:.0f}, cpu {cpu_p99:.0f})")


def measure(fn, requests: list[RequestContext]) -> tuple[list[float], list[float]]:
    """Per-call wall and CPU time in microseconds, after a warm-up, sorted."""
    for ctx in requests[:1000]:
        fn(ctx)
    gc.collect()
    wall: list[float] = []
    cpu: list[float] = []
    wall_clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for ctx in requests:
        w0, c0 = wall_clock(), cpu_clock()
        fn(ctx)
        c1, w1 = cpu_clock(), wall_clock()
        wall.append((w1 - w0) / 1000)
        cpu.append((c1 - c0) / 1000)
    wall.sort()
    cpu.sort()
    return wall, cpu


def call_cost_ns() -> float:
    """How fast this interpreter on this machine is, to compare runs across machines."""

    def nothing() -> None:
        return None

    best = math.inf
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(100_000):
            nothing()
        best = min(best, (time.perf_counter_ns() - start) / 100_000)
    return best


def summary(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 0.50):7.1f}  p90 {percentile(values, 0.90):7.1f}  "
        f"p99 {percentile(values, 0.99):7.1f}  max {values[-1]:8.1f}  "
        f"mean {statistics.fmean(values):7.1f}"
    )


if __name__ == "__main__":
    main()
