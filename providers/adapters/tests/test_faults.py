"""Every adapter against the provider simulator's injected faults: each upstream failure must
come out as the right taxonomy class, before the stream when it can and as
StreamInterrupted after it started."""

import socket

import pytest

from providers.adapters import (
    AuthenticationFailed,
    MalformedResponse,
    ProviderEndpoint,
    RateLimited,
    StreamInterrupted,
    UpstreamConnectionError,
    UpstreamServerError,
    UpstreamTimeout,
    adapter_for,
)

from .payloads import ADAPTER_TYPES, SIM_MODELS, chat_request

pytestmark = pytest.mark.parametrize("provider_type", ADAPTER_TYPES)


def fail_with(sim, adapter, **faults):
    sim.set_fault(adapter.provider_id, **faults)


def call(adapter, provider_type, *, stream=False, **body):
    """One chat call (or a fully consumed stream) with the simulator's model for the type."""
    request = chat_request(stream=stream, **body)
    model = SIM_MODELS[provider_type]
    if not stream:
        return adapter.chat(request, model)
    with adapter.stream(request, model) as result:
        return list(result)


@pytest.mark.parametrize("stream", [False, True])
def test_rate_limit_carries_retry_after(sim, sim_adapter, provider_type, stream):
    adapter = sim_adapter(provider_type)
    fail_with(sim, adapter, error_rate=1.0, error_status=429, retry_after=2)

    with pytest.raises(RateLimited) as caught:
        call(adapter, provider_type, stream=stream)

    assert caught.value.retry_after == 2.0
    assert caught.value.status_code == 429
    assert caught.value.retryable
    assert caught.value.provider_id == adapter.provider_id


@pytest.mark.parametrize("status", [500, 502, 503, 529])
def test_server_errors_are_retryable_upstream_errors(sim, sim_adapter, provider_type, status):
    adapter = sim_adapter(provider_type)
    fail_with(sim, adapter, error_rate=1.0, error_status=status)

    with pytest.raises(UpstreamServerError) as caught:
        call(adapter, provider_type)

    assert caught.value.status_code == status
    assert caught.value.retryable


def test_gateway_timeout_status_is_a_timeout(sim, sim_adapter, provider_type):
    adapter = sim_adapter(provider_type)
    fail_with(sim, adapter, error_rate=1.0, error_status=504)
    with pytest.raises(UpstreamTimeout) as caught:
        call(adapter, provider_type, stream=True)
    assert caught.value.status_code == 504


def test_provider_down(sim, sim_adapter, provider_type):
    adapter = sim_adapter(provider_type)
    fail_with(sim, adapter, down=True)
    with pytest.raises(UpstreamServerError):
        call(adapter, provider_type)
    with pytest.raises(UpstreamServerError):
        adapter.list_models()


@pytest.mark.parametrize("stream", [False, True])
def test_hung_upstream_times_out(sim, sim_adapter, provider_type, stream):
    adapter = sim_adapter(provider_type, timeout=0.2)
    fail_with(sim, adapter, timeout_rate=1.0, hang_seconds=5)

    with pytest.raises(UpstreamTimeout) as caught:
        call(adapter, provider_type, stream=stream)

    assert caught.value.retryable
    assert caught.value.status_code is None


@pytest.mark.parametrize("stream", [False, True])
def test_connection_reset(sim, sim_adapter, provider_type, stream):
    adapter = sim_adapter(provider_type)
    fail_with(sim, adapter, reset_rate=1.0)

    with pytest.raises(UpstreamConnectionError) as caught:
        call(adapter, provider_type, stream=stream)

    assert caught.value.retryable


def test_connection_refused(provider_type):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the call: nobody listens
    endpoint = ProviderEndpoint("gone", provider_type, f"http://127.0.0.1:{port}", "sk-x")
    with pytest.raises(UpstreamConnectionError):
        call(adapter_for(endpoint), provider_type)


def test_malformed_body(sim, sim_adapter, provider_type):
    adapter = sim_adapter(provider_type)
    fail_with(sim, adapter, malformed_rate=1.0)

    with pytest.raises(MalformedResponse) as caught:
        call(adapter, provider_type)

    assert caught.value.retryable


def test_malformed_stream_event(sim, sim_adapter, provider_type):
    # The simulator corrupts the second event. For OpenAI and Anthropic streams that event
    # comes before any text, so stream() itself fails and the caller can fall back; Gemini's
    # first event already carries text, so the break surfaces during iteration.
    adapter = sim_adapter(provider_type)
    fail_with(sim, adapter, malformed_rate=1.0)
    request = chat_request(stream=True, max_tokens=20)

    if provider_type == "gemini":
        stream = adapter.stream(request, SIM_MODELS[provider_type])
        with pytest.raises(StreamInterrupted):
            list(stream)
    else:
        with pytest.raises(MalformedResponse):
            adapter.stream(request, SIM_MODELS[provider_type])


def test_stream_cut_midway_reports_partial_usage(sim, sim_adapter, provider_type):
    adapter = sim_adapter(provider_type)
    fail_with(sim, adapter, cut_stream_rate=1.0)
    request = chat_request(stream=True, max_tokens=40)

    stream = adapter.stream(request, SIM_MODELS[provider_type])
    received = []
    with pytest.raises(StreamInterrupted) as caught:
        for chunk in stream:
            received.append(chunk)

    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in received)
    assert 0 < len(text.split()) < 40
    assert all(c["choices"] for c in received)  # no usage chunk for a broken stream
    usage = caught.value.usage
    assert usage.prompt_tokens > 0
    assert 0 < usage.completion_tokens < 40
    assert stream.usage == usage
    assert not caught.value.retryable


@pytest.mark.parametrize("stream", [False, True])
def test_invalid_key_is_an_authentication_failure(sim_adapter, provider_type, stream):
    adapter = sim_adapter(provider_type, api_key="invalid")

    with pytest.raises(AuthenticationFailed) as caught:
        call(adapter, provider_type, stream=stream)

    assert not caught.value.retryable
    # Gemini answers a bad key with 400 API_KEY_INVALID, the others with 401
    assert caught.value.status_code == (400 if provider_type == "gemini" else 401)


def test_list_models(sim_adapter, provider_type):
    models = sim_adapter(provider_type).list_models()
    assert SIM_MODELS[provider_type] in models
