"""The container image (deploy/container/), built with podman and run as an operator runs it:
the migrate, simulator and web roles on the host network against the test database and Redis,
with a read-only root filesystem. /readyz answers ok, a chat completion through the container
works and is in the request log, and a SIGTERM to the web container while it serves loses no
request-log row.

Needs podman (.ci/run installs it, with runc) and PostgreSQL (a container cannot open the test
process's SQLite file)."""

from __future__ import annotations

import json
import threading
import time

import openai
import pytest
import requests

from analytics.models import RequestLog
from tests.containers import (
    podman,
    podman_missing,
    run_container,
    wait_http_ok,
)
from tests.subprocess_env import free_port

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(podman_missing(), reason="podman is not installed (.ci/run installs it)"),
]

HELLO = [{"role": "user", "content": "Hello from inside a container"}]


@pytest.fixture
def app_env(container_app_env):
    return container_app_env  # tests/conftest.py


@pytest.fixture
def containers():
    """Every container a test starts is removed after it (its log printed on failure)."""
    started = []
    yield started
    for container in started:
        container.remove()


@pytest.fixture
def simulator_container(container_image, app_env, containers):
    port = free_port()
    sim = run_container(
        container_image,
        f"auterity-test-sim-{port}",
        "simulator",
        {**app_env, "SIMULATOR_PORT": str(port)},
    )
    containers.append(sim)
    url = f"http://127.0.0.1:{port}"
    wait_http_ok(f"{url}/_sim/health", sim)
    return url


@pytest.fixture
def catalogue_key(simulator_container, django_user_model):
    """The demo catalogue pointing at the simulator container, and an enterprise caller's key."""
    from django.apps import apps
    from django.contrib.auth.models import Group

    from accounts.services import api_key_create
    from providers.demo import demo_catalogue_install
    from routing.demo import demo_policies_install
    from routing.flags import install_seed_flags

    demo_catalogue_install(simulator_container)
    demo_policies_install()
    install_seed_flags(apps)
    user = django_user_model.objects.create_user("ent", password="pw-123456")
    user.groups.add(Group.objects.get_or_create(name="enterprise")[0])
    return api_key_create(user=user, name="container-key", scopes=["ai:execute"])[1]


@pytest.fixture
def web_container(container_image, app_env, containers, catalogue_key):
    port = free_port()
    env = {**app_env, "WEB_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2"}
    web = run_container(container_image, f"auterity-test-web-{port}", "web", env)
    containers.append(web)
    web.url = f"http://127.0.0.1:{port}"
    wait_http_ok(f"{web.url}/healthz", web)
    return web


def test_the_image_is_built_as_the_issue_asks(container_image):
    inspected = json.loads(podman("image", "inspect", container_image).stdout)[0]
    config = inspected["Config"]
    assert config["User"] == "10001"
    assert config["StopSignal"] == "SIGTERM"
    assert inspected["Healthcheck"]["Test"][-1] == "healthcheck"
    assert config["Entrypoint"] == ["/app/deploy/container/entrypoint"]
    assert config["Cmd"] == ["web"]
    labels = config["Labels"]
    for label in ("title", "version", "revision", "created", "base.name"):
        assert labels[f"org.opencontainers.image.{label}"]
    # no compilers, no pip, no test tooling, no pip cache; the static files are collected
    shell = podman(
        "run", "--rm", "--network=host", "--entrypoint", "sh", container_image, "-c",
        "for tool in gcc cc pip pip3; do command -v $tool; done;"
        " python -c 'import pytest' 2>/dev/null && echo pytest;"
        " ls -d /root/.cache/pip ~/.cache/pip 2>/dev/null;"
        " test -f /app/staticfiles/admin/css/base.css && echo static-ok; id -u",
        check=False,
    )  # fmt: skip
    assert shell.stdout.split() == ["static-ok", "10001"], shell.stdout + shell.stderr


def test_an_unknown_role_is_refused_by_name(container_image):
    result = podman("run", "--rm", "--network=host", container_image, "serve", check=False)
    assert result.returncode == 64
    assert "unknown role 'serve'" in result.stderr


