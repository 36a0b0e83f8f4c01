"""Anthropic's Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`) as a face of
the gateway: Anthropic request bodies in, Anthropic messages, stream events and errors out.

A Claude-format request is routed like any other: it becomes the internal ChatRequest
(OpenAI's shape, providers/adapters/types.py), the same engine and policies pick the target,
any adapter serves it, and its OpenAI-shaped answer (a `chat.completion`, or
`chat.completion.chunk`s ending with a usage chunk) is translated back here.

Request (`messages_request`), field by field:
- `system` (a string or text blocks) and `role: "system"` messages -> system messages;
- user `text` and `image` blocks (base64 or URL source) -> text and image_url parts;
  `tool_result` blocks -> `tool` messages placed before the rest of their user turn, their
  images (OpenAI tool messages carry text only) moved into that user turn; an `is_error`
  result's text is prefixed with "Error: " so no provider loses that it failed;
- assistant `text` and `tool_use` blocks -> content and `tool_calls`; `thinking` and
  `redacted_thinking` blocks are dropped (no other provider reads them);
- `cache_control` on text blocks (and the top-level one, put on the last text block) is kept:
  the Anthropic adapter sends it on, the OpenAI-format adapters strip it;
- `tools` -> functions, `tool_choice` auto/any/tool/none -> auto/required/named/none,
  `disable_parallel_tool_use` -> `parallel_tool_calls: false`;
- `output_config.format` (and the older `output_format`) `json_schema` -> `response_format`
  json_schema, which every adapter honours its own way;
- `stop_sequences` -> `stop`, `metadata.user_id` -> `user`; any other `metadata` key is
  Auterity's routing input (policies match `metadata.<key>`), never sent upstream;
- `thinking`, `top_k`, `service_tier`, `speed`, `inference_geo`, `diagnostics` are accepted
  and not forwarded (no equivalent across providers); server tools, `document` blocks,
  `container`, `mcp_servers` and `context_management` are refused with a 400 naming them.

Errors are Anthropic's shape, `{"type": "error", "error": {"type", "message"}, "request_id"}`,
with Anthropic's error type for each status.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from providers.adapters.types import ChatRequest, RequestValidationError, json_kind

# Anthropic's error type for each HTTP status the gateway answers with
# (platform.claude.com/docs/en/api/errors); other 4xx are invalid_request_error, 5xx api_error.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

# OpenAI finish_reason -> Anthropic stop_reason ("stop" is end_turn or stop_sequence).
STOP_REASONS = {
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_JSON_SCHEMA_NAME = "response"

# Accepted and not forwarded: no equivalent across providers (module docstring).
_IGNORED_FIELDS = frozenset(
    {"thinking", "top_k", "service_tier", "speed", "inference_geo", "diagnostics"}
)
_REFUSED_FIELDS = frozenset({"container", "mcp_servers", "context_management"})
_CREATE_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "tools",
        "tool_choice",
        "metadata",
        "output_config",
        "output_format",
        "cache_control",
    }
)
_COUNT_FIELDS = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "output_config", "output_format"}
    | {"cache_control"}
)


def error_type(status: int) -> str:
    """Anthropic's error type for an HTTP status."""
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_body(status: int, message: str, request_id: str | None = None) -> dict:
    """An Anthropic error response body."""
    return {
        "type": "error",
        "error": {"type": error_type(status), "message": message},
        "request_id": request_id,
    }


# --- request --------------------------------------------------------------------------------


def _fail(param: str, message: str):
    raise RequestValidationError(param, f"{param}: {message}")


