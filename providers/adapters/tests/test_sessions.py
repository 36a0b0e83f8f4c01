"""Connection pooling, stream lifetime and secret hygiene, shared by every adapter."""

import pytest

from providers.adapters import (
    AuthenticationFailed,
    ProviderEndpoint,
    StreamInterrupted,
    UpstreamServerError,
    UpstreamTimeout,
    adapter_for,
    close_sessions,
    session_for,
)
from providers.adapters.base import _transport_for

from .payloads import chat_request
from .recording_server import Reply, sse
from .test_openai import COMPLETION, chunk

KEY = "sk-live-5f3c9a1b2e"


def test_calls_reuse_one_pooled_session_and_connection(stub, stub_adapter):
    adapter = stub_adapter("openai")
    stub.reply(Reply(body=COMPLETION), Reply(body=COMPLETION))

    session = adapter.session
    adapter.chat(chat_request(), "gpt-4o")
    adapter.chat(chat_request(), "gpt-4o")

    assert adapter.session is session
    first, second = stub.requests
    assert first.client_port == second.client_port  # the same kept-alive TCP connection


def test_a_finished_stream_returns_its_connection_to_the_pool(stub, stub_adapter):
    adapter = stub_adapter("openai")
    events = sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hi"}),
        chunk({}, "stop"),
        "[DONE]",
    )
    stub.reply(Reply(events=events), Reply(body=COMPLETION))

    with adapter.stream(chat_request(stream=True), "gpt-4o") as stream:
        list(stream)
    adapter.chat(chat_request(), "gpt-4o")

    first, second = stub.requests
    assert first.client_port == second.client_port


def test_sessions_are_per_provider_and_base_url_and_survive_key_rotation(stub):
    old = ProviderEndpoint("acme", "openai", stub.base_url, "k1")
    rotated = ProviderEndpoint("acme", "openai", stub.base_url, "k2")
    other = ProviderEndpoint("acme-eu", "openai", stub.base_url, "k1")
    assert session_for(old) is session_for(rotated)
    assert session_for(old) is not session_for(other)
    before = session_for(old)
    close_sessions()
    assert session_for(old) is not before


def test_pool_size_comes_from_max_connections(stub):
    endpoint = ProviderEndpoint("big", "openai", stub.base_url, options={"max_connections": 200})
    http_adapter = session_for(endpoint).get_adapter(stub.base_url)
    assert http_adapter._pool_maxsize == 200
    assert http_adapter.max_retries.total == 0
    # the urllib3 pool the calls actually go through has that size too
    assert _transport_for(endpoint).pool.pool.maxsize == 200


def test_rotated_key_is_sent_on_the_shared_session(stub):
    stub.reply(Reply(body=COMPLETION), Reply(body=COMPLETION))
    adapter_for(ProviderEndpoint("acme", "openai", stub.base_url, "k1")).chat(chat_request(), "m")
    adapter_for(ProviderEndpoint("acme", "openai", stub.base_url, "k2")).chat(chat_request(), "m")
    assert [r.headers["authorization"] for r in stub.requests] == ["Bearer k1", "Bearer k2"]


@pytest.mark.parametrize("provider_type", ["openai", "anthropic", "gemini", "azure_openai"])
def test_the_api_key_never_appears_in_errors(stub, provider_type):
    # An upstream that echoes the key back in its error message.
    message = f"Incorrect API key provided: {KEY}."
    stub.reply(Reply(status=401, body={"error": {"message": message, "type": "invalid_request"}}))
    adapter = adapter_for(ProviderEndpoint("p", provider_type, stub.base_url, KEY))

    with pytest.raises(AuthenticationFailed) as caught:
        adapter.chat(chat_request(), "m")

    error = caught.value
    assert KEY not in str(error)
    assert KEY not in repr(error.to_dict())
    assert KEY not in repr(adapter)


def test_closing_a_stream_stops_it(stub, stub_adapter):
    events = sse(
        chunk({"role": "assistant", "content": ""}),
        *[chunk({"content": "w "})] * 50,
        chunk({}, "stop"),
        "[DONE]",
    )
    stub.reply(Reply(events=events, pause=0.01))
    stream = stub_adapter("openai").stream(chat_request(stream=True), "gpt-4o")

    first = next(stream)
    second = next(stream)
    stream.close()

    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert second["choices"][0]["delta"]["content"] == "w "
    assert list(stream) == []
    assert stream.usage.completion_tokens == 1  # ceil(len("w ") / 4)


def test_body_stalling_after_the_headers_is_a_timeout(stub):
    # Headers and half the JSON arrive, then nothing until the read timeout.
    stub.reply(Reply(events=[b'{"id": "x", ', b'"choices": []}'], pause=1.0))
    endpoint = ProviderEndpoint("slow", "openai", stub.base_url, "k", timeout=0.2)
    with pytest.raises(UpstreamTimeout):
        adapter_for(endpoint).chat(chat_request(), "gpt-4o")


def test_stream_stalling_before_the_first_token_times_out_from_stream(stub):
    events = sse(chunk({"role": "assistant", "content": ""}), chunk({"content": "Once"}), "[DONE]")
    stub.reply(Reply(events=events, pause=0.5))
    endpoint = ProviderEndpoint("slow", "openai", stub.base_url, "k", timeout=0.2)
    with pytest.raises(UpstreamTimeout):
        adapter_for(endpoint).stream(chat_request(stream=True), "gpt-4o")


def test_stream_stalling_after_it_started_is_interrupted(stub):
    role, first, *rest = sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Once"}),
        chunk({"content": " upon"}),
        chunk({}, "stop"),
        "[DONE]",
    )
    stub.reply(Reply(events=[role + first, *rest], pause=0.5))
    endpoint = ProviderEndpoint("slow", "openai", stub.base_url, "k", timeout=0.2)
    stream = adapter_for(endpoint).stream(chat_request(stream=True), "gpt-4o")
    received = []
    with pytest.raises(StreamInterrupted) as caught:
        for item in stream:
            received.append(item)
    assert received[-1]["choices"][0]["delta"]["content"] == "Once"
    assert "ReadTimeout" in caught.value.message


def test_non_json_error_pages_keep_their_text(stub, stub_adapter):
    stub.reply(Reply(status=502, body=b"<html><body>502 Bad Gateway</body></html>"))
    with pytest.raises(UpstreamServerError, match="502 Bad Gateway") as caught:
        stub_adapter("anthropic").chat(chat_request(), "claude")
    assert caught.value.status_code == 502
