import json

import pytest

from providers.adapters import (
    AuthenticationFailed,
    ContextTooLong,
    RateLimited,
    StreamInterrupted,
)
from providers.adapters.gemini import gemini_schema

from .payloads import SIM_MODELS, WEATHER_TOOL, chat_request, only_choice
from .recording_server import Reply, sse

MODEL = SIM_MODELS["gemini"]
JPEG = "data:image/jpeg;base64,/9j/4AAQ"


def response(parts, finish="STOP", **extra):
    return {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}
        ],
        "usageMetadata": {
            "promptTokenCount": 12,
            "candidatesTokenCount": 4,
            "thoughtsTokenCount": 6,
            "totalTokenCount": 22,
        },
        "modelVersion": MODEL,
        "responseId": "resp-1",
        **extra,
    }


def test_request_translation(stub, stub_adapter):
    stub.reply(Reply(body=response([{"text": "ok"}])))
    request = chat_request(
        messages=[
            {"role": "system", "content": "You are terse."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image_url", "image_url": {"url": JPEG}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/sky.png"}},
                ],
            },
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
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": -3}'},
            {"role": "tool", "tool_call_id": "call_1", "content": "snowing"},
            {"role": "user", "content": "Thanks"},
        ],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0.4,
        top_p=0.8,
        max_tokens=256,
        stop=["END"],
        seed=5,
        response_format={"type": "json_object"},
        user="u-1",
    )

    stub_adapter("gemini").chat(request, MODEL)

    sent = stub.last
    assert sent.path == f"/v1beta/models/{MODEL}:generateContent"
    assert sent.headers["x-goog-api-key"] == "sk-test-0123456789"
    assert "key" not in sent.query and "authorization" not in sent.headers
    assert sent.json == {
        "systemInstruction": {"parts": [{"text": "You are terse."}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Weather here?"},
                    {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
                    {
                        "fileData": {
                            "mimeType": "image/png",
                            "fileUri": "https://example.com/sky.png",
                        }
                    },
                ],
            },
            {
                "role": "model",
                "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp": -3}}},
                    {
                        "functionResponse": {
                            "name": "get_weather",
                            "response": {"content": "snowing"},
                        }
                    },
                    {"text": "Thanks"},
                ],
            },
        ],
        "generationConfig": {
            "temperature": 0.4,
            "topP": 0.8,
            "maxOutputTokens": 256,
            "seed": 5,
            "stopSequences": ["END"],
            "responseMimeType": "application/json",
        },
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Current weather for a city",
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "city": {"type": "string"},
                                "unit": {"enum": ["c", "f"]},
                            },
                            "required": ["city"],
                        },
                    }
                ]
            }
        ],
        "toolConfig": {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
        },
    }


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [("auto", {"mode": "AUTO"}), ("required", {"mode": "ANY"}), ("none", {"mode": "NONE"})],
)
def test_tool_choice_mapping(stub, stub_adapter, tool_choice, expected):
    stub.reply(Reply(body=response([{"text": "ok"}])))
    stub_adapter("gemini").chat(chat_request(tools=[WEATHER_TOOL], tool_choice=tool_choice), MODEL)
    assert stub.last.json["toolConfig"] == {"functionCallingConfig": expected}


def test_tools_without_parameters_omit_the_schema(stub, stub_adapter):
    stub.reply(Reply(body=response([{"text": "ok"}])))
    tool = {
        "type": "function",
        "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
    }
    stub_adapter("gemini").chat(chat_request(tools=[tool]), MODEL)
    assert stub.last.json["tools"] == [{"functionDeclarations": [{"name": "now"}]}]


