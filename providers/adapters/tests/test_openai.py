"""OpenAI, Azure OpenAI and OpenAI-compatible adapters."""

import json

import pytest

from providers.adapters import (
    AzureOpenAIAdapter,
    ContextTooLong,
    InvalidRequest,
    OpenAIAdapter,
    OpenAICompatibleAdapter,
    RateLimited,
    UpstreamServerError,
)
from providers.adapters.openai_compatible import api_root

from .payloads import SIM_MODELS, WEATHER_TOOL, chat_request
from .recording_server import Reply, sse

OPENAI_TYPES = ("openai", "azure_openai", "openai_compatible")

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there, friend!"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 13, "completion_tokens": 5, "total_tokens": 18},
}


def chunk(delta, finish_reason=None, **extra):
    return {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "upstream-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        **extra,
    }


@pytest.mark.parametrize("provider_type", OPENAI_TYPES)
def test_chat_round_trip(sim_adapter, provider_type):
    adapter = sim_adapter(provider_type)
    request = chat_request(max_tokens=7)

    result = adapter.chat(request, SIM_MODELS[provider_type])

    response = result.response
    assert response["object"] == "chat.completion"
    assert response["model"] == "client-model"
    assert response["id"] and isinstance(response["created"], int)
    (choice,) = response["choices"]
    assert choice["finish_reason"] == "stop"
    assert len(choice["message"]["content"].split()) == 7
    # the simulator counts ceil(24 characters / 4) prompt tokens and max_tokens completion
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (6, 7)
    assert not result.usage.estimated
    assert response["usage"]["total_tokens"] == 13


@pytest.mark.parametrize("provider_type", OPENAI_TYPES)
def test_stream_round_trip(sim_adapter, provider_type):
    adapter = sim_adapter(provider_type)
    request = chat_request(max_tokens=9, stream=True)

    with adapter.stream(request, SIM_MODELS[provider_type]) as stream:
        chunks = list(stream)

    *content_chunks, usage_chunk = chunks
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all(c["model"] == "client-model" for c in chunks)
    assert all("usage" not in c for c in content_chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in content_chunks)
    assert len(text.split()) == 9
    assert content_chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert content_chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 6, "completion_tokens": 9, "total_tokens": 15}
    assert stream.usage.total_tokens == 15 and not stream.usage.estimated


