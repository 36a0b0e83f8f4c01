"""The rest of the OpenAI-compatible face with the official openai SDK against a live server
and the provider simulator: embeddings on every adapter with an embeddings API (routed by
the policies, with usage, cost and a request-log row), model retrieval (ids with "/"
included), and JSON errors for unknown paths and wrong methods under /v1/."""

import math

import openai
import pytest
import requests

from analytics.models import RequestLog
from providers.models import Provider
from providers.tests.factories import ProviderModelFactory
from routing.models import RoutingPolicy

pytestmark = pytest.mark.django_db(transaction=True)

TEXTS = ["The quick brown fox", "jumps over the lazy dog"]


def sdk(live_server, key) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0)


@pytest.fixture
def embedding_models(every_adapter):
    """An embedding model per adapter type with an embeddings API: the demo's OpenAI and
    Gemini ones, every_adapter's Azure deployment, and one on the OpenAI-compatible DeepSeek
    provider."""
    ProviderModelFactory(
        provider=Provider.objects.get(id="deepseek"),
        model="deepseek-embed",
        input_price="0.0000001",
        output_price=0,
        supports_streaming=False,
        supports_tools=False,
        supports_embeddings=True,
    )
    return {
        "openai": ("text-embedding-3-small", "openai"),
        "azure_openai": ("text-embedding-3-small-azure", "azure"),
        "gemini": ("gemini-embedding-001", "google"),
        "openai_compatible": ("deepseek-embed", "deepseek"),
    }


@pytest.mark.parametrize("adapter", ["openai", "azure_openai", "gemini", "openai_compatible"])
@pytest.mark.parametrize("encoding", ["base64", "float"])
def test_embeddings_on_every_adapter(live_server, routed_key, embedding_models, adapter, encoding):
    model, provider = embedding_models[adapter]
    client = sdk(live_server, routed_key)
    # the SDK asks for base64 by default and decodes it itself
    extra = {} if encoding == "base64" else {"encoding_format": "float"}
    raw = client.embeddings.with_raw_response.create(model=model, input=TEXTS, **extra)
    answer = raw.parse()
    assert raw.headers["X-Auterity-Provider"] == provider
    assert [item.index for item in answer.data] == [0, 1]
    first, second = (item.embedding for item in answer.data)
    assert len(first) == len(second) > 0 and all(isinstance(v, float) for v in first)
    assert first != second
    assert math.isclose(math.hypot(*first), 1.0, rel_tol=1e-3)  # the simulator's are unit
    assert answer.model == model
    assert answer.usage.prompt_tokens == answer.usage.total_tokens > 0
    # deterministic: the same text, the same vector
    again = client.embeddings.create(model=model, input=TEXTS[0], **extra)
    assert again.data[0].embedding == pytest.approx(first, abs=1e-6)
    rows = list(RequestLog.objects.order_by("created_at"))
    assert len(rows) == 2
    row = rows[0]
    assert (row.endpoint, row.status, row.provider_id, row.model) == (
        "embeddings",
        "success",
        provider,
        model,
    )
    assert row.request_id == raw.headers["X-Request-ID"]
    assert row.prompt_tokens == answer.usage.prompt_tokens and row.completion_tokens == 0
    assert row.cost > 0
    assert answer.usage.model_extra["cost"] == pytest.approx(float(row.cost))
    assert float(raw.headers["X-Auterity-Cost-USD"]) == pytest.approx(float(row.cost), abs=1e-8)


def test_dimensions_are_passed_on(live_server, routed_key, embedding_models):
    answer = sdk(live_server, routed_key).embeddings.create(
        model="text-embedding-3-small", input="hello", dimensions=64
    )
    assert len(answer.data[0].embedding) == 64


def test_embeddings_fall_back_by_policy(live_server, routed_key, embedding_models, sim):
    # given a policy that serves OpenAI's small embedding model from OpenAI, else from Azure
    RoutingPolicy.objects.create(
        name="Embeddings with a fallback",
        priority=1,
        status="active",
        conditions={"model": "text-embedding-3-small"},
        actions={
            "targets": [
                {"provider": "openai", "model": "text-embedding-3-small"},
                {"provider": "azure", "model": "text-embedding-3-small-azure"},
            ],
            "fallback": {"enabled": True},
        },
    )
    sim.set_fault("openai", error_rate=1.0, error_status=503)
    # when OpenAI fails
    raw = sdk(live_server, routed_key).embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=TEXTS
    )
    # then Azure answers, and the row says so
    assert len(raw.parse().data) == 2
    assert raw.headers["X-Auterity-Policy"] == "Embeddings with a fallback"
    assert raw.headers["X-Auterity-Provider"] == "azure"
    assert raw.headers["X-Auterity-Attempts"] == "2"
    row = RequestLog.objects.get()
    assert (row.provider_id, row.attempts, row.status) == ("azure", 2, "success")
    assert [a["outcome"] for a in row.attempts_detail] == ["upstream_error", "ok"]


