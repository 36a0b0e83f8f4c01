"""The Anthropic Messages face's translation (gateway/formats/anthropic.py), without a server:
request bodies to ChatRequest, chat.completion to Message, chunks to stream events (checked
with the official SDK's own accumulator), and errors."""

import json

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message

from gateway.formats import anthropic as fmt
from providers.adapters.types import RequestValidationError, Usage

PNG_B64 = "iVBORw0KGgo="
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def body(**fields):
    fields.setdefault("model", "claude-haiku-4-5")
    fields.setdefault("max_tokens", 64)
    fields.setdefault("messages", [{"role": "user", "content": "Hello"}])
    return fields


def refused(raw, param, fragment=""):
    with pytest.raises(RequestValidationError) as info:
        fmt.messages_request(raw)
    assert info.value.param == param
    assert info.value.message.startswith(f"{param}: ")
    assert fragment in info.value.message
    return info.value


# --- request ----------------------------------------------------------------------------------


def test_minimal_request():
    request = fmt.messages_request(body())
    assert request.model == "claude-haiku-4-5"
    assert request.max_tokens == 64
    assert request.messages == [{"role": "user", "content": "Hello"}]
    assert (request.stream, request.tools, request.stop, request.user) == (False, None, None, None)


def test_system_string_and_blocks_become_system_messages():
    request = fmt.messages_request(body(system="Be terse."))
    assert request.messages[0] == {"role": "system", "content": "Be terse."}
    blocks = [
        {"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "More rules."},
    ]
    request = fmt.messages_request(body(system=blocks))
    assert request.messages[0] == {
        "role": "system",
        "content": [
            {"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "More rules."},
        ],
    }


def test_sampling_stop_sequences_and_metadata():
    request = fmt.messages_request(
        body(
            temperature=0.3,
            top_p=0.9,
            top_k=5,
            stop_sequences=["END", "###"],
            metadata={"user_id": "u-42", "team": "search"},
            stream=True,
        )
    )
    assert (request.temperature, request.top_p) == (0.3, 0.9)
    assert request.stop_sequences == ["END", "###"]
    assert request.user == "u-42"
    assert request.metadata == {"team": "search"}  # routing input, never sent upstream
    assert request.stream is True


def test_images_base64_and_url():
    request = fmt.messages_request(
        body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in these?"},
                        {
                            "type": "image",
                            "source": {
                                "type": "base64",
                                "media_type": "image/png",
                                "data": PNG_B64,
                            },
                        },
                        {
                            "type": "image",
                            "source": {"type": "url", "url": "https://example.com/cat.jpg"},
                        },
                    ],
                }
            ]
        )
    )
    (message,) = request.messages
    assert message["content"] == [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    assert "vision" in request.required_capabilities()


def test_tool_conversation_round_trip():
    request = fmt.messages_request(
        body(
            tools=[WEATHER],
            tool_choice={"type": "auto", "disable_parallel_tool_use": True},
            messages=[
                {"role": "user", "content": "Weather in Oslo and Rome?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                        {"type": "text", "text": "Checking."},
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "get_weather",
                            "input": {"city": "Oslo"},
                        },
                        {
                            "type": "tool_use",
                            "id": "toolu_2",
                            "name": "get_weather",
                            "input": {"city": "Rome"},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "4 C"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_2",
                            "content": [{"type": "text", "text": "no data"}],
                            "is_error": True,
                        },
                        {"type": "text", "text": "And tomorrow?"},
                    ],
                },
            ],
        )
    )
    assert request.tools == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER["input_schema"],
                "description": "Current weather for a city",
            },
        }
    ]
    assert (request.tool_choice, request.parallel_tool_calls) == ("auto", False)
    _, assistant, result_1, result_2, follow_up = request.messages
    assert assistant == {
        "role": "assistant",
        "content": "Checking.",  # the thinking block is dropped
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            },
            {
                "id": "toolu_2",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
            },
        ],
    }
    assert result_1 == {"role": "tool", "tool_call_id": "toolu_1", "content": "4 C"}
    assert result_2 == {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: no data"}
    assert follow_up == {"role": "user", "content": "And tomorrow?"}


def test_tool_result_images_move_into_the_user_turn():
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/jpeg", "data": "abc="},
    }
    request = fmt.messages_request(
        body(
            tools=[WEATHER],
            messages=[
                {"role": "user", "content": "Map?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": [{"type": "text", "text": "radar"}, image],
                        }
                    ],
                },
            ],
        )
    )
    tool, user = request.messages[2:]
    assert tool == {"role": "tool", "tool_call_id": "t1", "content": "radar"}
    assert user["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,abc="}}
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        (
            {"type": "tool", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choice(choice, expected):
    request = fmt.messages_request(body(tools=[WEATHER], tool_choice=choice))
    assert request.tool_choice == expected
    assert request.parallel_tool_calls is None


def test_output_config_json_schema_becomes_response_format():
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    request = fmt.messages_request(
        body(output_config={"format": {"type": "json_schema", "schema": schema}, "effort": "low"})
    )
    assert request.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }
    assert "json_mode" in request.required_capabilities()
    older = fmt.messages_request(body(output_format={"type": "json_schema", "schema": schema}))
    assert older.response_format == request.response_format


def test_top_level_cache_control_marks_the_last_text_block():
    request = fmt.messages_request(body(cache_control={"type": "ephemeral"}))
    assert request.messages == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Hello", "cache_control": {"type": "ephemeral"}}],
        }
    ]


