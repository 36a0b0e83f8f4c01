"""Cost of the gateway's admission check (accounts/limits.py) per request, per counter store.

    DATABASE_URL=sqlite:////tmp/bench.sqlite3 .venv/bin/python bench/bench_limits.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/auterity_bench \
        .venv/bin/python bench/bench_limits.py
    CACHE_URL=redis://127.0.0.1:6379/1 .venv/bin/python bench/bench_limits.py

Migrates the database first (it must exist), then times `admit()` for a key with request
limits only, and with a token limit and a budget as well (two more counters read in the same
round trip), plus `usage_record()` after a request.
"""

import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auterity.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402

from accounts import limits  # noqa: E402
from accounts.principal import Principal  # noqa: E402


def principal(key_id, **own):
    return Principal(
        user_id=1,
        username="bench",
        groups=frozenset(),
        scopes=frozenset(),
        api_key_id=key_id,
        limits=limits.KeyLimits(per_minute=10**9, per_hour=10**9, **own),
    )


def timed(fn, n=2000):
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    samples.sort()
    return statistics.mean(samples), samples[len(samples) // 2], samples[int(len(samples) * 0.99)]


def main():
    call_command("migrate", verbosity=0)
    store = limits.counter_store()
    print(f"store: {type(store).__name__}")
    plain = principal(900_001)
    full = principal(900_002, tokens_per_minute=10**9, budget_usd=Decimal(10**6))
    rows = [
        ("admit, request windows", lambda: limits.admit(plain)),
        ("admit, + tokens and budget", lambda: limits.admit(full)),
        ("usage_record", lambda: limits.usage_record(full, tokens=100, cost=Decimal("0.0001"))),
    ]
    for name, fn in rows:
        mean, p50, p99 = timed(fn)
        micros = [round(value * 1e6) for value in (mean, p50, p99)]
        print(f"{name:30s} mean {micros[0]:6d} us  p50 {micros[1]:6d} us  p99 {micros[2]:6d} us")


if __name__ == "__main__":
    main()
