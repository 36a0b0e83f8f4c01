import pytest

from providers.adapters import (
    ChatRequest,
    ProviderEndpoint,
    RequestValidationError,
    Usage,
    adapter_for,
    estimate_input_tokens,
)

from .payloads import WEATHER_TOOL, chat_request

USER = {"role": "user", "content": "hi"}
IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}


def body(**fields):
    return {"model": "gpt-4o", "messages": [USER], **fields}


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ([], "body"),
        ({"messages": [USER]}, "model"),
        ({"model": "gpt-4o"}, "messages"),
        (body(messages=[]), "messages"),
        (body(messages="hi"), "messages"),
        (body(messages=[USER, "hi"]), "messages[1]"),
        (body(messages=[USER, USER, {"role": "robot", "content": "x"}]), "messages[2].role"),
        (body(messages=[{"content": "x"}]), "messages[0].role"),
        (body(messages=[{"role": "user"}]), "messages[0].content"),
        (body(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (body(messages=[{"role": "user", "content": []}]), "messages[0].content"),
        (
            body(messages=[{"role": "user", "content": [{"type": "audio"}]}]),
            "messages[0].content[0].type",
        ),
        (
            body(messages=[{"role": "system", "content": [IMAGE]}]),
            "messages[0].content[0].type",
        ),
        (
            body(messages=[{"role": "user", "content": [{"type": "text", "text": 1}]}]),
            "messages[0].content[0].text",
        ),
        (
            body(
                messages=[
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": 1}}]}
                ]
            ),
            "messages[0].content[0].image_url.url",
        ),
        (
            body(
                messages=[
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "file:///x"}}],
                    }
                ]
            ),
            "messages[0].content[0].image_url.url",
        ),
        (
            body(messages=[{"role": "assistant", "content": None, "tool_calls": []}]),
            "messages[0].tool_calls",
        ),
        (
            body(
                messages=[
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": {}}}],
                    }
                ]
            ),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            body(messages=[USER, {"role": "tool", "content": "42", "tool_call_id": "nope"}]),
            "messages[1].tool_call_id",
        ),
        (body(temperature=2.5), "temperature"),
        (body(temperature="hot"), "temperature"),
        (body(temperature=True), "temperature"),
        (body(top_p=1.5), "top_p"),
        (body(max_tokens=0), "max_tokens"),
        (body(max_tokens=1.5), "max_tokens"),
        (body(max_completion_tokens=-1), "max_completion_tokens"),
        (body(n=0), "n"),
        (body(presence_penalty=3), "presence_penalty"),
        (body(frequency_penalty=-3), "frequency_penalty"),
        (body(stop=["a", "b", "c", "d", "e"]), "stop"),
        (body(stop=[1]), "stop"),
        (body(stream="yes"), "stream"),
        (body(stream_options={"include_usage": "yes"}), "stream_options.include_usage"),
        (body(seed=1.5), "seed"),
        (body(user=7), "user"),
        (body(metadata=["x"]), "metadata"),
        (body(tools={"type": "function"}), "tools"),
        (
            body(tools=[{"type": "function", "function": {"name": "bad name"}}]),
            "tools[0].function.name",
        ),
        (body(tools=[{"type": "retrieval"}]), "tools[0].type"),
        (body(tool_choice="always", tools=[WEATHER_TOOL]), "tool_choice"),
        (body(tool_choice="required"), "tool_choice"),
        (
            body(tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "x"}}),
            "tool_choice.function.name",
        ),
        (body(response_format={"type": "xml"}), "response_format.type"),
        (body(response_format={"type": "json_schema"}), "response_format.json_schema"),
        (
            body(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
            "response_format.json_schema.name",
        ),
        (body(parallel_tool_calls="no"), "parallel_tool_calls"),
    ],
)
def test_from_openai_names_the_invalid_field(payload, param):
    with pytest.raises(RequestValidationError) as caught:
        ChatRequest.from_openai(payload)
    assert caught.value.param == param
    assert isinstance(caught.value, ValueError)


def test_from_openai_accepts_a_full_request():
    request = ChatRequest.from_openai(
        {
            "model": "gpt-4o",
            "messages": [
                {"role": "developer", "content": "Be terse."},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"}, IMAGE]},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "-3C"},
            ],
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0.2,
            "max_completion_tokens": 100,
            "stop": "END",
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "response_format": {"type": "json_object"},
            "seed": 7,
            "metadata": {"team": "search"},
            "logprobs": True,
        }
    )
    assert request.max_tokens == 100
    assert request.include_usage is True
    assert request.stop_sequences == ["END"]
    assert request.metadata == {"team": "search"}
    assert request.extra == {"logprobs": True}
    assert request.required_capabilities() == frozenset(
        {"tools", "vision", "json_mode", "streaming"}
    )


