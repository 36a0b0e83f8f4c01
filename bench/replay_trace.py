"""Replay a real LLM trace through the demo policies and report what routing saves.

    .venv/bin/python -m bench.replay_trace [--limit N] [--trace CSV] [--seed 2023]
        [--mix gpt-4o=35,gpt-4o-mini=30,claude-sonnet-4-5=20,gemini-2.5-pro=15]
        [--batch-share 0.10] [--tools-share 0.25] [--max-tokens none|trace|N]
        [--thinking-tokens catalogue|N] [--live N]

The trace is Azure's LLM inference trace of a conversation service (2023): 19,366 requests
with their real prompt (ContextTokens) and completion (GeneratedTokens) sizes, read from
`../shared/data/azure_llm_trace_conv_2023.csv` next to the repository unless `--trace` says
otherwise. The trace does not say which model each request asked for, so a seeded mix is laid
over it (`--mix`, percentages, default above); `--batch-share` of the requests carry
`metadata.priority=batch` and `--tools-share` send a tool definition (so the Claude policy
keeps them on Sonnet). Every request comes from an `enterprise` caller (routing policies on),
the catalogue's quality tiers are enforced (routing/quality_data.json) and the cost guard is
at its setting (5 %). Four scenarios are replayed: the `cost_optimization` sample at the
seed's 10 % and at 100 %, each with the demo policies as shipped (the batch policy downgrades,
with leave) and with no downgrade at all (the batch policy inactive); the table gives each
one's saving, downgrades, primaries over the guard and requests whose real cost came out above
their baseline plus the guard's cap. The first scenario is then detailed.

Each request is a real chat body, one user message of exactly ContextTokens words that are
one token each in OpenAI's o200k_base and four characters long (" the", " and"...), so the
gateway's tokenizer and the simulator's count agree with the trace; their order is shuffled
per request so no two prompts share a prefix a provider could cache. It is decided by
`routing.decisions.request_simulate`,
the function behind POST /api/routing/simulate and the policy admin's dry run, against a
throwaway SQLite database seeded like `seed_demo`: the demo providers and their public list
prices (providers/demo_prices.json), the demo policies (routing/demo.py), the seed's flags.
The primary target serves the request. Its cost and the baseline (the same usage on the
requested model's default provider, as the request log and the dashboard price it, with the
requested model's own thinking when another model served) come from the full price rules
(gateway.service.price: the models' long-context tiers; no prompt-cache hits) on the trace's
real token counts.

Thinking tokens: the trace's GeneratedTokens are the visible answer. A model that thinks bills
its thinking as output on top of it; the replay assumes each call of a thinking model spends
`--thinking-tokens` (default `catalogue`: the model's expected_thinking_tokens, 1,024 for the
demo's gemini-2.5-pro, gemini-2.5-flash, gpt-5*, o3-mini; 0 for the others); the baseline
is billed the requested model's own thinking (a thinking model routed to one that does not
saves it). A second figure prices the baseline on the served usage as it is, crediting no
thinking. `--thinking-tokens 0` prices as if no model thought.

By default the bodies carry no `max_tokens`, as most chat clients send, so the engine expects
the default visible output (ROUTING_EXPECTED_OUTPUT_DEFAULT, 424: the trace's own p90; a fresh
request log has observed nothing) plus each target's thinking when it compares costs;
`--max-tokens trace` sends the trace's GeneratedTokens (perfect foresight), `--max-tokens N` a
fixed cap; the engine then expects thinking and answer together within it, and the replay
bills them so (thinking first, the visible answer cut), as OpenAI and Google count them.

`--live N` also sends the first N requests through the running gateway over HTTP (a Django
server on a free port, the provider simulator on another, `max_tokens` = GeneratedTokens so
the simulator answers with exactly the trace's completion size) and compares the request
log's cost and baseline with the engine-only figure for the same N requests. The simulator
bills a thinking model's thinking on top of `max_tokens` (real providers count it against the
cap), so where a thinking model serves the two differ: the live lines report it as is.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from simulator import SimulatorServer

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRACE = ROOT.parent / "shared" / "data" / "azure_llm_trace_conv_2023.csv"
DEFAULT_MIX = "gpt-4o=35,gpt-4o-mini=30,claude-sonnet-4-5=20,gemini-2.5-pro=15"
# Words of four characters with their space, each exactly one token in o200k_base (checked by
# check_filler()), so n of them are n tokens for the tokenizer and 4n characters for chars/4.
FILLER_WORDS = tuple(
    f" {w}"
    for w in [
        "the",
        "and",
        "for",
        "are",
        "but",
        "not",
        "you",
        "all",
        "any",
        "can",
        "had",
        "her",
        "was",
        "one",
        "our",
        "out",
        "day",
        "get",
        "has",
        "him",
        "his",
        "how",
        "man",
        "new",
        "now",
        "old",
        "see",
        "two",
        "way",
        "who",
        "boy",
        "did",
        "its",
        "let",
        "put",
        "say",
        "she",
        "too",
        "use",
    ]
)
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Look up a customer order by its id.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
    },
}


@dataclass(frozen=True)
class TraceRequest:
    index: int
    context_tokens: int
    generated_tokens: int
    model: str
    batch: bool
    tools: bool

    @property
    def request_id(self) -> str:
        return f"replay-{self.index:05d}"

    def body(self, max_tokens: str) -> dict:
        """The chat body a client would send: ContextTokens one-token words, in an order of
        this request's own."""
        words = list(FILLER_WORDS)
        random.Random(self.index).shuffle(words)
        repeats = self.context_tokens // len(words) + 1
        text = "".join((words * repeats)[: self.context_tokens])
        body = {"model": self.model, "messages": [{"role": "user", "content": text}]}
        if self.batch:
            body["metadata"] = {"priority": "batch"}
        if self.tools:
            body["tools"] = [TOOL]
        if max_tokens == "trace":
            body["max_tokens"] = self.generated_tokens
        elif max_tokens != "none":
            body["max_tokens"] = int(max_tokens)
        return body


