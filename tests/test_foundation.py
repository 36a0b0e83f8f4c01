"""Cross-app basics: demo data, health endpoints, API docs, API keys."""

import pytest
from django.core.management import call_command

from accounts.models import ApiKey
from providers.models import Provider, ProviderModel
from routing.models import RoutingPolicy

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent(capsys):
    call_command("seed_demo")
    first = capsys.readouterr().out
    counts = (
        Provider.objects.count(),
        ProviderModel.objects.count(),
        RoutingPolicy.objects.count(),
        ApiKey.objects.count(),
    )
    call_command("seed_demo")
    second = capsys.readouterr().out

    assert counts == (
        Provider.objects.count(),
        ProviderModel.objects.count(),
        RoutingPolicy.objects.count(),
        ApiKey.objects.count(),
    )
    assert {"openai", "anthropic", "google", "together"} <= set(
        Provider.objects.values_list("id", flat=True)
    )
    gpt4o = ProviderModel.objects.get(model="gpt-4o")
    assert str(gpt4o.input_price) == "0.000002500000"
    assert gpt4o.provider.base_url == "http://127.0.0.1:9100/openai"
    # a new key each run: the old one stops working
    key1 = first.split("Demo API key (all scopes, shown once): ")[1].split()[0]
    key2 = second.split("Demo API key (all scopes, shown once): ")[1].split()[0]
    assert key1 != key2
    assert ApiKey.objects.filter(name="demo").count() == 1
    # the demo caller is in the rollout, so the tour shows policies at work
    assert ApiKey.objects.get(name="demo").user.groups.filter(name="beta-testers").exists()


def test_demo_policies_are_valid():
    call_command("seed_demo")
    for policy in RoutingPolicy.objects.all():
        policy.full_clean()


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "catalogue": "ok", "flags": "ok"},
    }


def test_openapi_schema_and_docs(admin_client):
    schema = admin_client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/routing/policies/" in text and "/api/providers/" in text
    docs = admin_client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


def test_api_key_authenticates_and_revoked_key_does_not(api_client, admin_user, capsys):
    call_command("create_api_key", user=admin_user.username, name="ci", scopes="routing:view")
    raw_key = capsys.readouterr().out.strip()
    assert raw_key.startswith("sk-aut-")
    stored = ApiKey.objects.get(name="ci")
    assert raw_key not in (stored.hashed_key, stored.prefix)

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert api_client.get("/api/providers/").status_code == 200

    from accounts.services import api_key_revoke

    api_key_revoke(api_key=stored)
    refused = api_client.get("/api/providers/")
    assert refused.status_code == 401
    assert "detail" in refused.json()


def test_create_api_key_rejects_unknown_scope(admin_user):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Unknown scope"):
        call_command("create_api_key", user=admin_user.username, name="x", scopes="ai:everything")
    assert not ApiKey.objects.exists()
