"""The production web server (`python -m auterity.server`, granian) with two workers: a scrape
adds up every worker's counters and drops a dead worker's live gauges; the request-log rows the
workers write in the background are all there once the server stops; a client that leaves a
stream mid-way cancels it.

Runs the real server in a subprocess (tests/web_server.py) against the test database (committed
rows: transactional test) and the provider simulator, with its multiprocess directory in a
temporary folder.
"""

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection

from analytics.models import RequestLog
from tests.metrics_exposition import scrape, total
from tests.streaming_client import read_events_then_leave

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "Count me once, whichever worker serves me."}]


@pytest.fixture
def server(tmp_path, web_server, demo_catalogue):
    (tmp_path / "prometheus").mkdir()
    (tmp_path / "prometheus" / "counter_1.db").write_bytes(b"stale file from an earlier run")
    return web_server()


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


def test_two_workers_counters_add_up_and_a_dead_workers_counts_stay(server, routed_key, sim):
    url, multiproc = server.url, server.multiproc
    # the stale file from "an earlier run" was removed at start
    assert not (multiproc / "counter_1.db").exists()
    sim.set_fault("anthropic", latency_ms=100)  # requests overlap, so both workers accept some
    sent, tokens = 0, 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(20):  # bounded: stops as soon as both workers have served traffic
            tokens += sum(pool.map(lambda _: send(url, routed_key), range(8)))
            sent += 8
            if len(server.counts_per_worker("ai_routing_requests")) >= 2:
                break
    workers = server.counts_per_worker("ai_routing_requests")
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
        assert total(samples, "ai_gateway_http_responses_total", status="200") >= sent

    # when one worker dies, the server replaces it; its counts stay, its live gauges go
    dead = next(iter(workers))
    assert list(multiproc.glob(f"gauge_live*_{dead}.db"))
    os.kill(dead, signal.SIGKILL)
    deadline = time.monotonic() + 30
    # the replacement has started (a server stopped while a worker is still loading the app
    # waits WEB_GRACEFUL_TIMEOUT for it)
    while server.workers_started() < 3:
        assert time.monotonic() < deadline, server.log_text()[-2000:]
        time.sleep(0.1)
    samples = scrape(url)  # whichever worker answers, the dead one's live gauges are gone
    assert not list(multiproc.glob(f"gauge_live*_{dead}.db"))
    assert (multiproc / f"counter_{dead}.db").exists()
    assert total(samples, "ai_routing_requests_total", status="success") == sent
    # and the replacement worker counts on top of them
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: send(url, routed_key), range(4)))
    assert total(scrape(url), "ai_routing_requests_total", status="success") == sent + 4


def test_request_log_rows_held_by_workers_are_written_before_the_server_exits(server, routed_key):
    if connection.vendor != "postgresql":
        pytest.skip("holds a PostgreSQL table lock")
    url, process = server.url, server.process
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

        # and the server is stopped while they wait; the lock goes a moment later
        process.send_signal(signal.SIGTERM)
        time.sleep(1)
        blocker.execute("ROLLBACK")
    process.wait(timeout=60)

    # then every row was written on the way out
    assert RequestLog.objects.filter(status="success").count() == 24


def test_a_stream_the_client_leaves_is_cancelled_and_logged(server, routed_key, sim):
    # given: a slow stream (50 ms between events, 200 tokens)
    sim.set_fault("anthropic", chunk_delay_ms=50)
    # when: the client reads the first events and goes away
    read_events_then_leave(server.url, routed_key)
    # then: the server stops reading the upstream and the row says so, with the usage so far
    deadline = time.monotonic() + 15
    while not RequestLog.objects.exists():
        assert time.monotonic() < deadline, "no row for the stream"
        time.sleep(0.05)
    row = RequestLog.objects.get()
    assert (row.status, row.stream) == ("cancelled", True)
    assert 0 < row.completion_tokens < 200
    # and the request is over in the worker too
    assert total(scrape(server.url), "ai_requests_in_flight") == 0
