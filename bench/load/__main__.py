"""The seed's load scenarios (Normal 100 users / 10 min, Peak 500 / 5 min, Stress 1,000 /
2 min) against Auterity and the provider simulator with realistic latency, checked against the
seed's targets.

    .venv/bin/python -m bench.load normal [--duration 2m] [--users N] [--json FILE]
    .venv/bin/python -m bench.load peak --url https://gateway.example.com --key sk-aut-...

Without --url it sets everything up on this machine, loopback only, and stops what it started:
a fresh PostgreSQL database (DATABASE_URL's server, database --db-name), migrated, with the
demo catalogue and policies and a key without rate limits (bench/load/world.py); the provider
simulator with a latency profile (first token 200-800 ms, streams of 2-5 s, answers in
0.3-1.5 s); the web server (`python -m auterity.server`, its production defaults unless the
environment says otherwise). Then locust (bench/load/locustfile.py, from its own virtualenv
.venv-load, made from bench/load/requirements.txt on first use) runs the scenario headless.

Prints, per endpoint and in all: requests, failures, error rate, req/s, p50/p95/p99 as the
clients saw them; the gateway's own routing decision time from its
ai_routing_duration_seconds{phase="decision"} histogram (the difference of two scrapes); the
time the gateway added to non-streamed requests (the request log: whole request minus the
upstream attempts); and each against the seed's targets: decision < 100 ms, added < 500 ms,
error rate < 1 %.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from prometheus_client.parser import text_string_to_metric_families

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
LOAD_VENV = ROOT / ".venv-load"
LOCUST = LOAD_VENV / "bin" / "locust"

# The seed's scenarios: users, duration, target (bench/load/locustfile.py has the mix).
SCENARIOS = {
    "normal": (100, "10m", "GET /api/routing/policies/"),
    "peak": (500, "5m", "POST /api/ai/execute"),
    "stress": (1000, "2m", "GET /api/routing/analytics/"),
}
TARGETS = {"decision_p95_s": 0.100, "added_p95_s": 0.500, "error_rate": 0.01}
SIMULATOR_LATENCY = {
    "SIMULATOR_LATENCY_MS": "300-1500",
    "SIMULATOR_FIRST_TOKEN_MS": "200-800",
    "SIMULATOR_STREAM_DURATION_MS": "2000-5000",
    "SIMULATOR_LATENCY_SEED": "15",
}


# Our own check beside the seed's (which a server that makes its callers wait for a connection
# can pass): the users must be served at close to the rate they would send through a gateway
# that added nothing.
SERVED_SHARE = 0.9


def _range_mean(value: str) -> float:
    low, _, high = value.partition("-")
    return (float(low) + float(high or low)) / 2 / 1000


def offered_rate(scenario: str, users: int) -> float:
    """Requests/s the users would send if the gateway added no time: each user loops think
    time + the upstream's mean time for the task it drew. The think times and task weights
    are read from the locustfile (one source; it imports locust, which this venv lacks)."""
    import ast

    tree = ast.parse((HERE / "locustfile.py").read_text())
    table = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(getattr(t, "id", None) == "SCENARIOS" for t in node.targets)
    )
    (think_low, think_high), weights = table[scenario]
    call = _range_mean(SIMULATOR_LATENCY["SIMULATOR_LATENCY_MS"])
    stream = _range_mean(SIMULATOR_LATENCY["SIMULATOR_FIRST_TOKEN_MS"]) + _range_mean(
        SIMULATOR_LATENCY["SIMULATOR_STREAM_DURATION_MS"]
    )
    upstream = {"execute": call, "chat": call, "stream": stream}  # listings: ~0
    task = sum(w * upstream.get(name, 0.0) for name, w in weights.items()) / sum(weights.values())
    return users / ((think_low + think_high) / 2 + task)


def log(message: str) -> None:
    print(f"load: {message}", file=sys.stderr, flush=True)


def seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)([smh]?)", duration)
    if not match:
        raise argparse.ArgumentTypeError(f"a duration like 90s, 2m or 1h, not {duration!r}")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ok(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as response:
            if response.status == 200:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"load: {url} did not come up")
        time.sleep(0.3)


def ensure_locust() -> None:
    stamp = LOAD_VENV / ".requirements"
    wanted = (HERE / "requirements.txt").read_text()
    if LOCUST.exists() and stamp.exists() and stamp.read_text() == wanted:
        return
    log("installing locust into .venv-load (bench/load/requirements.txt)")
    subprocess.run([sys.executable, "-m", "venv", str(LOAD_VENV)], check=True)
    subprocess.run(
        [str(LOAD_VENV / "bin" / "pip"), "install", "-q", "-r", str(HERE / "requirements.txt")],
        check=True,
    )
    stamp.write_text(wanted)


def histogram(metrics_text: str, name: str, **labels) -> dict[float, float]:
    """Cumulative bucket counts (le -> count) of one histogram's series with `labels`."""
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name != f"{name}_bucket":
                continue
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0) + sample.value
    return buckets


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' histogram_quantile over cumulative buckets (linear within a bucket)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] == 0:
        return None
    rank = q * buckets[bounds[-1]]
    previous_bound, previous_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return previous_bound
            share = (
                (rank - previous_count) / (count - previous_count) if count > previous_count else 0
            )
            return previous_bound + (bound - previous_bound) * share
        previous_bound, previous_count = bound, count
    return previous_bound


