"""Anthropic Messages wire format."""

from __future__ import annotations

import base64
import json
import re

from .generation import (
    FINISH_LENGTH,
    FINISH_STOP,
    FINISH_STOP_SEQUENCE,
    FINISH_TOOL,
    Generation,
    RequestInvalid,
    choose_tool,
    lorem_words,
    max_tokens_field,
    prompt_tokens_for,
    random_id,
    text_output,
    tool_output,
)

_DATE_SUFFIX = re.compile(r"-(\d{4})(\d{2})(\d{2})$")
_DISPLAY_NAMES = {
    "claude-opus-4-1-20250805": "Claude Opus 4.1",
    "claude-sonnet-4-20250514": "Claude Sonnet 4",
    "claude-3-7-sonnet-20250219": "Claude Sonnet 3.7",
    "claude-3-5-haiku-20241022": "Claude Haiku 3.5",
}

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "api_error",
    529: "overloaded_error",
}
_FAULT_MESSAGES = {
    429: "This request would exceed the rate limit for your organization. Please try again later.",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
    529: "Overloaded",
}


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def new_request_id() -> str:
    return "req_011" + random_id(21)


def error_body(status: int, message: str, request_id: str) -> bytes:
    return _dumps(
        {
            "type": "error",
            "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message},
            "request_id": request_id,
        }
    )


def fault_error(status: int, request_id: str) -> bytes:
    return error_body(status, _FAULT_MESSAGES[status], request_id)


def invalid(exc: RequestInvalid, request_id: str) -> bytes:
    return error_body(exc.status, exc.message, request_id)


def unknown_url(request_id: str) -> bytes:
    return error_body(404, "Not Found", request_id)


def check_auth(headers, *, needs_version: bool) -> RequestInvalid | None:
    """x-api-key, or Authorization: Bearer (what the anthropic SDK 2.x sends for api_key)."""
    key = headers.get("x-api-key", "").strip()
    if not key:
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
    if not key:
        return RequestInvalid(401, "x-api-key header is required")
    if key == "invalid":
        return RequestInvalid(401, "invalid x-api-key")
    if needs_version and not headers.get("anthropic-version"):
        return RequestInvalid(400, "anthropic-version: header is required")
    return None


# --- models ---------------------------------------------------------------------------------


def _model_object(model_id: str) -> dict:
    match = _DATE_SUFFIX.search(model_id)
    created = f"{match[1]}-{match[2]}-{match[3]}T00:00:00Z" if match else "2025-01-01T00:00:00Z"
    return {
        "type": "model",
        "id": model_id,
        "display_name": _DISPLAY_NAMES.get(model_id, model_id),
        "created_at": created,
    }


def models_body(ids, query) -> tuple[int, bytes]:
    """The list page after `after_id` / before `before_id`, at most `limit` (1-1000) long."""
    try:
        limit = int(query.get("limit", 20))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        return 400, error_body(400, "limit: Input should be between 1 and 1000", new_request_id())
    ids = list(ids)
    after, before = query.get("after_id"), query.get("before_id")
    if after in ids:
        ids = ids[ids.index(after) + 1 :]
    elif before in ids:
        ids = ids[: ids.index(before)][-limit:]
    page = ids[:limit]
    return 200, _dumps(
        {
            "data": [_model_object(i) for i in page],
            "has_more": len(ids) > len(page),
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }
    )


def model_body(model_id: str, ids) -> tuple[int, bytes]:
    if model_id not in ids:
        return 404, error_body(404, f"model: {model_id}", new_request_id())
    return 200, _dumps(_model_object(model_id))


# --- messages -------------------------------------------------------------------------------


# Prompts shorter than this are not cached, whatever cache_control says (Haiku: 2,048).
CACHE_MINIMUM_TOKENS = 1024
CACHE_MINIMUM_TOKENS_HAIKU = 2048
_MAX_BREAKPOINTS = 4


def _block_text(block) -> str:
    """Text of one content block: text, or the text inside a tool_result."""
    if not isinstance(block, dict):
        return ""
    if block.get("type") == "text" and isinstance(block.get("text"), str):
        return block["text"]
    if block.get("type") == "tool_result":
        return "".join(text for text, _ in _segments_of(block.get("content")))
    return ""


def _segments_of(content) -> list[tuple[str, dict | None]]:
    """(text, its cache_control or None) per block of a content value (a string is one)."""
    if isinstance(content, str):
        return [(content, None)]
    if not isinstance(content, list):
        return []
    segments = []
    for block in content:
        control = block.get("cache_control") if isinstance(block, dict) else None
        segments.append((_block_text(block), control if isinstance(control, dict) else None))
    return segments