@dataclass
class Served:
    """One request as routed: who served it and what it cost against the baseline."""

    request: TraceRequest
    policy: str
    provider_model: str
    baseline: str
    cost: Decimal
    baseline_cost: Decimal
    over_guard: bool
    # The baseline without crediting the requested model's own thinking: the served call's
    # usage as it is, priced on the baseline (the request log's rule before issue 18).
    served_usage_baseline_cost: Decimal = Decimal(0)
    downgrade: bool = False


def parse_mix(text: str) -> list[tuple[str, float]]:
    mix = []
    for part in text.split(","):
        model, _, share = part.partition("=")
        if not model.strip() or not share:
            raise argparse.ArgumentTypeError(f"--mix: expected model=percent, got {part!r}")
        mix.append((model.strip(), float(share)))
    if sum(share for _, share in mix) <= 0:
        raise argparse.ArgumentTypeError("--mix: the shares must add up to more than 0")
    return mix


def load_trace(path: Path, limit: int | None, mix, batch_share, tools_share, seed):
    """The trace's rows with a model, batch tag and tools drawn from one seeded generator."""
    rng = random.Random(seed)
    models = [m for m, _ in mix]
    weights = [w for _, w in mix]
    requests = []
    with path.open(newline="") as handle:
        for index, row in enumerate(csv.DictReader(handle)):
            if limit is not None and index >= limit:
                break
            requests.append(
                TraceRequest(
                    index=index,
                    context_tokens=max(1, int(row["ContextTokens"])),
                    generated_tokens=max(1, int(row["GeneratedTokens"])),
                    model=rng.choices(models, weights)[0],
                    batch=rng.random() < batch_share,
                    tools=rng.random() < tools_share,
                )
            )
    return requests


# --- the world: a throwaway database seeded like seed_demo --------------------------------


def setup_django(workdir: Path) -> None:
    """Point Django at a fresh SQLite file and an in-process cache; never at a real database."""
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'replay.sqlite3'}"
    os.environ["CACHE_URL"] = "locmemcache://"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auterity.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("LOG_ACCESS", "false")
    # The live replay is one caller sending a burst; the abuse limits are not what is measured.
    os.environ.setdefault("RATE_LIMIT_PER_MINUTE", "1000000")
    os.environ.setdefault("RATE_LIMIT_PER_HOUR", "1000000")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed_world(simulator_url: str):
    """Demo catalogue, demo policies, seed flags with cost_optimization at 100 %, and an
    enterprise caller's API key. Returns (api_key, raw_key)."""
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from waffle.models import Sample

    from accounts.services import api_key_create
    from providers.demo import demo_catalogue_install
    from routing import flags
    from routing.demo import demo_policies_install
    from routing.quality import model_quality_sync

    demo_catalogue_install(simulator_url)
    model_quality_sync()
    demo_policies_install()
    flags.install_seed_flags(apps)
    Sample.objects.filter(name=flags.COST_OPTIMIZATION).update(percent=100)
    Sample.objects.get(name=flags.COST_OPTIMIZATION).flush()
    flags.flags_reset()
    user = get_user_model().objects.create_user("replay", password=None)
    user.groups.add(Group.objects.get_or_create(name="enterprise")[0])
    return api_key_create(user=user, name="replay", scopes=["ai:execute", "routing:view"])


