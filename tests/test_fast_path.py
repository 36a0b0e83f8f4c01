"""The gateway's endpoints run GATEWAY_MIDDLEWARE instead of the rest of MIDDLEWARE
(auterity/fast_path.py); everything else keeps the full chain."""

import pytest
from django.test import Client
from prometheus_client import REGISTRY

pytestmark = pytest.mark.django_db

HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_gateway_answers_skip_the_browser_middleware_but_keep_security_headers(client, routed_key):
    response = client.post(
        "/v1/chat/completions", HELLO, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {routed_key}",
    )  # fmt: skip
    assert response.status_code == 200, response.content
    assert response["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware ran
    assert response["X-Request-ID"]
    assert "X-Frame-Options" not in response  # clickjacking middleware did not
    assert "Cookie" not in response.get("Vary", "")  # nor sessions
    assert response["Content-Length"] == str(len(response.content))  # not sent chunked
    # the admin, off the gateway's paths, keeps the whole chain
    assert client.get("/admin/login/")["X-Frame-Options"] == "DENY"


def test_django_prometheus_still_counts_gateway_views(client, routed_key):
    def answered() -> float:
        return (
            REGISTRY.get_sample_value(
                "django_http_responses_total_by_status_view_method_total",
                {"status": "200", "view": "openai-models", "method": "GET"},
            )
            or 0.0
        )

    before = answered()
    assert client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {routed_key}").status_code == 200
    assert answered() == before + 1


def test_an_admin_session_with_its_csrf_token_calls_the_gateway(admin_user, demo_catalogue):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    client.get("/admin/")  # sets the CSRF cookie, as the admin's pages do
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/v1/chat/completions", HELLO, content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )  # fmt: skip
    assert response.status_code == 200, response.content
    assert response.json()["choices"][0]["message"]["content"]


def test_no_credentials_and_no_session_is_refused(client, demo_catalogue):
    response = client.post("/v1/chat/completions", HELLO, content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_a_stream_is_sent_as_it_comes_without_a_length(client, routed_key):
    response = client.post(
        "/v1/chat/completions", {**HELLO, "stream": True}, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {routed_key}",
    )  # fmt: skip
    assert response.status_code == 200
    assert response.streaming and "Content-Length" not in response
    assert b"".join(response.streaming_content).endswith(b"data: [DONE]\n\n")