def _prompt(body: dict) -> tuple[list[tuple[str, dict | None]], str]:
    """The prompt's text segments in order (system, then messages) and the last user text."""
    messages = body.get("messages")
    if messages is None:
        raise RequestInvalid(400, "messages: Field required")
    if not isinstance(messages, list):
        raise RequestInvalid(400, "messages: Input should be a valid list")
    if not messages:
        raise RequestInvalid(400, "messages: at least one message is required")
    segments = _segments_of(body.get("system"))
    last_user_text = ""
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise RequestInvalid(
                400, f"messages.{index}.role: Input should be 'user' or 'assistant'"
            )
        message_segments = _segments_of(message.get("content"))
        segments.extend(message_segments)
        if message["role"] == "user":
            last_user_text = "".join(text for text, _ in message_segments)
    return segments, last_user_text


def _breakpoint_prefixes(body: dict, segments) -> tuple[list[str], bool]:
    """The prompt prefixes ending at each cache_control block, and whether the last one asks
    for the 1-hour cache (`"ttl": "1h"`; the default is 5 minutes)."""
    marked_tools = sum(
        1
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and tool.get("cache_control")
    )
    marked = marked_tools + sum(1 for _, control in segments if control is not None)
    if marked > _MAX_BREAKPOINTS:
        raise RequestInvalid(
            400,
            f"A maximum of {_MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {marked}.",
        )
    prefixes, text, one_hour = [], "", False
    for segment, control in segments:
        text += segment
        if control is not None:
            prefixes.append(text)
            one_hour = control.get("ttl") == "1h"
    return prefixes, one_hour


def _model(body: dict) -> str:
    model = body.get("model")
    if model is None:
        raise RequestInvalid(400, "model: Field required")
    if not isinstance(model, str) or not model:
        raise RequestInvalid(400, "model: Input should be a valid string")
    return model


def _stop_sequences(body: dict) -> tuple[str, ...]:
    value = body.get("stop_sequences")
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RequestInvalid(400, "stop_sequences: Input should be a valid list of strings")
    return tuple(value)


def parse(body, ctx=None) -> Generation:
    if not isinstance(body, dict):
        raise RequestInvalid(400, "Input should be a valid dictionary")
    model = _model(body)
    if body.get("max_tokens") is None:
        raise RequestInvalid(400, "max_tokens: Field required")
    completion = max_tokens_field(body, "max_tokens", param_style="anthropic")
    segments, last_user_text = _prompt(body)
    stops = _stop_sequences(body)
    prefixes, one_hour = _breakpoint_prefixes(body, segments)
    tool_call = _tool_call(body, last_user_text)
    thinking = _thinking(body, completion)
    # max_tokens bounds thinking and answer together.
    completion -= thinking
    if tool_call is not None:
        output = tool_output(tool_call, completion)
    else:
        output = text_output(completion, stops)
    read = written = 0
    if ctx is not None and prefixes:
        minimum = CACHE_MINIMUM_TOKENS_HAIKU if "haiku" in model else CACHE_MINIMUM_TOKENS
        read, written = ctx.cache.breakpoints((ctx.name, "anthropic", model), prefixes, minimum)
    return Generation(
        model=model,
        prompt_tokens=prompt_tokens_for(sum(len(text) for text, _ in segments)),
        outputs=(output,),
        stream=body.get("stream") is True,
        cached_tokens=read,
        cache_creation_tokens=written,
        cache_creation_1h=one_hour,
        reasoning_tokens=thinking,
    )


# The thinking block's text is a summary (as Claude 4 models return it); the tokens billed
# are the whole budget.
THINKING_SUMMARY_WORDS = 12


def _thinking(body: dict, max_tokens: int) -> int:
    """Thinking tokens: `thinking.budget_tokens` when thinking is enabled, else 0."""
    config = body.get("thinking")
    if config is None:
        return 0
    if not isinstance(config, dict) or config.get("type") not in ("enabled", "disabled"):
        raise RequestInvalid(400, "thinking: Input tag does not match 'enabled' or 'disabled'")
    if config["type"] == "disabled":
        return 0
    budget = config.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise RequestInvalid(400, "thinking.enabled.budget_tokens: Field required")
    if budget < 1024:
        raise RequestInvalid(
            400, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        )
    if max_tokens <= budget:
        raise RequestInvalid(400, "`max_tokens` must be greater than `thinking.budget_tokens`.")
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        raise RequestInvalid(400, "Thinking may not be enabled when tool_choice forces tool use.")
    return budget


