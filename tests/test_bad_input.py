"""Each hand-made bad input of issue 14 on the REST API's side gets a JSON 4xx naming what was
wrong, never a 5xx, and changes nothing (the gateway's own edge is tested with the gateway)."""

import json

import pytest
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from accounts.services import api_key_create
from analytics.models import RequestLog
from providers.models import Provider, ProviderModel
from routing.models import RoutingPolicy

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(client, django_user_model, demo_catalogue):
    admin = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-ops-123")
    _, key = api_key_create(user=admin, name="ops", scopes=["routing:manage"])
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


def _state():
    return (
        Provider.objects.count(),
        ProviderModel.objects.count(),
        RoutingPolicy.objects.count(),
        list(Provider.objects.values_list("config", flat=True)),
    )


def _post(client, path, raw: str):
    return client.post(path, data=raw.encode(), content_type="application/json")


BAD_REQUESTS = [
    # (what, method, path, body or None, the words the answer must contain)
    ("NUL in a foreign key", "post", "/api/provider-models/",
     '{"provider": "open\\u0000ai", "model": "m", "input_price": "0", "output_price": "0"}',
     "NUL"),
    ("NUL in a name", "post", "/api/routing/policies/",
     '{"name": "a\\u0000b", "conditions": {}, "actions": {}}', "NUL"),
    ("lone surrogate", "post", "/api/routing/policies/",
     '{"name": "x\\ud800y", "conditions": {}, "actions": {}}', "surrogate"),
    ("infinite number in JSON", "post", "/api/providers/",
     '{"id": "p1", "name": "p1", "type": "openai", "config": {"k": 1e400}}', "out of range"),
    ("JSON nested 100,000 deep", "post", "/api/routing/policies/", "[" * 100_000, "nested"),
    ("offset out of range", "get", "/api/routing/analytics/?end=2026-01-01T00:00:00%2B21:00",
     None, "offset"),
    ("offset out of range (summary)", "get",
     "/api/routing/analytics/summary/?end=2026-01-01T00:00:00%2B21:00", None, "offset"),
    ("instant before year 1 in UTC", "get",
     "/api/routing/analytics/?start=0001-01-01T00:00:00%2B14:00", None, "range"),
    ("NUL in a query string", "get", "/api/providers/?search=%00", None, "NUL"),
    ("NUL in a filter", "get", "/api/provider-models/?provider=a%00b", None, "NUL"),
    ("integer out of range", "post", "/api/routing/policies/",
     '{"name": "big", "conditions": {}, "actions": {}, "priority": 99999999999999999999}',
     "priority"),
    ("an id with a dot", "post", "/api/routing/policies/0.5/activate/", "{}", "Not found"),
]  # fmt: skip


@pytest.mark.parametrize(
    "what,method,path,body,says", BAD_REQUESTS, ids=[r[0] for r in BAD_REQUESTS]
)
def test_a_bad_input_is_a_json_4xx_and_changes_nothing(manager, what, method, path, body, says):
    before = _state()
    response = _post(manager, path, body) if method == "post" else manager.get(path)
    assert 400 <= response.status_code < 500, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    assert says in json.dumps(response.json()), response.json()
    assert _state() == before
    assert not RequestLog.objects.filter(status="success").exists()


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/api/providers/"])
def test_a_method_a_path_does_not_take_is_a_json_405_with_allow(client, admin_user, path):
    client.force_login(admin_user)
    response = client.put(path)  # a list endpoint takes GET and POST only
    assert response.status_code == 405
    assert response["Content-Type"].startswith("application/json")
    assert "not allowed" in response.json()["detail"]
    assert response["Allow"]


def test_null_for_a_json_field_that_cannot_be_null_is_a_400_naming_it(manager):
    # a form sends "null" for a JSON field: blank=True lets None past full_clean()
    model = ProviderModel.objects.filter(provider_id="anthropic").first()
    response = manager.patch(
        f"/api/provider-models/{model.pk}/",
        data=encode_multipart(BOUNDARY, {"price_tiers": "null"}),
        content_type=MULTIPART_CONTENT,
    )
    assert response.status_code == 400, response.content[:300]
    assert response.json() == {"price_tiers": ["This field may not be null."]}