def scrape(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        return response.read().decode()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


ADDED_SQL = """
SELECT latency - COALESCE((
    SELECT SUM((attempt->>'latency_ms')::float) / 1000
    FROM jsonb_array_elements(attempts_detail) AS attempt), 0)
FROM request_log
WHERE NOT stream AND status = 'success' AND created_at >= to_timestamp(%s)
"""


def added_latencies(database_url: str, since: float) -> list[float]:
    """Seconds the gateway added to each non-streamed success since `since`: the whole
    request minus its upstream attempts (request_log.latency, attempts_detail)."""
    import psycopg

    with psycopg.connect(database_url) as connection:
        return [row[0] for row in connection.execute(ADDED_SQL, (since,)).fetchall()]


@contextlib.contextmanager
def local_stack(args, tmp: Path):
    """Database, simulator and web server on this machine; yields (url, key, database_url)."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        raise SystemExit("load: set DATABASE_URL to a PostgreSQL server (not its database)")
    parts = urlsplit(base)
    database_url = urlunsplit(parts._replace(path=f"/{args.db_name}"))
    admin = urlunsplit(parts._replace(path="/postgres"))
    subprocess.run(
        ["psql", admin, "-qc", f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)'], check=True
    )
    subprocess.run(["psql", admin, "-qc", f'CREATE DATABASE "{args.db_name}"'], check=True)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "auterity.settings",
        "LOG_LEVEL": "WARNING",
        "DEBUG": "false",
    }
    if args.redis:
        # Cache, routing-snapshot version and rate-limit counters in Redis, as in production.
        env["CACHE_URL"] = args.redis
    log(f"migrating {args.db_name}")
    subprocess.run([str(PYTHON), "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)

    processes = []
    try:
        sim_port, web_port = free_port(), free_port()

        def start(name: str, argv: list[str], extra_env: dict) -> subprocess.Popen:
            process = subprocess.Popen(
                [str(PYTHON), *argv],
                cwd=ROOT,
                env={**env, **extra_env},
                stdout=(tmp / f"{name}.log").open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,  # stopped as a group
            )
            processes.append(process)
            return process

        simulator = start(
            "simulator",
            ["manage.py", "run_simulator", "--host", "127.0.0.1", "--port", str(sim_port)],
            SIMULATOR_LATENCY,
        )
        sim_url = f"http://127.0.0.1:{sim_port}"
        wait_ok(f"{sim_url}/_sim/health", simulator)
        key = subprocess.run(
            [str(PYTHON), "-m", "bench.load.world", sim_url],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        web = start(
            "web",
            ["-m", "auterity.server"],
            {
                "WEB_BIND": f"127.0.0.1:{web_port}",
                "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prometheus"),
            },
        )
        url = f"http://127.0.0.1:{web_port}"
        wait_ok(f"{url}/readyz", web)
        yield url, key, database_url
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL) if process is processes[
                    -1
                ] else process.kill()


def run_locust(args, url: str, key: str, tmp: Path) -> list[dict]:
    users = args.users or SCENARIOS[args.scenario][0]
    duration = args.duration or SCENARIOS[args.scenario][1]
    spawn_rate = max(1, users // 10)  # everyone within 10 s
    log(f"{args.scenario}: {users} users for {duration} against {url}")
    started = os.times()
    subprocess.run(
        [
            str(LOCUST),
            "-f",
            str(HERE / "locustfile.py"),
            "--headless",
            "--only-summary",
            "-u",
            str(users),
            "-r",
            str(spawn_rate),
            "-t",
            duration,
            "--stop-timeout",
            "30",
            "--host",
            url,
            "--csv",
            str(tmp / "locust"),
            "--loglevel",
            "WARNING",
        ],
        env={**os.environ, "AUTERITY_SCENARIO": args.scenario, "AUTERITY_KEY": key},
        check=False,  # locust exits 1 when any request failed; the figures say so
    )
    finished = os.times()
    args.locust_cpu_s = (finished.children_user - started.children_user) + (
        finished.children_system - started.children_system
    )
    with (tmp / "locust_failures.csv").open() as failures:
        for row in csv.DictReader(failures):
            log(f"failed {row['Occurrences']}x: {row['Method']} {row['Name']}: {row['Error']}")
    with (tmp / "locust_stats.csv").open() as stats:
        return list(csv.DictReader(stats))


def report(args, rows, before, after, added, elapsed) -> dict:
    name = "ai_routing_duration_seconds"
    earlier = histogram(before, name, phase="decision")
    decision = {
        le: count - earlier.get(le, 0)
        for le, count in histogram(after, name, phase="decision").items()
    }
    total = next(row for row in rows if row["Name"] == "Aggregated")
    requests_, failures = int(total["Request Count"]), int(total["Failure Count"])
    result = {
        "scenario": args.scenario,
        "users": args.users or SCENARIOS[args.scenario][0],
        "duration_s": round(elapsed),
        "requests": requests_,
        "error_rate": failures / requests_ if requests_ else 1.0,
        "requests_per_s": float(total["Requests/s"]),
        # The machine is shared and locust itself is Python: read the figures beside these.
        "load_average_start_end": [args.load_before, os.getloadavg()[0]],
        "locust_cpu_cores": round(getattr(args, "locust_cpu_s", 0.0) / max(elapsed, 1), 2),
        "endpoints": {
            row["Name"]: {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "p50_ms": float(row["50%"]),
                "p95_ms": float(row["95%"]),
                "p99_ms": float(row["99%"]),
            }
            for row in rows
        },
        "decision_s": {q: quantile(float(q), decision) for q in ("0.5", "0.95", "0.99")},
        "added_s": (
            {q: percentile(added, float(q)) for q in ("0.5", "0.95", "0.99")} if added else None
        ),
    }
    print(
        f"\nscenario {result['scenario']}: {result['users']} users, {result['duration_s']} s, "
        f"{requests_} requests, {result['requests_per_s']:.1f} req/s, "
        f"error rate {result['error_rate']:.2%}; load average {args.load_before:.2f} at the "
        f"start, {result['load_average_start_end'][1]:.2f} at the end (2 cores); locust used "
        f"{result['locust_cpu_cores']:.2f} cores"
    )
    print(f"{'endpoint':44} {'requests':>8} {'fail':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name, row in result["endpoints"].items():
        print(
            f"{name:44} {row['requests']:8} {row['failures']:5} {row['p50_ms']:8.0f} "
            f"{row['p95_ms']:8.0f} {row['p99_ms']:8.0f}"
        )

    def ms(value):
        return "n/a" if value is None else f"{value * 1000:.1f} ms"

    d, a = result["decision_s"], result["added_s"] or {}
    print(
        f"routing decision (gateway histogram, bucket-interpolated): p50 {ms(d['0.5'])}, "
        f"p95 {ms(d['0.95'])}, p99 {ms(d['0.99'])}"
    )
    if added:
        print(
            f"added by the gateway to non-streamed requests ({len(added)} in the request log): "
            f"p50 {ms(a['0.5'])}, p95 {ms(a['0.95'])}, p99 {ms(a['0.99'])}"
        )
    checks = {
        "routing decision p95 < 100 ms": (
            d["0.95"] is not None and d["0.95"] < TARGETS["decision_p95_s"]
        ),
        "error rate < 1 %": result["error_rate"] < TARGETS["error_rate"],
    }
    if added:
        checks["added latency p95 < 500 ms"] = a["0.95"] < TARGETS["added_p95_s"]
    offered = offered_rate(args.scenario, result["users"])
    result["offered_requests_per_s"] = round(offered, 1)
    print(
        f"served {result['requests_per_s']:.1f} of the {offered:.1f} requests/s the users would "
        f"send through a gateway adding nothing ({result['requests_per_s'] / offered:.0%}); "
        "the request log's added time starts when the server takes the request, so a wait "
        "for a connection slot shows here and in the clients' p99, not there"
    )
    checks[f"users served: >= {SERVED_SHARE:.0%} of the offered rate (ours)"] = (
        result["requests_per_s"] >= SERVED_SHARE * offered
    )
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    result["checks"] = checks
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument(
        "--duration", type=lambda d: (seconds(d), d)[1], help="e.g. 2m (default: the seed's)"
    )
    parser.add_argument("--users", type=int, help="default: the seed's")
    parser.add_argument("--url", help="an Auterity already running (then --key too)")
    parser.add_argument("--key", help="its API key: ai:execute, routing:view, no rate limits")
    parser.add_argument("--db-name", default="auterity_load")
    parser.add_argument(
        "--redis",
        help="CACHE_URL for the local server, e.g. redis://127.0.0.1:6379/11 (default: the "
        "environment's, else the file cache)",
    )
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    if bool(args.url) != bool(args.key):
        parser.error("--url and --key go together")
    ensure_locust()
    with tempfile.TemporaryDirectory(prefix="auterity-load-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "prometheus").mkdir()
        stack = (
            contextlib.nullcontext((args.url.rstrip("/"), args.key, None))
            if args.url
            else local_stack(args, tmp)
        )
        with stack as (url, key, database_url):
            before, started = scrape(url), time.time()
            args.load_before = os.getloadavg()[0]
            rows = run_locust(args, url, key, tmp)
            elapsed = time.time() - started
            time.sleep(1)  # the last request-log rows
            after = scrape(url)
            added = added_latencies(database_url, started) if database_url else []
        result = report(args, rows, before, after, added, elapsed)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if all(result["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
