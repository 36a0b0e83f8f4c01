"""Anthropic Messages wire format."""

from __future__ import annotations

import json
import re

from .generation import (
    Generation,
    RequestInvalid,
    choose_tool,
    max_tokens_field,
    prompt_tokens_for,
    random_id,
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
    key = headers.get("x-api-key", "").strip()
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


def _block_text(content) -> str:
    """Text of a content value: a string, or text / tool_result blocks."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif block.get("type") == "tool_result":
            parts.append(_block_text(block.get("content")))
    return "".join(parts)


def _prompt(body: dict) -> tuple[int, str]:
    messages = body.get("messages")
    if messages is None:
        raise RequestInvalid(400, "messages: Field required")
    if not isinstance(messages, list):
        raise RequestInvalid(400, "messages: Input should be a valid list")
    if not messages:
        raise RequestInvalid(400, "messages: at least one message is required")
    characters = len(_block_text(body.get("system")))
    last_user_text = ""
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise RequestInvalid(
                400, f"messages.{index}.role: Input should be 'user' or 'assistant'"
            )
        text = _block_text(message.get("content"))
        characters += len(text)
        if message["role"] == "user":
            last_user_text = text
    return characters, last_user_text


def _model(body: dict) -> str:
    model = body.get("model")
    if model is None:
        raise RequestInvalid(400, "model: Field required")
    if not isinstance(model, str) or not model:
        raise RequestInvalid(400, "model: Input should be a valid string")
    return model


def parse(body) -> Generation:
    if not isinstance(body, dict):
        raise RequestInvalid(400, "Input should be a valid dictionary")
    model = _model(body)
    if body.get("max_tokens") is None:
        raise RequestInvalid(400, "max_tokens: Field required")
    completion = max_tokens_field(body, "max_tokens", param_style="anthropic")
    characters, last_user_text = _prompt(body)
    return Generation(
        model=model,
        prompt_tokens=prompt_tokens_for(characters),
        completion_tokens=completion,
        tool_call=_tool_call(body, last_user_text),
        stream=body.get("stream") is True,
    )


def count_tokens(body) -> bytes:
    if not isinstance(body, dict):
        raise RequestInvalid(400, "Input should be a valid dictionary")
    _model(body)
    characters, _ = _prompt(body)
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
        "input_tokens": gen.prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _content(gen: Generation) -> tuple[list[dict], str]:
    if gen.tool_call is None:
        return [{"type": "text", "text": gen.text}], "end_turn"
    block = {
        "type": "tool_use",
        "id": "toolu_01" + random_id(22),
        "name": gen.tool_call.name,
        "input": gen.tool_call.arguments,
    }
    return [block], "tool_use"


def render(gen: Generation, message_id: str) -> bytes:
    content, stop_reason = _content(gen)
    return _dumps(
        {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": gen.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": _usage(gen, gen.completion_tokens),
        }
    )


def _event(name: str, payload: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _dumps(payload) + b"\n\n"


def stream(gen: Generation, message_id: str) -> list[bytes]:
    """message_start, one content block with its deltas, message_delta, message_stop."""
    content, stop_reason = _content(gen)
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
    block = content[0]
    if block["type"] == "text":
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": word} for word in gen.words]
    else:
        start = {**block, "input": {}}
        arguments = json.dumps(block["input"])
        deltas = [{"type": "input_json_delta", "partial_json": ""}] + [
            {"type": "input_json_delta", "partial_json": arguments[i : i + 8]}
            for i in range(0, len(arguments), 8)
        ]
    events.append(
        _event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": start},
        )
    )
    events.append(_event("ping", {"type": "ping"}))
    events.extend(
        _event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d})
        for d in deltas
    )
    events.append(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": gen.completion_tokens},
            },
        )
    )
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events