def _number(body: Mapping, name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        _fail(name, f"must be a number, got {json_kind(value)}")
    if not low <= value <= high:
        _fail(name, f"must be between {low:g} and {high:g}, got {value}")
    return value


def _object(value: Any, param: str) -> dict:
    if not isinstance(value, dict):
        _fail(param, f"must be an object, got {json_kind(value)}")
    return value


def _string(value: Any, param: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value):
        _fail(param, f"must be a non-empty string, got {json_kind(value)}")
    return value


def _blocks(content: Any, param: str) -> list[dict]:
    """A message's content as a list of block objects (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        _fail(param, f"must be a string or an array of content blocks, got {json_kind(content)}")
    for j, block in enumerate(content):
        block = _object(block, f"{param}.{j}")
        if not isinstance(block.get("type"), str):
            _fail(f"{param}.{j}.type", "is required")
    return content


def _text_parts(block: dict, param: str) -> list[dict]:
    """A text block as a list of one text part, or of none when its text is empty."""
    text = block.get("text")
    if not isinstance(text, str):
        _fail(f"{param}.text", f"must be a string, got {json_kind(text)}")
    if not text:
        return []
    part = {"type": "text", "text": text}
    if block.get("cache_control") is not None:
        part["cache_control"] = _object(block["cache_control"], f"{param}.cache_control")
    return [part]


def _image_part(block: dict, param: str) -> dict:
    source = _object(block.get("source"), f"{param}.source")
    kind = source.get("type")
    if kind == "base64":
        media_type = source.get("media_type")
        if media_type not in IMAGE_MEDIA_TYPES:
            _fail(f"{param}.source.media_type", f"must be one of {', '.join(IMAGE_MEDIA_TYPES)}")
        data = _string(source.get("data"), f"{param}.source.data")
        url = f"data:{media_type};base64,{data}"
    elif kind == "url":
        url = _string(source.get("url"), f"{param}.source.url")
        if not url.startswith(("http://", "https://")):
            _fail(f"{param}.source.url", "must be an http(s) URL")
    else:
        _fail(f"{param}.source.type", "must be 'base64' or 'url' (file sources are not supported)")
    return {"type": "image_url", "image_url": {"url": url}}


def _unsupported_block(kind: str, param: str):
    _fail(f"{param}.type", f"'{kind}' blocks are not supported by this gateway")


def _tool_result(block: dict, param: str, tool_ids: set[str]) -> tuple[dict, list[dict]]:
    """A tool message for a `tool_result` block, and the image parts it carried."""
    call_id = _string(block.get("tool_use_id"), f"{param}.tool_use_id")
    if call_id not in tool_ids:
        _fail(f"{param}.tool_use_id", "does not answer any tool_use block of an earlier message")
    content = block.get("content", "")
    texts: list[str] = []
    images: list[dict] = []
    if isinstance(content, str):
        texts.append(content)
    else:
        for k, inner in enumerate(_blocks(content, f"{param}.content")):
            inner_param = f"{param}.content.{k}"
            if inner["type"] == "text":
                texts += [part["text"] for part in _text_parts(inner, inner_param)]
            elif inner["type"] == "image":
                images.append(_image_part(inner, inner_param))
            else:
                _unsupported_block(inner["type"], inner_param)
    text = "\n".join(texts)
    is_error = block.get("is_error")
    if is_error is not None and not isinstance(is_error, bool):
        _fail(f"{param}.is_error", "must be a boolean")
    if is_error:
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": call_id, "content": text}, images


def _user_turn(blocks: list[dict], param: str, tool_ids: set[str]) -> list[dict]:
    tool_messages: list[dict] = []
    parts: list[dict] = []
    for j, block in enumerate(blocks):
        block_param = f"{param}.{j}"
        kind = block["type"]
        if kind == "text":
            parts += _text_parts(block, block_param)
        elif kind == "image":
            parts.append(_image_part(block, block_param))
        elif kind == "tool_result":
            message, images = _tool_result(block, block_param, tool_ids)
            tool_messages.append(message)
            parts.extend(images)
        else:
            _unsupported_block(kind, block_param)
    messages = list(tool_messages)
    if parts:
        messages.append({"role": "user", "content": _compact(parts)})
    if not messages:
        _fail(param, "must not be empty")
    return messages


def _assistant_turn(blocks: list[dict], param: str, tool_ids: set[str]) -> list[dict]:
    parts: list[dict] = []
    calls: list[dict] = []
    for j, block in enumerate(blocks):
        block_param = f"{param}.{j}"
        kind = block["type"]
        if kind == "text":
            parts += _text_parts(block, block_param)
        elif kind == "tool_use":
            call_id = _string(block.get("id"), f"{block_param}.id")
            name = _string(block.get("name"), f"{block_param}.name")
            arguments = _object(block.get("input", {}), f"{block_param}.input")
            tool_ids.add(call_id)
            calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)},
                }
            )
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            _unsupported_block(kind, block_param)
    if not parts and not calls:
        return []
    message: dict[str, Any] = {"role": "assistant", "content": _compact(parts) if parts else None}
    if calls:
        message["tool_calls"] = calls
    return [message]


def _compact(parts: list[dict]) -> str | list[dict]:
    """A lone plain text part as a string (what every adapter reads most simply)."""
    if len(parts) == 1 and parts[0].keys() == {"type", "text"}:
        return parts[0]["text"]
    return parts


def _system_parts(system: Any, param: str) -> str | list[dict] | None:
    if system is None:
        return None
    if isinstance(system, str):
        return system or None
    parts = []
    for j, block in enumerate(_blocks(system, param)):
        if block["type"] != "text":
            _fail(f"{param}.{j}.type", "system blocks must be text")
        parts += _text_parts(block, f"{param}.{j}")
    return _compact(parts) if parts else None


def _messages(body: Mapping) -> list[dict]:
    raw = body.get("messages")
    if raw is None:
        _fail("messages", "is required")
    if not isinstance(raw, list):
        _fail("messages", f"must be an array, got {json_kind(raw)}")
    if not raw:
        _fail("messages", "must contain at least one message")
    messages: list[dict] = []
    system = _system_parts(body.get("system"), "system")
    if system is not None:
        messages.append({"role": "system", "content": system})
    tool_ids: set[str] = set()
    for i, message in enumerate(raw):
        param = f"messages.{i}"
        message = _object(message, param)
        role = message.get("role")
        if "content" not in message:
            _fail(f"{param}.content", "is required")
        if role == "system":
            content = _system_parts(message["content"], f"{param}.content")
            if content is not None:
                messages.append({"role": "system", "content": content})
            continue
        blocks = _blocks(message["content"], f"{param}.content")
        if role == "user":
            messages.extend(_user_turn(blocks, f"{param}.content", tool_ids))
        elif role == "assistant":
            messages.extend(_assistant_turn(blocks, f"{param}.content", tool_ids))
        else:
            got = f", got {role!r}" if isinstance(role, str) else ""
            _fail(f"{param}.role", f"must be 'user' or 'assistant'{got}")
    if not any(m["role"] != "system" for m in messages):
        _fail("messages", "must contain a user or assistant message with content")
    return messages


def _apply_cache_control(messages: list[dict], cache_control: Any) -> None:
    """The top-level `cache_control`: a marker on the last text block of the conversation."""
    cache_control = _object(cache_control, "cache_control")
    for message in reversed(messages):
        content = message.get("content")
        if isinstance(content, str) and content:
            message["content"] = [{"type": "text", "text": content, "cache_control": cache_control}]
            return
        if isinstance(content, list):
            for part in reversed(content):
                if part.get("type") == "text":
                    part["cache_control"] = cache_control
                    return


def _tools(body: Mapping) -> list[dict] | None:
    raw = body.get("tools")
    if raw is None:
        return None
    if not isinstance(raw, list):
        _fail("tools", f"must be an array, got {json_kind(raw)}")
    tools = []
    for i, tool in enumerate(raw):
        param = f"tools.{i}"
        tool = _object(tool, param)
        if tool.get("type") not in (None, "custom"):
            _fail(
                f"{param}.type",
                f"server tools ('{tool['type']}') are not supported by this gateway; "
                "define a custom tool with name and input_schema",
            )
        name = tool.get("name")
        if not isinstance(name, str) or not _TOOL_NAME_RE.match(name):
            _fail(f"{param}.name", "must be 1-64 characters of a-z, A-Z, 0-9, '_' or '-'")
        schema = _object(tool.get("input_schema"), f"{param}.input_schema")
        if schema.get("type", "object") != "object":
            _fail(f"{param}.input_schema.type", "must be 'object'")
        function: dict[str, Any] = {"name": name, "parameters": {"type": "object", **schema}}
        description = tool.get("description")
        if description is not None:
            function["description"] = _string(description, f"{param}.description", empty=True)
        tools.append({"type": "function", "function": function})
    return tools or None


def _tool_choice(body: Mapping, tools: list[dict] | None) -> tuple[str | dict | None, bool | None]:
    """(OpenAI tool_choice, parallel_tool_calls) for Anthropic's tool_choice."""
    raw = body.get("tool_choice")
    if raw is None:
        return None, None
    choice = _object(raw, "tool_choice")
    kind = choice.get("type")
    disable = choice.get("disable_parallel_tool_use")
    if disable is not None and not isinstance(disable, bool):
        _fail("tool_choice.disable_parallel_tool_use", "must be a boolean")
    parallel = False if disable else None
    if kind == "auto":
        return "auto", parallel
    if kind == "none":
        return "none", None
    if kind not in ("any", "tool"):
        _fail("tool_choice.type", "must be one of auto, any, tool, none")
    if not tools:
        _fail("tool_choice", f"'{kind}' needs tools")
    if kind == "any":
        return "required", parallel
    name = _string(choice.get("name"), "tool_choice.name")
    if name not in {tool["function"]["name"] for tool in tools}:
        _fail("tool_choice.name", f"no tool is named {name!r}")
    return {"type": "function", "function": {"name": name}}, parallel


def _response_format(body: Mapping) -> dict | None:
    config = body.get("output_config")
    fmt, param = None, "output_config.format"
    if config is not None:
        fmt = _object(config, "output_config").get("format")
    if fmt is None and body.get("output_format") is not None:
        fmt, param = body["output_format"], "output_format"
    if fmt is None:
        return None
    fmt = _object(fmt, param)
    if fmt.get("type") != "json_schema":
        _fail(f"{param}.type", "must be 'json_schema'")
    schema = _object(fmt.get("schema"), f"{param}.schema")
    return {"type": "json_schema", "json_schema": {"name": _JSON_SCHEMA_NAME, "schema": schema}}


def _metadata(body: Mapping) -> tuple[str | None, dict]:
    """(user, routing metadata) from Anthropic's `metadata`."""
    raw = body.get("metadata")
    if raw is None:
        return None, {}
    metadata = dict(_object(raw, "metadata"))
    user = metadata.pop("user_id", None)
    if user is not None and not isinstance(user, str):
        _fail("metadata.user_id", f"must be a string, got {json_kind(user)}")
    return user or None, metadata


def _check_fields(body: Mapping, allowed: frozenset[str]) -> None:
    for name in body:
        if name in _REFUSED_FIELDS:
            _fail(name, "is not supported by this gateway")
        if name not in allowed and name not in _IGNORED_FIELDS:
            _fail(name, "Extra inputs are not permitted")


def _model(body: Mapping) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        _fail("model", "must be a non-empty string")
    return model


def messages_request(body: Any) -> ChatRequest:
    """Validate an Anthropic `POST /v1/messages` body and translate it to a ChatRequest.

    Raises RequestValidationError whose `param` is Anthropic's dotted path
    (`messages.1.content.0.source`) and whose message starts with it, as Anthropic's do.
    """
    if not isinstance(body, dict):
        _fail("body", f"must be a JSON object, got {json_kind(body)}")
    _check_fields(body, _CREATE_FIELDS)
    model = _model(body)
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        _fail("max_tokens", "is required")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        _fail("max_tokens", f"must be an integer >= 1, got {max_tokens!r}")
    messages = _messages(body)
    if body.get("cache_control") is not None:
        _apply_cache_control(messages, body["cache_control"])
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        _fail("stream", f"must be a boolean, got {json_kind(stream)}")
    stop = body.get("stop_sequences")
    if stop is not None and (
        not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop)
    ):
        _fail("stop_sequences", "must be an array of non-empty strings")
    tools = _tools(body)
    tool_choice, parallel = _tool_choice(body, tools)
    user, metadata = _metadata(body)
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        temperature=_number(body, "temperature", 0, 1),
        top_p=_number(body, "top_p", 0, 1),
        max_tokens=max_tokens,
        stop=list(stop) if stop else None,
        tools=tools,
        tool_choice=tool_choice,
        response_format=_response_format(body),
        user=user,
        parallel_tool_calls=parallel if tools else None,
        include_usage=True,
        metadata=metadata,
    )


