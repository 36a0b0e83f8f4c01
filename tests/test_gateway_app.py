"""The gateway application (gateway/app.py): served by the real server with no Django
middleware, and the same application inside Django (gateway/bridge.py) for the test client.

In-process tests use Django's test client; the ones about serving (404/405 shapes, the
concurrency cap, /healthz under it) run the real server (tests/web_server.py)."""

import threading

import pytest
import requests
from django.test import Client

from providers.models import Provider

HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.django_db
def test_the_same_application_answers_inside_django(client, routed_key):
    response = client.post(
        "/v1/chat/completions", HELLO, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {routed_key}",
    )  # fmt: skip
    assert response.status_code == 200, response.content
    assert response["X-Request-ID"]
    assert response["X-Auterity-Provider"] != "none"
    assert response["Content-Length"] == str(len(response.content))  # not sent chunked
    assert response.json()["choices"][0]["message"]["content"]


@pytest.mark.django_db
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


@pytest.mark.django_db
def test_no_credentials_and_no_session_is_refused(client, demo_catalogue):
    response = client.post("/v1/chat/completions", HELLO, content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.django_db
def test_a_stream_is_sent_as_it_comes_without_a_length(client, routed_key):
    response = client.post(
        "/v1/chat/completions", {**HELLO, "stream": True}, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {routed_key}",
    )  # fmt: skip
    assert response.status_code == 200
    assert response.streaming and "Content-Length" not in response
    assert b"".join(response.streaming_content).endswith(b"data: [DONE]\n\n")


# --- the real server ----------------------------------------------------------------------


@pytest.fixture
def served(web_server, demo_catalogue):
    return web_server(workers=1, GATEWAY_MAX_CONCURRENT_REQUESTS="3")


@pytest.mark.django_db(transaction=True)
def test_unknown_paths_and_methods_answer_openai_errors(served, routed_key):
    auth = {"Authorization": f"Bearer {routed_key}"}

    missing = requests.post(f"{served.url}/v1/no/such/thing", json={}, headers=auth, timeout=10)
    wrong_method = requests.get(f"{served.url}/v1/chat/completions", headers=auth, timeout=10)

    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert missing.headers["X-Request-ID"]
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "POST"
    assert wrong_method.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.django_db(transaction=True)
def test_past_the_concurrency_limit_a_clear_503_and_health_still_answers(served, routed_key, sim):
    # given: a slow upstream everywhere, and a process that takes 3 requests at once
    for provider_id in Provider.objects.values_list("id", flat=True):
        sim.set_fault(provider_id, latency_ms=3000)
    auth = {"Authorization": f"Bearer {routed_key}"}
    start = threading.Barrier(6)
    answers = []

    def call():
        start.wait()
        answers.append(
            requests.post(f"{served.url}/v1/chat/completions", json=HELLO, headers=auth, timeout=30)
        )

    # when: six arrive together
    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    threading.Event().wait(1)
    health = requests.get(f"{served.url}/healthz", timeout=5)
    for thread in threads:
        thread.join()

    # then: three are served, three refused at once with Retry-After (never queued), and
    # /healthz answers meanwhile
    assert sorted(r.status_code for r in answers) == [200, 200, 200, 503, 503, 503]
    refused = [r for r in answers if r.status_code == 503]
    assert all(r.elapsed.total_seconds() < 2 for r in refused)
    assert all(r.headers["Retry-After"] == "1" for r in refused)
    assert refused[0].json()["error"]["code"] == "server_overloaded"
    assert health.status_code == 200