@pytest.mark.parametrize("provider_type", OPENAI_TYPES)
def test_tool_call_round_trip(sim_adapter, provider_type):
    adapter = sim_adapter(provider_type)
    request = chat_request(tools=[WEATHER_TOOL], tool_choice="required")

    result = adapter.chat(request, SIM_MODELS[provider_type])
    with adapter.stream(request, SIM_MODELS[provider_type]) as stream:
        chunks = list(stream)

    choice = result.response["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert "city" in json.loads(call["function"]["arguments"])
    deltas = [
        tc
        for c in chunks
        if c["choices"]
        for tc in c["choices"][0]["delta"].get("tool_calls") or ()
    ]
    arguments = "".join(d["function"].get("arguments", "") for d in deltas)
    assert json.loads(arguments) == json.loads(call["function"]["arguments"])
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_openai_request_on_the_wire(stub, stub_adapter):
    stub.reply(Reply(body=COMPLETION))
    adapter = stub_adapter("openai", options={"organization": "org-1", "project": "proj-1"})
    request = chat_request(
        messages=[{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_tokens=50,
        temperature=0.3,
        stop=["\n\n"],
        user="u-42",
        metadata={"tenant": "acme"},
        seed=3,
    )

    adapter.chat(request, "gpt-4o")

    sent = stub.last
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == "Bearer sk-test-0123456789"
    assert sent.headers["openai-organization"] == "org-1"
    assert sent.headers["openai-project"] == "proj-1"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json == {
        "model": "gpt-4o",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        "temperature": 0.3,
        "stop": ["\n\n"],
        "user": "u-42",
        "seed": 3,
        "max_completion_tokens": 50,
    }


def test_openai_stream_always_asks_for_usage(stub, stub_adapter):
    stub.reply(
        Reply(
            events=sse(
                chunk({"role": "assistant", "content": ""}),
                chunk({"content": "Hi"}),
                chunk({}, "stop"),
                {**chunk({}), "choices": [], "usage": COMPLETION["usage"]},
                "[DONE]",
            )
        )
    )
    adapter = stub_adapter("openai")

    with adapter.stream(chat_request(stream=True), "gpt-4o") as stream:
        chunks = list(stream)

    assert stub.last.json["stream"] is True
    assert stub.last.json["stream_options"] == {"include_usage": True}
    assert stub.last.headers["accept"] == "text/event-stream"
    assert chunks[-1]["usage"] == COMPLETION["usage"]
    assert chunks[-1]["id"] == "chatcmpl-9"


def test_azure_request_on_the_wire(stub, stub_adapter):
    stub.reply(Reply(body=COMPLETION))
    adapter = stub_adapter(
        "azure_openai",
        options={"api_version": "2024-06-01", "deployments": {"gpt-4o": "prod 4o"}},
    )
    request = chat_request(
        messages=[{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_tokens=20,
    )

    result = adapter.chat(request, "gpt-4o")

    sent = stub.last
    assert sent.path == "/openai/deployments/prod%204o/chat/completions"
    assert sent.query == {"api-version": "2024-06-01"}
    assert sent.headers["api-key"] == "sk-test-0123456789"
    assert "authorization" not in sent.headers
    assert sent.json == {
        "model": "prod 4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        "max_tokens": 20,
    }
    assert result.response["model"] == "client-model"


def test_azure_uses_the_model_name_without_a_deployment_mapping(stub, stub_adapter):
    stub.reply(Reply(body=COMPLETION))
    adapter = stub_adapter("azure_openai")
    adapter.chat(chat_request(), "gpt-4o-mini")
    assert stub.last.path == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert stub.last.query == {"api-version": "2024-10-21"}


def test_azure_stream_skips_prompt_filter_chunks(stub, stub_adapter):
    filter_chunk = {"id": "", "object": "", "created": 0, "model": "", "choices": []}
    filter_chunk["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": {}}]
    stub.reply(
        Reply(
            events=sse(
                filter_chunk,
                chunk({"role": "assistant", "content": ""}),
                chunk({"content": "Hi"}),
                chunk({}, "stop"),
                "[DONE]",
            )
        )
    )
    with stub_adapter("azure_openai").stream(chat_request(stream=True), "gpt-4o") as stream:
        chunks = list(stream)
    assert [c["choices"][0]["delta"].get("content") for c in chunks[:-1]] == ["", "Hi", None]


@pytest.mark.parametrize(
    ("base_url", "root"),
    [
        ("http://localhost:11434", "http://localhost:11434/v1"),
        ("http://127.0.0.1:9100/openai", "http://127.0.0.1:9100/openai/v1"),
        ("https://api.groq.com/openai/v1", "https://api.groq.com/openai/v1"),
        ("https://api.together.xyz/v1", "https://api.together.xyz/v1"),
        (
            "https://generativelanguage.googleapis.com/v1beta/openai",
            "https://generativelanguage.googleapis.com/v1beta/openai",
        ),
    ],
)
def test_compatible_api_root_rule(base_url, root):
    assert api_root(base_url) == root


def test_compatible_request_on_the_wire(stub, stub_adapter):
    stub.reply(Reply(body=COMPLETION))
    adapter = stub_adapter("openai_compatible", api_key="")
    request = chat_request(
        messages=[{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_tokens=20,
        top_k=40,  # a vLLM extension the client passed through extra_body
    )

    adapter.chat(request, "llama-3.1-8b")

    assert stub.last.path == "/v1/chat/completions"
    assert "authorization" not in stub.last.headers
    assert stub.last.json == {
        "model": "llama-3.1-8b",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        "max_tokens": 20,
        "top_k": 40,
    }


def test_compatible_server_without_usage_gets_estimated_usage(stub, stub_adapter):
    no_usage = {k: v for k, v in COMPLETION.items() if k != "usage"}
    stub.reply(
        Reply(body=no_usage),
        Reply(
            events=sse(
                chunk({"role": "assistant", "content": ""}),
                chunk({"content": "Hello there, friend!"}),  # 20 characters
                chunk({}, "stop"),
                "[DONE]",
            )
        ),
    )
    adapter = stub_adapter("openai_compatible")
    request = chat_request(messages=[{"role": "user", "content": "x" * 40}])

    result = adapter.chat(request, "llama")
    with adapter.stream(request, "llama") as stream:
        chunks = list(stream)

    # prompt: "x" * 40 is 5 o200k tokens, + 3 per message + 3 priming; completion: the
    # output's characters / 4, ceil(20 / 4)
    assert result.usage.estimated
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (11, 5)
    assert result.response["usage"]["total_tokens"] == 16
    assert chunks[-1]["usage"] == {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
    assert stream.usage.estimated


def test_error_event_before_any_content_raises_from_stream(stub, stub_adapter):
    stub.reply(
        Reply(
            events=sse(
                chunk({"role": "assistant", "content": ""}),
                {"error": {"message": "The server had an error", "type": "server_error"}},
            )
        )
    )
    with pytest.raises(UpstreamServerError, match="The server had an error"):
        stub_adapter("openai").stream(chat_request(stream=True), "gpt-4o")


def test_openai_context_length_error(stub, stub_adapter):
    stub.reply(
        Reply(
            status=400,
            body={
                "error": {
                    "message": "This model's maximum context length is 128000 tokens. However, "
                    "your messages resulted in 130000 tokens.",
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": "context_length_exceeded",
                }
            },
        )
    )
    with pytest.raises(ContextTooLong) as caught:
        stub_adapter("openai").chat(chat_request(), "gpt-4o")
    assert caught.value.upstream_code == "context_length_exceeded"
    assert caught.value.status_code == 400


def test_vllm_context_length_error_is_recognised_by_its_message(stub, stub_adapter):
    stub.reply(
        Reply(
            status=400,
            body={
                "object": "error",
                "message": "This model's maximum context length is 4096 tokens. However, you "
                "requested 5000 tokens (4000 in the messages, 1000 in the completion).",
                "type": "BadRequestError",
                "code": 400,
            },
        )
    )
    with pytest.raises(ContextTooLong):
        stub_adapter("openai_compatible").chat(chat_request(), "llama")


def test_insufficient_quota_is_a_rate_limit_that_waiting_will_not_fix(stub, stub_adapter):
    stub.reply(
        Reply(
            status=429,
            body={
                "error": {
                    "message": "You exceeded your current quota.",
                    "type": "insufficient_quota",
                    "code": "insufficient_quota",
                }
            },
        )
    )
    with pytest.raises(RateLimited) as caught:
        stub_adapter("openai").chat(chat_request(), "gpt-4o")
    assert caught.value.retryable is False


def test_n_is_forwarded_to_openai_formats(stub, stub_adapter):
    stub.reply(Reply(body=COMPLETION))
    stub_adapter("openai").chat(chat_request(n=2), "gpt-4o")
    assert stub.last.json["n"] == 2


def test_adapter_classes():
    from providers.adapters import ADAPTER_CLASSES

    assert ADAPTER_CLASSES["openai"] is OpenAIAdapter
    assert ADAPTER_CLASSES["azure_openai"] is AzureOpenAIAdapter
    assert ADAPTER_CLASSES["openai_compatible"] is OpenAICompatibleAdapter


def test_server_rejecting_stream_options_is_streamed_without_them(stub, stub_adapter):
    # Mistral's answer to stream_options, then its default: usage on the last chunk.
    mistral_422 = {
        "object": "error",
        "message": {
            "detail": [
                {
                    "type": "extra_forbidden",
                    "loc": ["body", "stream_options", "include_usage"],
                    "msg": "Extra inputs are not permitted",
                    "input": True,
                }
            ]
        },
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    usage = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    answer = sse(
        chunk({"role": "assistant", "content": "Hi"}), chunk({}, "stop", usage=usage), "[DONE]"
    )
    stub.reply(Reply(status=422, body=mistral_422), Reply(events=answer), Reply(events=answer))
    adapter = stub_adapter("openai_compatible")

    with adapter.stream(chat_request(stream=True), "mistral-large-latest") as stream:
        chunks = list(stream)
    with adapter.stream(chat_request(stream=True), "mistral-large-latest") as again:
        list(again)

    first, retried, later = (r.json for r in stub.requests)
    assert first["stream_options"] == {"include_usage": True}
    assert "stream_options" not in retried and "stream_options" not in later
    assert chunks[-1]["usage"] == usage
    assert not stream.usage.estimated


def test_other_invalid_stream_requests_are_not_retried(stub, stub_adapter):
    stub.reply(Reply(status=400, body={"error": {"message": "Invalid 'messages'", "type": "x"}}))
    with pytest.raises(InvalidRequest):
        stub_adapter("openai_compatible").stream(chat_request(stream=True), "m")
    assert len(stub.requests) == 1


@pytest.mark.parametrize(
    ("api_version", "asks_for_usage"),
    [
        ("2024-06-01", False),
        ("2024-08-01-preview", False),
        ("2024-10-21", True),
        ("2025-04-01-preview", True),
        ("v1", True),
    ],
)
def test_azure_asks_for_stream_usage_only_where_the_api_version_has_it(
    stub, stub_adapter, api_version, asks_for_usage
):
    stub.reply(Reply(events=sse(chunk({"content": "Hi"}), chunk({}, "stop"), "[DONE]")))
    adapter = stub_adapter("azure_openai", options={"api_version": api_version})
    with adapter.stream(chat_request(stream=True), "gpt-4o") as stream:
        list(stream)
    assert ("stream_options" in stub.last.json) is asks_for_usage


def test_stream_usage_option_pins_the_choice(stub, stub_adapter):
    stub.reply(Reply(events=sse(chunk({"content": "Hi"}), chunk({}, "stop"), "[DONE]")))
    adapter = stub_adapter("openai_compatible", options={"stream_usage": False})
    with adapter.stream(chat_request(stream=True), "m") as stream:
        list(stream)
    assert "stream_options" not in stub.last.json
    assert stream.usage.estimated
