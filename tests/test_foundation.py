"""Cross-app basics: demo data, health endpoints, API docs, API keys."""

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import ApiKey
from accounts.services import api_key_revoke
from providers.models import Provider, ProviderModel
from routing.models import RoutingPolicy

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_keeps_the_demo_key(capsys, settings, tmp_path):
    settings.DEBUG = True
    key_file = tmp_path / "demo-api-key"
    call_command("seed_demo", key_file=key_file)
    first = capsys.readouterr().out
    counts = (
        Provider.objects.count(),
        ProviderModel.objects.count(),
        RoutingPolicy.objects.count(),
        ApiKey.objects.count(),
    )
    call_command("seed_demo", key_file=key_file)
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
    # the same key on every run, kept in a file only its owner reads
    key1 = first.split("Demo API key (all scopes, new; in ")[1].split("): ")[1].split()[0]
    key2 = second.split("Demo API key (all scopes, kept from the last run; in ")[1]
    assert key2.split("): ")[1].split()[0] == key1
    assert key_file.read_text().strip() == key1
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert ApiKey.objects.filter(name="demo").count() == 1
    # a key that no longer works (revoked) is replaced, and the file with it
    api_key_revoke(api_key=ApiKey.objects.get(name="demo"))
    call_command("seed_demo", key_file=key_file)
    third = capsys.readouterr().out
    assert "(all scopes, new;" in third and key_file.read_text().strip() != key1
    assert ApiKey.objects.filter(name="demo").count() == 1
    # the demo caller is in the rollout, so the tour shows policies at work
    assert ApiKey.objects.get(name="demo").user.groups.filter(name="beta-testers").exists()


def test_seed_demo_refuses_the_default_admin_password_when_debug_is_off(settings, tmp_path):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="default password 'admin' while DEBUG is off"):
        call_command("seed_demo", key_file=tmp_path / "k")
    assert not User.objects.filter(username="admin").exists()
    # a password of one's own is fine, and so is a second run (the user exists, unchanged)
    call_command("seed_demo", key_file=tmp_path / "k", admin_password="a-long-pass-phrase")
    assert User.objects.get(username="admin").check_password("a-long-pass-phrase")
    call_command("seed_demo", key_file=tmp_path / "k")


def test_demo_policies_are_valid(settings, tmp_path):
    settings.DEBUG = True
    call_command("seed_demo", key_file=tmp_path / "k")
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


def test_the_make_run_banner_comes_once_the_web_server_answers(
    live_server, tmp_path, capsys, settings
):
    # given: the demo data (as make run seeds it, DEBUG on) and its kept key
    settings.DEBUG = True
    key_file = tmp_path / "demo-api-key"
    call_command("seed_demo", key_file=key_file, admin_password="admin")
    key = key_file.read_text().strip()
    capsys.readouterr()

    # when: the banner runs against the live server, as the Procfile's last process does
    call_command("demo_banner", url=live_server.url, key_file=key_file, no_wait=True)

    # then: the login and the same key, last
    out = capsys.readouterr().out
    assert f"Admin:        {live_server.url}/admin/   login admin / admin" in out
    assert f"Demo API key: {key}" in out
    assert out.rstrip().endswith("=" * 78)