def count_tokens_request(body: Any) -> ChatRequest:
    """Validate an Anthropic `POST /v1/messages/count_tokens` body: the messages fields that
    make up the prompt (no `max_tokens`, sampling or streaming)."""
    if not isinstance(body, dict):
        _fail("body", f"must be a JSON object, got {json_kind(body)}")
    _check_fields(body, _COUNT_FIELDS)
    model = _model(body)
    messages = _messages(body)
    tools = _tools(body)
    tool_choice, _ = _tool_choice(body, tools)
    return ChatRequest(
        model=model,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        response_format=_response_format(body),
    )


# --- response -------------------------------------------------------------------------------


def message_id(upstream_id: Any, request_id: str) -> str:
    """Anthropic's own message id when Anthropic served the call, else `msg_<request id>` (the
    gateway's id, which finds the request-log row)."""
    if isinstance(upstream_id, str) and upstream_id.startswith("msg_"):
        return upstream_id
    return f"msg_{request_id}"


def usage(openai_usage: Mapping | None, cost: float | None = None) -> dict:
    """Anthropic usage from an OpenAI-shaped one. Anthropic's `input_tokens` leaves out cached
    input, which it reports as `cache_read_input_tokens` (and cache writes as
    `cache_creation_input_tokens`); OpenAI's `prompt_tokens` includes them."""
    openai_usage = openai_usage or {}
    details = openai_usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") or 0
    # Where Usage.to_dict() puts cache writes (Anthropic's and LiteLLM's name).
    created = openai_usage.get("cache_creation_input_tokens") or 0
    prompt = openai_usage.get("prompt_tokens") or 0
    result = {
        "input_tokens": max(prompt - cached - created, 0),
        "output_tokens": openai_usage.get("completion_tokens") or 0,
        "cache_creation_input_tokens": created,
        "cache_read_input_tokens": cached,
    }
    if cost is not None:
        result["cost"] = cost  # Auterity's: this request's cost in USD (as usage.cost on /v1)
    return result


