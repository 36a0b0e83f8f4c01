"""Zero downtime, for real: two colours of the production web server, each its own build of
the code (blue serves this checkout, green a copy of its committed tree, as a new release
would be), behind nginx with weighted upstreams standing in for Istio. Under a constant,
bounded load the weights move 100/0 -> 90/10 -> 50/50 -> 0/100 with graceful reloads, and the
blue server is stopped (SIGTERM): no client request fails, and the request log holds exactly one
row per request.

(A graceful respawn of one colour's workers (SIGHUP) under keep-alive load through the proxy
still fails a request now and then: a worker being replaced closes a pooled connection that
carries a request, which a proxy cannot retry for a POST. That is the web server's reload,
being reworked with the async data plane; its test waits with it.)

The load is a pool of Python clients rather than wrk: every request a client starts, it reads
to the end, so each request id it was answered with can be matched to a request-log row; wrk
abandons the requests in flight when its time is up."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest
import requests

from analytics.models import RequestLog
from tests.subprocess_env import free_port
from tests.web_server import ROOT, start_web_server

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed"),
]

HELLO = [{"role": "user", "content": "Serve me through the switch."}]
NGINX_CONF = """
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream colours {{
{servers}
        # pooled connections to the colours, as Envoy keeps them
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://colours;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_read_timeout 120s;
        }}
    }}
}}
"""


class WeightedProxy:
    """nginx in front of the two colours; `weights` rewrites its upstream block and reloads it
    gracefully (SIGHUP: new workers take new connections, old ones finish their requests)."""

    def __init__(self, prefix: Path, upstreams: dict[str, str]):
        self.prefix, self.upstreams = prefix, upstreams
        self.port = free_port()
        self.conf = prefix / "nginx.conf"
        self.weights({"blue": 100, "green": 0})
        self.process = subprocess.Popen(
            ["nginx", "-p", str(prefix), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=(prefix / "nginx.out").open("wb"),
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{self.url}/healthz", timeout=5)
                return
            except requests.ConnectionError:
                assert self.process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)

    def weights(self, weights: dict[str, int]) -> None:
        # nginx has no weight 0: a colour at 0 is `down`. max_fails=0: one failed request
        # does not take a colour out for 10 s (Istio's outlier detection needs five).
        servers = "\n".join(
            f"        server {address} max_fails=0 "
            + (f"weight={weights[c]};" if weights[c] else "down;")
            for c, address in self.upstreams.items()
        )
        self.conf.write_text(NGINX_CONF.format(prefix=self.prefix, servers=servers, port=self.port))
        if hasattr(self, "process"):
            self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGQUIT)  # graceful
        self.process.wait(timeout=30)


class Load:
    """`clients` threads sending chat completions through `url` one after another, each read
    to the end, until stopped."""

    def __init__(self, url: str, key: str, clients: int = 6):
        self.url, self.key = url, key
        self.answered: list[str] = []
        self.failed: list[str] = []
        self.sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client) for _ in range(clients)]
        for thread in self._threads:
            thread.start()

    def _client(self) -> None:
        session = requests.Session()  # keep-alive to the proxy, as SDKs do
        session.headers["Authorization"] = f"Bearer {self.key}"
        for _ in range(5000):  # bounded
            if self._stop.is_set():
                return
            with self._lock:
                self.sent += 1
            try:
                response = session.post(
                    f"{self.url}/v1/chat/completions",
                    json={"model": "claude-haiku-4-5", "messages": HELLO, "max_tokens": 5},
                    timeout=60,
                )
                outcome = response.headers.get("X-Request-ID") if response.ok else None
                detail = f"HTTP {response.status_code}: {response.text[:200]}"
            except requests.RequestException as exc:
                outcome, detail = None, repr(exc)
            with self._lock:
                (self.answered.append(outcome) if outcome else self.failed.append(detail))

    def wait_for(self, answered: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        target = len(self.answered) + answered
        while len(self.answered) < target:
            assert time.monotonic() < deadline, f"the load stalled: {self.failed[:5]}"
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)


def another_build(tmp_path: Path) -> Path:
    """The committed tree of this checkout, extracted elsewhere: a second build of the code."""
    archive = tmp_path / "release.tar"
    subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), "HEAD"],
        check=True,
    )
    target = tmp_path / "release"
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


@pytest.fixture
def colours(tmp_path, demo_catalogue, sim):
    sim.set_fault("anthropic", latency_ms=150)  # requests overlap every change
    started = {}
    for colour, root in (("blue", ROOT), ("green", another_build(tmp_path))):
        (tmp_path / colour).mkdir()
        started[colour] = start_web_server(tmp_path / colour, workers=2, root=root)
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture
def proxy(tmp_path, colours):
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    proxy = WeightedProxy(
        prefix, {c: server.url.removeprefix("http://") for c, server in colours.items()}
    )
    yield proxy
    proxy.stop()


def served(server) -> float:
    return sum(server.counts_per_worker("ai_routing_requests", status="success").values())


def test_weights_move_to_green_and_blue_stops_without_a_failed_request(colours, proxy, routed_key):
    # given constant load through the proxy, all on blue
    load = Load(proxy.url, routed_key)
    try:
        load.wait_for(20)
        # when the weights move step by step, each a graceful reload
        for green in (10, 50, 100):
            proxy.weights({"blue": 100 - green, "green": green})
            load.wait_for(30)
        # and blue, taking no new requests, is stopped
        assert colours["blue"].stop() == 0
        load.wait_for(30)
    finally:
        load.stop()

    # then no client saw a failure, both colours served, green took over
    assert load.failed == []
    assert served(colours["blue"]) > 0 and served(colours["green"]) > 0
    # and every request has exactly one request-log row (rows are written ~50 ms after the
    # answer: blue wrote its last ones as it stopped)
    deadline = time.monotonic() + 10
    while RequestLog.objects.count() < len(load.answered) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(load.answered) == load.sent
    logged = set(RequestLog.objects.values_list("request_id", flat=True))
    assert RequestLog.objects.count() == len(load.answered)
    assert logged == set(load.answered)
