import itertools

import pytest

from providers.adapters import ProviderEndpoint, adapter_for, close_sessions
from simulator import SimulatorServer

from .recording_server import RecordingServer

# payloads.py holds assertion helpers: have pytest explain their failures too.
pytest.register_assert_rewrite("providers.adapters.tests.payloads")

_names = itertools.count()


@pytest.fixture(scope="session")
def sim():
    server = SimulatorServer().start()
    yield server
    server.stop()


@pytest.fixture
def stub():
    server = RecordingServer().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_sessions():
    yield
    close_sessions()
    adapter_for.cache_clear()


@pytest.fixture
def sim_adapter(sim):
    """adapter(type, **endpoint kwargs) -> an adapter on its own simulator name, so faults
    set for one test never touch another."""

    def make(provider_type: str, **kwargs):
        name = f"t{next(_names)}"
        kwargs.setdefault("api_key", "sk-test-0123456789")
        endpoint = ProviderEndpoint(name, provider_type, sim.base_url(name), **kwargs)
        return adapter_for(endpoint)

    return make


@pytest.fixture
def stub_adapter(stub):
    def make(provider_type: str, **kwargs):
        kwargs.setdefault("api_key", "sk-test-0123456789")
        return adapter_for(ProviderEndpoint("stub", provider_type, stub.base_url, **kwargs))

    return make
