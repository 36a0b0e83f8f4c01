import json

import pytest

from providers.adapters import (
    ContextTooLong,
    InvalidRequest,
    StreamInterrupted,
    UpstreamServerError,
)

from .payloads import SIM_MODELS, WEATHER_TOOL, chat_request, only_choice
from .recording_server import Reply, sse

MODEL = SIM_MODELS["anthropic"]
PNG = "data:image/png;base64,iVBORw0KGgo="

MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": MODEL,
    "content": [{"type": "text", "text": "Hello!"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 3},
}


def event(name, **payload):
    return sse({"type": name, **payload}, event=name)[0]


def message_start(input_tokens=10):
    return event(
        "message_start",
        message={
            **MESSAGE,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        },
    )


def test_request_translation(stub, stub_adapter):
    stub.reply(Reply(body=MESSAGE))
    adapter = stub_adapter("anthropic")
    request = chat_request(
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What's the weather in Oslo?"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "And this picture?"},
                    {"type": "image_url", "image_url": {"url": PNG}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "-3C, snow"},
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": "Thanks"},
        ],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        stop="END",
        temperature=1.7,
        top_p=0.9,
        user="user-7",
        seed=1,
        presence_penalty=0.5,
        metadata={"tenant": "acme"},
    )

    adapter.chat(request, MODEL)

    sent = stub.last
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-test-0123456789"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers
    assert sent.json == {
        "model": MODEL,
        "max_tokens": 4096,
        "system": "You are terse.\n\nAnswer in English.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What's the weather in Oslo?"},
                    {"type": "text", "text": "And this picture?"},
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/png",
                            "data": "iVBORw0KGgo=",
                        },
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/cat.jpg"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Oslo"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "-3C, snow"},
                    {"type": "text", "text": "Thanks"},
                ],
            },
        ],
        "temperature": 1.0,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "user-7"},
        "tools": [
            {
                "name": "get_weather",
                "description": "Current weather for a city",
                "input_schema": WEATHER_TOOL["function"]["parameters"],
            }
        ],
        "tool_choice": {"type": "any"},
    }


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ],
)
def test_tool_choice_mapping(stub, stub_adapter, tool_choice, parallel, expected):
    stub.reply(Reply(body=MESSAGE))
    request = chat_request(
        tools=[WEATHER_TOOL], tool_choice=tool_choice, parallel_tool_calls=parallel
    )
    stub_adapter("anthropic").chat(request, MODEL)
    assert stub.last.json["tool_choice"] == expected


def test_max_tokens_default_comes_from_options(stub, stub_adapter):
    stub.reply(Reply(body=MESSAGE), Reply(body=MESSAGE))
    stub_adapter("anthropic", options={"default_max_tokens": 1024}).chat(chat_request(), MODEL)
    assert stub.last.json["max_tokens"] == 1024
    stub_adapter("anthropic").chat(chat_request(max_tokens=77), MODEL)
    assert stub.last.json["max_tokens"] == 77


def test_final_assistant_prefill_loses_trailing_whitespace(stub, stub_adapter):
    stub.reply(Reply(body=MESSAGE))
    request = chat_request(
        messages=[
            {"role": "user", "content": "List three colours."},
            {"role": "assistant", "content": "1. "},
        ]
    )
    stub_adapter("anthropic").chat(request, MODEL)
    assert stub.last.json["messages"][-1] == {"role": "assistant", "content": "1."}


def test_invalid_tool_arguments_are_rejected_before_sending(stub, stub_adapter):
    request = chat_request(
        messages=[
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "t1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{oops"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "t1", "content": "x"},
        ]
    )
    with pytest.raises(InvalidRequest, match=r"messages\[1\]\.tool_calls\[0\]"):
        stub_adapter("anthropic").chat(request, MODEL)
    assert stub.requests == []


def test_n_above_one_is_an_invalid_request(stub_adapter):
    with pytest.raises(InvalidRequest) as caught:
        stub_adapter("anthropic").chat(chat_request(n=3), MODEL)
    assert not caught.value.retryable


