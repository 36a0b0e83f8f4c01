"""The adapters on an event loop (achat, astream, aembed, acount_tokens): the same answers and
the same error taxonomy as the synchronous calls, over pooled aiohttp sessions."""

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from providers.adapters import (
    AuthenticationFailed,
    EmbeddingsRequest,
    MalformedResponse,
    ProviderEndpoint,
    RateLimited,
    StreamInterrupted,
    UpstreamConnectionError,
    UpstreamServerError,
    UpstreamTimeout,
    aclose_sessions,
    adapter_for,
    async_session_for,
)

from .payloads import ADAPTER_TYPES, SIM_MODELS, chat_request

by_type = pytest.mark.parametrize("provider_type", ADAPTER_TYPES)


def fresh_loop(coroutine):
    """`asyncio.run(coroutine)` on a thread of its own: this thread may have a loop running
    (some libraries leave one set)."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def run(coroutine):
    """Run `coroutine` on a fresh loop, closing that loop's sessions afterwards."""

    async def main():
        try:
            return await coroutine
        finally:
            await aclose_sessions()

    return fresh_loop(main())


async def acall(adapter, provider_type, *, stream=False, **body):
    request = chat_request(stream=stream, **body)
    model = SIM_MODELS[provider_type]
    if not stream:
        return await adapter.achat(request, model)
    async with await adapter.astream(request, model) as result:
        return [chunk async for chunk in result]


@by_type
def test_a_completion_and_a_stream_answer_as_the_sync_calls_do(sim_adapter, provider_type):
    adapter = sim_adapter(provider_type)

    result = run(acall(adapter, provider_type, max_tokens=12))
    chunks = run(acall(adapter, provider_type, stream=True, max_tokens=12))

    assert result.response["choices"][0]["message"]["content"]
    assert result.usage.prompt_tokens > 0
    assert result.usage.completion_tokens > 0
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text
    assert chunks[-1]["choices"] == []  # the usage chunk closes the stream
    assert chunks[-1]["usage"]["completion_tokens"] > 0


@by_type
@pytest.mark.parametrize("stream", [False, True])
def test_rate_limit_carries_retry_after(sim, sim_adapter, provider_type, stream):
    adapter = sim_adapter(provider_type)
    sim.set_fault(adapter.provider_id, error_rate=1.0, error_status=429, retry_after=2)

    with pytest.raises(RateLimited) as caught:
        run(acall(adapter, provider_type, stream=stream))

    assert caught.value.retry_after == 2.0
    assert caught.value.status_code == 429
    assert caught.value.retryable


@by_type
def test_server_errors_are_retryable(sim, sim_adapter, provider_type):
    adapter = sim_adapter(provider_type)
    sim.set_fault(adapter.provider_id, error_rate=1.0, error_status=503)
    with pytest.raises(UpstreamServerError) as caught:
        run(acall(adapter, provider_type))
    assert caught.value.status_code == 503


@by_type
@pytest.mark.parametrize("stream", [False, True])
def test_hung_upstream_times_out(sim, sim_adapter, provider_type, stream):
    adapter = sim_adapter(provider_type, timeout=0.2)
    sim.set_fault(adapter.provider_id, timeout_rate=1.0, hang_seconds=5)

    with pytest.raises(UpstreamTimeout) as caught:
        run(acall(adapter, provider_type, stream=stream))

    assert caught.value.retryable
    assert caught.value.status_code is None


@by_type
@pytest.mark.parametrize("stream", [False, True])
def test_connection_reset(sim, sim_adapter, provider_type, stream):
    adapter = sim_adapter(provider_type)
    sim.set_fault(adapter.provider_id, reset_rate=1.0)
    with pytest.raises(UpstreamConnectionError):
        run(acall(adapter, provider_type, stream=stream))


@by_type
def test_connection_refused(provider_type):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the call: nobody listens
    endpoint = ProviderEndpoint("gone", provider_type, f"http://127.0.0.1:{port}", "sk-x")
    with pytest.raises(UpstreamConnectionError):
        run(acall(adapter_for(endpoint), provider_type))