def test_role_system_messages_and_ignored_fields():
    request = fmt.messages_request(
        body(
            messages=[
                {"role": "system", "content": "Speak French."},
                {"role": "user", "content": "Hello"},
            ],
            thinking={"type": "enabled", "budget_tokens": 2048},
            service_tier="auto",
        )
    )
    assert request.messages[0] == {"role": "system", "content": "Speak French."}


@pytest.mark.parametrize(
    ("changes", "param", "fragment"),
    [
        ({"model": ""}, "model", "non-empty string"),
        ({"max_tokens": None}, "max_tokens", "is required"),
        ({"max_tokens": 0}, "max_tokens", ">= 1"),
        ({"max_tokens": "10"}, "max_tokens", ">= 1"),
        ({"messages": []}, "messages", "at least one"),
        ({"messages": "hi"}, "messages", "array"),
        (
            {"messages": [{"role": "robot", "content": "x"}]},
            "messages.0.role",
            "'user' or 'assistant'",
        ),
        ({"messages": [{"role": "user"}]}, "messages.0.content", "is required"),
        (
            {"messages": [{"role": "user", "content": 5}]},
            "messages.0.content",
            "string or an array",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]},
            "messages.0.content.0.text",
            "string",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
            "messages.0.content.0.type",
            "'document' blocks are not supported",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/bmp",
                                    "data": "x",
                                },
                            }
                        ],
                    }
                ]
            },
            "messages.0.content.0.source.media_type",
            "image/png",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "nope"}]}
                ]
            },
            "messages.0.content.0.tool_use_id",
            "does not answer",
        ),
        ({"temperature": 1.5}, "temperature", "between 0 and 1"),
        ({"stop_sequences": "END"}, "stop_sequences", "array of non-empty strings"),
        ({"stream": "yes"}, "stream", "boolean"),
        ({"tools": [{"name": "bad name!", "input_schema": {}}]}, "tools.0.name", "1-64"),
        ({"tools": [{"name": "f"}]}, "tools.0.input_schema", "object"),
        (
            {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
            "tools.0.type",
            "server tools",
        ),
        ({"tool_choice": {"type": "any"}}, "tool_choice", "needs tools"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "tool", "name": "other"}},
            "tool_choice.name",
            "no tool",
        ),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "sometimes"}},
            "tool_choice.type",
            "auto, any",
        ),
        ({"metadata": {"user_id": 7}}, "metadata.user_id", "string"),
        (
            {"output_config": {"format": {"type": "json_object"}}},
            "output_config.format.type",
            "json_schema",
        ),
        ({"mcp_servers": []}, "mcp_servers", "not supported"),
        ({"frobnicate": 1}, "frobnicate", "Extra inputs are not permitted"),
    ],
)
def test_invalid_requests_name_the_field(changes, param, fragment):
    raw = body()
    for key, value in changes.items():
        if value is None:
            raw.pop(key)
        else:
            raw[key] = value
    refused(raw, param, fragment)


def test_not_an_object():
    with pytest.raises(RequestValidationError) as info:
        fmt.messages_request([1, 2])
    assert info.value.param == "body"


