"""Cached input, cache writes and reasoning tokens, read from each provider's own usage fields
(non-stream and stream) and normalised to OpenAI's convention: prompt_tokens includes the
cached and cache-write parts, completion_tokens includes the reasoning part.

Payload shapes follow each provider's documented usage object: OpenAI
`prompt_tokens_details.cached_tokens` / `completion_tokens_details.reasoning_tokens` (both
inside the totals); Anthropic `cache_read_input_tokens` / `cache_creation_input_tokens`
(beside `input_tokens`, which counts only uncached input); Gemini `cachedContentTokenCount`
(inside `promptTokenCount`) / `thoughtsTokenCount` (beside `candidatesTokenCount`).
"""

import pytest

from providers.adapters import Usage

from .payloads import SIM_MODELS, chat_request
from .recording_server import Reply, sse
from .test_openai import chunk

OPENAI_USAGE = {
    "prompt_tokens": 1486,
    "completion_tokens": 651,
    "total_tokens": 2137,
    "prompt_tokens_details": {"cached_tokens": 1408, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 512, "audio_tokens": 0},
}
OPENAI_PARTS = Usage(1486, 651, cached_tokens=1408, reasoning_tokens=512)


def openai_completion(usage):
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-5",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi"},
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }


@pytest.mark.parametrize("provider_type", ["openai", "azure_openai", "openai_compatible"])
def test_openai_formats_report_cached_and_reasoning_tokens(stub, stub_adapter, provider_type):
    stub.reply(Reply(body=openai_completion(OPENAI_USAGE)))

    result = stub_adapter(provider_type).chat(chat_request(), "gpt-5")

    assert result.usage == OPENAI_PARTS
    # The client sees OpenAI's usage object, details included.
    assert result.response["usage"]["prompt_tokens_details"]["cached_tokens"] == 1408
    assert result.response["usage"]["completion_tokens_details"]["reasoning_tokens"] == 512


def test_openai_stream_reports_cached_and_reasoning_tokens(stub, stub_adapter):
    stub.reply(
        Reply(
            events=sse(
                chunk({"role": "assistant", "content": ""}),
                chunk({"content": "Hi"}),
                chunk({}, "stop"),
                {**chunk({}), "choices": [], "usage": OPENAI_USAGE},
                "[DONE]",
            )
        )
    )

    with stub_adapter("openai").stream(chat_request(stream=True), "gpt-5") as stream:
        chunks = list(stream)

    assert stream.usage == OPENAI_PARTS
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 1486,
        "completion_tokens": 651,
        "total_tokens": 2137,
        "prompt_tokens_details": {"cached_tokens": 1408},
        "completion_tokens_details": {"reasoning_tokens": 512},
    }


def test_openai_usage_without_details_has_no_parts(stub, stub_adapter):
    stub.reply(Reply(body=openai_completion({"prompt_tokens": 9, "completion_tokens": 2})))

    result = stub_adapter("openai").chat(chat_request(), "gpt-4o")

    assert result.usage == Usage(9, 2)
    assert result.response["usage"] == {"prompt_tokens": 9, "completion_tokens": 2}


ANTHROPIC_USAGE = {
    "input_tokens": 12,
    "cache_creation_input_tokens": 287,
    "cache_read_input_tokens": 30433,
    "output_tokens": 67,
}
ANTHROPIC_PARTS = Usage(12 + 287 + 30433, 67, cached_tokens=30433, cache_write_tokens=287)


def anthropic_event(name, **payload):
    return sse({"type": name, **payload}, event=name)[0]


def test_anthropic_reports_cache_reads_and_writes(stub, stub_adapter):
    stub.reply(
        Reply(
            body={
                "id": "msg_01",
                "type": "message",
                "role": "assistant",
                "model": SIM_MODELS["anthropic"],
                "content": [{"type": "text", "text": "Hello!"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": ANTHROPIC_USAGE,
            }
        )
    )

    result = stub_adapter("anthropic").chat(chat_request(), SIM_MODELS["anthropic"])

    assert result.usage == ANTHROPIC_PARTS
    assert result.response["usage"]["prompt_tokens"] == 30732
    assert result.response["usage"]["prompt_tokens_details"] == {"cached_tokens": 30433}
    assert result.response["usage"]["cache_creation_input_tokens"] == 287


def test_anthropic_stream_reports_cache_reads_and_writes(stub, stub_adapter):
    message = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": SIM_MODELS["anthropic"],
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**ANTHROPIC_USAGE, "output_tokens": 1},
    }
    stub.reply(
        Reply(
            events=[
                anthropic_event("message_start", message=message),
                anthropic_event(
                    "content_block_start", index=0, content_block={"type": "text", "text": ""}
                ),
                anthropic_event(
                    "content_block_delta", index=0, delta={"type": "text_delta", "text": "Hi"}
                ),
                anthropic_event("content_block_stop", index=0),
                anthropic_event(
                    "message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 67}
                ),
                anthropic_event("message_stop"),
            ]
        )
    )

    adapter = stub_adapter("anthropic")
    with adapter.stream(chat_request(stream=True), SIM_MODELS["anthropic"]) as stream:
        chunks = list(stream)

    assert stream.usage == ANTHROPIC_PARTS
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 30433}


GEMINI_USAGE = {
    "promptTokenCount": 2400,
    "cachedContentTokenCount": 2048,
    "candidatesTokenCount": 40,
    "thoughtsTokenCount": 900,
    "totalTokenCount": 3340,
}
GEMINI_PARTS = Usage(2400, 940, cached_tokens=2048, reasoning_tokens=900)


def gemini_response(text, usage, finish="STOP"):
    candidate = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": usage, "responseId": "resp-1"}


def test_gemini_reports_cached_and_thinking_tokens(stub, stub_adapter):
    stub.reply(Reply(body=gemini_response("ok", GEMINI_USAGE)))

    result = stub_adapter("gemini").chat(chat_request(), SIM_MODELS["gemini"])

    assert result.usage == GEMINI_PARTS
    assert result.response["usage"]["completion_tokens"] == 940
    assert result.response["usage"]["completion_tokens_details"] == {"reasoning_tokens": 900}


def test_gemini_stream_reports_cached_and_thinking_tokens(stub, stub_adapter):
    partial = {**GEMINI_USAGE, "candidatesTokenCount": 20}
    stub.reply(
        Reply(
            events=sse(
                gemini_response("Hello ", partial, finish=None),
                gemini_response("there", GEMINI_USAGE),
            )
        )
    )

    adapter = stub_adapter("gemini")
    with adapter.stream(chat_request(stream=True), SIM_MODELS["gemini"]) as stream:
        list(stream)

    assert stream.usage == GEMINI_PARTS