@by_type
def test_malformed_body(sim, sim_adapter, provider_type):
    adapter = sim_adapter(provider_type)
    sim.set_fault(adapter.provider_id, malformed_rate=1.0)
    with pytest.raises(MalformedResponse):
        run(acall(adapter, provider_type))


@by_type
def test_stream_cut_midway_reports_partial_usage(sim, sim_adapter, provider_type):
    adapter = sim_adapter(provider_type)
    sim.set_fault(adapter.provider_id, cut_stream_rate=1.0)
    received = []

    async def consume():
        stream = await adapter.astream(chat_request(stream=True, max_tokens=40), "x")
        try:
            async for chunk in stream:
                received.append(chunk)
        finally:
            stream.close()
        return stream

    with pytest.raises(StreamInterrupted) as caught:
        run(consume())

    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in received)
    assert 0 < len(text.split()) < 40
    assert all(c["choices"] for c in received)  # no usage chunk for a broken stream
    assert 0 < caught.value.usage.completion_tokens < 40
    assert not caught.value.retryable


@by_type
@pytest.mark.parametrize("stream", [False, True])
def test_invalid_key_is_an_authentication_failure(sim_adapter, provider_type, stream):
    adapter = sim_adapter(provider_type, api_key="invalid")
    with pytest.raises(AuthenticationFailed):
        run(acall(adapter, provider_type, stream=stream))


def test_a_client_leaving_a_stream_drops_the_upstream_connection(sim, sim_adapter):
    # given a long stream
    adapter = sim_adapter("openai")
    sim.set_fault(adapter.provider_id, latency_ms=0)

    async def leave_early():
        stream = await adapter.astream(chat_request(stream=True, max_tokens=400), "gpt-4o")
        first = await stream.__anext__()
        already_read = len(stream._pending)
        # when the client goes away after the first chunk
        stream.close()
        rest = [chunk async for chunk in stream]
        return first, already_read, rest, stream._response.raw.closed

    first, already_read, rest, closed = run(leave_early())

    # then nothing more is read (the chunks already parsed at most), no usage chunk is made
    # up, and the connection is not handed to the next call
    assert first["choices"]
    assert len(rest) <= already_read
    assert all(chunk["choices"] for chunk in rest)
    assert closed


def test_calls_reuse_a_connection_and_each_loop_has_its_own_sessions(sim_adapter):
    adapter = sim_adapter("openai")

    async def two_calls():
        await acall(adapter, "openai")
        session = async_session_for(adapter.endpoint)
        await acall(adapter, "openai")
        return session, session.connector

    first_session, connector = fresh_loop(two_calls())
    second_session, _ = run(two_calls())

    # one pooled connection served both calls of a loop (keep-alive)...
    assert len(connector._conns) == 1
    # ...and a new loop never reuses a session of a closed one
    assert second_session is not first_session


@pytest.mark.parametrize("provider_type", ["openai", "gemini"])
def test_embeddings(sim_adapter, provider_type):
    adapter = sim_adapter(provider_type)
    model = "gemini-embedding-001" if provider_type == "gemini" else "text-embedding-3-small"
    request = EmbeddingsRequest.from_openai(
        {"model": "client-embedder", "input": ["one", "two"], "dimensions": 8}
    )
    result = run(adapter.aembed(request, model))
    assert [len(item["embedding"]) for item in result.response["data"]] == [8, 8]
    assert result.usage.prompt_tokens > 0


@pytest.mark.parametrize("provider_type", ["anthropic", "gemini"])
def test_count_tokens_matches_the_answers_usage(sim_adapter, provider_type):
    adapter = sim_adapter(provider_type)
    request = chat_request(max_tokens=5)
    counted = run(adapter.acount_tokens(request, SIM_MODELS[provider_type]))
    answered = run(adapter.achat(request, SIM_MODELS[provider_type]))
    assert counted == answered.usage.prompt_tokens