# --- engine-only replay ---------------------------------------------------------------------


def check_filler() -> None:
    """The filler words are one token each, and stay so side by side (the tokenizer's
    pre-split never joins two of them)."""
    from providers.adapters import tokens

    count = tokens.counter(tokens.O200K)
    single = [w for w in FILLER_WORDS if count(w) != 1]
    if single or count("".join(FILLER_WORDS * 3)) != 3 * len(FILLER_WORDS):
        sys.exit(f"filler words are not one o200k_base token each: {single}")


def thinking_of(offer, assumption: str) -> int:
    """Thinking tokens the replay assumes a call of `offer`'s model spends."""
    return offer.thinking_tokens if assumption == "catalogue" else int(assumption)


def billed_usage(req: TraceRequest, thinking: int, max_tokens: str):
    """The usage a call bills: the trace's answer plus `thinking`, and with a `max_tokens` cap
    both together at most that (thinking first: OpenAI and Google count it against the cap, so
    the visible answer is what gets cut), as the engine expects them."""
    from providers.adapters.types import Usage

    visible = req.generated_tokens
    cap = {"none": None, "trace": req.generated_tokens}.get(max_tokens)
    if cap is None and max_tokens not in ("none", "trace"):
        cap = int(max_tokens)
    if cap is not None:
        thinking = min(thinking, cap)
        visible = min(visible, cap - thinking)
    return Usage(
        prompt_tokens=req.context_tokens,
        completion_tokens=visible + thinking,
        reasoning_tokens=thinking,
    )


def replay_decisions(
    requests, principal, max_tokens: str, thinking: str = "catalogue"
) -> tuple[list[Served], float]:
    from django.conf import settings

    from gateway.service import price
    from routing.catalog import catalogue_get
    from routing.decisions import request_simulate, simulation_request
    from routing.engine import OVER_COST_GUARD, is_downgrade

    offers = catalogue_get().offers
    limit = (1 + settings.COST_OPTIMIZATION_MAX_COST_INCREASE) * (1 + 1e-9)
    served = []
    started = time.perf_counter()
    for req in requests:
        answer = request_simulate(
            principal=principal,
            request=simulation_request(req.body(max_tokens)),
            request_id=req.request_id,
            headers={},
        )
        decision = answer["decision"]
        if not decision["targets"]:
            sys.exit(f"{req.request_id} ({req.model}): no target: {decision['reasons']}")
        primary, baseline = decision["targets"][0], decision["baseline"]
        offer = offers[(primary["provider_id"], primary["model"])]
        base_offer = offers[(baseline["provider_id"], baseline["model"])]
        # Priced as the gateway prices the request-log row (gateway.service: the served call's
        # usage; its baseline with the requested model's own thinking when another model
        # served), on the trace's real token counts.
        usage = billed_usage(req, thinking_of(offer, thinking), max_tokens)
        if offer.model == base_offer.model:
            base_usage = usage
        else:
            base_usage = billed_usage(req, thinking_of(base_offer, thinking), max_tokens)
        served.append(
            Served(
                request=req,
                policy=decision["policy_name"] or "(default route)",
                provider_model=f"{primary['provider_id']}/{primary['model']}",
                baseline=f"{baseline['provider_id']}/{baseline['model']}",
                cost=price(offer, usage),
                baseline_cost=price(base_offer, base_usage),
                served_usage_baseline_cost=price(base_offer, usage),
                over_guard=primary["reason"] == OVER_COST_GUARD
                or primary["expected_cost"] > baseline["expected_cost"] * limit,
                downgrade=is_downgrade(base_offer.quality_tier, offer.quality_tier),
            )
        )
    return served, time.perf_counter() - started


def savings(cost: Decimal, baseline: Decimal) -> float:
    return float((baseline - cost) / baseline * 100) if baseline else 0.0