def test_migrate_web_and_simulator_roles_serve_a_chat_completion_and_log_it(
    container_image, app_env, catalogue_key, web_container
):
    # the migrate role is a one-shot that leaves a migrated database as it is
    migrate = podman(
        "run", "--rm", "--network=host", "--read-only", "--tmpfs=/app/var:rw,mode=1777",
        *[f"--env={key}={value}" for key, value in app_env.items()], container_image, "migrate",
        timeout=300,
    )  # fmt: skip
    assert "No migrations to apply" in migrate.stdout, migrate.stdout + migrate.stderr

    ready = requests.get(f"{web_container.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ok"

    client = openai.OpenAI(base_url=f"{web_container.url}/v1", api_key=catalogue_key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="claude-haiku-4-5", messages=HELLO, max_tokens=9
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    request_id = raw.headers["X-Request-ID"]
    deadline = time.monotonic() + 10  # rows are written in the background, ~50 ms later
    while not RequestLog.objects.filter(request_id=request_id).exists():
        assert time.monotonic() < deadline, web_container.logs()[-3000:]
        time.sleep(0.1)
    row = RequestLog.objects.get(request_id=request_id)
    assert (row.status, row.completion_tokens) == ("success", completion.usage.completion_tokens)

    # the image's HEALTHCHECK asks the role running inside
    assert podman("healthcheck", "run", web_container.name, check=False).returncode == 0


def test_sigterm_to_the_web_container_loses_no_request_log_row(
    simulator_container, catalogue_key, web_container
):
    # given requests that take a while upstream, several in flight at any moment
    requests.put(
        f"{simulator_container}/_sim/faults/anthropic", json={"latency_ms": 400}, timeout=5
    ).raise_for_status()
    answered: list[tuple[str, float]] = []  # (request id, when the answer came)
    refused: list[str] = []
    stop_sent = threading.Event()
    lock = threading.Lock()

    def client():
        session_headers = {"Authorization": f"Bearer {catalogue_key}", "Connection": "close"}
        for _ in range(200):  # bounded; ends at the first refusal once the stop was sent
            try:
                response = requests.post(
                    f"{web_container.url}/v1/chat/completions",
                    json={"model": "claude-haiku-4-5", "messages": HELLO, "max_tokens": 5},
                    headers=session_headers,
                    timeout=60,
                )
            except requests.ConnectionError as exc:
                with lock:
                    refused.append(repr(exc))
                if stop_sent.is_set():
                    return
                continue
            assert response.status_code == 200, response.text
            with lock:
                answered.append((response.headers["X-Request-ID"], time.monotonic()))

    threads = [threading.Thread(target=client) for _ in range(6)]
    for thread in threads:
        thread.start()
    while len(answered) < 12:
        time.sleep(0.05)

    # when the container is stopped (SIGTERM) while requests are in flight
    stopped_at = time.monotonic()
    stop_sent.set()
    web_container.stop(timeout=70)
    for thread in threads:
        thread.join(timeout=120)

    # then it exited by itself, requests in flight were answered, and every answer has its row
    assert web_container.exit_code() == 0, web_container.logs()[-3000:]
    assert any(when > stopped_at for _, when in answered), "no request was in flight"
    answered_ids = {request_id for request_id, _ in answered}
    logged = set(
        RequestLog.objects.filter(request_id__in=answered_ids).values_list("request_id", flat=True)
    )
    assert logged == answered_ids, f"{len(answered_ids - logged)} rows lost"
    assert RequestLog.objects.count() == len(answered_ids)


def test_worker_and_beat_roles_run_the_schedule_kept_in_the_database(
    container_image, app_env, containers
):
    # given traffic in the log and the rollup due every second, edited as in the admin; beat
    # keeps no schedule file (DatabaseScheduler), so it runs on the read-only root as well
    import os
    import uuid
    from datetime import timedelta

    from django.apps import apps
    from django.utils import timezone
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from analytics.models import RoutingAnalytics
    from analytics.schedules import install_default_schedules
    from analytics.tests.factories import RequestLogFactory

    if not os.environ.get("REDIS_TEST_URL"):
        pytest.skip("worker and beat in two containers need a broker both reach (REDIS_TEST_URL)")
    now = timezone.now()
    for minutes in (1, 2, 7):
        RequestLogFactory(created_at=now - timedelta(minutes=minutes), provider_id="openai")
    install_default_schedules(apps)  # a transactional test before this one may have flushed them
    rollup = PeriodicTask.objects.get(name="analytics-rollup")
    rollup.interval, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    rollup.save()
    PeriodicTask.objects.exclude(pk=rollup.pk).update(enabled=False)
    queue = f"auterity-test-{uuid.uuid4().hex[:12]}"  # nothing else's tasks mix in
    env = {**app_env, "CELERY_TASK_DEFAULT_QUEUE": queue, "LOG_LEVEL": "INFO"}
    name = f"auterity-test-{queue[-12:]}"

    # when the two roles run
    worker = run_container(
        container_image, f"{name}-worker", "worker", env,
        "--pool", "solo", "--queues", queue, "--without-gossip", "--without-mingle",
    )  # fmt: skip
    containers.append(worker)
    beat = run_container(container_image, f"{name}-beat", "beat", env)
    containers.append(beat)

    # then beat sends the job from the database schedule and the worker rolls the log up
    deadline = time.monotonic() + 90
    while not RoutingAnalytics.objects.filter(provider_id="openai").exists():
        logs = f"--- worker\n{worker.logs()[-3000:]}\n--- beat\n{beat.logs()[-2000:]}"
        assert worker.running() and beat.running(), logs
        assert time.monotonic() < deadline, logs
        time.sleep(0.5)
    rows = RoutingAnalytics.objects.filter(provider_id="openai")
    assert sum(row.request_count for row in rows) == 3
    assert "DatabaseScheduler" in beat.logs()
    # the image stops both on SIGTERM
    for container in (beat, worker):
        container.stop(timeout=30)
        assert container.exit_code() == 0, container.logs()[-2000:]
