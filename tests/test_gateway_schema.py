"""The gateway in the OpenAPI schema: every gateway endpoint is there with its request and
response bodies, the schema is valid OpenAPI, and real answers of the live gateway (successes
and each error class) match what the schema documents for them."""

import io
import json

import jsonschema
import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.management import call_command

from accounts.services import api_key_create

pytestmark = pytest.mark.django_db(transaction=True)

GATEWAY_OPERATIONS = {
    ("/v1/chat/completions", "post"),
    ("/v1/models", "get"),
    ("/api/ai/execute", "post"),
    ("/api/routing/simulate", "post"),
    ("/v1/models/{model}", "get"),
    ("/v1/embeddings", "post"),
    ("/v1/messages", "post"),
    ("/v1/messages/count_tokens", "post"),
}


@pytest.fixture
def schema(admin_client):
    response = admin_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def json_schema(node, components):
    """An OpenAPI 3.0 schema as plain JSON Schema: $refs inlined, `nullable` as a null type."""
    if isinstance(node, list):
        return [json_schema(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return json_schema(components[node["$ref"].rsplit("/", 1)[-1]], components)
    out = {k: json_schema(v, components) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def documented(schema, path, method, status, content_type="application/json"):
    operation = schema["paths"][path][method]
    assert str(status) in operation["responses"], (path, method, status, "not documented")
    content = operation["responses"][str(status)]["content"]
    return json_schema(content[content_type]["schema"], schema["components"]["schemas"])


def conforms(schema, path, method, response):
    body_schema = documented(schema, path, method, response.status_code)
    jsonschema.validate(response.json(), body_schema)


def test_every_gateway_endpoint_is_in_the_schema_with_bodies(schema):
    operations = {(p, m) for p, methods in schema["paths"].items() for m in methods}
    assert operations >= GATEWAY_OPERATIONS
    for path, method in GATEWAY_OPERATIONS:
        operation = schema["paths"][path][method]
        assert operation["tags"] == ["gateway"]
        assert operation["security"]
        assert "200" in operation["responses"]
        assert {"401", "403"} <= set(operation["responses"])
        if method == "post":
            assert operation["requestBody"]["required"] is True
            assert {"400", "413"} <= set(operation["responses"])


def test_schema_is_valid_openapi():
    out = io.StringIO()
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", stdout=out
    )
    assert "/v1/chat/completions" in json.loads(out.getvalue())["paths"]


def test_a_catch_all_path_is_not_documented(schema):
    # every /v1/ path resolves (unknown ones to the JSON 404), yet only served ones appear
    assert not any("{path}" in path for path in schema["paths"])


def test_answers_match_the_schema(schema, live_server, routed_key):
    auth = {"Authorization": f"Bearer {routed_key}"}
    url = live_server.url
    hello = [{"role": "user", "content": "Hello"}]

    def post(path, body, headers=auth):
        return requests.post(f"{url}{path}", json=body, headers=headers, timeout=10)

    chat = post(
        "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": hello, "max_tokens": 5}
    )
    assert chat.status_code == 200
    conforms(schema, "/v1/chat/completions", "post", chat)
    stream = post(
        "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": hello, "stream": True}
    )
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    documented(schema, "/v1/chat/completions", "post", 200, "text/event-stream")
    for bad in (
        post("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": []}),
        post("/v1/chat/completions", {"model": "no-such-model", "messages": hello}),
        post("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": hello}, headers={}),
    ):
        assert bad.status_code in (400, 404, 401)
        conforms(schema, "/v1/chat/completions", "post", bad)

    models = requests.get(f"{url}/v1/models", headers=auth, timeout=10)
    conforms(schema, "/v1/models", "get", models)

    execute = post("/api/ai/execute", {"prompt": "Hi", "model": "claude-haiku-4-5"})
    assert execute.status_code == 200
    conforms(schema, "/api/ai/execute", "post", execute)
    conforms(schema, "/api/ai/execute", "post", post("/api/ai/execute", {"prompt": ""}))

    simulate_body = {"model": "gpt-4o", "messages": hello}
    refused = post("/api/routing/simulate", simulate_body)
    assert refused.status_code == 403  # an ai:execute key lacks routing:view
    conforms(schema, "/api/routing/simulate", "post", refused)
    user = get_user_model().objects.get(username="ent")
    _, viewer_key = api_key_create(user=user, name="viewer", scopes=["routing:view"])
    viewer = {"Authorization": f"Bearer {viewer_key}"}
    simulate = post("/api/routing/simulate", simulate_body, headers=viewer)
    assert simulate.status_code == 200
    conforms(schema, "/api/routing/simulate", "post", simulate)


def test_the_new_endpoints_answers_match_the_schema(schema, live_server, routed_key):
    auth = {"Authorization": f"Bearer {routed_key}"}
    url = live_server.url
    hello = [{"role": "user", "content": "Hello"}]

    def post(path, body, headers=auth):
        return requests.post(f"{url}{path}", json=body, headers=headers, timeout=10)

    model = requests.get(f"{url}/v1/models/gpt-4o-mini", headers=auth, timeout=10)
    assert model.status_code == 200
    conforms(schema, "/v1/models/{model}", "get", model)
    missing = requests.get(f"{url}/v1/models/nope", headers=auth, timeout=10)
    assert missing.status_code == 404
    conforms(schema, "/v1/models/{model}", "get", missing)

    embeddings = post("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a", "b"]})
    assert embeddings.status_code == 200
    conforms(schema, "/v1/embeddings", "post", embeddings)
    for bad in (
        post("/v1/embeddings", {"model": "text-embedding-3-small", "input": []}),
        post("/v1/embeddings", {"model": "no-such-model", "input": "x"}),
        post("/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"}, headers={}),
    ):
        assert bad.status_code in (400, 404, 401)
        conforms(schema, "/v1/embeddings", "post", bad)

    anthropic_auth = {"x-api-key": routed_key}
    message = post(
        "/v1/messages",
        {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": hello},
        headers=anthropic_auth,
    )
    assert message.status_code == 200
    conforms(schema, "/v1/messages", "post", message)
    stream = post(
        "/v1/messages",
        {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": hello, "stream": True},
        headers=anthropic_auth,
    )
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    documented(schema, "/v1/messages", "post", 200, "text/event-stream")
    for bad in (
        post("/v1/messages", {"model": "claude-haiku-4-5", "messages": hello}, anthropic_auth),
        post(
            "/v1/messages",
            {"model": "claude-nope", "max_tokens": 5, "messages": hello},
            anthropic_auth,
        ),
        post("/v1/messages", {"model": "claude-haiku-4-5", "messages": hello}, headers={}),
    ):
        assert bad.status_code in (400, 404, 401)
        conforms(schema, "/v1/messages", "post", bad)

    count = post(
        "/v1/messages/count_tokens",
        {"model": "claude-haiku-4-5", "messages": hello},
        headers=anthropic_auth,
    )
    assert count.status_code == 200
    conforms(schema, "/v1/messages/count_tokens", "post", count)
    bad = post("/v1/messages/count_tokens", {"model": "claude-haiku-4-5"}, anthropic_auth)
    assert bad.status_code == 400
    conforms(schema, "/v1/messages/count_tokens", "post", bad)
