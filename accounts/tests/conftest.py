"""Fixtures for the access-control tests: keys with given scopes and limits, users with
permissions, a private Redis server."""

import shutil
import socket
import subprocess
import time

import pytest
from django.contrib.auth.models import Permission

from accounts.limits import counter_store_reset
from accounts.services import api_key_create
from tests.subprocess_env import free_port


@pytest.fixture(autouse=True)
def _fresh_counter_store():
    counter_store_reset()
    yield
    counter_store_reset()


@pytest.fixture
def make_key(django_user_model):
    """make_key(scopes, **limits) -> (raw key, ApiKey); one new owner per key."""
    made = []

    def make(scopes=("ai:execute",), *, username=None, **limits):
        username = username or f"owner{len(made)}"
        user = django_user_model.objects.create_user(username, password="pw-123456")
        api_key, raw = api_key_create(
            user=user, name=f"{username}-key", scopes=list(scopes), **limits
        )
        made.append(api_key)
        return raw, api_key

    return make


@pytest.fixture
def make_user(django_user_model):
    """make_user(username, perms=("routing_view",), **fields) with accounts.<perm>s."""

    def make(username, perms=(), password="pw-123456", **fields):
        user = django_user_model.objects.create_user(username, password=password, **fields)
        for codename in perms:
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label="accounts", codename=codename)
            )
        return user

    return make


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A throwaway redis-server, or REDIS_TEST_URL; skips when neither is available."""
    import os

    if os.environ.get("REDIS_TEST_URL"):
        yield os.environ["REDIS_TEST_URL"]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server and no REDIS_TEST_URL")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
