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
keeps them on Sonnet). Every request comes from an `enterprise` caller (routing policies on)
with the `cost_optimization` sample at 100 %, and the cost guard at its setting (5 %).

Each request is a real chat body, one user message of exactly ContextTokens words that are
one token each in OpenAI's o200k_base and four characters long (" the", " and"...), so the
gateway's tokenizer and the simulator's count agree with the trace; their order is shuffled
per request so no two prompts share a prefix a provider could cache. It is decided by
`routing.decisions.request_simulate`,
the function behind POST /api/routing/simulate and the policy admin's dry run, against a
throwaway SQLite database seeded like `seed_demo`: the demo providers and their public list
prices (providers/demo_prices.json), the demo policies (routing/demo.py), the seed's flags.
The primary target serves the request. Its cost and the baseline (the same usage on the
requested model's default provider, as the request log and the dashboard price it) come from
the full price rules (gateway.service.price: the models' long-context tiers; no prompt-cache
hits) on the trace's real token counts.

Thinking tokens: the trace's GeneratedTokens are the visible answer. A model that thinks bills
its thinking as output on top of it; the replay assumes each call of a thinking model spends
`--thinking-tokens` (default `catalogue`: the model's expected_thinking_tokens, 1,024 for the
demo's gemini-2.5-pro, gemini-2.5-flash, gpt-5*, o3-mini; 0 for the others); the baseline
prices the same usage, thinking included. A second line credits the baseline with the
requested model's own thinking instead (a thinking model routed to one that does not saves
it). `--thinking-tokens 0` prices as if no model thought.

By default the bodies carry no `max_tokens`, as most chat clients send, so the engine expects
the default visible output (ROUTING_EXPECTED_OUTPUT_DEFAULT, 424: the trace's own p90; a fresh
request log has observed nothing) plus each target's thinking when it compares costs;
`--max-tokens trace` sends the trace's GeneratedTokens (perfect foresight; the engine then
caps thinking and answer together there), `--max-tokens N` a fixed cap.

`--live N` also sends the first N requests through the running gateway over HTTP (a Django
server on a free port, the provider simulator on another, `max_tokens` = GeneratedTokens so
the simulator answers with exactly the trace's completion size) and compares the request
log's cost and baseline with the engine-only figure for the same N requests.
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
    # The baseline with the requested model's own thinking instead of the served one's: what
    # the call would have cost without the router, if the requested model thinks as assumed.
    own_baseline_cost: Decimal = Decimal(0)


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

    demo_catalogue_install(simulator_url)
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


def replay_decisions(
    requests, principal, max_tokens: str, thinking: str = "catalogue"
) -> tuple[list[Served], float]:
    from django.conf import settings

    from gateway.service import price
    from providers.adapters.types import Usage
    from routing.catalog import catalogue_get
    from routing.decisions import request_simulate, simulation_request
    from routing.engine import OVER_COST_GUARD

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
        primary, baseline = decision["targets"][0], decision["baseline"]
        offer = offers[(primary["provider_id"], primary["model"])]
        base_offer = offers[(baseline["provider_id"], baseline["model"])]
        # Priced as the gateway prices the request-log row, on the trace's real token counts.
        routed_thinking, base_thinking = (
            thinking_of(offer, thinking),
            thinking_of(base_offer, thinking),
        )
        usage = Usage(
            prompt_tokens=req.context_tokens,
            completion_tokens=req.generated_tokens + routed_thinking,
            reasoning_tokens=routed_thinking,
        )
        base_usage = Usage(
            prompt_tokens=req.context_tokens,
            completion_tokens=req.generated_tokens + base_thinking,
            reasoning_tokens=base_thinking,
        )
        served.append(
            Served(
                request=req,
                policy=decision["policy_name"] or "(default route)",
                provider_model=f"{primary['provider_id']}/{primary['model']}",
                baseline=f"{baseline['provider_id']}/{baseline['model']}",
                cost=price(offer, usage),
                # As the request log prices it: the served call's usage on the baseline.
                baseline_cost=price(base_offer, usage),
                own_baseline_cost=price(base_offer, base_usage),
                over_guard=primary["reason"] == OVER_COST_GUARD
                or primary["expected_cost"] > baseline["expected_cost"] * limit,
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
    own_base = sum((s.own_baseline_cost for s in served), Decimal(0))
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
        "\n  baseline with each requested model's own assumed thinking instead of the served "
        f"one's: ${float(own_base):.2f}, saved {savings(total_cost, own_base):.1f} %"
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
        "trace": "the trace's GeneratedTokens",
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
        "  caller in group enterprise, cost_optimization on for every request, cost guard "
        f"+{settings.COST_OPTIMIZATION_MAX_COST_INCREASE:.0%}; max_tokens: {output}"
    )
    print(f"  thinking tokens, billed as output on top of the answer: {thinking}")
    served, seconds = replay_decisions(requests, principal, args.max_tokens, args.thinking_tokens)
    print(f"  {len(served):,} decisions in {seconds:.1f} s ({len(served) / seconds:,.0f}/s)")
    overall = report(
        served, "Engine-only replay (routing.decisions.request_simulate, primary target serves)"
    )
    print(f"\nSAVINGS {overall:.1f} % against the baseline (requested models, default providers)")
    if args.live:
        sample = requests[: args.live]
        engine, _ = replay_decisions(sample, principal, "trace", args.thinking_tokens)
        replay_live(sample, raw_key, engine)


if __name__ == "__main__":
    sys.exit(main())