def test_count_tokens_request_needs_no_max_tokens_and_refuses_sampling():
    request = fmt.count_tokens_request(
        {
            "model": "claude-haiku-4-5",
            "system": "S",
            "messages": [{"role": "user", "content": "Hi"}],
        }
    )
    assert [m["role"] for m in request.messages] == ["system", "user"]
    with pytest.raises(RequestValidationError) as info:
        fmt.count_tokens_request({**body(), "temperature": 0.5})
    assert info.value.param == "max_tokens"  # the first field count_tokens does not take


# --- response ---------------------------------------------------------------------------------


def completion(message, finish="stop", usage=None, **choice):
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "claude-haiku-4-5",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, **choice}],
        "usage": usage or {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
    }


def test_text_response_validates_as_an_sdk_message():
    request = fmt.messages_request(body())
    answer = fmt.message_response(
        completion({"role": "assistant", "content": "Hi there"}),
        request,
        request_id="abc123",
        cost=0.0001,
    )
    message = Message.model_validate(answer)
    assert message.id == "msg_abc123"
    assert message.content[0].text == "Hi there"
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (20, 5)
    assert answer["usage"]["cost"] == 0.0001


def test_tool_calls_response_and_anthropic_id_kept():
    request = fmt.messages_request(body(tools=[WEATHER]))
    answer = fmt.message_response(
        {
            **completion(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_9",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                        },
                        {
                            "id": "call_10",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": "{not json"},
                        },
                    ],
                },
                "tool_calls",
            ),
            "id": "msg_01XYZ",
        },
        request,
        request_id="r",
    )
    assert answer["id"] == "msg_01XYZ"
    assert answer["stop_reason"] == "tool_use"
    assert answer["content"] == [
        {"type": "tool_use", "id": "call_9", "name": "get_weather", "input": {"city": "Oslo"}},
        {
            "type": "tool_use",
            "id": "call_10",
            "name": "get_weather",
            "input": {"_raw_arguments": "{not json"},
        },
    ]
    Message.model_validate(answer)


@pytest.mark.parametrize(
    ("finish", "choice", "expected"),
    [
        ("length", {}, ("max_tokens", None)),
        ("content_filter", {}, ("refusal", None)),
        ("stop", {"stop_reason": "END"}, ("stop_sequence", "END")),
        ("stop", {"stop_reason": "not asked for"}, ("end_turn", None)),
        ("stop", {}, ("end_turn", None)),
    ],
)
def test_stop_reasons(finish, choice, expected):
    request = fmt.messages_request(body(stop_sequences=["END"]))
    answer = fmt.message_response(
        completion({"role": "assistant", "content": "x"}, finish, **choice), request, request_id="r"
    )
    assert (answer["stop_reason"], answer["stop_sequence"]) == expected


def test_cache_writes_and_reads_are_reported_apart_as_anthropic_does():
    usage = Usage(1000, 10, cached_tokens=600, cache_write_tokens=300).to_dict()
    assert fmt.usage(usage) == {
        "input_tokens": 100,
        "output_tokens": 10,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 600,
    }


def test_cached_prompt_tokens_are_reported_apart():
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 800},
    }
    assert fmt.usage(usage) == {
        "input_tokens": 200,
        "output_tokens": 10,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 800,
    }


# --- streams ----------------------------------------------------------------------------------


def chunk(delta=None, finish=None, **choice):
    choices = (
        [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish, **choice}]
    )
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": choices}


def run_stream(request, chunks, final_usage, cost=None):
    stream = fmt.MessageStream(request, request_id="req1")
    events = stream.start("chatcmpl-1", {"prompt_tokens": 12, "completion_tokens": 0})
    for c in chunks:
        events += stream.feed(c)
    events += stream.feed({"choices": [], "usage": final_usage})
    events += stream.finish(cost=cost)
    return events


def sdk_message(events):
    """What the official SDK's stream accumulator builds from the events (it raises on events
    out of order)."""
    snapshot, buffers = None, {}
    for name, data in events:
        assert data["type"] == name
        if name == "ping":
            continue
        snapshot = accumulate_event(event=data, current_snapshot=snapshot, json_bufs=buffers)
    return snapshot


