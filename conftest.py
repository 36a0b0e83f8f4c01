"""Fixtures shared by every app's tests."""

import os

import pytest
from rest_framework.test import APIClient

from simulator import SimulatorServer

# Tests get a private in-process cache unless a test asks for Redis explicitly; the default
# file cache would leak catalogue versions and counters between runs.
_EXPLICIT_CACHE = bool(os.environ.get("CACHE_URL") or os.environ.get("REDIS_URL"))
os.environ.setdefault("CACHE_URL", "locmemcache://")


def pytest_configure(config):
    if not config.pluginmanager.hasplugin("django"):
        return
    from django.test.utils import override_settings

    # Snapshots (catalogue, flags, principals) reload in the reading thread: a background
    # thread's connection would not see a test's uncommitted rows. The servers the tests start
    # in subprocesses keep the default, background (tests/test_store_outages.py).
    override_settings(SNAPSHOT_REFRESH="inline").enable()
    # This run's request-log spool: files of its own, never another run's (analytics/spool.py).
    import tempfile

    override_settings(
        REQUEST_LOG_SPOOL_DIR=tempfile.mkdtemp(prefix="auterity-test-spool-")
    ).enable()
    # pytest-django loads the settings before this file is imported, so the line above comes
    # too late for CACHES: without this, every test run shares var/cache with the others on
    # the machine, and one run's cache.clear() or waffle entries (group ids of its own
    # database) leak into another's routing decisions.
    if _EXPLICIT_CACHE:
        return
    override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    ).enable()


@pytest.fixture(autouse=True)
def _request_log_rows_before_response(settings):
    # Tests read the request log right after a response. The default, rows written in the
    # background after it, has its own tests (analytics/tests/test_log_writer.py, the log_mode
    # tests of tests/test_gateway.py, and tests/test_web_server.py, whose server keeps the
    # default); both modes go through the same writer thread.
    settings.REQUEST_LOG_COMMIT_BEFORE_RESPONSE = True


@pytest.fixture(scope="session", autouse=True)
def _request_log_writer_stopped(django_db_setup, django_db_blocker):
    # The writer thread holds a database connection; PostgreSQL refuses to drop the test
    # database while it is open.
    yield
    from analytics.log_writer import request_log_writer
    from core.snapshot import refresher

    request_log_writer().close(10)
    refresher.close_connections()


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # PBKDF2's deliberate slowness (~1 s a hash here) buys nothing in tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def admin_client_api(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Per-process caches (catalogue, flags, principals, live stats, output estimates) start
    empty each test."""
    from django.core.cache import cache

    from accounts.principal import principal_cache
    from routing import flags
    from routing.catalog import catalogue_reset
    from routing.decisions import provider_stats_reset
    from routing.output_estimates import output_estimates_reset

    cache.clear()
    catalogue_reset()
    flags.flags_reset()
    principal_cache.clear()
    output_estimates_reset()
    provider_stats_reset()
    yield


@pytest.fixture(scope="session")
def simulator():
    """The provider simulator as a real HTTP server on a free port, for the whole session."""
    server = SimulatorServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sim(simulator):
    """The simulator with no faults and fresh counters."""
    simulator.clear_faults()
    simulator.reset_stats()
    yield simulator
    simulator.clear_faults()


@pytest.fixture
def demo_catalogue(db, sim):
    """The demo providers, models and policies, pointing at the running simulator."""
    from django.apps import apps

    from providers.demo import demo_catalogue_install
    from routing.demo import demo_policies_install
    from routing.flags import install_seed_flags
    from routing.quality import model_quality_sync

    demo_catalogue_install(sim.url)
    model_quality_sync()  # transactional tests flush what the migration loaded
    demo_policies_install()
    install_seed_flags(apps)  # transactional tests flush what the migration created
    return sim


@pytest.fixture
def web_server(tmp_path):
    """Start the production web server in a subprocess (tests/web_server.py): call it with
    start_web_server's workers and the environment to add; every server started is
    stopped after the test."""
    from tests.web_server import start_web_server

    started = []

    def start(**env):
        server = start_web_server(tmp_path, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
