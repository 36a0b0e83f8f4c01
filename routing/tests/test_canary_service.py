"""Starting and ending a policy canary (routing/canary.py; the evaluation is analytics')."""

import pytest
from django.core.exceptions import ValidationError

from routing import services
from routing.canary import policy_canary_start
from routing.catalog import catalogue_build
from routing.choices import CanaryState, PolicyStatus
from routing.models import PolicyCanary, RoutingPolicy

pytestmark = pytest.mark.django_db


def draft(name="Canary me"):
    return RoutingPolicy.objects.create(name=name, conditions={"model": "gpt-4o"}, actions={})


def test_a_canary_routes_only_its_share_and_the_snapshot_knows_it():
    policy = draft()
    canary = policy_canary_start(policy=policy, percent=25, bake_minutes=30)
    policy.refresh_from_db()
    assert policy.status == PolicyStatus.CANARY
    assert canary.state == CanaryState.RUNNING
    compiled = catalogue_build("v1").snapshot.policy(str(policy.id))
    assert compiled is not None and compiled.canary_percent == 25


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"percent": 0}, "percent"),
        ({"percent": 100}, "percent"),
        ({"percent": 10, "bake_minutes": 0}, "bake_minutes"),
        ({"percent": 10, "guard": {"max_error_rate": 0.1}}, "guard"),
        ({"percent": 10, "guard": {"min_requests": -1}}, "guard"),
    ],
)
def test_bad_canary_settings_are_refused_naming_the_field(kwargs, field):
    policy = draft()
    with pytest.raises(ValidationError) as raised:
        policy_canary_start(policy=policy, **kwargs)
    assert field in raised.value.message_dict
    policy.refresh_from_db()
    assert policy.status == PolicyStatus.DRAFT
    assert not PolicyCanary.objects.exists()


def test_an_active_policy_is_not_canaried_and_an_operator_activation_ends_a_canary():
    active = RoutingPolicy.objects.create(name="Live", status=PolicyStatus.ACTIVE, actions={})
    with pytest.raises(ValidationError):
        policy_canary_start(policy=active, percent=10)
    policy = draft()
    policy_canary_start(policy=policy, percent=10)
    services.policy_activate(policy=policy)
    canary = PolicyCanary.objects.get(policy=policy)
    assert canary.state == CanaryState.STOPPED
    assert "by an operator" in canary.reason
