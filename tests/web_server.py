"""The production web server (`python -m auterity.server`: granian, several worker processes)
started in a subprocess against the test database, for tests that need real workers: metrics
added up across processes, limits shared between them, rows drained at exit, streams cut by
the client. The `web_server` fixture (conftest.py) starts it and stops it after the test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from prometheus_client.multiprocess import MultiProcessCollector

from tests.subprocess_env import free_port, subprocess_env

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class WebServer:
    url: str
    process: subprocess.Popen
    multiproc: Path
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def workers_started(self) -> int:
        """Workers that have loaded the app so far, replacements included."""
        return self.log_text().count("Started worker-")

    def counts_per_worker(self, counter: str, **labels) -> dict[int, float]:
        """Worker pid -> the counter named `counter` (its samples whose labels include
        `labels`) in that worker's own counter file, for the workers that counted any."""
        counts = {}
        for path in self.multiproc.glob("counter_*.db"):
            pid = int(path.stem.split("_")[1])
            count = sum(
                sample.value
                for metric in MultiProcessCollector.merge([str(path)], accumulate=False)
                if metric.name == counter
                for sample in metric.samples
                if sample.name.endswith("_total")
                and all(sample.labels.get(k) == v for k, v in labels.items())
            )
            if count:
                counts[pid] = count
        return counts

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # the server and its workers: killing the server alone would orphan the workers
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()


def start_web_server(tmp_path: Path, *, workers: int = 2, root: Path = ROOT, **env) -> WebServer:
    """Start the server and return once every worker has loaded the app and /healthz answers.
    `env` adds to or overrides the environment (e.g. CACHE_URL); `root` is the checkout it
    serves (another build of the code, for the blue/green tests)."""
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir(exist_ok=True)
    port = free_port()
    full_env = subprocess_env(
        WEB_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY=str(workers),
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        **{"LOG_LEVEL": "WARNING", **env},
    )
    log = tmp_path / "web-server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "auterity.server"],
            cwd=root,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so that stop() can end it whole
        )
    server = WebServer(f"http://127.0.0.1:{port}", process, multiproc, log)
    deadline = time.monotonic() + 60
    while True:
        if server.workers_started() >= workers:
            try:
                if requests.get(f"{server.url}/healthz", timeout=5).status_code == 200:
                    return server
            except requests.RequestException:
                pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the web server did not start:\n{server.log_text()[-3000:]}")
        time.sleep(0.1)
