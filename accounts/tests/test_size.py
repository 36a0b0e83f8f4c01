"""Request bodies over MAX_REQUEST_BODY_BYTES (1 MiB) get 413 JSON and are never executed."""

import json

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from analytics.models import RequestLog

pytestmark = pytest.mark.django_db


def body_of(size: int) -> bytes:
    """A valid chat request of exactly `size` bytes."""
    skeleton = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": ""}]}
    padding = size - len(json.dumps(skeleton).encode())
    skeleton["messages"][0]["content"] = "x" * padding
    body = json.dumps(skeleton).encode()
    assert len(body) == size
    return body


def post(client, path, body: bytes, key=None):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.generic("POST", path, body, content_type="application/json", **extra)


def upstream_calls(sim) -> int:
    return sum(stats["requests"] for stats in sim.all_stats().values())


def test_the_default_limit_is_one_mebibyte_for_the_view_and_for_django():
    assert django_settings.MAX_REQUEST_BODY_BYTES == 1024 * 1024
    assert django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 1024 * 1024


@pytest.mark.parametrize(
    ("path", "endpoint"), [("/v1/chat/completions", "chat"), ("/api/ai/execute", "execute")]
)
def test_an_oversized_gateway_request_gets_413_and_a_refused_row(
    path, endpoint, make_key, demo_catalogue
):
    raw, _ = make_key()
    response = post(APIClient(), path, body_of(1024 * 1024 + 1), raw)

    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "request_too_large"
    assert "1048577 bytes" in error["message"] and "1 MiB" in error["message"]
    assert upstream_calls(demo_catalogue) == 0
    row = RequestLog.objects.get()
    assert (row.status, row.http_status, row.endpoint) == ("refused", 413, endpoint)
    assert row.api_key_name == "owner0-key"


def test_the_limit_is_inclusive(settings, make_key, demo_catalogue):
    settings.MAX_REQUEST_BODY_BYTES = 2000
    raw, _ = make_key()
    client = APIClient()
    assert post(client, "/v1/chat/completions", body_of(2000), raw).status_code == 200
    assert post(client, "/v1/chat/completions", body_of(2001), raw).status_code == 413
    assert upstream_calls(demo_catalogue) == 1


def test_an_anonymous_oversized_gateway_request_is_refused_unread(sim):
    response = post(APIClient(), "/v1/chat/completions", body_of(2 * 1024 * 1024))
    assert response.status_code == 401
    assert RequestLog.objects.count() == 0
    assert upstream_calls(sim) == 0


def test_the_rest_api_answers_413_json_before_reading_the_body(make_key):
    from routing.models import RoutingPolicy

    raw, _ = make_key(["routing:manage"])
    body = json.dumps({"name": "big", "description": "x" * (1024 * 1024), "actions": {}})
    response = post(APIClient(), "/api/routing/policies/", body.encode(), raw)
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert not RoutingPolicy.objects.filter(name="big").exists()


def test_an_oversized_routing_simulation_gets_413_json_unread(make_key, sim):
    raw, _ = make_key(["routing:view"])
    response = post(APIClient(), "/api/routing/simulate", body_of(2 * 1024 * 1024), raw)
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert upstream_calls(sim) == 0
