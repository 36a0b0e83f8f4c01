"""The web server under the loads an AI gateway meets (`python -m auterity.server`, real
workers, the provider simulator as a slow upstream): many long calls and streams at once,
idle and slow connections, reloads and stops while calls are in flight.

Not timed: each test asserts what a client sees (answers, errors, rows), and where it says
"not queued" it compares against what queueing would take by a wide margin.
"""

import asyncio
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import aiohttp
import pytest
import requests

from analytics.models import RequestLog
from providers.models import Provider

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


# No request limits: these tests count answers under load, not the caller's rate limit.
UNLIMITED = {"RATE_LIMIT_PER_MINUTE": "0", "RATE_LIMIT_PER_HOUR": "0"}


def slow_upstream(sim, **faults):
    for provider_id in Provider.objects.values_list("id", flat=True):
        sim.set_fault(provider_id, **faults)


def fresh_loop(coroutine):
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


async def many_calls(url: str, key: str, count: int, body: dict) -> list[tuple[int, bytes]]:
    """`count` POSTs to /v1/chat/completions at once; (status, body) of each."""
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one():
            async with session.post(
                f"{url}/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
            ) as response:
                return response.status, await response.read()

        return await asyncio.gather(*(one() for _ in range(count)))


def rows_eventually(**filters) -> int:
    """The request-log rows matching `filters` once the server's writer has caught up (rows are
    written in the background, within about a second)."""
    last, deadline = -1, time.monotonic() + 20
    while time.monotonic() < deadline:
        count = RequestLog.objects.filter(**filters).count()
        if count == last:
            return count
        last = count
        time.sleep(1.5)
    return last


def idle_connections(url: str, count: int) -> list[socket.socket]:
    """`count` TCP connections that never send a byte."""
    address = urlparse(url)
    return [socket.create_connection((address.hostname, address.port)) for _ in range(count)]


