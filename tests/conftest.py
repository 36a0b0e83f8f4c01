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