def test_response_translation(stub, stub_adapter):
    stub.reply(
        Reply(
            body={
                **MESSAGE,
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "text", "text": "Let me check."},
                    {
                        "type": "tool_use",
                        "id": "toolu_9",
                        "name": "get_weather",
                        "input": {"city": "Oslo"},
                    },
                ],
                "stop_reason": "tool_use",
                "usage": {
                    "input_tokens": 20,
                    "cache_creation_input_tokens": 5,
                    "cache_read_input_tokens": 100,
                    "output_tokens": 30,
                },
            }
        )
    )

    result = stub_adapter("anthropic").chat(chat_request(tools=[WEATHER_TOOL]), MODEL)

    assert result.response["id"] == "msg_01"
    choice = only_choice(result.response)
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_9",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
        }
    ]
    # OpenAI's prompt_tokens include cached input
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (125, 30)
    assert result.response["usage"]["prompt_tokens_details"] == {"cached_tokens": 100}


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "length"),
    ],
)
def test_stop_reason_mapping(stub, stub_adapter, stop_reason, finish_reason):
    stub.reply(Reply(body={**MESSAGE, "stop_reason": stop_reason}))
    result = stub_adapter("anthropic").chat(chat_request(), MODEL)
    assert result.response["choices"][0]["finish_reason"] == finish_reason


def test_json_schema_response_format_uses_a_forced_tool(stub, stub_adapter):
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
    }
    stub.reply(
        Reply(
            body={
                **MESSAGE,
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "json_response",
                        "input": {"answer": "42"},
                    }
                ],
                "stop_reason": "tool_use",
            }
        )
    )
    request = chat_request(
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    )

    result = stub_adapter("anthropic").chat(request, MODEL)

    sent = stub.last.json
    assert sent["tools"][0]["name"] == "json_response"
    assert sent["tools"][0]["input_schema"] == schema
    assert sent["tool_choice"] == {"type": "tool", "name": "json_response"}
    choice = result.response["choices"][0]
    assert json.loads(choice["message"]["content"]) == {"answer": "42"}
    assert choice["finish_reason"] == "stop"
    assert "tool_calls" not in choice["message"]


