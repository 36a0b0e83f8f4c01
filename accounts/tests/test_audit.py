"""The audit trail: who changed which policy, provider, model, flag or key, when, before and
after, from the admin, the API or the command line; read-only in the admin."""

import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from rest_framework.test import APIClient
from waffle.models import Flag, Switch

from accounts.models import AuditEvent
from providers.models import Provider
from routing.models import RoutingPolicy

pytestmark = pytest.mark.django_db

TARGETS = {"targets": [{"provider": "openai", "model": "gpt-4o-mini"}]}


@pytest.fixture
def catalogue(db):
    from providers.demo import demo_catalogue_install

    demo_catalogue_install("http://127.0.0.1:9")
    AuditEvent.objects.all().delete()


@pytest.fixture
def policy(catalogue):
    policy = RoutingPolicy.objects.create(name="audited", conditions={}, actions=TARGETS)
    AuditEvent.objects.all().delete()
    return policy


def test_an_api_change_names_the_key_the_request_and_both_states(make_key, policy):
    raw, api_key = make_key(["routing:manage"], username="alice")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    response = client.patch(
        f"/api/routing/policies/{policy.pk}/",
        {"priority": 5},
        format="json",
        HTTP_X_REQUEST_ID="trace-42",
    )

    assert response.status_code == 200
    event = AuditEvent.objects.get(object_type="routing.RoutingPolicy")
    assert (event.action, event.via, event.object_type) == (
        "update",
        "api",
        "routing.RoutingPolicy",
    )
    assert event.object_id == str(policy.pk) and event.object_repr == "audited"
    assert event.actor.username == "alice"
    assert event.actor_label == f"alice (API key alice-key, {api_key.prefix}…)"
    assert event.changes == {"priority": [1, 5]}
    assert event.before["priority"] == 1 and event.after["priority"] == 5
    assert event.request_id == response["X-Request-ID"]  # Auterity's own id, as on log lines
    assert event.remote_addr == "127.0.0.1"


def test_a_jwt_user_is_the_actor_and_a_delete_keeps_the_last_state(make_user, policy):
    make_user("bob", perms=("routing_manage",))
    client = APIClient()
    access = client.post(
        "/api/auth/token/", {"username": "bob", "password": "pw-123456"}, format="json"
    ).json()["access"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")

    assert client.delete(f"/api/routing/policies/{policy.pk}/").status_code == 204

    event = AuditEvent.objects.get(object_type="routing.RoutingPolicy")
    assert (event.action, event.actor_label, event.via) == ("delete", "bob", "api")
    assert event.before["name"] == "audited" and event.after is None


def test_policy_activation_through_the_service_is_recorded(make_key, policy):
    raw, _ = make_key(["routing:manage"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.post(f"/api/routing/policies/{policy.pk}/activate/")
    assert AuditEvent.objects.get(object_type="routing.RoutingPolicy").changes == {
        "status": ["draft", "active"]
    }


def test_admin_changes_are_recorded_with_the_staff_user(client, admin_user, catalogue):
    from routing.flags import install_seed_flags

    install_seed_flags(__import__("django.apps", fromlist=["apps"]).apps)
    switch = Switch.objects.get(name="intelligent_routing")
    AuditEvent.objects.all().delete()
    client.force_login(admin_user)

    response = client.post(
        "/admin/waffle/switch/",
        {"action": "disable_switches", "_selected_action": [switch.pk]},
    )

    assert response.status_code == 302
    event = AuditEvent.objects.get()
    assert (event.object_type, event.object_repr) == ("waffle.Switch", "intelligent_routing")
    assert (event.actor_label, event.via, event.changes) == (
        "root",
        "admin",
        {"active": [True, False]},
    )


def test_admin_provider_edit_is_recorded_without_its_key(client, admin_user, catalogue):
    client.force_login(admin_user)
    provider = Provider.objects.get(pk="openai")
    form = {
        "id": provider.id,
        "name": "OpenAI (primary)",
        "type": provider.type,
        "status": provider.status,
        "capacity": provider.capacity,
        "cost_per_token": "",
        "avg_response_time": "",
        "config": '{"base_url": "http://127.0.0.1:9/openai"}',
        "api_key": "sk-new-provider-secret",
        "models-TOTAL_FORMS": "0",
        "models-INITIAL_FORMS": "0",
    }
    response = client.post("/admin/providers/provider/openai/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AuditEvent.objects.get(object_type="providers.Provider")
    assert event.via == "admin" and event.actor_label == "root"
    assert event.changes["name"] == ["OpenAI", "OpenAI (primary)"]
    assert event.changes["api_key"] == ["[redacted]", "[redacted]"]
    assert "sk-new-provider-secret" not in str(event.before) + str(event.after)


def test_flag_audience_changes_are_recorded(db):
    from django.apps import apps

    from routing.flags import install_seed_flags

    install_seed_flags(apps)
    flag = Flag.objects.get(name="routing_policies")
    AuditEvent.objects.all().delete()

    flag.groups.add(Group.objects.create(name="pilot"))
    flag.percent = 50
    flag.save()

    events = list(AuditEvent.objects.order_by("id"))
    assert [e.changes for e in events] == [
        {"groups": [["beta-testers", "enterprise"], ["beta-testers", "enterprise", "pilot"]]},
        {"percent": ["25", "50"]},
    ]
    assert all(e.actor_label == "system" and e.via == "system" for e in events)


def test_create_api_key_is_recorded_as_the_command_without_the_hash(admin_user):
    call_command(
        "create_api_key",
        user="root",
        name="ci",
        scopes="routing:view",
        rate_limit_per_minute=10,
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    event = AuditEvent.objects.get(object_type="accounts.ApiKey")
    assert event.action == "create" and event.via == "cli"
    assert event.actor_label.startswith("manage.py create_api_key (OS user ")
    assert event.after["hashed_key"] == "[redacted]"
    assert event.after["rate_limit_per_minute"] == 10


def test_saves_that_change_nothing_are_not_recorded(policy):
    policy.save()
    assert not AuditEvent.objects.exists()


def test_the_trail_is_read_only_in_the_admin(client, admin_user, policy):
    policy.priority = 3
    policy.save()
    event = AuditEvent.objects.get()
    client.force_login(admin_user)
    page = client.get(f"/admin/accounts/auditevent/{event.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert b"&quot;priority&quot;" in page.content or b'"priority"' in page.content
    assert client.post(f"/admin/accounts/auditevent/{event.pk}/change/", {}).status_code == 403
    assert client.get("/admin/accounts/auditevent/add/").status_code == 403
    assert client.post(f"/admin/accounts/auditevent/{event.pk}/delete/", {}).status_code == 403
