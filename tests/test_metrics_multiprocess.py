"""/metrics under gunicorn with two workers: a scrape adds up every worker's counters; and
the request-log rows the workers write in the background are all there once gunicorn stops.

Runs the real deploy/gunicorn.conf.py in a subprocess against the test database (committed
rows: transactional test) and the provider simulator, with its multiprocess directory in a
temporary folder.
"""

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.db import connection
from prometheus_client.multiprocess import MultiProcessCollector

from analytics.models import RequestLog
from tests.metrics_exposition import scrape, total
from tests.subprocess_env import database_url, free_port

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
HELLO = [{"role": "user", "content": "Count me once, whichever worker serves me."}]


@pytest.fixture
def gunicorn(tmp_path, demo_catalogue):
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    (multiproc / "counter_1.db").write_bytes(b"stale file from an earlier run")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "4",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "auterity.settings",
    }
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-c",
            "deploy/gunicorn.conf.py",
            "auterity.wsgi",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail((tmp_path / "gunicorn.log").read_text()[-3000:])
            time.sleep(0.2)
        yield url, multiproc, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def per_worker_requests(multiproc: Path) -> dict[int, float]:
    """ai_routing_requests_total in each worker's own counter file."""
    counts = {}
    for path in multiproc.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        value = 0.0
        for metric in MultiProcessCollector.merge([str(path)], accumulate=False):
            if metric.name == "ai_routing_requests":
                value += sum(s.value for s in metric.samples if s.name.endswith("_total"))
        counts[pid] = value
    return counts


def send(url: str, key: str) -> int:
    # A new connection each time (no session, Connection: close): any worker may accept it.
    response = requests.post(
        f"{url}/v1/chat/completions",
        json={"model": "claude-haiku-4-5", "messages": HELLO, "max_tokens": 7},
        headers={"Authorization": f"Bearer {key}", "Connection": "close"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["usage"]["completion_tokens"]


def test_two_workers_counters_add_up_and_a_dead_workers_counts_stay(gunicorn, routed_key, sim):
    url, multiproc, _ = gunicorn
    # the stale file from "an earlier run" was removed at start
    assert not (multiproc / "counter_1.db").exists()
    sim.set_fault("anthropic", latency_ms=100)  # requests overlap, so both workers accept some
    sent, tokens = 0, 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(20):  # bounded: stops as soon as both workers have served traffic
            tokens += sum(pool.map(lambda _: send(url, routed_key), range(8)))
            sent += 8
            if sum(1 for v in per_worker_requests(multiproc).values() if v > 0) >= 2:
                break
    workers = {pid: n for pid, n in per_worker_requests(multiproc).items() if n > 0}
    assert len(workers) == 2, f"traffic reached only {workers} after {sent} requests"
    assert sum(workers.values()) == sent

    # every scrape, whichever worker answers it, reports the sum over both workers
    for _ in range(4):
        samples = scrape(url)
        assert total(samples, "ai_routing_requests_total", status="success") == sent
        assert total(samples, "ai_tokens_total", kind="completion") == tokens
        assert total(samples, "ai_routing_duration_seconds_count", phase="request") == sent
        assert total(samples, "ai_requests_in_flight") == 0
        assert {labels["provider"] for labels, _ in samples["ai_provider_status"]} >= {
            "anthropic",
            "openai",
        }
        assert total(samples, "django_http_responses_total_by_status_total", status="200") >= sent

    # when one worker dies, gunicorn replaces it; its counts stay, its live gauges go
    dead = next(iter(workers))
    os.kill(dead, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while any(multiproc.glob(f"gauge_live*_{dead}.db")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not list(multiproc.glob(f"gauge_live*_{dead}.db"))
    assert (multiproc / f"counter_{dead}.db").exists()
    samples = scrape(url)
    assert total(samples, "ai_routing_requests_total", status="success") == sent
    # and the replacement worker counts on top of them
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: send(url, routed_key), range(4)))
    assert total(scrape(url), "ai_routing_requests_total", status="success") == sent + 4


def test_request_log_rows_held_by_workers_are_written_before_gunicorn_exits(gunicorn, routed_key):
    if connection.vendor != "postgresql":
        pytest.skip("holds a PostgreSQL table lock")
    url, _, process = gunicorn
    import psycopg

    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as blocker:
        # given the request log cannot be written for now (a long lock, a slow database)
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE request_log IN EXCLUSIVE MODE")

        # when requests are served, they are answered all the same (rows wait in the workers)
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda _: send(url, routed_key), range(24)))
        assert RequestLog.objects.count() == 0  # nothing written yet: the table is locked

        # and gunicorn is stopped while they wait; the lock goes a moment later
        process.send_signal(signal.SIGTERM)
        time.sleep(1)
        blocker.execute("ROLLBACK")
    process.wait(timeout=60)

    # then every row was written on the way out
    assert RequestLog.objects.filter(status="success").count() == 24
