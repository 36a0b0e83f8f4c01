"""Fixtures the cross-app tests share (the root conftest.py has everyone's)."""

import pytest
from django.contrib.auth.models import Group
from waffle.models import Sample

from accounts.services import api_key_create
from routing import flags


@pytest.fixture
def routed_key(django_user_model, demo_catalogue):
    """An ai:execute key of an enterprise caller: routing policies always apply to it."""
    user = django_user_model.objects.create_user("ent", password="pw-123456")
    user.groups.add(Group.objects.get_or_create(name="enterprise")[0])
    _, raw_key = api_key_create(user=user, name="ent-key", scopes=["ai:execute"])
    return raw_key


@pytest.fixture
def cost_optimization_everywhere(demo_catalogue):
    """The cost_optimization sample at 100 %: every routed request may go to a cheaper target."""
    Sample.objects.filter(name="cost_optimization").update(percent=100)
    Sample.objects.get(name="cost_optimization").flush()
    flags.flags_reset()


# One chat model per adapter type, all on the simulator: the demo catalogue's four types plus
# an Azure OpenAI provider (`every_adapter`).
ADAPTER_MODELS = {
    "openai": "gpt-4o-mini",
    "azure_openai": "gpt-4o-azure",
    "anthropic": "claude-haiku-4-5",
    "gemini": "gemini-2.5-flash",
    "openai_compatible": "deepseek-chat",
}


@pytest.fixture
def every_adapter(demo_catalogue):
    """The demo catalogue plus an Azure OpenAI provider serving `gpt-4o-azure` (deployment
    `gpt-4o`) and `text-embedding-3-small-azure`: every adapter type has a model
    (ADAPTER_MODELS)."""
    from providers.tests.factories import ProviderFactory, ProviderModelFactory

    azure = ProviderFactory(
        id="azure",
        type="azure_openai",
        config={
            "base_url": demo_catalogue.base_url("azure"),
            "api_version": "2024-10-21",
            "deployments": {
                "gpt-4o-azure": "gpt-4o",
                "text-embedding-3-small-azure": "text-embedding-3-small",
            },
        },
    )
    ProviderModelFactory(
        provider=azure,
        model="gpt-4o-azure",
        supports_vision=True,
        supports_json_mode=True,
    )
    ProviderModelFactory(
        provider=azure,
        model="text-embedding-3-small-azure",
        output_price=0,
        supports_streaming=False,
        supports_tools=False,
        supports_embeddings=True,
    )
    return ADAPTER_MODELS


@pytest.fixture(scope="session")
def container_image(tmp_path_factory):
    """The project's image, built once per session with deploy/container/build (podman)."""
    from tests.containers import build_image, podman_missing

    if podman_missing():
        pytest.skip("podman is not installed (.ci/run installs it)")
    return build_image(tmp_path_factory.mktemp("image") / "build.log")


@pytest.fixture
def container_app_env(db):
    """The environment the image's roles get to reach this test's database and Redis; the
    containers need a database server, not this process's SQLite file."""
    from django.db import connection

    from tests.containers import app_env

    if connection.vendor != "postgresql":
        pytest.skip("the containers need a database server (set DATABASE_URL to PostgreSQL)")
    return app_env()
