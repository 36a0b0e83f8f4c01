"""A Claude-format request through every adapter, without the gateway: what each adapter puts
on the wire for it (tools, system prompt, stop sequences kept), and real HTTP to the provider
simulator translated back into an Anthropic Message and Anthropic stream events, checked with
the official SDK's types and stream accumulator."""

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message

from gateway.formats import anthropic as fmt
from providers.adapters import ProviderEndpoint, adapter_for, close_sessions
from providers.adapters.tests.payloads import ADAPTER_TYPES, SIM_MODELS
from simulator import SimulatorServer

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
CLAUDE_BODY = {
    "model": "client-model",
    "max_tokens": 12,
    "system": [{"type": "text", "text": "Answer briefly.", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "Weather in Oslo?"}],
    "tools": [WEATHER],
    "tool_choice": {"type": "any"},
    "stop_sequences": ["END"],
    "metadata": {"user_id": "u-1", "team": "search"},
}


@pytest.fixture(scope="module")
def simulator():
    server = SimulatorServer().start()
    yield server
    server.stop()


@pytest.fixture
def adapter(simulator, request):
    provider_type = request.param
    endpoint = ProviderEndpoint(
        f"claude-{provider_type}",
        provider_type,
        simulator.base_url(f"claude-{provider_type}"),
        api_key="sk-test",
        options={"api_version": "2024-10-21"} if provider_type == "azure_openai" else {},
    )
    yield adapter_for(endpoint)
    close_sessions()
    adapter_for.cache_clear()


def test_wire_keeps_tools_system_and_stop_sequences_on_every_format():
    request = fmt.messages_request(CLAUDE_BODY)
    for provider_type in ADAPTER_TYPES:
        endpoint = ProviderEndpoint("w", provider_type, "http://127.0.0.1:9", api_key="k")
        wire = adapter_for(endpoint).build_body(request, "m", stream=False)
        if provider_type == "anthropic":
            assert wire["system"] == [
                {"type": "text", "text": "Answer briefly.", "cache_control": {"type": "ephemeral"}}
            ]
            assert wire["tools"][0]["name"] == "get_weather"
            assert wire["tools"][0]["input_schema"] == WEATHER["input_schema"]
            assert wire["tool_choice"] == {"type": "any"}
            assert wire["stop_sequences"] == ["END"]
            assert wire["metadata"] == {"user_id": "u-1"}
            assert wire["max_tokens"] == 12
        elif provider_type == "gemini":
            assert wire["systemInstruction"] == {"parts": [{"text": "Answer briefly."}]}
            declaration = wire["tools"][0]["functionDeclarations"][0]
            assert declaration["name"] == "get_weather"
            assert declaration["parameters"]["properties"] == {"city": {"type": "string"}}
            assert wire["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
            assert wire["generationConfig"]["stopSequences"] == ["END"]
            assert wire["generationConfig"]["maxOutputTokens"] == 12
        else:
            # OpenAI formats: the system prompt without Anthropic's cache marker (OpenAI and
            # Azure refuse unknown fields), tools as functions, stop, user.
            assert wire["messages"][0] == {
                "role": "system",
                "content": [{"type": "text", "text": "Answer briefly."}],
            }
            assert wire["tools"][0]["function"]["name"] == "get_weather"
            assert wire["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
            assert wire["tool_choice"] == "required"
            assert wire["stop"] == ["END"]
            assert wire["user"] == "u-1"
            assert "metadata" not in wire  # the routing metadata stays in the gateway
        # the request itself still carries the marker, for a fallback to Anthropic
        assert request.messages[0]["content"][0]["cache_control"] == {"type": "ephemeral"}


@pytest.mark.parametrize("adapter", ADAPTER_TYPES, indirect=True)
def test_claude_request_served_by_every_adapter(adapter):
    request = fmt.messages_request({**CLAUDE_BODY, "tool_choice": {"type": "auto"}})
    result = adapter.chat(request, SIM_MODELS[adapter.provider_type])
    message = Message.model_validate(
        fmt.message_response(result.response, request, request_id="rid", cost=0.5)
    )
    assert message.model == "client-model"
    assert message.content[0].type == "text"
    assert len(message.content[0].text.split()) == 12  # the simulator's max_tokens words
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 12
    assert message.usage.input_tokens == result.usage.prompt_tokens > 0
    assert message.usage.model_extra["cost"] == 0.5


@pytest.mark.parametrize("adapter", ADAPTER_TYPES, indirect=True)
def test_forced_tool_comes_back_as_tool_use_from_every_adapter(adapter):
    request = fmt.messages_request(CLAUDE_BODY)
    result = adapter.chat(request, SIM_MODELS[adapter.provider_type])
    message = Message.model_validate(fmt.message_response(result.response, request, request_id="r"))
    assert message.stop_reason == "tool_use"
    (tool_use,) = [block for block in message.content if block.type == "tool_use"]
    assert tool_use.name == "get_weather"
    assert isinstance(tool_use.input["city"], str)
    assert tool_use.id


@pytest.mark.parametrize("adapter", ADAPTER_TYPES, indirect=True)
@pytest.mark.parametrize("forced_tool", [False, True])
def test_stream_from_every_adapter_accumulates_in_the_sdk(adapter, forced_tool):
    body = {**CLAUDE_BODY, "stream": True}
    if not forced_tool:
        body["tool_choice"] = {"type": "auto"}
    request = fmt.messages_request(body)
    translator = fmt.MessageStream(request, request_id="rid")
    with adapter.stream(request, SIM_MODELS[adapter.provider_type]) as upstream:
        events = translator.start(upstream.id, upstream.usage.to_dict())
        for chunk in upstream:
            events += translator.feed(chunk)
        events += translator.finish(cost=0.25)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-2:] == ["message_delta", "message_stop"]
    snapshot, buffers = None, {}
    for name, data in events:
        if name != "ping":
            snapshot = accumulate_event(event=data, current_snapshot=snapshot, json_bufs=buffers)
    assert snapshot.usage.output_tokens == upstream.usage.completion_tokens > 0
    assert snapshot.usage.input_tokens == upstream.usage.prompt_tokens
    if forced_tool:
        assert snapshot.stop_reason == "tool_use"
        assert [b.type for b in snapshot.content] == ["tool_use"]
        assert snapshot.content[0].name == "get_weather"
        assert isinstance(snapshot.content[0].input["city"], str)
    else:
        assert snapshot.stop_reason == "end_turn"
        assert len(snapshot.content[0].text.split()) == 12
