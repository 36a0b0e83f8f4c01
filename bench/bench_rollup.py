"""Benchmark of the analytics rollup: 1,000,000 request-log rows aggregated on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/auterity_bench \\
        .venv/bin/python -m bench.bench_rollup [--rows 1000000] [--hours 24]

Creates the database if it is missing and migrates it, replaces the request log with N rows
generated inside PostgreSQL (generate_series: 6 providers, 5 policies plus none, every
status, exponential latencies, real-looking costs) spread over the last H hours, then times:

1. the first rollup of the whole range (every group inserted),
2. the same again (idempotent: nothing written),
3. the scheduled run (the last ANALYTICS_ROLLUP_LOOKBACK_MINUTES, what beat runs each minute),
4. the summary endpoint's queries over the range, from the log and from the rollups.

Target: (1) under 10 s for 1,000,000 rows. Run it on a dedicated database: it empties the
request log and the rollups.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta


def ensure_database(url: str) -> None:
    """CREATE DATABASE if `url` names one that does not exist yet."""
    import environ
    import psycopg

    config = environ.Env.db_url_config(url)
    params = {
        "host": config.get("HOST") or "127.0.0.1",
        "port": config.get("PORT") or 5432,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{config["NAME"]}"')


def generate(rows: int, hours: int, policy_ids: list[str]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE request_log, routing_analytics")
        cursor.execute(
            """
            INSERT INTO request_log (
                request_id, created_at, api_key_name, endpoint, requested_model, policy_id,
                policy_name, provider_id, model, status, http_status, error_type, error_message,
                attempts, attempts_detail, prompt_tokens, completion_tokens, cost,
                baseline_cost, latency, stream, flags
            )
            SELECT 'bench-' || g,
                   now() - random() * make_interval(hours => %(hours)s),
                   'bench-key', 'chat', 'gpt-4o',
                   (%(policies)s::uuid[])[1 + g %% (cardinality(%(policies)s::uuid[]) + 1)],
                   '',
                   -- as the gateway logs them: a refused request tried no provider, and one
                   -- every attempt of which failed names none, its attempts do
                   CASE WHEN status IN ('error', 'refused') THEN '' ELSE provider END,
                   'gpt-4.1',
                   status,
                   CASE status WHEN 'success' THEN 200 WHEN 'error' THEN 502
                               WHEN 'refused' THEN 429 ELSE 200 END,
                   CASE status WHEN 'error' THEN 'upstream_error'
                               WHEN 'refused' THEN 'rate_limited' ELSE '' END,
                   '',
                   CASE WHEN status = 'refused' THEN 0 ELSE 1 END,
                   CASE WHEN status = 'refused' THEN '[]'::jsonb
                        ELSE jsonb_build_array(jsonb_build_object(
                            'provider', provider, 'model', 'gpt-4.1', 'outcome',
                            CASE WHEN status = 'error' THEN 'upstream_error' ELSE 'ok' END
                        )) END,
                   prompt, completion,
                   (prompt * 2e-6 + completion * 8e-6)::numeric(18, 10),
                   (prompt * 2.5e-6 + completion * 10e-6)::numeric(18, 10),
                   -ln(1 - random()) * 0.8,
                   false, '{}'::jsonb
            FROM (
                -- random() in a select list is drawn once per row
                SELECT g,
                       CASE WHEN r < 0.95 THEN 'success' WHEN r < 0.98 THEN 'error'
                            WHEN r < 0.99 THEN 'refused' ELSE 'cancelled' END AS status,
                       (ARRAY['openai', 'anthropic', 'google', 'mistral', 'deepseek',
                              'together'])[1 + (g / 7) %% 6] AS provider,
                       (50 + random() * 2000)::int AS prompt,
                       (10 + random() * 500)::int AS completion
                FROM (SELECT g, random() AS r FROM generate_series(1, %(rows)s) AS g) AS draws
            ) AS rows
            """,
            {"rows": rows, "hours": hours, "policies": policy_ids},
        )
        cursor.execute("ANALYZE request_log")


def timed(label: str, func):
    started = time.perf_counter()
    result = func()
    elapsed = time.perf_counter() - started
    print(f"{label:<58} {elapsed:8.2f} s")
    return result, elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the request log of an earlier run if it has --rows",
    )
    args = parser.parse_args(argv)

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        print("Set DATABASE_URL to a PostgreSQL database (it is emptied), e.g.")
        print("  DATABASE_URL=postgres://postgres@127.0.0.1:5432/auterity_bench")
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auterity.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    ensure_database(url)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Max, Min
    from django.utils import timezone

    from analytics.models import RequestLog, RoutingAnalytics
    from analytics.selectors import SummaryQuery, analytics_summary
    from analytics.services import analytics_rollup
    from routing.models import RoutingPolicy

    call_command("migrate", verbosity=0)
    policies = [
        RoutingPolicy.objects.get_or_create(name=f"bench policy {i}", defaults={"actions": {}})[0]
        for i in range(5)
    ]
    print(f"PostgreSQL {connection.pg_version // 10000}, {args.rows:,} rows over {args.hours} h")
    if args.reuse and RequestLog.objects.count() == args.rows:
        print(f"reusing the {args.rows:,} request-log rows already there")
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE routing_analytics")
    else:
        timed(
            f"generate {args.rows:,} request-log rows (generate_series)",
            lambda: generate(args.rows, args.hours, [str(p.id) for p in policies]),
        )

    now = timezone.now()
    bounds = RequestLog.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
    since, until = bounds["first"], bounds["last"] + timedelta(seconds=1)
    first, first_s = timed(
        "1. rollup of the whole range (first run)",
        lambda: analytics_rollup(since=since, until=until, now=now),
    )
    print(
        f"   {first.groups:,} groups of {first.period_minutes}-minute periods, "
        f"{first.written:,} rows written, "
        f"{args.rows / first_s:,.0f} log rows/s"
    )
    again, _ = timed(
        "2. the same again (idempotent)",
        lambda: analytics_rollup(since=since, until=until, now=now),
    )
    print(f"   {again.written} rows written, {again.deleted} deleted")
    timed(
        f"3. scheduled run (last {settings.ANALYTICS_ROLLUP_LOOKBACK_MINUTES} minutes)",
        lambda: analytics_rollup(now=now),
    )
    timed(
        f"4a. summary of the {args.hours} h from the log (p50/p95 exact)",
        lambda: analytics_summary(SummaryQuery(since, until, source="request_log")),
    )
    timed(
        f"4b. summary of the {args.hours} h from the rollups, per policy and provider",
        lambda: analytics_summary(
            SummaryQuery(since, until, source="rollups", group_by=("policy", "provider"))
        ),
    )
    print(f"routing_analytics: {RoutingAnalytics.objects.count():,} rows")
    target = 10.0 * args.rows / 1_000_000
    verdict = "OK" if first_s < target else "TOO SLOW"
    print(
        f"first rollup: {first_s:.2f} s for {args.rows:,} rows (target < {target:.1f} s): {verdict}"
    )
    return 0 if first_s < target else 1


if __name__ == "__main__":
    sys.exit(main())