def test_json_schema_response_format(stub, stub_adapter):
    stub.reply(Reply(body=response([{"text": '{"answer": "42"}'}])))
    schema = {
        "type": "object",
        "properties": {"answer": {"type": ["string", "null"]}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    request = chat_request(
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    )
    result = stub_adapter("gemini").chat(request, MODEL)
    assert stub.last.json["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "object",
            "properties": {"answer": {"type": "string", "nullable": True}},
            "required": ["answer"],
        },
    }
    assert json.loads(result.response["choices"][0]["message"]["content"]) == {"answer": "42"}


def test_schema_reduction():
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}}},
        "properties": {
            "where": {"$ref": "#/$defs/Point"},
            "label": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "name"},
            "kind": {"const": "dot"},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        },
        "required": ["where", "missing"],
        "additionalProperties": False,
    }
    assert gemini_schema(schema) == {
        "type": "object",
        "properties": {
            "where": {"type": "object", "properties": {"x": {"type": "number"}}},
            "label": {"type": "string", "nullable": True, "description": "name"},
            "kind": {"enum": ["dot"]},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        },
        "required": ["where"],
    }


def test_response_translation_with_thought_signature_round_trip(stub, stub_adapter):
    stub.reply(
        Reply(
            body=response(
                [
                    {"text": "thinking...", "thought": True},
                    {"text": "Checking."},
                    {
                        "functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
                        "thoughtSignature": "c2lnbmF0dXJl",
                    },
                ]
            )
        ),
        Reply(body=response([{"text": "It is -3C."}])),
    )
    adapter = stub_adapter("gemini")

    first = adapter.chat(chat_request(tools=[WEATHER_TOOL]), MODEL)

    choice = only_choice(first.response)
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking."
    (call,) = choice["message"]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    # thinking tokens are billed as output
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (12, 10)
    assert first.response["id"] == "resp-1"

    follow_up = chat_request(
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "-3C"},
        ],
    )
    adapter.chat(follow_up, MODEL)
    model_turn = stub.last.json["contents"][1]
    assert model_turn["parts"][0]["thoughtSignature"] == "c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("finish", "expected"),
    [("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter")],
)
def test_finish_reason_mapping(stub, stub_adapter, finish, expected):
    stub.reply(Reply(body=response([{"text": "partial"}], finish=finish)))
    result = stub_adapter("gemini").chat(chat_request(), MODEL)
    assert result.response["choices"][0]["finish_reason"] == expected


def test_blocked_prompt_is_a_content_filter_answer(stub, stub_adapter):
    stub.reply(
        Reply(
            body={
                "promptFeedback": {"blockReason": "SAFETY"},
                "usageMetadata": {"promptTokenCount": 9},
            }
        )
    )
    result = stub_adapter("gemini").chat(chat_request(), MODEL)
    choice = result.response["choices"][0]
    assert (choice["finish_reason"], choice["message"]["content"]) == ("content_filter", None)
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (9, 0)


def test_chat_round_trip(sim_adapter):
    result = sim_adapter("gemini").chat(chat_request(max_tokens=5), MODEL)
    assert result.response["choices"][0]["message"]["content"] == "lorem ipsum dolor sit amet"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (6, 5)


def test_stream_round_trip(sim_adapter):
    adapter = sim_adapter("gemini")

    with adapter.stream(chat_request(max_tokens=20, stream=True), MODEL) as stream:
        chunks = list(stream)

    *content, usage_chunk = chunks
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in content)
    assert len(text.split()) == 20
    assert content[-1]["choices"][0]["finish_reason"] == "stop"
    assert usage_chunk["usage"] == {"prompt_tokens": 6, "completion_tokens": 20, "total_tokens": 26}


def test_streamed_tool_call(sim_adapter):
    request = chat_request(tools=[WEATHER_TOOL], tool_choice="required", stream=True)
    with sim_adapter("gemini").stream(request, MODEL) as stream:
        chunks = list(stream)
    calls = [
        tc
        for c in chunks
        if c["choices"]
        for tc in c["choices"][0]["delta"].get("tool_calls") or ()
    ]
    (call,) = calls
    assert call["index"] == 0 and call["function"]["name"] == "get_weather"
    assert "city" in json.loads(call["function"]["arguments"])
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_stream_url(stub, stub_adapter):
    stub.reply(Reply(events=sse(response([{"text": "hi"}]))))
    with stub_adapter("gemini").stream(chat_request(stream=True), "models/gemini-2.0-flash") as s:
        list(s)
    assert stub.last.path == "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    assert stub.last.query == {"alt": "sse"}


