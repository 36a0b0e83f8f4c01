"""Embeddings through each adapter that has them: the request on the wire, the answer in
OpenAI's shape (float or base64), usage, and the adapters that refuse."""

import base64
import struct

import pytest

from providers.adapters import EmbeddingsRequest, InvalidRequest, MalformedResponse
from providers.adapters.types import RequestValidationError

from .recording_server import Reply

OPENAI_ANSWER = {
    "object": "list",
    "data": [
        {"object": "embedding", "index": 1, "embedding": [0.5, 0.25]},
        {"object": "embedding", "index": 0, "embedding": [1.0, 0.0]},
    ],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 7, "total_tokens": 7},
}


def embeddings(**body):
    body.setdefault("model", "client-embedder")
    body.setdefault("input", ["first text", "second"])
    return EmbeddingsRequest.from_openai(body)


@pytest.mark.parametrize(
    ("provider_type", "path", "model_sent"),
    [
        ("openai", "/v1/embeddings", "text-embedding-3-small"),
        ("openai_compatible", "/v1/embeddings", "text-embedding-3-small"),
        ("azure_openai", "/openai/deployments/emb-small/embeddings", "emb-small"),
    ],
)
def test_openai_formats_send_openais_body_and_keep_its_answer(
    stub, stub_adapter, provider_type, path, model_sent
):
    stub.reply(Reply(body=OPENAI_ANSWER))
    options = {}
    if provider_type == "azure_openai":
        options = {
            "api_version": "2024-10-21",
            "deployments": {"text-embedding-3-small": "emb-small"},
        }
    adapter = stub_adapter(provider_type, options=options)
    result = adapter.embed(
        embeddings(dimensions=2, user="u-1", encoding_format="base64"), "text-embedding-3-small"
    )
    sent = stub.last
    assert sent.path == path
    assert sent.json == {
        "model": model_sent,
        "input": ["first text", "second"],
        "encoding_format": "base64",
        "dimensions": 2,
        "user": "u-1",
    }
    if provider_type == "azure_openai":
        assert sent.query == {"api-version": "2024-10-21"}
        assert sent.headers["api-key"] == "sk-test-0123456789"
    else:
        assert sent.headers["authorization"] == "Bearer sk-test-0123456789"
    response = result.response
    assert response["object"] == "list"
    assert response["model"] == "client-embedder"
    assert [item["index"] for item in response["data"]] == [0, 1]  # input order
    assert response["data"][0]["embedding"] == [1.0, 0.0]
    assert (result.usage.prompt_tokens, result.usage.estimated) == (7, False)
    assert response["usage"] == {"prompt_tokens": 7, "total_tokens": 7}


def test_token_id_inputs_go_to_openai_as_they_are(stub, stub_adapter):
    stub.reply(Reply(body={**OPENAI_ANSWER, "data": OPENAI_ANSWER["data"][1:]}))
    stub_adapter("openai").embed(embeddings(input=[1, 2, 3]), "m")
    assert stub.last.json["input"] == [[1, 2, 3]]


def test_gemini_batch_embed_contents(stub, stub_adapter):
    stub.reply(Reply(body={"embeddings": [{"values": [0.1, 0.2]}, {"values": [0.3, 0.4]}]}))
    adapter = stub_adapter("gemini")
    result = adapter.embed(embeddings(dimensions=2), "gemini-embedding-001")
    sent = stub.last
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.headers["x-goog-api-key"] == "sk-test-0123456789"
    assert sent.json == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "first text"}]},
                "outputDimensionality": 2,
            },
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "second"}]},
                "outputDimensionality": 2,
            },
        ]
    }
    assert result.response["data"] == [
        {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]},
        {"object": "embedding", "index": 1, "embedding": [0.3, 0.4]},
    ]
    # Gemini reports no usage for embeddings: estimated from the text ("first text" is 2
    # tokens, "second" 1, in o200k_base, what a model without a tokenizer of its own gets)
    assert (result.usage.prompt_tokens, result.usage.estimated) == (2 + 1, True)