def test_stream_round_trip(sim_adapter):
    adapter = sim_adapter("anthropic")

    with adapter.stream(chat_request(max_tokens=6, stream=True), MODEL) as stream:
        chunks = list(stream)

    *content, usage_chunk = chunks
    assert content[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len("".join(c["choices"][0]["delta"].get("content") or "" for c in content).split()) == 6
    assert content[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["model"] == "client-model" for c in chunks)
    assert usage_chunk["usage"] == {"prompt_tokens": 6, "completion_tokens": 6, "total_tokens": 12}


def test_streamed_tool_call(sim_adapter):
    adapter = sim_adapter("anthropic")
    request = chat_request(tools=[WEATHER_TOOL], tool_choice="required", stream=True)

    with adapter.stream(request, MODEL) as stream:
        chunks = list(stream)

    calls = [
        tc
        for c in chunks
        if c["choices"]
        for tc in c["choices"][0]["delta"].get("tool_calls") or ()
    ]
    assert calls[0]["id"].startswith("toolu_") and calls[0]["function"]["name"] == "get_weather"
    assert all(call["index"] == 0 for call in calls)
    arguments = "".join(call["function"]["arguments"] for call in calls)
    assert json.loads(arguments)["city"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_streamed_tool_without_arguments_gets_an_empty_object(stub, stub_adapter):
    stub.reply(
        Reply(
            events=[
                message_start(),
                event(
                    "content_block_start",
                    index=0,
                    content_block={"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}},
                ),
                event("content_block_stop", index=0),
                event(
                    "message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 4}
                ),
                event("message_stop"),
            ]
        )
    )
    tool = {"type": "function", "function": {"name": "now"}}
    with stub_adapter("anthropic").stream(chat_request(tools=[tool], stream=True), MODEL) as s:
        chunks = list(s)
    arguments = "".join(
        tc["function"]["arguments"]
        for c in chunks
        if c["choices"]
        for tc in c["choices"][0]["delta"].get("tool_calls") or ()
    )
    assert arguments == "{}"


def test_streamed_json_mode_answer_arrives_as_content(stub, stub_adapter):
    stub.reply(
        Reply(
            events=[
                message_start(),
                event(
                    "content_block_start",
                    index=0,
                    content_block={
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "json_response",
                        "input": {},
                    },
                ),
                event(
                    "content_block_delta",
                    index=0,
                    delta={"type": "input_json_delta", "partial_json": '{"a": '},
                ),
                event(
                    "content_block_delta",
                    index=0,
                    delta={"type": "input_json_delta", "partial_json": "1}"},
                ),
                event("content_block_stop", index=0),
                event(
                    "message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 7}
                ),
                event("message_stop"),
            ]
        )
    )
    request = chat_request(response_format={"type": "json_object"}, stream=True)
    with stub_adapter("anthropic").stream(request, MODEL) as stream:
        chunks = list(stream)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert json.loads(text) == {"a": 1}
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == 7


def test_overloaded_event_before_any_text_raises_from_stream(stub, stub_adapter):
    stub.reply(
        Reply(
            events=[
                message_start(),
                event("error", error={"type": "overloaded_error", "message": "Overloaded"}),
            ]
        )
    )
    with pytest.raises(UpstreamServerError) as caught:
        stub_adapter("anthropic").stream(chat_request(stream=True), MODEL)
    assert caught.value.upstream_code == "overloaded_error"
    assert caught.value.retryable


def test_error_event_after_text_interrupts_the_stream_with_usage(stub, stub_adapter):
    stub.reply(
        Reply(
            events=[
                message_start(input_tokens=50),
                event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
                event(
                    "content_block_delta", index=0, delta={"type": "text_delta", "text": "x" * 40}
                ),
                event("error", error={"type": "overloaded_error", "message": "Overloaded"}),
            ]
        )
    )
    stream = stub_adapter("anthropic").stream(chat_request(stream=True), MODEL)
    received = []
    with pytest.raises(StreamInterrupted) as caught:
        for chunk in stream:
            received.append(chunk)
    assert received[-1]["choices"][0]["delta"]["content"] == "x" * 40
    assert caught.value.upstream_code == "overloaded_error"
    # the provider said 50 prompt tokens; the 40 characters seen count ceil(40 / 4)
    assert (caught.value.usage.prompt_tokens, caught.value.usage.completion_tokens) == (50, 10)


@pytest.mark.parametrize(
    "message",
    [
        "prompt is too long: 208656 tokens > 200000 maximum",
        "input length and `max_tokens` exceed context limit: 198000 + 4096 > 200000, decrease "
        "input length or `max_tokens` and try again",
    ],
)
def test_context_too_long(stub, stub_adapter, message):
    stub.reply(
        Reply(
            status=400,
            body={"type": "error", "error": {"type": "invalid_request_error", "message": message}},
        )
    )
    with pytest.raises(ContextTooLong, match=r"too long|context limit"):
        stub_adapter("anthropic").chat(chat_request(), MODEL)


def test_other_invalid_requests_are_not_context_errors(stub, stub_adapter):
    stub.reply(
        Reply(
            status=400,
            body={
                "type": "error",
                "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
            },
        )
    )
    with pytest.raises(InvalidRequest) as caught:
        stub_adapter("anthropic").chat(chat_request(), MODEL)
    assert not isinstance(caught.value, ContextTooLong)


def test_prompt_caching_marks_are_kept(stub, stub_adapter):
    stub.reply(Reply(body=MESSAGE))
    cached = {"type": "ephemeral"}
    request = chat_request(
        messages=[
            {
                "role": "system",
                "content": [{"type": "text", "text": "Long manual...", "cache_control": cached}],
            },
            {"role": "user", "content": "Question"},
        ]
    )
    stub_adapter("anthropic").chat(request, MODEL)
    assert stub.last.json["system"] == [
        {"type": "text", "text": "Long manual...", "cache_control": cached}
    ]