def report(served: list[Served], title: str) -> float:
    total_cost = sum((s.cost for s in served), Decimal(0))
    total_base = sum((s.baseline_cost for s in served), Decimal(0))
    print(f"\n{title}")
    print(f"  {'requested model':<22}{'requests':>9}{'baseline $':>13}{'routed $':>12}{'saved':>9}")
    by_model: dict[str, list[Served]] = defaultdict(list)
    for s in served:
        by_model[s.request.model].append(s)
    for model, rows in sorted(by_model.items(), key=lambda kv: -len(kv[1])):
        cost = sum((s.cost for s in rows), Decimal(0))
        base = sum((s.baseline_cost for s in rows), Decimal(0))
        print(
            f"  {model:<22}{len(rows):>9,}{float(base):>13.2f}{float(cost):>12.2f}"
            f"{savings(cost, base):>8.1f}%"
        )
    batch = [s for s in served if s.request.batch]
    if batch:
        cost = sum((s.cost for s in batch), Decimal(0))
        base = sum((s.baseline_cost for s in batch), Decimal(0))
        print(
            f"  {'  of which batch':<22}{len(batch):>9,}{float(base):>13.2f}{float(cost):>12.2f}"
            f"{savings(cost, base):>8.1f}%"
        )
    overall = savings(total_cost, total_base)
    plain_base = sum((s.served_usage_baseline_cost for s in served), Decimal(0))
    print(
        f"  {'total':<22}{len(served):>9,}{float(total_base):>13.2f}{float(total_cost):>12.2f}"
        f"{overall:>8.1f}%"
    )
    print(f"\n  {'served by':<36}{'requests':>9}{'share':>8}{'cost $':>11}")
    targets = Counter(s.provider_model for s in served)
    target_cost: dict[str, Decimal] = defaultdict(Decimal)
    for s in served:
        target_cost[s.provider_model] += s.cost
    for target, count in targets.most_common():
        print(
            f"  {target:<36}{count:>9,}{count / len(served):>8.1%}"
            f"{float(target_cost[target]):>11.2f}"
        )
    print(f"\n  {'policy':<52}{'requests':>9}")
    for policy, count in Counter(s.policy for s in served).most_common():
        print(f"  {policy:<52}{count:>9,}")
    print(
        "\n  baseline without crediting a requested thinking model's own thinking (the served "
        f"call's usage as it is): ${float(plain_base):.2f}, saved "
        f"{savings(total_cost, plain_base):.1f} %"
    )
    dearer = [s for s in served if s.cost > s.baseline_cost]
    print(
        f"\n  cost guard: primaries expected above the limit: {sum(s.over_guard for s in served)}"
    )
    # The engine compares expected costs (the default 424 visible tokens when max_tokens is
    # absent); a shorter real answer can make a prompt-cheap target dearer than the baseline.
    extra = sum((s.cost - s.baseline_cost for s in dearer), Decimal(0))
    print(
        f"  requests whose real cost came out above their baseline: {len(dearer):,} "
        f"(${float(extra):.4f} in all)"
    )
    return overall


# --- live replay through the gateway ----------------------------------------------------------


