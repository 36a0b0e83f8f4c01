"""The fault matrix: the production server under a bounded load of keep-alive clients (the
official openai SDK) while its stores fail under it, then every answer matched to its
request-log row.

The server (`python -m auterity.server`, several workers) runs against a PostgreSQL cluster and
a redis-server of this test's own (tests/stores.py), never the shared ones, and the provider
simulator. Faults, one after the other while the load runs:

    PostgreSQL stopped (immediate shutdown) and started again
    Redis stopped and started again
    both stopped at once
    request_log locked (ACCESS EXCLUSIVE) by another session
    a worker killed with SIGKILL (granian starts a new one)
    and throughout: one client sends the same X-Request-ID on every request

Then: every answered request has exactly one row (its own X-Request-ID), >= 99.9 % of client
requests succeeded (every provider stays healthy), and auterity_request_log_dropped_total
equals the rows missing: 0. The figures are printed (`-s` shows them; docs/deployment.md
quotes a run). Run alone with `pytest -m faults -s`.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import psycopg
import pytest
from openai import OpenAI

from tests.stores import PrivatePostgres, PrivateRedis
from tests.subprocess_env import subprocess_env
from tests.web_server import start_web_server

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = int(os.environ.get("FAULT_MATRIX_CLIENTS", "6"))
# Seconds each fault lasts (and the calm between them): short, the suite's time is shared.
FAULT_S = float(os.environ.get("FAULT_MATRIX_FAULT_SECONDS", "5"))
CALM_S = float(os.environ.get("FAULT_MATRIX_CALM_SECONDS", "2"))
DUPLICATE_ID = "the-same-id-every-time"

_SETUP = textwrap.dedent(
    """
    import sys, django
    django.setup()
    from django.apps import apps
    from django.contrib.auth.models import Group, User
    from accounts.services import api_key_create
    from providers.demo import demo_catalogue_install
    from routing.demo import demo_policies_install
    from routing.flags import install_seed_flags
    demo_catalogue_install(sys.argv[1])
    demo_policies_install()
    install_seed_flags(apps)
    user = User.objects.create_user("load", password="pw-load-123456")
    user.groups.add(Group.objects.get(name="enterprise"))
    print(api_key_create(user=user, name="load", scopes=["ai:execute"])[1])
    """
)


@dataclass
class Answer:
    status: int
    request_id: str
    client_request_id: str


@dataclass
class Load:
    """Keep-alive clients sending chat completions until stopped; every HTTP answer (retried
    ones too, seen by an httpx hook) and every request's final outcome are recorded."""

    url: str
    key: str
    answers: list[Answer] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _hook(self, response: httpx2.Response) -> None:
        if response.request.url.path.endswith("/chat/completions"):
            answer = Answer(
                response.status_code,
                response.headers.get("X-Request-ID", ""),
                response.headers.get("X-Client-Request-ID", ""),
            )
            with self.lock:
                self.answers.append(answer)

    def _client(self, n: int) -> None:
        http = httpx2.Client(event_hooks={"response": [self._hook]}, timeout=20)
        client = OpenAI(base_url=f"{self.url}/v1", api_key=self.key, http_client=http)
        sent = 0
        while not self.stop.is_set():
            sent += 1
            extra = {"X-Request-ID": DUPLICATE_ID if n == 0 else f"client-{n}-{sent}"}
            try:
                client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": f"request {sent} of client {n}"}],
                    max_tokens=8,
                    extra_headers=extra,
                )
                outcome = "success"
            except Exception as exc:  # the SDK retried (2 times) and gave up
                outcome = "failure"
                with self.lock:
                    self.errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
            with self.lock:
                self.outcomes[outcome] += 1
        http.close()

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        return threads


def _workers(server_pid: int) -> list[int]:
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return [int(pid) for pid in children]


def _rows(database_url: str) -> dict[str, tuple[str, str]]:
    with psycopg.connect(database_url) as connection:
        return {
            request_id: (client_request_id, status)
            for request_id, client_request_id, status in connection.execute(
                "SELECT request_id, client_request_id, status FROM request_log"
            )
        }


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    postgres = PrivatePostgres().start()
    redis = PrivateRedis(tmp_path_factory.mktemp("fault-redis")).start()
    try:
        with psycopg.connect(postgres.url(), autocommit=True) as connection:
            connection.execute("CREATE DATABASE auterity_faults")
        yield postgres, redis
    finally:
        redis.stop()
        postgres.destroy()


