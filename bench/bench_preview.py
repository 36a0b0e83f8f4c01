"""Benchmark of the impact preview: a draft policy replayed over 1,000,000 logged requests.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/auterity_bench_preview \\
        .venv/bin/python -m bench.bench_preview [--rows 1000000] [--days 7]

Creates the database if it is missing and migrates it, installs the demo catalogue, quality
tiers and policies, replaces the request log with N rows generated inside PostgreSQL
(generate_series) the way the gateway records them: the replay trace's model mix (gpt-4o
35 %, gpt-4o-mini 30 %, claude-sonnet-4-5 20 %, gemini-2.5-pro 15 %), prompt sizes drawn
from the Azure conversation trace's (`../shared/data/azure_llm_trace_conv_2023.csv`, cycled),
max_tokens on 30 % of them, tools on 25 %, metadata.priority=batch on 10 %, 200 callers, the
routing_policies flag on for 60 %; then times `POST /api/routing/policies/{id}/preview/`'s
service on a draft that every one of those models' requests can match (the worst case: every
row is decided twice).

Target: under 30 s for 1,000,000 rows. Run it on a dedicated database: it empties the
request log.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

from bench.bench_rollup import ensure_database

ROOT = Path(__file__).resolve().parent.parent
TRACE = ROOT.parent / "shared" / "data" / "azure_llm_trace_conv_2023.csv"
DRAFT = {
    "conditions": {
        "model": {"$in": ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-pro"]}
    },
    "actions": {
        "targets": [
            {"provider": "openai", "model": "gpt-4.1"},
            {"provider": "google", "model": "gemini-2.5-pro"},
            {"provider": "openai", "model": "gpt-4o-mini"},
            {"provider": "anthropic", "model": "claude-sonnet-4-5"},
            {"provider": "openai", "model": "gpt-4o"},
        ],
        "strategy": "cheapest",
    },
}


def trace_sizes(trace: Path, limit: int = 20_000) -> list[tuple[int, int]]:
    if not trace.exists():
        sys.exit(f"no trace at {trace} (give --trace PATH)")
    with trace.open(newline="") as handle:
        return [
            (max(1, int(r["ContextTokens"])), max(1, int(r["GeneratedTokens"])))
            for r in list(csv.DictReader(handle))[:limit]
        ]


def generate(rows: int, days: int, trace: Path) -> None:
    from django.db import connection

    sizes = trace_sizes(trace)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE request_log")
        cursor.execute(
            """
            INSERT INTO request_log (
                request_id, created_at, api_key_name, endpoint, requested_model, policy_name,
                provider_id, model, status, http_status, error_type, error_message, attempts,
                attempts_detail, prompt_tokens, completion_tokens, cached_tokens,
                cache_write_tokens, reasoning_tokens, cost, baseline_cost, latency, stream,
                flags, requested_tier, served_tier, downgrade, guard_violation, route_attributes
            )
            SELECT 'bench-' || g, now() - random() * make_interval(days => %(days)s),
                   'key-' || (g %% 200), 'chat', m.model, '', 'openai', m.model, 'success', 200,
                   '', '', 1, '[]'::jsonb, s.context, s.generated, 0, 0, 0, 0.001, 0.001, 0.8,
                   false,
                   jsonb_build_object('routing_policies', g %% 10 < 6, 'cost_optimization', true,
                                      'intelligent_routing', true,
                                      'intelligent_routing_fallback', true),
                   '', '', false, false,
                   jsonb_build_object(
                       'input_tokens', s.context,
                       'max_tokens', CASE WHEN g %% 10 < 3 THEN s.generated END,
                       'expected_output_tokens', CASE WHEN g %% 10 < 3 THEN NULL ELSE 424 END,
                       'capabilities', CASE WHEN g %% 4 = 0 THEN '["tools"]'::jsonb
                                            ELSE '[]'::jsonb END,
                       'metadata', CASE WHEN g %% 10 = 7 THEN '{"priority": "batch"}'::jsonb
                                        ELSE '{}'::jsonb END,
                       'username', 'user-' || (g %% 200), 'groups', '[]'::jsonb, 'team', NULL)
            FROM generate_series(1, %(rows)s) AS g
            CROSS JOIN LATERAL (
                SELECT (ARRAY['gpt-4o', 'gpt-4o', 'gpt-4o', 'gpt-4o', 'gpt-4o', 'gpt-4o',
                              'gpt-4o', 'gpt-4o-mini', 'gpt-4o-mini', 'gpt-4o-mini',
                              'gpt-4o-mini', 'gpt-4o-mini', 'gpt-4o-mini', 'claude-sonnet-4-5',
                              'claude-sonnet-4-5', 'claude-sonnet-4-5', 'claude-sonnet-4-5',
                              'gemini-2.5-pro', 'gemini-2.5-pro', 'gemini-2.5-pro'])
                       [1 + (g::bigint * 7919) %% 20] AS model
            ) AS m
            CROSS JOIN LATERAL (
                SELECT (%(context)s::int[])[1 + g %% %(n)s] AS context,
                       (%(generated)s::int[])[1 + g %% %(n)s] AS generated
            ) AS s
            """,
            {
                "rows": rows,
                "days": days,
                "context": [c for c, _ in sizes],
                "generated": [o for _, o in sizes],
                "n": len(sizes),
            },
        )
        cursor.execute("ANALYZE request_log")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="reuse the rows already there")
    parser.add_argument("--trace", type=Path, default=TRACE)
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL database of its own (it is emptied)")
    ensure_database(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auterity.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["CACHE_URL"] = "locmemcache://"
    import django

    django.setup()
    from django.core.management import call_command

    from analytics.models import RequestLog
    from analytics.preview import policy_preview, preview_compile
    from providers.demo import demo_catalogue_install
    from routing.demo import demo_policies_install
    from routing.quality import model_quality_sync

    call_command("migrate", verbosity=0)
    demo_catalogue_install("http://127.0.0.1:9")
    model_quality_sync()
    demo_policies_install()
    if not args.keep:
        started = time.perf_counter()
        generate(args.rows, args.days, args.trace)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - started:.1f} s")
    total = RequestLog.objects.count()
    policy = preview_compile(
        "00000000-0000-0000-0000-0000000000b1",
        "bench draft",
        1,
        DRAFT["conditions"],
        DRAFT["actions"],
    )
    print(f"request log: {total:,} rows; draft matches every row of its four models")
    for run in (1, 2):
        started = time.perf_counter()
        result = policy_preview(policy, days=args.days + 1, sample_size=20)
        seconds = time.perf_counter() - started
        print(
            f"run {run}: {seconds:.1f} s for {total:,} rows "
            f"({result['requests_matched']:,} matched, {result['decisions_changed']:,} changed, "
            f"{total / seconds:,.0f} rows/s); after: saved {result['after']['savings_percent']} %"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
