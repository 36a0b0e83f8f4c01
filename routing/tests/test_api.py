import pytest

from routing.models import RoutingPolicy

pytestmark = pytest.mark.django_db

POLICIES = "/api/routing/policies/"


def policy_payload(**overrides):
    payload = {
        "name": "cheap small models",
        "conditions": {"model": "gpt-4o-mini"},
        "actions": {"targets": [], "strategy": "cheapest"},
        "priority": 5,
    }
    payload.update(overrides)
    return payload


def test_policy_crud_and_status_actions(admin_client_api):
    created = admin_client_api.post(POLICIES, policy_payload(), format="json")
    assert created.status_code == 201, created.json()
    policy_id = created.json()["id"]
    assert created.json()["status"] == "draft"

    activated = admin_client_api.post(f"{POLICIES}{policy_id}/activate/")
    assert activated.status_code == 200
    assert activated.json()["status"] == "active"
    deactivated = admin_client_api.post(f"{POLICIES}{policy_id}/deactivate/")
    assert deactivated.json()["status"] == "inactive"

    updated = admin_client_api.patch(f"{POLICIES}{policy_id}/", {"priority": 1}, format="json")
    assert updated.status_code == 200
    assert RoutingPolicy.objects.get(id=policy_id).priority == 1

    assert admin_client_api.delete(f"{POLICIES}{policy_id}/").status_code == 204
    assert not RoutingPolicy.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"conditions": ["model", "gpt-4o"]}, "conditions"),
        ({"actions": "cheapest"}, "actions"),
        ({"status": "paused"}, "status"),
        ({"priority": "high"}, "priority"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_policy_is_refused_naming_the_field(admin_client_api, overrides, field):
    response = admin_client_api.post(POLICIES, policy_payload(**overrides), format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not RoutingPolicy.objects.exists()


def test_invalid_update_changes_nothing(admin_client_api):
    policy_id = admin_client_api.post(POLICIES, policy_payload(), format="json").json()["id"]
    response = admin_client_api.patch(
        f"{POLICIES}{policy_id}/", {"conditions": [1, 2]}, format="json"
    )
    assert response.status_code == 400
    assert RoutingPolicy.objects.get(id=policy_id).conditions == {"model": "gpt-4o-mini"}


def test_policies_list_in_priority_order_with_filters(admin_client_api):
    for name, priority, status in [("b", 2, "active"), ("a", 2, "active"), ("c", 1, "draft")]:
        RoutingPolicy.objects.create(name=name, priority=priority, status=status, actions={})
    listed = admin_client_api.get(POLICIES).json()["results"]
    # lower priority number first, ties broken by name
    assert [p["name"] for p in listed] == ["c", "a", "b"]
    active = admin_client_api.get(POLICIES, {"status": "active"}).json()["results"]
    assert {p["name"] for p in active} == {"a", "b"}
    searched = admin_client_api.get(POLICIES, {"search": "c"}).json()["results"]
    assert [p["name"] for p in searched] == ["c"]