def stop_reason(choice: Mapping, stop_sequences: list[str]) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence) for an OpenAI choice. A matched stop sequence is known when
    the choice names it in `stop_reason` (the Anthropic adapter does, as vLLM does)."""
    finish = choice.get("finish_reason")
    if finish in STOP_REASONS:
        return STOP_REASONS[finish], None
    matched = choice.get("stop_reason")
    if isinstance(matched, str) and matched in stop_sequences:
        return "stop_sequence", matched
    return "end_turn", None


def tool_input(arguments: Any) -> dict:
    """A tool call's JSON arguments as Anthropic's `input` object. Arguments that are not a
    JSON object (a model can emit broken JSON) are kept whole under `_raw_arguments`."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments or not str(arguments).strip():
        return {}
    try:
        parsed = json.loads(arguments)
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"_raw_arguments": arguments}


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return content or ""


def message_response(
    completion: Mapping,
    request: ChatRequest,
    *,
    request_id: str,
    cost: float | None = None,
) -> dict:
    """The Anthropic `Message` for an OpenAI `chat.completion` (its first choice)."""
    choice = completion["choices"][0]
    message = choice.get("message") or {}
    content: list[dict] = []
    text = _text_of(message.get("content")) or (message.get("refusal") or "")
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": tool_input(function.get("arguments")),
            }
        )
    reason, sequence = stop_reason(choice, request.stop_sequences)
    return {
        "id": message_id(completion.get("id"), request_id),
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": usage(completion.get("usage"), cost),
    }