def test_text_stream_events_in_anthropics_order():
    request = fmt.messages_request(body(stream=True))
    events = run_stream(
        request,
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hello"}),
            chunk({"content": " world"}),
            chunk({}, "stop"),
        ],
        {"prompt_tokens": 12, "completion_tokens": 2},
        cost=0.002,
    )
    assert [name for name, _ in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert (start["id"], start["content"], start["stop_reason"]) == ("msg_req1", [], None)
    assert start["usage"]["input_tokens"] == 12
    assert events[2][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert events[3][1]["delta"] == {"type": "text_delta", "text": "Hello"}
    assert events[6][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[6][1]["usage"]["output_tokens"] == 2
    assert events[6][1]["usage"]["cost"] == 0.002
    message = sdk_message(events)
    assert message.content[0].text == "Hello world"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 2)


def test_text_then_streamed_tool_calls():
    request = fmt.messages_request(body(tools=[WEATHER], stream=True))
    call = {"index": 0, "id": "call_a", "type": "function"}
    events = run_stream(
        request,
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Let me check."}),
            chunk({"tool_calls": [{**call, "function": {"name": "get_weather", "arguments": ""}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}),
            # a whole call in one delta, as the Gemini adapter streams them
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                        }
                    ]
                }
            ),
            chunk({}, "tool_calls"),
        ],
        {"prompt_tokens": 30, "completion_tokens": 9},
    )
    names = [name for name, _ in events]
    assert names[2:] == [
        "content_block_start",  # 0 text
        "content_block_delta",
        "content_block_stop",
        "content_block_start",  # 1 tool_use call_a
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",  # 2 tool_use call_b
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[5][1]["content_block"] == {
        "type": "tool_use",
        "id": "call_a",
        "name": "get_weather",
        "input": {},
    }
    assert events[6][1]["delta"] == {"type": "input_json_delta", "partial_json": '{"city":'}
    message = sdk_message(events)
    assert [b.type for b in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[1].input == {"city": "Oslo"}
    assert message.content[2].input == {"city": "Rome"}
    assert message.stop_reason == "tool_use"


def test_stream_stop_sequence_and_empty_answer():
    request = fmt.messages_request(body(stream=True, stop_sequences=["##"]))
    events = run_stream(
        request,
        [chunk({"role": "assistant", "content": ""}), chunk({}, "stop", stop_reason="##")],
        {"prompt_tokens": 5, "completion_tokens": 0},
    )
    assert [n for n, _ in events] == ["message_start", "ping", "message_delta", "message_stop"]
    assert events[2][1]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "##"}


def test_error_event_and_body():
    stream = fmt.MessageStream(fmt.messages_request(body()), request_id="r9")
    ((name, data),) = stream.error(502, "The upstream stream broke")
    assert name == "error"
    assert data == {
        "type": "error",
        "error": {"type": "api_error", "message": "The upstream stream broke"},
    }
    assert fmt.sse(name, data).startswith(b"event: error\ndata: {")
    assert fmt.error_body(404, "no such model", "r1") == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "no such model"},
        "request_id": "r1",
    }


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (405, "invalid_request_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
    ],
)
def test_error_types_per_status(status, kind):
    assert fmt.error_type(status) == kind


def test_sse_framing_is_one_event_per_blank_line():
    frame = fmt.sse("ping", {"type": "ping"})
    assert frame == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert json.loads(fmt.sse("x", {"t": "é"}).split(b"data: ")[1]) == {"t": "é"}


def test_renderer_steps_frame_the_same_events():
    request = fmt.messages_request(body(stream=True))
    stream = fmt.MessageStream(request, request_id="r1")
    frames = stream.render_start("msg_01abc", {"prompt_tokens": 4, "completion_tokens": 0})
    frames += stream.render_chunk(chunk({"role": "assistant", "content": "Hi"}))
    frames += stream.render_chunk(chunk({}, "stop"))
    frames += stream.render_chunk(
        {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 1, "cost": 0.5}}
    )
    closing = stream.render_closing()
    frames += closing + stream.render_end()
    names = [frame.split(b"\n", 1)[0].decode() for frame in frames]
    assert names == [
        "event: message_start",
        "event: ping",
        "event: content_block_start",
        "event: content_block_delta",
        "event: content_block_stop",
        "event: message_delta",
        "event: message_stop",
    ]
    delta = json.loads(closing[-1].split(b"data: ", 1)[1])
    assert delta["usage"] == {
        "input_tokens": 4,
        "output_tokens": 1,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cost": 0.5,
    }
    assert b'"id":"msg_01abc"' in frames[0]  # Anthropic's own id kept
    (error,) = stream.render_error(502, "broke")
    assert error.startswith(b"event: error\n")
