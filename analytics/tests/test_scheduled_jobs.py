"""End to end: a real Celery worker and beat, against Redis, run the schedule in settings.

Both run as subprocesses on this test's database, with the rollup and probe intervals cut to
a second through the environment, and their own queue name so nothing else's tasks mix in.
The test waits (bounded) for a rollup row and a probe result to appear.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from analytics.models import RoutingAnalytics
from providers.models import ProviderHealthCheck
from tests.subprocess_env import database_url

from .factories import RequestLogFactory

pytestmark = pytest.mark.django_db(transaction=True)

BROKER_URL = os.environ.get("CELERY_TEST_BROKER_URL", "redis://127.0.0.1:6379/14")
WAIT_SECONDS = 90


@pytest.fixture
def broker():
    client = redis.Redis.from_url(BROKER_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"no Redis for the Celery end-to-end test at {BROKER_URL}: {exc}"
        if os.environ.get("CI") or os.environ.get("REDIS_TEST_URL"):
            pytest.fail(message)  # CI has Redis: a missing one is a broken build, not a skip
        pytest.skip(message)
    queue = f"auterity-test-{uuid.uuid4().hex[:12]}"
    yield queue
    # Only this test's keys: the queue and kombu's bindings for it.
    for key in client.scan_iter(match=f"*{queue}*"):
        client.delete(key)
    client.close()


def start(args, env, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "auterity", *args],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped below with everything it forks
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def test_worker_and_beat_run_the_rollup_and_the_probes(broker, demo_catalogue, tmp_path):
    # given: traffic in the log, providers pointing at the simulator
    now = timezone.now()
    for minutes in (1, 2, 7):
        RequestLogFactory(created_at=now - timedelta(minutes=minutes))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "auterity.settings",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_TASK_DEFAULT_QUEUE": broker,
        "ANALYTICS_ROLLUP_INTERVAL_SECONDS": "1",
        "PROVIDER_PROBE_INTERVAL_SECONDS": "1",
        "LOG_FORMAT": "plain",
        "PYTHONUNBUFFERED": "1",
    }
    worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
    worker = start(
        [
            "worker",
            "--pool",
            "solo",
            "--queues",
            broker,
            "--hostname",
            f"{broker}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        env,
        worker_log,
    )
    beat = start(
        ["beat", "--schedule", str(tmp_path / "beat-schedule"), "--loglevel", "INFO"],
        env,
        beat_log,
    )
    try:
        # when: beat sends the jobs every second and the worker runs them
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            rolled_up = RoutingAnalytics.objects.filter(provider_id="openai").exists()
            probed = ProviderHealthCheck.objects.filter(provider_id="openai").exists()
            if rolled_up and probed:
                break
            assert worker.poll() is None and beat.poll() is None, "a Celery process exited"
            time.sleep(0.5)
    finally:
        stop(beat)
        stop(worker)

    # then: a rollup of the log and a probe result, written by the worker
    logs = f"--- worker\n{worker_log.read_text()[-4000:]}\n--- beat\n{beat_log.read_text()[-2000:]}"
    rows = RoutingAnalytics.objects.filter(provider_id="openai")
    assert sum(r.request_count for r in rows) == 3, logs
    check = ProviderHealthCheck.objects.filter(provider_id="openai").first()
    assert check is not None, logs
    assert (check.outcome, check.status_after) == ("ok", "healthy")
    assert demo_catalogue.stats("openai")["requests"] >= 1  # a real model-list call
    assert "analytics.tasks.aggregate_analytics_task" in worker_log.read_text()
    assert "providers.tasks.probe_providers_task" in beat_log.read_text()
