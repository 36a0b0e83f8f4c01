"""The project's container image (deploy/container/) built and run with podman, for the tests
that run it as an operator would: on the host network, against the test database and Redis.

Podman runs with the project's containers.conf and runc (deploy/container/build says why);
the image is built once per test session and checkout, by deploy/container/build, which makes
a Debian base from Debian's packages where no registry is reachable."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
# One tag per checkout: parallel checkouts on a machine never run each other's image.
IMAGE = "localhost/auterity-test:" + hashlib.sha1(str(ROOT).encode()).hexdigest()[:10]
PODMAN_ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "deploy/container/containers.conf")}


def podman_missing() -> bool:
    return shutil.which("podman") is None


def runtime_args() -> list[str]:
    return ["--runtime", "runc"] if shutil.which("runc") else []


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """Run a podman command; a failure raises with what podman said."""
    result = subprocess.run(
        ["podman", *runtime_args(), *args],
        env=PODMAN_ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)}: {result.returncode}\n{result.stderr[-3000:]}")
    return result


def build_image(log: Path) -> str:
    """Build the image with deploy/container/build (its output in `log`); return its tag."""
    with log.open("w") as out:
        result = subprocess.run(
            [str(ROOT / "deploy/container/build")],
            env={**PODMAN_ENV, "IMAGE": IMAGE},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
    if result.returncode != 0:
        raise RuntimeError(f"the image did not build:\n{log.read_text()[-4000:]}")
    return IMAGE


@dataclass
class Container:
    name: str

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def running(self) -> bool:
        result = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return result.stdout.strip() == "true"

    def exit_code(self) -> int:
        return int(podman("inspect", "--format", "{{.State.ExitCode}}", self.name).stdout)

    def stop(self, timeout: int = 70) -> None:
        """SIGTERM (the image's STOPSIGNAL), SIGKILL after `timeout` seconds."""
        podman("stop", "--time", str(timeout), self.name, timeout=timeout + 30, check=False)

    def remove(self) -> None:
        podman("rm", "--force", "--time", "5", self.name, check=False)


def run_container(image: str, name: str, role: str, env: dict[str, str], *args: str) -> Container:
    """Start `role` of the image in the background on the host network, with a read-only root
    filesystem and var/ in memory, as Kubernetes runs it."""
    podman("rm", "--force", "--time", "0", name, check=False)
    env_args = [f"--env={key}={value}" for key, value in env.items()]
    podman(
        "run", "--detach", "--name", name, "--network=host", "--read-only",
        "--tmpfs=/app/var:rw,mode=1777", *env_args, image, role, *args,
    )  # fmt: skip
    return Container(name)


def app_env() -> dict[str, str]:
    """What every role of the image gets: the test database, the test process's keys, Redis
    when the run has one (REDIS_TEST_URL)."""
    from django.conf import settings

    from tests.subprocess_env import database_url

    redis = os.environ.get("REDIS_TEST_URL")
    return {
        "DATABASE_URL": database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CACHE_URL": redis or "locmemcache://",
        "CELERY_BROKER_URL": redis or "memory://",
        "LOG_LEVEL": "WARNING",
    }


def wait_http_ok(url: str, container: Container, timeout: float = 90) -> requests.Response:
    """Wait until `url` answers 200 (the container may still be starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = requests.get(url, timeout=5)
            if response.status_code == 200:
                return response
        except requests.RequestException:
            pass
        if not container.running() or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer 200:\n{container.logs()[-4000:]}")
        time.sleep(0.3)