# --- streams --------------------------------------------------------------------------------


def sse(event: str, data: Mapping) -> bytes:
    """One server-sent event as Anthropic frames them: the event name, then its JSON."""
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event}\ndata: {payload}\n\n".encode()


class MessageStream:
    """OpenAI `chat.completion.chunk`s in, Anthropic stream events out, in Anthropic's order:

        message_start, ping,
        per content block: content_block_start, content_block_delta..., content_block_stop,
        message_delta (stop_reason, stop_sequence, final usage), message_stop

    Text deltas become a `text` block (`text_delta`s); each tool call becomes a `tool_use`
    block whose arguments stream as `input_json_delta`s. A block is closed when the next one
    starts or the answer finishes. `start()` gives the opening events, `feed(chunk)` the events
    for each chunk (the final usage chunk gives none: it is read by `finish()`), `finish()`
    the closing ones, `error()` the `error` event for a stream that broke. Each returns a list
    of `(event name, data)` pairs; `sse()` frames one.
    """

    def __init__(self, request: ChatRequest, *, request_id: str):
        self.request = request
        self.request_id = request_id
        self.index = -1  # Anthropic index of the open (or last) block
        self.open_kind: str | None = None  # "text" | "tool_use" | None when closed
        self.tool_blocks: dict[int, int] = {}  # OpenAI tool_calls index -> Anthropic index
        self.stop: tuple[str, str | None] = ("end_turn", None)
        self.final_usage: Mapping | None = None
        self.started = False

    def start(self, upstream_id: Any, usage_so_far: Mapping | None) -> list[tuple[str, dict]]:
        """message_start (with the input tokens known so far) and a first ping."""
        self.started = True
        message = {
            "id": message_id(upstream_id, self.request_id),
            "type": "message",
            "role": "assistant",
            "model": self.request.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage(usage_so_far), "output_tokens": 0},
        }
        return [
            ("message_start", {"type": "message_start", "message": message}),
            ("ping", {"type": "ping"}),
        ]

    def _close(self) -> list[tuple[str, dict]]:
        if self.open_kind is None:
            return []
        self.open_kind = None
        return [("content_block_stop", {"type": "content_block_stop", "index": self.index})]

    def _open(self, kind: str, block: dict) -> list[tuple[str, dict]]:
        events = self._close()
        self.index += 1
        self.open_kind = kind
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": self.index, "content_block": block},
            )
        )
        return events

    def feed(self, chunk: Mapping) -> list[tuple[str, dict]]:
        events: list[tuple[str, dict]] = []
        if chunk.get("usage") is not None:
            self.final_usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content") or delta.get("refusal")
            if isinstance(text, str) and text:
                if self.open_kind != "text":
                    events += self._open("text", {"type": "text", "text": ""})
                events.append(self._delta({"type": "text_delta", "text": text}))
            for call in delta.get("tool_calls") or ():
                events += self._tool_delta(call)
            if choice.get("finish_reason"):
                self.stop = stop_reason(choice, self.request.stop_sequences)
                events += self._close()
        return events

    def _delta(self, delta: dict, index: int | None = None) -> tuple[str, dict]:
        data = {"type": "content_block_delta", "index": self.index if index is None else index}
        data["delta"] = delta
        return ("content_block_delta", data)

    def _tool_delta(self, call: Mapping) -> list[tuple[str, dict]]:
        events: list[tuple[str, dict]] = []
        position = call.get("index", 0)
        function = call.get("function") or {}
        if position not in self.tool_blocks:
            block = {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{self.request_id[:16]}_{position}",
                "name": function.get("name") or "",
                "input": {},
            }
            events += self._open("tool_use", block)
            self.tool_blocks[position] = self.index
        arguments = function.get("arguments")
        if arguments:
            delta = {"type": "input_json_delta", "partial_json": arguments}
            events.append(self._delta(delta, self.tool_blocks[position]))
        return events

    def finish(self, usage_final: Mapping | None = None, cost: float | None = None):
        """The closing events: the open block's stop, message_delta with the stop reason and
        the final usage (Auterity's `cost` in it), message_stop."""
        events = self._close()
        reason, sequence = self.stop
        final = usage(usage_final if usage_final is not None else self.final_usage, cost)
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": sequence},
                    "usage": final,
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    def error(self, status: int, message: str) -> list[tuple[str, dict]]:
        """The `error` event that ends a stream that broke after it started."""
        body = error_body(status, message, self.request_id)
        return [("error", {"type": "error", "error": body["error"]})]

    # -- as a stream renderer: the gateway's relay asks for bytes at each step --------------

    def render_start(self, upstream_id: Any, usage_so_far: Mapping | None) -> list[bytes]:
        return [sse(name, data) for name, data in self.start(upstream_id, usage_so_far)]

    def render_chunk(self, chunk: Mapping) -> list[bytes]:
        return [sse(name, data) for name, data in self.feed(chunk)]

    def render_closing(self) -> list[bytes]:
        """Everything but the end marker, whose cost is in the final usage chunk fed last."""
        cost = (self.final_usage or {}).get("cost")
        events = self.finish(cost=cost)
        return [sse(name, data) for name, data in events if name != "message_stop"]

    def render_end(self) -> list[bytes]:
        return [sse("message_stop", {"type": "message_stop"})]

    def render_error(self, status: int, message: str, code: str | None = None) -> list[bytes]:
        """The error event (Anthropic's carry no code: `code` is the OpenAI renderer's)."""
        return [sse(name, data) for name, data in self.error(status, message)]