def count_tokens(body) -> bytes:
    """input_tokens as /v1/messages counts them, cache or not (the whole prompt)."""
    if not isinstance(body, dict):
        raise RequestInvalid(400, "Input should be a valid dictionary")
    _model(body)
    segments, _ = _prompt(body)
    characters = sum(len(text) for text, _ in segments)
    return _dumps({"input_tokens": prompt_tokens_for(characters)})


def _tool_call(body: dict, last_user_text: str):
    tools = [
        (tool["name"], tool.get("input_schema") or {})
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and isinstance(tool.get("name"), str)
    ]
    choice = body.get("tool_choice") or {"type": "auto"}
    kind = choice.get("type") if isinstance(choice, dict) else "auto"
    if kind == "none":
        return None
    forced_name = choice.get("name") if kind == "tool" else None
    return choose_tool(tools, kind in ("any", "tool"), forced_name, last_user_text)


def new_id() -> str:
    return "msg_01" + random_id(22)


def _usage(gen: Generation, output_tokens: int) -> dict:
    return {
        "input_tokens": gen.prompt_tokens - gen.cached_tokens - gen.cache_creation_tokens,
        "cache_creation_input_tokens": gen.cache_creation_tokens,
        "cache_read_input_tokens": gen.cached_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 0 if gen.cache_creation_1h else gen.cache_creation_tokens,
            "ephemeral_1h_input_tokens": gen.cache_creation_tokens if gen.cache_creation_1h else 0,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


_STOP_REASONS = {
    FINISH_STOP: "end_turn",
    FINISH_STOP_SEQUENCE: "stop_sequence",
    FINISH_LENGTH: "max_tokens",
    FINISH_TOOL: "tool_use",
}


def _thinking_block(gen: Generation) -> dict:
    summary = "".join(lorem_words(THINKING_SUMMARY_WORDS, 3))
    signature = base64.b64encode(f"sim:{gen.model}:{gen.reasoning_tokens}".encode()).decode()
    return {"type": "thinking", "thinking": summary, "signature": signature}


def _content(gen: Generation) -> list[dict]:
    output = gen.output
    blocks = [_thinking_block(gen)] if gen.reasoning_tokens else []
    if output.tool_call is None:
        return [*blocks, {"type": "text", "text": output.text}]
    block = {
        "type": "tool_use",
        "id": "toolu_01" + random_id(22),
        "name": output.tool_call.name,
        "input": output.tool_call.arguments,
    }
    return [*blocks, block]


def render(gen: Generation, message_id: str) -> bytes:
    return _dumps(
        {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": gen.model,
            "content": _content(gen),
            "stop_reason": _STOP_REASONS[gen.output.finish],
            "stop_sequence": gen.output.stop_sequence,
            "usage": _usage(gen, gen.completion_tokens),
        }
    )


def _event(name: str, payload: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _dumps(payload) + b"\n\n"


def _block_events(index: int, block: dict, gen: Generation) -> list[bytes]:
    """content_block_start, its deltas, content_block_stop."""
    if block["type"] == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": block["thinking"]}]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif block["type"] == "text":
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in gen.output.pieces]
    else:
        start = {**block, "input": {}}
        arguments = json.dumps(block["input"])
        deltas = [{"type": "input_json_delta", "partial_json": ""}] + [
            {"type": "input_json_delta", "partial_json": arguments[i : i + 8]}
            for i in range(0, len(arguments), 8)
        ]
    events = [
        _event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
    ]
    events.extend(
        _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
        for d in deltas
    )
    events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def stream(gen: Generation, message_id: str) -> list[bytes]:
    """message_start, each content block with its deltas, message_delta, message_stop."""
    message = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": gen.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _usage(gen, 1),
    }
    events = [_event("message_start", {"type": "message_start", "message": message})]
    for index, block in enumerate(_content(gen)):
        block_events = _block_events(index, block, gen)
        if index == 0:
            # Anthropic sends a ping right after the first content_block_start.
            block_events.insert(1, _event("ping", {"type": "ping"}))
        events.extend(block_events)
    events.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": _STOP_REASONS[gen.output.finish],
                    "stop_sequence": gen.output.stop_sequence,
                },
                "usage": {"output_tokens": gen.completion_tokens},
            },
        )
    )
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events