def test_gemini_answers_base64_when_asked(stub, stub_adapter):
    stub.reply(Reply(body={"embeddings": [{"values": [0.5, -1.0]}]}))
    result = stub_adapter("gemini").embed(
        embeddings(input="one", encoding_format="base64"), "gemini-embedding-001"
    )
    encoded = result.response["data"][0]["embedding"]
    assert struct.unpack("<2f", base64.b64decode(encoded)) == (0.5, -1.0)


def test_gemini_refuses_token_ids_before_calling(stub, stub_adapter):
    with pytest.raises(InvalidRequest) as info:
        stub_adapter("gemini").embed(embeddings(input=[[1, 2]]), "gemini-embedding-001")
    assert info.value.upstream_code == "input"
    assert stub.requests == []


def test_anthropic_has_no_embeddings(stub, stub_adapter):
    with pytest.raises(InvalidRequest) as info:
        stub_adapter("anthropic").embed(embeddings(), "claude-haiku-4-5")
    assert "no embeddings API" in info.value.message
    assert stub.requests == []


def test_a_short_answer_is_malformed(stub, stub_adapter):
    stub.reply(Reply(body={**OPENAI_ANSWER, "data": OPENAI_ANSWER["data"][:1]}))
    with pytest.raises(MalformedResponse):
        stub_adapter("openai").embed(embeddings(), "m")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": ""}, "input[0]"),
        ({"input": []}, "input"),
        ({"input": [["a"]]}, "input[0]"),
        ({"input": 5}, "input"),
        ({"input": ["x"] * 2049}, "input"),
        ({"model": ""}, "model"),
        ({"encoding_format": "int8"}, "encoding_format"),
        ({"dimensions": 0}, "dimensions"),
        ({"temperature": 1}, "temperature"),
    ],
)
def test_invalid_embeddings_requests_name_the_field(body, param):
    with pytest.raises(RequestValidationError) as info:
        embeddings(**body)
    assert info.value.param == param


@pytest.mark.parametrize(
    ("provider_type", "model"),
    [
        ("openai", "text-embedding-3-small"),
        ("azure_openai", "text-embedding-3-small"),
        ("openai_compatible", "text-embedding-3-small"),
        ("gemini", "gemini-embedding-001"),
    ],
)
@pytest.mark.parametrize("encoding_format", ["float", "base64"])
def test_embeddings_from_the_simulator(sim_adapter, provider_type, model, encoding_format):
    options = {"api_version": "2024-10-21"} if provider_type == "azure_openai" else {}
    adapter = sim_adapter(provider_type, options=options)
    request = embeddings(input=["same text", "other text", "same text"], dimensions=8)
    request.encoding_format = encoding_format
    result = adapter.embed(request, model)
    vectors = []
    for item in result.response["data"]:
        embedding = item["embedding"]
        if encoding_format == "base64":
            raw = base64.b64decode(embedding)
            embedding = list(struct.unpack(f"<{len(raw) // 4}f", raw))
        vectors.append(embedding)
    assert [len(v) for v in vectors] == [8, 8, 8]
    assert vectors[0] == pytest.approx(vectors[2])  # deterministic per text
    assert vectors[0] != pytest.approx(vectors[1])
    assert sum(v * v for v in vectors[0]) == pytest.approx(1.0, rel=1e-5)
    assert result.usage.prompt_tokens > 0
    assert result.response["usage"]["total_tokens"] == result.usage.prompt_tokens


def test_routing_reads_an_embeddings_request_like_a_chat_one():
    request = embeddings(metadata={"team": "search"})
    assert request.required_capabilities() == {"embeddings"}
    assert (request.stream, request.max_tokens, request.n) == (False, None, None)
    assert request.metadata == {"team": "search"}
