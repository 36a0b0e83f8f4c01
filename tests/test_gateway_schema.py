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