def test_idle_connections_do_not_block_real_requests(web_server, demo_catalogue, routed_key):
    server = web_server(workers=1, **UNLIMITED)
    # given: 100 connections that never send anything
    idle = idle_connections(server.url, 100)
    try:
        # when / then: health and a real call still answer
        assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
        response = requests.post(
            f"{server.url}/v1/chat/completions",
            json=HELLO,
            headers={"Authorization": f"Bearer {routed_key}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
    finally:
        for connection in idle:
            connection.close()


def test_a_client_slow_to_send_its_headers_is_disconnected(web_server, demo_catalogue):
    server = web_server(workers=1, WEB_HEADER_TIMEOUT="1", **UNLIMITED)
    address = urlparse(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        # a request line and half a header, then nothing
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        # the server closes the connection (recv returns b"" or the connection is reset)
        try:
            data = connection.recv(4096)
        except ConnectionResetError:
            data = b""
        waited = time.monotonic() - started
    assert b"200" not in data
    assert waited < 9  # closed by the 1 s header timeout, not by our own 10 s one


def test_three_hundred_slow_calls_are_answered_together(
    web_server, demo_catalogue, routed_key, sim
):
    # given: a 1 s upstream and one worker
    server = web_server(workers=1, **UNLIMITED)
    slow_upstream(sim, latency_ms=1000)
    # when: 300 clients call at once
    started = time.monotonic()
    answers = fresh_loop(many_calls(server.url, routed_key, 300, HELLO))
    elapsed = time.monotonic() - started
    # then: all answered, side by side (queued 32 at a time, as the threaded server did, they
    # would take ten seconds or more)
    assert [status for status, _ in answers] == [200] * 300
    assert elapsed < 10
    assert rows_eventually(status="success") == 300


def test_three_hundred_streams_at_once_all_complete(web_server, demo_catalogue, routed_key, sim):
    server = web_server(workers=1, **UNLIMITED)
    slow_upstream(sim, chunk_delay_ms=50)
    answers = fresh_loop(
        many_calls(server.url, routed_key, 300, {**HELLO, "stream": True, "max_tokens": 20})
    )
    assert [status for status, _ in answers] == [200] * 300
    assert all(body.endswith(b"data: [DONE]\n\n") for _, body in answers)
    assert rows_eventually(status="success", stream=True) == 300


def test_sigterm_finishes_the_streams_in_flight_and_writes_every_row(
    web_server, demo_catalogue, routed_key, sim
):
    # given: 20 streams of about 2 s in flight
    server = web_server(workers=1, **UNLIMITED)
    slow_upstream(sim, chunk_delay_ms=100)
    results = []

    def stream_one():
        response = requests.post(
            f"{server.url}/v1/chat/completions",
            json={**HELLO, "stream": True, "max_tokens": 20},
            headers={"Authorization": f"Bearer {routed_key}"},
            stream=True,
            timeout=60,
        )
        results.append((response.status_code, response.content))

    threads = [threading.Thread(target=stream_one) for _ in range(20)]
    for thread in threads:
        thread.start()
    time.sleep(0.8)
    # when: the server is told to stop
    server.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join()
    assert server.process.wait(timeout=60) == 0
    # then: every stream ended normally and every row is there
    assert len(results) == 20
    assert all(status == 200 and body.endswith(b"data: [DONE]\n\n") for status, body in results)
    assert RequestLog.objects.filter(status="success", stream=True).count() == 20


def test_sighup_under_keep_alive_load_fails_no_request(web_server, demo_catalogue, routed_key, sim):
    # given: 8 clients calling in a loop over kept-alive connections
    server = web_server(workers=2, **UNLIMITED)
    slow_upstream(sim, latency_ms=50)
    stop = threading.Event()
    outcomes: list[str] = []

    def client():
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    response = session.post(
                        f"{server.url}/v1/chat/completions",
                        json=HELLO,
                        headers={"Authorization": f"Bearer {routed_key}"},
                        timeout=30,
                    )
                    outcomes.append(str(response.status_code))
                except requests.RequestException as exc:
                    outcomes.append(f"{type(exc).__name__}: {exc}"[:200])

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    # when: the workers are reloaded
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    while server.workers_started() < 4:  # two replacements loaded
        assert time.monotonic() < deadline, "the workers were not replaced"
        time.sleep(0.1)
    time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join()
    # then: every request got its answer
    failed = [outcome for outcome in outcomes if outcome != "200"]
    assert len(outcomes) > 50
    assert failed == [], (
        f"{len(failed)} of {len(outcomes)} failed: {sorted(set(failed))[:5]}\n"
        + server.log_text()[-3000:]
    )


def test_a_django_request_stuck_on_the_database_does_not_hold_up_the_others(
    web_server, demo_catalogue, django_user_model
):
    # The admin, the REST API, /readyz and /metrics are Django's synchronous views (Django's
    # ASGI handler gives each request a thread of its own). Were they run one at a time per
    # worker, one slow analytics query would hold up the orchestrator's probes and every scrape.
    import psycopg
    from django.db import connection

    from accounts.services import api_key_create

    if connection.vendor != "postgresql":
        pytest.skip("holds a PostgreSQL table lock")
    user = django_user_model.objects.create_user("lead-reader", password="pw-123456")
    _, key = api_key_create(user=user, name="reader", scopes=["routing:view"])
    server = web_server(workers=1, **UNLIMITED)
    headers = {"Authorization": f"Bearer {key}"}
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as blocker:
        # given an analytics request waiting on a locked request_log (a long migration, say)
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE request_log IN ACCESS EXCLUSIVE MODE")
        stuck = ThreadPoolExecutor(max_workers=1)
        summary = stuck.submit(
            requests.get,
            f"{server.url}/api/routing/analytics/summary/",
            headers=headers,
            timeout=60,
        )
        time.sleep(1.0)
        assert not summary.done(), "the summary did not read the locked table"
        # when the probes, a scrape and another API request come in meanwhile
        started = time.monotonic()
        ready = requests.get(f"{server.url}/readyz", timeout=20)
        metrics = requests.get(f"{server.url}/metrics", timeout=20)
        policies = requests.get(f"{server.url}/api/routing/policies/", headers=headers, timeout=20)
        waited = time.monotonic() - started
        # then they are answered, not queued behind it (20 s would be the lock's length)
        assert (ready.status_code, metrics.status_code, policies.status_code) == (200, 200, 200)
        assert waited < 10, f"answered only after {waited:.1f} s"
        assert not summary.done()
        blocker.execute("ROLLBACK")
    assert summary.result().status_code == 200
    stuck.shutdown()
