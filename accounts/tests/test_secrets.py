"""Secrets at rest: provider keys and sensitive policy values are Fernet tokens in the database,
never in API responses, admin pages, fixtures, the audit trail or the logs; keys rotate."""

import io
import json
import logging
import shutil
import subprocess

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from core import encryption
from providers.models import Provider
from routing.models import RoutingPolicy

pytestmark = pytest.mark.django_db

SECRET = "sk-live-PLAINTEXT-0123456789abcdef"
SENSITIVE = "acme-7731-vip-customer"


@pytest.fixture
def keys(settings):
    """Set FIELD_ENCRYPTION_KEYS for a test; restores the key cache afterwards."""

    def use(*fernet_keys):
        settings.FIELD_ENCRYPTION_KEYS = list(fernet_keys)
        encryption.reset_key_cache()

    yield use
    encryption.reset_key_cache()


def table_dump(table: str) -> str:
    """The table as a database dump shows it: pg_dump on PostgreSQL, .dump on SQLite."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return "\n".join(
            line for line in connection.connection.iterdump() if table in line or "INSERT" in line
        )
    settings_dict = connection.settings_dict
    if shutil.which("pg_dump"):
        return subprocess.run(
            [
                "pg_dump",
                "--data-only",
                "--table",
                table,
                "-h",
                settings_dict["HOST"] or "127.0.0.1",
                "-p",
                str(settings_dict["PORT"] or 5432),
                "-U",
                settings_dict["USER"],
                settings_dict["NAME"],
            ],
            capture_output=True,
            text=True,
            check=True,
            env={"PGPASSWORD": settings_dict["PASSWORD"] or ""},
        ).stdout
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")
        return repr(cursor.fetchall())


@pytest.fixture
def manager(make_key):
    raw, _ = make_key(["routing:manage", "ai:execute"], username="manager")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def create_provider(client, **extra):
    response = client.post(
        "/api/providers/",
        {
            "id": "secretive",
            "name": "Secretive",
            "type": "openai",
            "config": {"base_url": "http://127.0.0.1:9/openai"},
            "api_key": SECRET,
            **extra,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    return response


# --- provider keys ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_provider_key_is_ciphertext_in_a_dump_of_the_table(manager):
    create_provider(manager)
    dump = table_dump("ai_providers")
    assert "secretive" in dump
    assert SECRET not in dump
    assert "gAAAAA" in dump  # the Fernet token
    assert Provider.objects.get(pk="secretive").api_key == SECRET  # and it decrypts


def test_no_api_response_carries_a_provider_key(manager):
    created = create_provider(manager)
    responses = [
        created,
        manager.get("/api/providers/"),
        manager.get("/api/providers/secretive/"),
        manager.patch("/api/providers/secretive/", {"name": "Renamed"}, format="json"),
        manager.get("/api/schema/"),
    ]
    for response in responses:
        assert SECRET not in response.content.decode()
    detail = manager.get("/api/providers/secretive/").json()
    assert "api_key" not in detail and detail["has_api_key"] is True
    # omitting the key on update keeps it
    assert Provider.objects.get(pk="secretive").api_key == SECRET


def test_no_admin_page_shows_a_provider_key(client, admin_user, manager):
    create_provider(manager)
    manager.patch("/api/providers/secretive/", {"api_key": SECRET + "-2"}, format="json")
    client.force_login(admin_user)
    event = AuditEvent.objects.filter(object_id="secretive").first()
    for url in (
        "/admin/providers/provider/",
        "/admin/providers/provider/secretive/change/",
        "/admin/accounts/auditevent/",
        f"/admin/accounts/auditevent/{event.pk}/change/",
    ):
        page = client.get(url)
        assert page.status_code == 200, url
        assert SECRET not in page.content.decode(), url


def test_the_audit_trail_records_a_key_change_without_the_key(manager):
    create_provider(manager)
    manager.patch("/api/providers/secretive/", {"api_key": SECRET + "-new"}, format="json")
    change = AuditEvent.objects.filter(object_id="secretive", action="update").get()
    assert change.changes == {"api_key": ["[redacted]", "[redacted]"]}
    assert all(
        SECRET not in json.dumps([e.before, e.after, e.changes]) for e in AuditEvent.objects.all()
    )


def test_dumpdata_writes_ciphertext_and_loaddata_reads_it_back(manager, tmp_path):
    create_provider(manager)
    out = io.StringIO()
    call_command("dumpdata", "providers.provider", stdout=out)
    assert SECRET not in out.getvalue() and "gAAAAA" in out.getvalue()

    fixture = tmp_path / "providers.json"
    fixture.write_text(out.getvalue())
    Provider.objects.all().delete()
    call_command("loaddata", str(fixture), verbosity=0)
    assert Provider.objects.get(pk="secretive").api_key == SECRET


def test_the_logs_never_carry_a_provider_key(manager, demo_catalogue, caplog):
    for provider in Provider.objects.all():  # whichever serves the chat sends the key
        provider.api_key = SECRET
        provider.save()
    with caplog.at_level(logging.DEBUG):
        served = manager.post(
            "/v1/chat/completions",
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            format="json",
        )
        shown = manager.get("/api/providers/openai/")
    assert (served.status_code, shown.status_code) == (200, 200)  # both paths ran to the end
    assert caplog.records  # something was logged
    assert SECRET not in caplog.text


# --- rotation --------------------------------------------------------------------------------


def raw_token(provider_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM ai_providers WHERE id = %s", [provider_id])
        return cursor.fetchone()[0]


def test_rotate_encryption_keys_re_encrypts_with_the_first_key(keys, manager):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    keys(old)
    create_provider(manager)
    policy = RoutingPolicy.objects.create(
        name="with secrets",
        conditions={"metadata.customer": {"$sensitive": "vip"}},
        actions={"targets": [{"provider": "secretive"}]},
        sensitive_values={"vip": SENSITIVE},
    )
    assert Fernet(old).decrypt(raw_token("secretive").encode()).decode() == SECRET

    keys(new, old)
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)

    assert "providers.Provider.api_key: 1 values" in out.getvalue()
    assert "routing.RoutingPolicy.sensitive_values: 1 values" in out.getvalue()
    assert Fernet(new).decrypt(raw_token("secretive").encode()).decode() == SECRET
    keys(new)  # the old key can go now
    assert Provider.objects.get(pk="secretive").api_key == SECRET
    assert RoutingPolicy.objects.get(pk=policy.pk).sensitive_values == {"vip": SENSITIVE}


def test_rotation_stops_without_changes_when_a_value_cannot_be_decrypted(keys, manager):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    keys(old)
    create_provider(manager)
    before = raw_token("secretive")
    keys(new)  # the old key was dropped too early
    with pytest.raises(CommandError, match="cannot be decrypted"):
        call_command("rotate_encryption_keys", "--check", stdout=io.StringIO())
    with pytest.raises(CommandError, match="nothing was changed"):
        call_command("rotate_encryption_keys", stdout=io.StringIO())
    assert raw_token("secretive") == before


# --- sensitive routing data ------------------------------------------------------------------


def sensitive_policy_body(**extra):
    return {
        "name": "VIP customers on Gemini",
        "status": "active",
        "priority": 1,
        "conditions": {"metadata.customer": {"$in": {"$sensitive": "vip_customers"}}},
        # cheaper than the requested gpt-4o, so the cost guard lets it go first
        "actions": {"targets": [{"provider": "google", "model": "gemini-2.5-flash"}]},
        "sensitive_values": {"vip_customers": [SENSITIVE, "globex-0042"]},
        **extra,
    }


@pytest.mark.django_db(transaction=True)
def test_sensitive_policy_values_are_encrypted_write_only_and_route(manager, demo_catalogue):
    created = manager.post("/api/routing/policies/", sensitive_policy_body(), format="json")
    assert created.status_code == 201, created.content
    assert SENSITIVE not in created.content.decode()
    assert created.json()["sensitive_keys"] == ["vip_customers"]
    assert created.json()["conditions"] == {
        "metadata.customer": {"$in": {"$sensitive": "vip_customers"}}
    }
    dump = table_dump("routing_policies")
    assert SENSITIVE not in dump and "vip_customers" in dump  # the reference, not the value
    assert SENSITIVE not in manager.get("/api/routing/policies/").content.decode()

    # the policy routes with the decrypted values
    from django.contrib.auth import get_user_model

    get_user_model().objects.get(username="manager").groups.add(
        Group.objects.get(name="enterprise")  # routing_policies flag: always on for this group
    )

    def served(customer):
        response = manager.post(
            "/v1/chat/completions",
            {
                "model": "gpt-4o",
                "messages": [{"role": "user", "content": "hi"}],
                "metadata": {"customer": customer},
            },
            format="json",
        )
        assert response.status_code == 200, response.content
        return response["X-Auterity-Policy"], response["X-Auterity-Provider"]

    assert served(SENSITIVE) == ("VIP customers on Gemini", "google")
    assert served("nobody-special")[0] != "VIP customers on Gemini"


def test_an_unknown_sensitive_reference_is_a_400_naming_the_path(manager):
    body = sensitive_policy_body(sensitive_values={"other": ["x"]})
    response = manager.post("/api/routing/policies/", body, format="json")
    assert response.status_code == 400
    assert response.json()["conditions"] == [
        "conditions.metadata.customer.$in: unknown sensitive value 'vip_customers' (known: other)"
    ]


def test_the_admin_keeps_sensitive_values_write_only(client, admin_user, manager, demo_catalogue):
    created = manager.post("/api/routing/policies/", sensitive_policy_body(), format="json")
    policy = RoutingPolicy.objects.get(pk=created.json()["id"])
    client.force_login(admin_user)
    url = f"/admin/routing/routingpolicy/{policy.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert SENSITIVE not in page.content.decode()
    assert "vip_customers" in page.content.decode()

    # saving the form without touching the field keeps the values
    form = {
        "name": policy.name,
        "description": "edited",
        "status": policy.status,
        "priority": policy.priority,
        "conditions": json.dumps(policy.conditions),
        "actions": json.dumps(policy.actions),
        "sensitive_values": "",
    }
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    policy.refresh_from_db()
    assert policy.description == "edited"
    assert policy.sensitive_values == {"vip_customers": [SENSITIVE, "globex-0042"]}


# --- deploy checks ---------------------------------------------------------------------------


def test_check_deploy_warns_about_development_secrets(settings):
    settings.SECRET_KEY = "dev-only-insecure-secret-key-change-me"
    settings.FIELD_ENCRYPTION_KEYS = []
    settings.METRICS_TOKEN = ""
    from accounts.checks import production_secrets_check

    ids = {warning.id for warning in production_secrets_check(None)}
    assert ids == {"auterity.W001", "auterity.W002", "auterity.W003"}


def test_a_malformed_encryption_key_is_an_error(settings):
    settings.FIELD_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    from accounts.checks import encryption_keys_check

    assert [error.id for error in encryption_keys_check(None)] == ["auterity.E001"]