def test_stream_without_finish_reason_is_interrupted(stub, stub_adapter):
    partial = response([{"text": "Once upon"}])
    del partial["candidates"][0]["finishReason"]
    stub.reply(Reply(events=sse(partial)))
    stream = stub_adapter("gemini").stream(chat_request(stream=True), MODEL)
    with pytest.raises(StreamInterrupted) as caught:
        list(stream)
    assert caught.value.usage.prompt_tokens == 12


def test_invalid_api_key_is_an_authentication_failure(sim_adapter):
    with pytest.raises(AuthenticationFailed) as caught:
        sim_adapter("gemini", api_key="invalid").chat(chat_request(), MODEL)
    assert caught.value.status_code == 400
    assert not caught.value.retryable


def test_retry_delay_from_the_error_body(stub, stub_adapter):
    stub.reply(
        Reply(
            status=429,
            body={
                "error": {
                    "code": 429,
                    "message": "You exceeded your current quota.",
                    "status": "RESOURCE_EXHAUSTED",
                    "details": [
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}
                    ],
                }
            },
        )
    )
    with pytest.raises(RateLimited) as caught:
        stub_adapter("gemini").chat(chat_request(), MODEL)
    assert caught.value.retry_after == 37.0
    assert caught.value.upstream_code == "RESOURCE_EXHAUSTED"


def test_context_too_long(stub, stub_adapter):
    stub.reply(
        Reply(
            status=400,
            body={
                "error": {
                    "code": 400,
                    "message": "The input token count (1200293) exceeds the maximum number of "
                    "tokens allowed (1048576).",
                    "status": "INVALID_ARGUMENT",
                }
            },
        )
    )
    with pytest.raises(ContextTooLong):
        stub_adapter("gemini").chat(chat_request(), MODEL)


def _candidate(index, text, finish=None):
    candidate = {"index": index, "content": {"role": "model", "parts": [{"text": text}]}}
    if finish:
        candidate["finishReason"] = finish
    return candidate


def test_n_choices_are_gemini_candidates(stub, stub_adapter):
    stub.reply(
        Reply(
            body={
                "candidates": [_candidate(1, "Blue.", "STOP"), _candidate(0, "Red.", "STOP")],
                "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 4},
                "responseId": "r-1",
            }
        )
    )
    result = stub_adapter("gemini").chat(chat_request(n=2), MODEL)
    assert stub.last.json["generationConfig"]["candidateCount"] == 2
    choices = result.response["choices"]
    assert [(c["index"], c["message"]["content"]) for c in choices] == [(0, "Red."), (1, "Blue.")]
    assert {c["finish_reason"] for c in choices} == {"stop"}
    assert result.usage.completion_tokens == 4


def test_n_streamed_candidates_end_when_every_one_finished(stub, stub_adapter):
    usage = {"promptTokenCount": 5, "candidatesTokenCount": 4}
    stub.reply(
        Reply(
            events=sse(
                {"candidates": [_candidate(0, "Red"), _candidate(1, "Blue")]},
                {"candidates": [_candidate(0, ".", "STOP")], "usageMetadata": usage},
                {"candidates": [_candidate(1, ".", "STOP")], "usageMetadata": usage},
            )
        )
    )
    with stub_adapter("gemini").stream(chat_request(n=2, stream=True), MODEL) as stream:
        chunks = list(stream)
    texts = {0: "", 1: ""}
    finishes = {}
    for chunk in chunks[:-1]:
        (choice,) = chunk["choices"]
        texts[choice["index"]] += choice["delta"].get("content") or ""
        if choice["finish_reason"]:
            finishes[choice["index"]] = choice["finish_reason"]
    assert texts == {0: "Red.", 1: "Blue."}
    assert finishes == {0: "stop", 1: "stop"}
    assert chunks[-1]["usage"]["completion_tokens"] == 4


def test_a_stream_that_ends_before_every_candidate_finished_was_cut(stub, stub_adapter):
    stub.reply(
        Reply(
            events=sse(
                {"candidates": [_candidate(0, "Red", "STOP"), _candidate(1, "Blue")]},
            )
        )
    )
    stream = stub_adapter("gemini").stream(chat_request(n=2, stream=True), MODEL)
    with pytest.raises(StreamInterrupted):
        list(stream)
