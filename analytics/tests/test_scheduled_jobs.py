"""End to end: a real Celery worker and beat, against Redis, run the schedule in the database.

Both run as subprocesses on this test's database, with the rollup and probe intervals cut to
a second in their django-celery-beat rows (as an operator would in the admin), and their own
queue name so nothing else's tasks mix in. The test waits (bounded) for a rollup row and a
probe result to appear.
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
from django.apps import apps
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from analytics.models import RoutingAnalytics
from analytics.schedules import install_default_schedules
from providers import schedules as provider_schedules
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
    # the migrations' schedules (a transactional test before this one may have flushed them),
    # with the rollup and the probes every second, edited as in the admin
    install_default_schedules(apps)
    provider_schedules.install_default_schedules(apps)
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    for name in ("analytics-rollup", "provider-probes"):
        task = PeriodicTask.objects.get(name=name)
        task.interval = every_second
        task.save()
    PeriodicTask.objects.exclude(name__in=("analytics-rollup", "provider-probes")).update(
        enabled=False
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "auterity.settings",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_TASK_DEFAULT_QUEUE": broker,
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
        ["beat", "--loglevel", "INFO"],
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


def test_the_migrations_seed_the_default_schedules_and_beat_reads_them(transactional_db):
    from celery.schedules import crontab, schedule
    from django_celery_beat.schedulers import DatabaseScheduler

    from auterity.celery import app

    install_default_schedules(apps)
    provider_schedules.install_default_schedules(apps)
    # an operator pauses the report: beat leaves it out
    PeriodicTask.objects.filter(name="analytics-daily-report").update(enabled=False)

    entries = DatabaseScheduler(app=app, lazy=True).all_as_schedule()

    assert entries["analytics-rollup"].task == "analytics.tasks.aggregate_analytics_task"
    assert entries["analytics-rollup"].schedule == schedule(timedelta(seconds=60))
    assert entries["provider-probes"].schedule == schedule(timedelta(seconds=30))
    # (beat loads cron entries only near their time; the row holds the default)
    retention = PeriodicTask.objects.get(name="retention")
    assert retention.crontab.schedule == crontab("30", "3", "*", "*", "*")
    assert retention.task == "analytics.tasks.purge_old_rows_task"
    assert entries["provider-probes"].options["expires"] == 30
    assert entries["output-estimates"].task == "analytics.tasks.refresh_output_estimates_task"
    assert entries["canary-evaluation"].task == "analytics.tasks.evaluate_canaries_task"
    assert entries["canary-evaluation"].schedule == schedule(timedelta(seconds=60))
    price_sync = PeriodicTask.objects.get(name="price-sync")
    assert price_sync.crontab.schedule == crontab("15", "4", "*", "*", "*")
    assert price_sync.task == "providers.tasks.sync_prices_task"
    assert "analytics-daily-report" not in entries