def serve_gateway():
    """The Django app on a free loopback port in this process (threaded, like runserver)."""
    import warnings

    # whitenoise warns about a missing staticfiles/ directory: no static file is served here.
    warnings.filterwarnings("ignore", message="No directory at")
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=True)
    server.set_app(get_wsgi_application())
    thread = threading.Thread(target=server.serve_forever, name="replay-gateway", daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def replay_live(requests, raw_key: str, engine: list[Served]) -> None:
    import requests as http

    from analytics.log_writer import request_log_writer
    from analytics.models import RequestLog

    server, url = serve_gateway()
    session = http.Session()
    failures = Counter()
    started = time.perf_counter()
    try:
        for req in requests:
            response = session.post(
                f"{url}/v1/chat/completions",
                json=req.body("trace"),
                headers={"Authorization": f"Bearer {raw_key}", "X-Request-ID": req.request_id},
                timeout=60,
            )
            if response.status_code != 200:
                failures[response.status_code] += 1
    finally:
        elapsed = time.perf_counter() - started
        server.shutdown()
        server.server_close()
    # Rows are written by a background thread shortly after each answer (analytics/log_writer.py).
    request_log_writer().flush(30)
    rows = {
        row.request_id: row
        for row in RequestLog.objects.filter(request_id__in=[r.request_id for r in requests])
    }
    cost = sum((r.cost for r in rows.values()), Decimal(0))
    base = sum((r.baseline_cost for r in rows.values()), Decimal(0))
    engine_cost = sum((s.cost for s in engine), Decimal(0))
    engine_base = sum((s.baseline_cost for s in engine), Decimal(0))
    same_target = sum(
        1
        for s in engine
        if (row := rows.get(s.request.request_id)) is not None
        and f"{row.provider_id}/{row.model}" == s.provider_model
    )
    same_cost = sum(
        1
        for s in engine
        if (row := rows.get(s.request.request_id)) is not None
        and abs(row.cost - s.cost) < Decimal("1e-9")
        and abs(row.baseline_cost - s.baseline_cost) < Decimal("1e-9")
    )
    print(f"\nLive replay: the first {len(requests):,} requests over HTTP, max_tokens = trace")
    print(f"  sent in {elapsed:.1f} s; non-200 answers: {dict(failures) or 'none'}")
    print(
        f"  request log: {len(rows):,} rows, baseline ${float(base):.4f}, cost ${float(cost):.4f}"
    )
    print(
        f"  saved {savings(cost, base):.2f} % (request log) vs "
        f"{savings(engine_cost, engine_base):.2f} % (engine only, the same requests)"
    )
    print(f"  same provider/model as the engine's primary: {same_target:,}/{len(engine):,}")
    print(f"  same cost and baseline to 1e-9 USD: {same_cost:,}/{len(engine):,}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    parser.add_argument("--limit", type=int, default=None, help="replay only the first N rows")
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--mix", type=parse_mix, default=parse_mix(DEFAULT_MIX))
    parser.add_argument("--batch-share", type=float, default=0.10)
    parser.add_argument("--tools-share", type=float, default=0.25)
    parser.add_argument("--max-tokens", default="none", help="none (default), trace, or a number")
    parser.add_argument(
        "--thinking-tokens",
        default="catalogue",
        help="thinking tokens per call of a thinking model: catalogue (default: each model's "
        "expected_thinking_tokens) or a number",
    )
    parser.add_argument("--live", type=int, default=0, metavar="N")
    args = parser.parse_args(argv)
    if args.max_tokens not in ("none", "trace") and not args.max_tokens.isdigit():
        parser.error("--max-tokens: none, trace or a positive number")
    if args.thinking_tokens != "catalogue" and not args.thinking_tokens.isdigit():
        parser.error("--thinking-tokens: catalogue or a number >= 0")
    if not args.trace.exists():
        parser.error(f"no trace at {args.trace} (give --trace PATH)")

    with tempfile.TemporaryDirectory(prefix="auterity-replay-") as workdir:
        setup_django(Path(workdir))
        sim_server = None
        if args.live:
            sim_server = SimulatorServer().start()
        try:
            _, raw_key = seed_world(sim_server.url if sim_server else "http://127.0.0.1:9")
            run(args, raw_key)
        finally:
            if sim_server is not None:
                sim_server.stop()
    return 0


BATCH_POLICY = "Batch jobs on the cheapest small model (downgrades)"
# (label, cost_optimization sample %, the batch policy keeps its leave to downgrade)
SCENARIOS = (
    ("seed's 10 % sample, demo policies (batch jobs may downgrade)", 10, True),
    ("seed's 10 % sample, no downgrade (batch policy off)", 10, False),
    ("100 % of requests, demo policies (batch jobs may downgrade)", 100, True),
    ("100 % of requests, no downgrade (batch policy off)", 100, False),
)


def scenario_apply(percent: float, batch_downgrades: bool) -> None:
    """The cost_optimization sample at `percent`, the batch policy active (it downgrades, with
    leave) or inactive (batch requests then take their model's own class, at its tier); every
    process-level copy refreshed."""
    from waffle.models import Sample

    from routing import flags
    from routing.catalog import catalogue_changed
    from routing.choices import PolicyStatus
    from routing.models import RoutingPolicy

    Sample.objects.filter(name=flags.COST_OPTIMIZATION).update(percent=percent)
    Sample.objects.get(name=flags.COST_OPTIMIZATION).flush()
    flags.flags_reset()
    policy = RoutingPolicy.objects.get(name=BATCH_POLICY)
    policy.status = PolicyStatus.ACTIVE if batch_downgrades else PolicyStatus.INACTIVE
    policy.save()
    catalogue_changed()


def totals(served: list[Served]) -> dict:
    from django.conf import settings

    cost = sum((s.cost for s in served), Decimal(0))
    base = sum((s.baseline_cost for s in served), Decimal(0))
    plain = sum((s.served_usage_baseline_cost for s in served), Decimal(0))
    cap = Decimal(repr(1 + settings.COST_OPTIMIZATION_MAX_COST_INCREASE))
    return {
        "saved": savings(cost, base),
        "saved_plain": savings(cost, plain),
        "downgrades": sum(s.downgrade for s in served),
        "violations": sum(s.cost > s.baseline_cost * cap for s in served),
        "over_guard": sum(s.over_guard for s in served),
        "cost": cost,
        "baseline": base,
    }


def run(args, raw_key: str) -> None:
    from django.conf import settings

    from accounts.principal import principal_from_api_key
    from routing.catalog import catalogue_get

    mix = args.mix
    requests = load_trace(
        args.trace, args.limit, mix, args.batch_share, args.tools_share, args.seed
    )
    principal = principal_from_api_key(raw_key)
    total = sum(w for _, w in mix)
    prompt = sum(r.context_tokens for r in requests)
    completion = sum(r.generated_tokens for r in requests)
    shares = ", ".join(f"{m} {w / total:.0%}" for m, w in mix)
    output = {
        "none": f"not sent (the engine expects {settings.ROUTING_EXPECTED_OUTPUT_DEFAULT} "
        "visible output tokens)",
        "trace": "the trace's GeneratedTokens (thinking and answer capped there together)",
    }.get(args.max_tokens, args.max_tokens)
    check_filler()
    thinkers = ", ".join(
        f"{model} {offer.thinking_tokens:,}"
        for (_, model), offer in sorted(catalogue_get().offers.items())
        if offer.thinking_tokens and offer.is_default
    )
    thinking = (
        f"each model's expected_thinking_tokens ({thinkers}; others 0)"
        if args.thinking_tokens == "catalogue"
        else f"{int(args.thinking_tokens):,} per call of every model"
    )
    print(f"Replay of {args.trace.name}: {len(requests):,} requests,")
    print(f"  {prompt:,} prompt + {completion:,} completion tokens")
    print(f"  mix (seed {args.seed}): {shares}")
    print(f"  {args.batch_share:.0%} tagged metadata.priority=batch, {args.tools_share:.0%} tools")
    print(
        "  caller in group enterprise (routing policies on), quality tiers enforced "
        "(routing/quality_data.json), cost guard "
        f"+{settings.COST_OPTIMIZATION_MAX_COST_INCREASE:.0%}; max_tokens: {output}"
    )
    print(f"  thinking tokens, billed as output on top of the answer: {thinking}")
    print(
        "  baseline as the request log prices it: the served call's usage on the requested "
        "model's default provider, with the requested model's own thinking when another model "
        "served"
    )
    results = []
    headline = None
    for label, percent, batch_downgrades in SCENARIOS:
        scenario_apply(percent, batch_downgrades)
        served, seconds = replay_decisions(
            requests, principal, args.max_tokens, args.thinking_tokens
        )
        results.append((label, totals(served), seconds))
        if headline is None:
            headline = served
    print(
        f"\n  {'scenario':<62}{'saved':>7}{'(plain)':>9}{'downgraded':>12}"
        f"{'over guard':>12}{'> base+5%':>11}"
    )
    for label, t, _seconds in results:
        print(
            f"  {label:<62}{t['saved']:>6.1f}%{t['saved_plain']:>8.1f}%{t['downgrades']:>12,}"
            f"{t['over_guard']:>12,}{t['violations']:>11,}"
        )
    print(
        "  saved: against the request log's baseline; (plain): against the served call's usage "
        "priced on the baseline, no thinking credited; downgraded: served by a lower quality "
        "tier than requested; over guard: primaries expected above the guard; > base+5%: "
        "requests whose real cost came out above their baseline plus the guard's cap"
    )
    overall = report(
        headline,
        "Engine-only replay, " + SCENARIOS[0][0] + " (routing.decisions.request_simulate, "
        "primary target serves)",
    )
    print(
        f"\nSAVINGS {overall:.1f} % against the baseline at the seed's 10 % cost_optimization "
        "sample, demo policies as shipped"
    )
    if args.live:
        scenario_apply(100, True)
        sample = requests[: args.live]
        engine, _ = replay_decisions(sample, principal, "trace", args.thinking_tokens)
        replay_live(sample, raw_key, engine)


if __name__ == "__main__":
    sys.exit(main())