def test_native_api_may_leave_the_model_to_the_router():
    request = ChatRequest.from_openai({"messages": [USER]}, require_model=False)
    assert request.model == ""
    with pytest.raises(RequestValidationError):
        ChatRequest.from_openai({"messages": [USER]})


def test_required_capabilities_of_a_plain_request_are_empty():
    assert chat_request().required_capabilities() == frozenset()


def test_to_openai_body_drops_unset_and_auterity_only_fields():
    request = chat_request(temperature=0, metadata={"tenant": "a"}, logit_bias={"50256": -100})
    assert request.to_openai_body("gpt-4o") == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Say hello in five words."}],
        "temperature": 0,
        "logit_bias": {"50256": -100},
    }


def test_to_openai_body_sends_tool_settings_only_with_tools():
    without = chat_request(tool_choice="none", parallel_tool_calls=False)
    assert "tool_choice" not in without.to_openai_body("m")
    assert "parallel_tool_calls" not in without.to_openai_body("m")
    with_tools = chat_request(tools=[WEATHER_TOOL], tool_choice="auto", parallel_tool_calls=False)
    sent = with_tools.to_openai_body("m", max_tokens_field="max_completion_tokens")
    assert sent["tool_choice"] == "auto"
    assert sent["parallel_tool_calls"] is False


def test_to_openai_body_can_rewrite_developer_messages():
    request = chat_request(messages=[{"role": "developer", "content": "x"}, USER])
    assert request.to_openai_body("m", developer_role=False)["messages"][0]["role"] == "system"
    assert request.messages[0]["role"] == "developer"  # the request itself is untouched


def test_estimate_input_tokens_is_bpe_tokens_plus_framing():
    request = chat_request(
        model="gpt-4o",
        messages=[
            {"role": "system", "content": "Say hello to the gateway, please."},  # 8 tokens
            {"role": "user", "name": "ana", "content": [{"type": "text", "text": "Hi"}, IMAGE]},
        ],
    )
    # 8 + 1 ("Hi") text tokens, + 3 per message * 2, + 1 + 1 for the name "ana",
    # + 3 reply priming, + 85 per image
    assert estimate_input_tokens(request) == 8 + 1 + 6 + 2 + 3 + 85


def test_estimate_counts_tool_definitions():
    plain = chat_request()
    with_tools = chat_request(tools=[WEATHER_TOOL])
    assert estimate_input_tokens(with_tools) > estimate_input_tokens(plain)


def test_usage_total():
    usage = Usage(12, 30)
    assert usage.total_tokens == 42
    assert usage.to_dict() == {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}


def test_endpoint_repr_hides_the_api_key():
    endpoint = ProviderEndpoint("openai-main", "openai", "https://api.openai.com/", "sk-secret")
    assert "sk-secret" not in repr(endpoint)
    assert endpoint.base_url == "https://api.openai.com"


def test_no_adapter_for_an_unknown_type():
    with pytest.raises(ValueError, match="unknown provider type 'cohere'"):
        adapter_for(ProviderEndpoint("x", "cohere", "https://example.com"))


def test_endpoints_with_equal_values_share_one_adapter():
    first = ProviderEndpoint("az", "azure_openai", "https://x", "k", options={"deployments": {}})
    same = ProviderEndpoint("az", "azure_openai", "https://x", "k", options={"deployments": {}})
    rotated = ProviderEndpoint("az", "azure_openai", "https://x", "k2", options={"deployments": {}})
    assert adapter_for(first) is adapter_for(same)
    assert adapter_for(rotated) is not adapter_for(first)


def test_endpoint_options_are_frozen():
    options = {"deployments": {"gpt-4o": "prod-4o"}}
    endpoint = ProviderEndpoint("az", "azure_openai", "https://x", options=options)
    options["deployments"]["gpt-4o"] = "changed"
    assert endpoint.options["deployments"]["gpt-4o"] == "prod-4o"
    with pytest.raises(TypeError):
        endpoint.options["deployments"]["gpt-4o"] = "changed"


def test_endpoint_from_provider_config():
    endpoint = ProviderEndpoint.from_config(
        "az",
        "azure_openai",
        {"base_url": "https://r.openai.azure.com", "timeout": 30, "api_version": "2024-10-21"},
        api_key="k",
    )
    assert endpoint.timeout == 30.0
    assert endpoint.connect_timeout == 5.0
    assert dict(endpoint.options) == {"api_version": "2024-10-21"}