def test_no_answered_request_is_lost_and_no_request_fails_while_stores_fail(
    stores, simulator, tmp_path
):
    postgres, redis = stores
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # a line per request otherwise
    database_url = postgres.url("auterity_faults")
    env = subprocess_env(DATABASE_URL=database_url, CACHE_URL=redis.url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    key = (
        subprocess.run(
            [sys.executable, "-c", _SETUP, simulator.url],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    simulator.clear_faults()
    server = start_web_server(
        tmp_path,
        workers=2,
        DATABASE_URL=database_url,
        CACHE_URL=redis.url,
        REQUEST_LOG_SPOOL_DIR=str(tmp_path / "spool"),
        REQUEST_LOG_SPOOL_ADOPT_SECONDS="2",
        RATE_LIMIT_PER_MINUTE="0",
        RATE_LIMIT_PER_HOUR="0",
        LOG_LEVEL="INFO",
    )
    load = Load(server.url, key)
    timeline = []

    def phase(name: str, seconds: float) -> None:
        timeline.append((name, len(load.answers)))
        time.sleep(seconds)

    threads = load.start()
    try:
        phase("warm", CALM_S)
        postgres.stop()
        phase("postgresql down", FAULT_S)
        postgres.start()
        phase("calm", CALM_S)
        redis.stop()
        phase("redis down", FAULT_S)
        redis.start()
        phase("calm", CALM_S)
        postgres.stop()
        redis.stop()
        phase("both down", FAULT_S)
        postgres.start()
        redis.start()
        phase("calm", CALM_S)
        with psycopg.connect(database_url) as locker:
            locker.execute("LOCK TABLE request_log IN ACCESS EXCLUSIVE MODE")
            phase("request_log locked", FAULT_S)
        phase("calm", CALM_S)
        victim = _workers(server.process.pid)[0]
        os.kill(victim, signal.SIGKILL)
        phase("worker killed", FAULT_S)
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(60)

    # Rows of the killed worker are shipped by a live one (every 2 s here); the rest come
    # within a moment. Wait until every answered request has its row, or for 60 s.
    answered = {a.request_id for a in load.answers if a.request_id}
    deadline = time.monotonic() + 60
    while not answered <= _rows(database_url).keys() and time.monotonic() < deadline:
        time.sleep(0.5)
    log = server.log_text()
    server.stop()
    rows = _rows(database_url)
    dropped = sum(server.counts_per_worker("auterity_request_log_dropped").values())

    missing = answered - rows.keys()
    duplicates = [a for a in load.answers if a.client_request_id == DUPLICATE_ID]
    total = sum(load.outcomes.values())
    success = load.outcomes["success"] / total if total else 0.0
    statuses = Counter(a.status for a in load.answers)
    tracebacks = log.count("Traceback")
    transitions = [
        line[:240]
        for line in log.splitlines()
        if any(word in line for word in ("reload failed", "work again", "spool"))
    ]
    print(
        f"\nfault matrix: {total} client requests, {load.outcomes['success']} succeeded "
        f"({success:.4%}); {len(load.answers)} HTTP answers {dict(statuses)}; "
        f"{len(answered)} answered ids, {len(missing)} without a row, {dropped:g} counted "
        f"dropped; {len(duplicates)} answers to the client reusing one X-Request-ID; "
        f"{tracebacks} tracebacks in the server log\nphases (name, answers before): {timeline}"
        f"\nclient failures: {dict(load.errors)}\noutage and spool lines:\n"
        + "\n".join(transitions)
    )
    assert total > 100, "the load never got going"
    assert missing == set(), f"{len(missing)} answered requests have no row"
    assert dropped == len(missing) == 0
    assert success >= 0.999, dict(load.errors)
    # the client that reused one id has one row per answer, each under its own id
    assert len({a.request_id for a in duplicates}) == len(duplicates) > 1
    assert all(rows[a.request_id][0] == DUPLICATE_ID for a in duplicates if a.status == 200)
    # one line per outage transition, not a traceback per request
    assert tracebacks < 10, log[-5000:]
    assert "reload failed" in log and "work again" in log
    assert len(transitions) < 100  # per transition, not per request
    # the killed worker's spool file was adopted and shipped by a live worker
    assert "adopted" in log
