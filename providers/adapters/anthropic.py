"""Anthropic Messages API (`POST /v1/messages`), translated to and from OpenAI's format.

Request translation:
- system and developer messages (wherever they appear) become the top-level `system`;
- consecutive messages of one role are merged (Anthropic wants user/assistant turns), tool
  messages become user `tool_result` blocks, assistant `tool_calls` become `tool_use` blocks;
- image parts become image blocks: data URLs as base64 sources, http(s) URLs as url sources;
- `max_tokens` is required by Anthropic: the request's, else option `default_max_tokens`
  (4096); `stop` -> `stop_sequences`; `user` -> `metadata.user_id`; `temperature` is capped
  at 1.0 (Anthropic's maximum; OpenAI allows 2); `seed` and the penalties have no Anthropic
  equivalent and are dropped, as is `extra`;
- `response_format` json_object/json_schema is served the way Anthropic documents for JSON
  output: a tool whose input schema is the wanted schema, which the model is made to call;
  its input comes back as the message content.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .base import ProviderAdapter, StreamTranslator, completion_response
from .errors import MalformedResponse, mentions_context_overflow
from .options import COUNT, STRING
from .sse import SSEEvent
from .types import ChatRequest, Usage, image_url_of, split_data_url

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
_MAX_TEMPERATURE = 1.0

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# HTTP status Anthropic uses for each error type; used for error events inside a stream.
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

# The fields of a messages body that count_tokens takes (it refuses sampling fields).
_COUNTED_FIELDS = ("model", "messages", "system", "tools", "tool_choice")

_JSON_TOOL_DESCRIPTION = (
    "Give your final answer by calling this tool; its input is the JSON response the user "
    "asked for."
)


@dataclass(frozen=True)
class _JsonMode:
    """How a JSON response_format is carried: the tool's name, and whether a non-object
    schema was wrapped as `{"value": ...}` (tool inputs must be objects)."""

    tool_name: str
    wrapped: bool
    schema: dict


def _json_mode(request: ChatRequest) -> _JsonMode | None:
    response_format = request.response_format or {}
    kind = response_format.get("type")
    if kind not in ("json_object", "json_schema"):
        return None
    schema = None
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
    schema = dict(schema) if schema else {"type": "object"}
    wrapped = schema.get("type") != "object"
    if wrapped:
        schema = {"type": "object", "properties": {"value": schema}, "required": ["value"]}
    taken = {tool["function"]["name"] for tool in request.tools or ()}
    name = "json_response"
    while name in taken:
        name = f"_{name}"
    return _JsonMode(name, wrapped, schema)


def _json_text(mode: _JsonMode, tool_input: Any) -> str:
    value = tool_input.get("value") if mode.wrapped and isinstance(tool_input, dict) else tool_input
    return json.dumps(value, ensure_ascii=False)


def _text_block(part: dict, key: str = "text") -> dict | None:
    text = part.get(key)
    if not text:
        return None  # Anthropic rejects empty text blocks
    block = {"type": "text", "text": text}
    if part.get("cache_control"):
        block["cache_control"] = part["cache_control"]
    return block


def _image_block(part: dict) -> dict:
    url = image_url_of(part)
    if url.startswith("data:"):
        media_type, data = split_data_url(url)
        source = {"type": "base64", "media_type": media_type, "data": data}
    else:
        source = {"type": "url", "url": url}
    return {"type": "image", "source": source}


def _content_blocks(content: Any) -> list[dict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content:
        kind = part.get("type")
        if kind == "image_url":
            blocks.append(_image_block(part))
        elif kind in ("text", "refusal"):
            block = _text_block(part, kind)
            if block:
                blocks.append(block)
    return blocks


def _anthropic_usage(usage: dict) -> tuple[int | None, int | None, int, int]:
    """(prompt, completion, cache reads, cache writes) in OpenAI's convention. Anthropic's
    `input_tokens` counts only the uncached input, after the last cache breakpoint; cache
    writes (`cache_creation_input_tokens`) and reads (`cache_read_input_tokens`) are reported
    beside it, so all three add up to OpenAI's `prompt_tokens`. `output_tokens` already holds
    any extended-thinking tokens (billed as output; Anthropic reports no separate count)."""
    if not isinstance(usage, dict):
        return None, None, 0, 0
    cached = usage.get("cache_read_input_tokens") or 0
    cache_write = usage.get("cache_creation_input_tokens") or 0
    prompt = None
    if isinstance(usage.get("input_tokens"), int):
        prompt = usage["input_tokens"] + cache_write + cached
    completion = usage.get("output_tokens")
    return prompt, completion if isinstance(completion, int) else None, cached, cache_write


class AnthropicStreamTranslator(StreamTranslator):
    """message_start -> role chunk; text_delta -> content; tool_use blocks -> tool_calls
    (one OpenAI index per tool_use, whatever Anthropic's block index), input_json_delta ->
    arguments; message_delta -> finish chunk and final output tokens; message_stop -> end;
    ping and unknown events are ignored; error -> the mapped error."""

    def __init__(self, request: ChatRequest, adapter: AnthropicAdapter):
        super().__init__(request)
        self.adapter = adapter
        self.json_mode = _json_mode(request)
        self.blocks: dict[int, dict] = {}
        self.tool_count = 0
        self.real_tool_used = False

    def feed(self, event: SSEEvent) -> list[dict]:
        if event.event == "ping":
            return []
        payload = json.loads(event.data)
        kind = payload.get("type") or event.event
        handler = getattr(self, f"_on_{kind}", None)
        return handler(payload) if handler else []

    def _on_message_start(self, payload: dict) -> list[dict]:
        message = payload["message"]
        if message.get("id"):
            self.id = message["id"]
        prompt, completion, cached, cache_write = _anthropic_usage(message.get("usage"))
        self.prompt_tokens = prompt
        self.completion_tokens = completion
        self.cached_tokens, self.cache_write_tokens = cached, cache_write
        return [self.chunk({"role": "assistant", "content": ""})]

    def _on_content_block_start(self, payload: dict) -> list[dict]:
        index, block = payload["index"], payload["content_block"]
        kind = block.get("type")
        if kind == "tool_use":
            if self.json_mode and block.get("name") == self.json_mode.tool_name:
                self.blocks[index] = {"kind": "json"}
                return []
            self.blocks[index] = {"kind": "tool", "tool_index": self.tool_count, "args": 0}
            self.tool_count += 1
            self.real_tool_used = True
            call = {
                "index": self.blocks[index]["tool_index"],
                "id": block["id"],
                "type": "function",
                "function": {"name": block["name"], "arguments": ""},
            }
            return [self.chunk({"tool_calls": [call]})]
        self.blocks[index] = {"kind": kind}
        if kind == "text" and block.get("text"):
            return [self.chunk({"content": block["text"]})]
        return []

    def _on_content_block_delta(self, payload: dict) -> list[dict]:
        delta = payload["delta"]
        kind = delta.get("type")
        block = self.blocks.get(payload["index"], {})
        if kind == "text_delta" and delta.get("text"):
            return [self.chunk({"content": delta["text"]})]
        if kind == "input_json_delta" and delta.get("partial_json"):
            if block.get("kind") == "json":
                # JSON-mode answers stream as content; the wrapped form cannot be unwrapped
                # piecewise, so it streams as the wrapper object.
                return [self.chunk({"content": delta["partial_json"]})]
            if block.get("kind") == "tool":
                block["args"] += len(delta["partial_json"])
                call = {
                    "index": block["tool_index"],
                    "function": {"arguments": delta["partial_json"]},
                }
                return [self.chunk({"tool_calls": [call]})]
        return []  # thinking, signature and citation deltas have no OpenAI equivalent

    def _on_content_block_stop(self, payload: dict) -> list[dict]:
        block = self.blocks.get(payload["index"], {})
        if block.get("kind") == "tool" and block["args"] == 0:
            # A tool without arguments streams no input_json_delta; OpenAI clients expect
            # the arguments to parse as JSON.
            call = {"index": block["tool_index"], "function": {"arguments": "{}"}}
            return [self.chunk({"tool_calls": [call]})]
        return []

    def _on_message_delta(self, payload: dict) -> list[dict]:
        prompt, completion, cached, cache_write = _anthropic_usage(payload.get("usage"))
        if prompt is not None:
            # message_delta's usage is cumulative; newer API versions repeat the input side.
            self.prompt_tokens = prompt
            self.cached_tokens, self.cache_write_tokens = cached, cache_write
        if completion is not None:
            self.completion_tokens = completion
        delta = payload.get("delta") or {}
        stop_reason = delta.get("stop_reason")
        if not stop_reason:
            return []
        finish = STOP_REASONS.get(stop_reason, "stop")
        if finish == "tool_calls" and not self.real_tool_used:
            finish = "stop"  # only the JSON-mode tool was called
        self.finish_seen = True
        chunk = self.chunk({}, finish)
        if stop_reason == "stop_sequence" and delta.get("stop_sequence"):
            chunk["choices"][0]["stop_reason"] = delta["stop_sequence"]  # as parse_response
        return [chunk]

    def _on_message_stop(self, payload: dict) -> list[dict]:
        self.done = True
        self.usage_final = True
        return []

    def _on_error(self, payload: dict) -> list[dict]:
        kind = (payload.get("error") or {}).get("type")
        raise self.adapter.stream_error(ERROR_STATUS.get(kind, 500), payload)


class AnthropicAdapter(ProviderAdapter):
    provider_type = "anthropic"
    label = "Anthropic"
    options = {"anthropic_version": STRING, "default_max_tokens": COUNT}
    price_source = "anthropic"
    supports_count_tokens = True

    def __init__(self, endpoint):
        super().__init__(endpoint)
        self.default_max_tokens = int(
            endpoint.options.get("default_max_tokens") or DEFAULT_MAX_TOKENS
        )
        self._messages_url = f"{self.base_url}/v1/messages"

    def auth_headers(self) -> dict[str, str]:
        return {
            "x-api-key": self.endpoint.api_key,
            "anthropic-version": self.endpoint.options.get("anthropic_version")
            or ANTHROPIC_VERSION,
        }

    def chat_url(self, model: str, *, stream: bool) -> str:
        return self._messages_url

    def models_url(self) -> str:
        return f"{self.base_url}/v1/models"

    def parse_models(self, data: dict) -> list[str]:
        return [item["id"] for item in data["data"]]

    # -- token counting (`POST /v1/messages/count_tokens`) --------------------------------

    def count_tokens_url(self, model: str) -> str:
        return f"{self._messages_url}/count_tokens"

    def build_count_tokens_body(self, request: ChatRequest, model: str) -> dict:
        """The prompt part of the messages body: what count_tokens accepts."""
        body = self.build_body(request, model, stream=False)
        return {k: body[k] for k in _COUNTED_FIELDS if k in body}

    def parse_count_tokens(self, data: dict) -> int:
        return data["input_tokens"]

    # -- request ------------------------------------------------------------------------

    def build_body(self, request: ChatRequest, model: str, *, stream: bool) -> dict:
        system, messages = self._convert_messages(request.messages)
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_tokens or self.default_max_tokens,
            "messages": messages,
        }
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = min(request.temperature, _MAX_TEMPERATURE)
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop_sequences:
            body["stop_sequences"] = request.stop_sequences
        if request.user:
            body["metadata"] = {"user_id": request.user}
        tools, tool_choice = self._convert_tools(request)
        if tools:
            body["tools"] = tools
            if tool_choice:
                body["tool_choice"] = tool_choice
        if stream:
            body["stream"] = True
        return body

    def _convert_tools(self, request: ChatRequest) -> tuple[list[dict], dict | None]:
        tools = []
        for tool in request.tools or ():
            function = tool["function"]
            schema = dict(function.get("parameters") or {"type": "object", "properties": {}})
            schema.setdefault("type", "object")
            converted = {"name": function["name"], "input_schema": schema}
            if function.get("description"):
                converted["description"] = function["description"]
            tools.append(converted)
        choice = request.tool_choice
        if choice is None:
            tool_choice = None
        elif choice == "auto":
            tool_choice = {"type": "auto"}
        elif choice == "required":
            tool_choice = {"type": "any"}
        elif choice == "none":
            tool_choice = {"type": "none"}
        else:
            tool_choice = {"type": "tool", "name": choice["function"]["name"]}
        mode = _json_mode(request)
        if mode:
            tools.append(
                {
                    "name": mode.tool_name,
                    "description": _JSON_TOOL_DESCRIPTION,
                    "input_schema": mode.schema,
                }
            )
            if not request.tools or choice == "none":
                tool_choice = {"type": "tool", "name": mode.tool_name}
            elif choice in (None, "auto", "required"):
                tool_choice = {"type": "any"}  # a real tool, or the answer as JSON
        if (
            request.parallel_tool_calls is False
            and tools
            and (tool_choice or {}).get("type") != "none"
        ):
            tool_choice = {**(tool_choice or {"type": "auto"}), "disable_parallel_tool_use": True}
        return tools, tool_choice

    def _convert_messages(self, messages: list[dict]) -> tuple[str | list[dict], list[dict]]:
        system_blocks: list[dict] = []
        converted: list[dict] = []
        for i, message in enumerate(messages):
            role = message["role"]
            content = message.get("content")
            if role in ("system", "developer"):
                system_blocks.extend(_content_blocks(content))
                continue
            if role == "tool":
                target = "user"
                result = content if isinstance(content, str) else _content_blocks(content)
                blocks = [
                    {
                        "type": "tool_result",
                        "tool_use_id": message["tool_call_id"],
                        "content": result,
                    }
                ]
            elif role == "assistant":
                target = "assistant"
                blocks = _content_blocks(content)
                for k, call in enumerate(message.get("tool_calls") or ()):
                    blocks.append(
                        {
                            "type": "tool_use",
                            "id": call["id"],
                            "name": call["function"]["name"],
                            "input": self.tool_call_arguments(
                                call["function"], f"messages[{i}].tool_calls[{k}]"
                            ),
                        }
                    )
            else:
                target = "user"
                blocks = _content_blocks(content)
            if not blocks:
                continue
            if converted and converted[-1]["role"] == target:
                converted[-1]["content"].extend(blocks)
            else:
                converted.append({"role": target, "content": blocks})
        if converted and converted[-1]["role"] == "assistant":
            # A final assistant message is a prefill, and Anthropic rejects one that ends in
            # whitespace.
            last = converted[-1]["content"][-1]
            if last["type"] == "text":
                last["text"] = last["text"].rstrip()
                if not last["text"]:
                    converted[-1]["content"].pop()
                    if not converted[-1]["content"]:
                        converted.pop()
        for message in converted:
            blocks = message["content"]
            if len(blocks) == 1 and blocks[0].keys() == {"type", "text"}:
                message["content"] = blocks[0]["text"]
        if any(block.keys() != {"type", "text"} for block in system_blocks):
            return system_blocks, converted
        return "\n\n".join(block["text"] for block in system_blocks), converted

    # -- response -----------------------------------------------------------------------

    def parse_response(self, data: dict, request: ChatRequest) -> dict:
        if data.get("type") == "error":
            kind = (data.get("error") or {}).get("type")
            raise self.stream_error(ERROR_STATUS.get(kind, 500), data)
        content = data.get("content")
        if not isinstance(content, list):
            raise MalformedResponse("message has no content list", provider_id=self.provider_id)
        mode = _json_mode(request)
        texts: list[str] = []
        json_answer: str | None = None
        tool_calls = []
        for block in content:
            kind = block.get("type")
            if kind == "text":
                texts.append(block["text"])
            elif kind == "tool_use":
                if mode and block["name"] == mode.tool_name:
                    json_answer = _json_text(mode, block.get("input"))
                    continue
                tool_calls.append(
                    {
                        "id": block["id"],
                        "type": "function",
                        "function": {
                            "name": block["name"],
                            "arguments": json.dumps(block.get("input") or {}, ensure_ascii=False),
                        },
                    }
                )
        text = json_answer if json_answer is not None else "".join(texts) if texts else None
        finish = STOP_REASONS.get(data.get("stop_reason"), "stop")
        if finish == "tool_calls" and not tool_calls:
            finish = "stop"
        result = completion_response(request, data.get("id"), text, tool_calls, finish)
        if data.get("stop_reason") == "stop_sequence" and data.get("stop_sequence"):
            # Which stop sequence ended the answer, where vLLM puts it: the Anthropic face of
            # the gateway answers it back as `stop_sequence`.
            result["choices"][0]["stop_reason"] = data["stop_sequence"]
        prompt, completion, cached, cache_write = _anthropic_usage(data.get("usage"))
        if prompt is not None and completion is not None:
            result["usage"] = Usage(
                prompt, completion, cached_tokens=cached, cache_write_tokens=cache_write
            ).to_dict()
        return result

    def stream_translator(self, request: ChatRequest) -> StreamTranslator:
        return AnthropicStreamTranslator(request, self)

    def error_details(self, status: int, body: Any) -> dict:
        """`{"type": "error", "error": {"type": "overloaded_error", "message": "..."}}`.
        Context overflow is a 400 invalid_request_error whose message says "prompt is too
        long: N tokens > M maximum" or "input length and `max_tokens` exceed context
        limit"."""
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return {}
        message = error.get("message")
        kind = error.get("type")
        return {
            "message": message,
            "code": kind,
            "context_exceeded": kind in ("invalid_request_error", "request_too_large")
            and mentions_context_overflow(message),
        }