def test_every_embeddings_target_failing_is_an_openai_error_with_its_row(
    live_server, routed_key, embedding_models, sim
):
    sim.set_fault("openai", error_rate=1.0, error_status=500)
    with pytest.raises(openai.InternalServerError) as caught:
        sdk(live_server, routed_key).embeddings.create(model="text-embedding-3-small", input="x")
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "upstream_error"
    row = RequestLog.objects.get()
    assert (row.endpoint, row.status, row.http_status) == ("embeddings", "error", 502)


SMALL = "text-embedding-3-small"
BAD_EMBEDDINGS = [
    # (body, the parameter the error names)
    ({"model": SMALL, "input": []}, "input"),
    ({"model": SMALL, "input": ["ok", ""]}, "input[1]"),
    ({"model": SMALL, "input": "x", "encoding_format": "int8"}, "encoding_format"),
    ({"model": SMALL, "input": "x", "dimensions": 0}, "dimensions"),
    ({"model": SMALL, "input": "x", "stream": True}, "stream"),
    ({"input": "x"}, "model"),
    ({"model": "gpt-4o-mini", "input": "x"}, "model"),  # a chat model
]  # fmt: skip


@pytest.mark.parametrize("body,param", BAD_EMBEDDINGS, ids=[b[1] for b in BAD_EMBEDDINGS])
def test_bad_embeddings_input_is_400_naming_the_field_and_changes_nothing(
    live_server, routed_key, embedding_models, sim, body, param
):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(live_server, routed_key).post("/embeddings", body=body, cast_to=object)
    assert caught.value.body["param"] == param
    assert caught.value.body["type"] == "invalid_request_error"
    assert not RequestLog.objects.exists()
    assert sim.stats("openai")["requests"] == 0


def test_unknown_embeddings_model_is_404(live_server, routed_key, embedding_models):
    with pytest.raises(openai.NotFoundError) as caught:
        sdk(live_server, routed_key).embeddings.create(model="no-such-embedder", input="x")
    assert caught.value.body["code"] == "model_not_found"


# --- models ----------------------------------------------------------------------------------


def test_models_retrieve(live_server, routed_key, demo_catalogue):
    client = sdk(live_server, routed_key)
    model = client.models.retrieve("claude-haiku-4-5")
    assert (model.id, model.object, model.owned_by) == ("claude-haiku-4-5", "model", "anthropic")
    assert isinstance(model.created, int)
    listed = {m.id: m for m in client.models.list()}
    assert listed["claude-haiku-4-5"] == model
    assert "text-embedding-3-small" in listed


def test_models_retrieve_an_id_with_a_slash(live_server, routed_key, demo_catalogue):
    model = sdk(live_server, routed_key).models.retrieve("meta-llama/Llama-3.3-70B-Instruct-Turbo")
    assert model.id == "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    assert model.owned_by == "together"


def test_models_retrieve_unknown_is_an_openai_404(live_server, routed_key, demo_catalogue):
    with pytest.raises(openai.NotFoundError) as caught:
        sdk(live_server, routed_key).models.retrieve("gpt-17")
    assert caught.value.body["code"] == "model_not_found"
    assert "gpt-17" in caught.value.message


def test_models_retrieve_needs_a_key(live_server, demo_catalogue):
    with pytest.raises(openai.AuthenticationError):
        sdk(live_server, "sk-wrong").models.retrieve("gpt-4o-mini")


# --- unknown paths and wrong methods: JSON, never an HTML page ---------------------------------


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_an_unknown_v1_path_is_an_openai_404(live_server, routed_key, settings, debug):
    settings.DEBUG = debug
    client = sdk(live_server, routed_key)
    with pytest.raises(openai.NotFoundError) as caught:
        client.get("/assistants", cast_to=object)
    assert caught.value.body["code"] == "not_found"
    assert "/v1/assistants" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        client.post("/chat/completions/extra", body={}, cast_to=object)
    with pytest.raises(openai.NotFoundError):
        client.delete("/files/file-1", cast_to=object)


@pytest.mark.parametrize(
    "method,path,allow",
    [
        ("get", "/v1/chat/completions", "POST"),
        ("put", "/v1/embeddings", "POST"),
        ("post", "/v1/models", "GET, HEAD"),
        ("delete", "/v1/models/gpt-4o-mini", "GET, HEAD"),
        ("get", "/api/ai/execute", "POST"),
    ],
)
def test_a_wrong_method_is_an_openai_405_with_allow(live_server, routed_key, method, path, allow):
    response = requests.request(
        method,
        f"{live_server.url}{path}",
        headers={"Authorization": f"Bearer {routed_key}"},
        timeout=10,
    )
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    error = response.json()["error"]
    assert error["code"] == "method_not_allowed"
    assert method.upper() in error["message"]


def test_the_sdk_shows_a_405s_message(live_server, routed_key):
    with pytest.raises(openai.APIStatusError) as caught:
        sdk(live_server, routed_key).get("/chat/completions", cast_to=object)
    assert caught.value.status_code == 405
    assert "use POST" in caught.value.message
