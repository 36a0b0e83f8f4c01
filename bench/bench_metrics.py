"""Benchmark of the metrics' cost in prometheus_client's multiprocess mode (the web server's).

    python -m bench.bench_metrics [--requests 20000] [--workers 2,20,100]

Measures, with PROMETHEUS_MULTIPROC_DIR in a temporary folder (as auterity/server.py sets
it): the time `core.metrics.request_finished()` adds to one request (two attempts, six
providers' live gauges), and the time one scrape takes to add up the files of N worker
processes (replaced workers leave their counter files until the server restarts). The files of
the "other" workers are copies of the measuring process's own, which is what N workers that
served the same traffic would write.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Before prometheus_client is imported: it picks its storage at import time.
_DIR = tempfile.mkdtemp(prefix="auterity-bench-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _DIR

from prometheus_client import CollectorRegistry, generate_latest, multiprocess  # noqa: E402

from core import metrics  # noqa: E402
from routing.engine import ProviderStats  # noqa: E402

PROVIDERS = ("openai", "anthropic", "google", "deepseek", "mistral", "together")


@dataclass
class _Attempt:
    provider_id: str
    outcome: str
    latency_s: float


def bench_request_finished(n: int) -> list[float]:
    stats = ProviderStats()
    for provider in PROVIDERS:
        stats.begin(provider)
        stats.end(provider, 0.2, ok=True)
    attempts = [_Attempt("openai", "upstream_error", 0.1), _Attempt("google", "ok", 0.4)]
    samples = []
    for i in range(n):
        model = ("gpt-4o", "gpt-4o-mini", "claude-haiku-4-5")[i % 3]
        t0 = time.perf_counter()
        metrics.request_started()
        metrics.request_finished(
            provider="google",
            model=model,
            policy="cheapest",
            status="success",
            error_type="",
            seconds=0.5,
            attempts=attempts,
            prompt_tokens=120,
            completion_tokens=300,
            cost=0.0012,
            baseline_cost=0.0015,
            fallback=True,
            live_stats=stats.snapshot_view,
        )
        samples.append(time.perf_counter() - t0)
    return samples


def bench_scrape(workers: int, rounds: int = 20) -> float:
    own = [p for p in Path(_DIR).glob("*.db") if p.stem.endswith(f"_{os.getpid()}")]
    copies = []
    for w in range(1, workers):
        for path in own:
            copy = path.with_name(path.name.replace(str(os.getpid()), f"9{w:06d}"))
            shutil.copyfile(path, copy)
            copies.append(copy)
    try:
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            generate_latest(registry)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)
    finally:
        for copy in copies:
            copy.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--workers", default="2,20,100")
    args = parser.parse_args()
    try:
        samples = sorted(bench_request_finished(args.requests))
        p50 = samples[len(samples) // 2] * 1e6
        p99 = samples[int(len(samples) * 0.99)] * 1e6
        print(f"request_finished(): p50 {p50:.0f} us, p99 {p99:.0f} us ({args.requests} calls)")
        for workers in (int(w) for w in args.workers.split(",")):
            ms = bench_scrape(workers) * 1000
            print(f"scrape adding up {workers} workers' files: {ms:.1f} ms (median)")
    finally:
        shutil.rmtree(_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
