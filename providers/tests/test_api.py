from decimal import Decimal

import pytest
from django.db import connection

from providers.models import Provider, ProviderModel

from .factories import ProviderFactory, ProviderModelFactory

pytestmark = pytest.mark.django_db

PROVIDERS = "/api/providers/"
MODELS = "/api/provider-models/"


def provider_payload(**overrides):
    payload = {
        "id": "acme",
        "name": "Acme AI",
        "type": "openai",
        "capacity": 10,
        "config": {"base_url": "http://127.0.0.1:9100/acme", "timeout": 30},
        "api_key": "sk-live-very-secret-value",
    }
    payload.update(overrides)
    return payload


def test_anonymous_requests_are_refused(api_client):
    response = api_client.get(PROVIDERS)
    assert response.status_code in (401, 403)
    assert "detail" in response.json()


def test_create_read_update_delete_provider(admin_client_api):
    # when
    created = admin_client_api.post(PROVIDERS, provider_payload(), format="json")
    # then
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["id"] == "acme"
    assert body["has_api_key"] is True
    assert "api_key" not in body

    detail = admin_client_api.get(f"{PROVIDERS}acme/").json()
    assert detail["config"]["base_url"] == "http://127.0.0.1:9100/acme"
    assert "api_key" not in detail

    patched = admin_client_api.patch(f"{PROVIDERS}acme/", {"status": "degraded"}, format="json")
    assert patched.status_code == 200
    provider = Provider.objects.get(id="acme")
    assert provider.status == "degraded"
    assert provider.api_key == "sk-live-very-secret-value"  # untouched by a PATCH without it

    assert admin_client_api.delete(f"{PROVIDERS}acme/").status_code == 204
    assert not Provider.objects.filter(id="acme").exists()


def test_api_key_is_encrypted_at_rest(admin_client_api):
    admin_client_api.post(PROVIDERS, provider_payload(), format="json")
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM ai_providers WHERE id = %s", ["acme"])
        (stored,) = cursor.fetchone()
    assert stored
    assert "very-secret" not in stored
    assert Provider.objects.get(id="acme").api_key == "sk-live-very-secret-value"


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"type": "skynet"}, "type", "not a valid choice"),
        ({"cost_per_token": "-0.1"}, "cost_per_token", "greater than or equal to 0"),
        ({"config": ["not", "an", "object"]}, "config", "JSON object"),
        ({"config": {"timeout": 5}}, "config", "config.base_url: required"),
        ({"config": {"base_url": "ftp://x"}}, "config", "config.base_url: must be an http(s) URL"),
        ({"config": {"base_url": "http://x", "tiemout": 5}}, "config", "config.tiemout: unknown"),
        ({"id": "Bad Id!"}, "id", "lower-case"),
        ({"type": "azure_openai"}, "config", "config.api_version: required"),
    ],
)
def test_invalid_provider_is_refused_with_the_field(admin_client_api, overrides, field, fragment):
    response = admin_client_api.post(PROVIDERS, provider_payload(**overrides), format="json")
    assert response.status_code == 400
    errors = response.json()
    assert field in errors, errors
    assert any(fragment in message for message in errors[field]), errors
    assert not Provider.objects.exists()


def test_filter_search_order_and_paginate_providers(admin_client_api, settings):
    for i in range(3):
        ProviderFactory(id=f"p{i}", type="anthropic" if i else "openai", status="healthy")
    ProviderFactory(id="p9", type="anthropic", status="down")

    by_type = admin_client_api.get(PROVIDERS, {"type": "anthropic"}).json()
    assert by_type["count"] == 3
    down = admin_client_api.get(PROVIDERS, {"status": "down"}).json()
    assert [p["id"] for p in down["results"]] == ["p9"]
    ordered = admin_client_api.get(PROVIDERS, {"ordering": "-id"}).json()
    assert [p["id"] for p in ordered["results"]] == ["p9", "p2", "p1", "p0"]
    page = admin_client_api.get(PROVIDERS, {"page_size": 2, "page": 2}).json()
    assert page["count"] == 4
    assert page["previous"] is not None


def test_create_model_with_prices(admin_client_api):
    provider = ProviderFactory(id="acme")
    payload = {
        "provider": provider.id,
        "model": "acme-large",
        "input_price": "0.000002",
        "output_price": "0.000008",
        "context_window": 128000,
        "is_default": True,
    }
    response = admin_client_api.post(MODELS, payload, format="json")
    assert response.status_code == 201, response.json()
    model = ProviderModel.objects.get(model="acme-large")
    assert model.upstream_model == "acme-large"
    assert model.input_price == Decimal("0.000002")


def test_negative_price_and_second_default_are_refused(admin_client_api):
    existing = ProviderModelFactory(model="shared-model", is_default=True)
    other = ProviderFactory(id="other")
    base = {
        "provider": other.id,
        "model": "shared-model",
        "output_price": "0.1",
        "context_window": 1000,
    }

    negative = admin_client_api.post(MODELS, {**base, "input_price": "-1"}, format="json")
    assert negative.status_code == 400
    assert "input_price" in negative.json()

    second_default = admin_client_api.post(
        MODELS, {**base, "input_price": "0.1", "is_default": True}, format="json"
    )
    assert second_default.status_code == 400
    assert existing.provider_id in second_default.json()["is_default"][0]
    assert ProviderModel.objects.count() == 1


def test_models_filter_by_provider(admin_client_api):
    ProviderModelFactory(provider=ProviderFactory(id="a"), model="m1")
    ProviderModelFactory(provider=ProviderFactory(id="b"), model="m2")
    results = admin_client_api.get(MODELS, {"provider": "b"}).json()["results"]
    assert [m["model"] for m in results] == ["m2"]
