"""Plain data the adapters, the gateway and the routing engine share.

`ChatRequest` is the one internal shape of a chat call: the OpenAI chat-completions body,
validated once at the edge (`ChatRequest.from_openai`), then translated by each adapter into
its provider's wire format. Nothing here does I/O or imports Django.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from vocabulary import Capability

from . import tokens


class RequestValidationError(ValueError):
    """An incoming OpenAI-style request body is invalid; `param` names the offending field
    the way OpenAI does (`messages`, `messages[2].role`, `temperature`)."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


ROLES = ("system", "developer", "user", "assistant", "tool")

# Which content part types each role may carry (OpenAI's chat-completions rules, restricted
# to what every adapter can translate: text and images).
_PART_TYPES = {
    "system": frozenset({"text"}),
    "developer": frozenset({"text"}),
    "user": frozenset({"text", "image_url"}),
    "assistant": frozenset({"text", "refusal"}),
    "tool": frozenset({"text"}),
}
_TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_IMAGE_DETAILS = ("auto", "low", "high")
_RESPONSE_FORMATS = ("text", "json_object", "json_schema")
_MAX_STOP_SEQUENCES = 4  # OpenAI's documented limit; Gemini allows 5, Anthropic more

# Token estimate constants (see estimate_input_tokens): OpenAI's documented framing for its
# current chat models, and a flat figure per image (OpenAI's low-detail price).
_CHARS_PER_TOKEN = 4
_TOKENS_PER_MESSAGE = 3
_TOKENS_PER_NAME = 1
_TOKENS_REPLY_PRIMING = 3
_TOKENS_PER_IMAGE = 85

# Fields ChatRequest models explicitly; any other key of an incoming body is kept in `extra`.
_KNOWN_FIELDS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "tools",
        "tool_choice",
        "response_format",
        "user",
        "n",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "parallel_tool_calls",
        "metadata",
    }
)


def json_kind(value: Any) -> str:
    """A JSON type name for error messages (never the value itself: it may be huge or secret)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_number(body: dict, name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if not _is_number(value):
        raise RequestValidationError(name, f"must be a number, got {json_kind(value)}")
    if not low <= value <= high:
        raise RequestValidationError(name, f"must be between {low:g} and {high:g}, got {value}")
    return value


def _check_int(body: dict, name: str, low: int, high: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not _is_int(value):
        raise RequestValidationError(name, f"must be an integer, got {json_kind(value)}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise RequestValidationError(name, f"must be {bound}, got {value}")
    return value


def _check_str(body: dict, name: str, param: str | None = None) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise RequestValidationError(param or name, f"must be a string, got {json_kind(value)}")
    return value


def _validate_content(content: Any, role: str, param: str, *, required: bool) -> None:
    if content is None:
        if required:
            raise RequestValidationError(param, f"is required for {role} messages")
        return
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise RequestValidationError(
            param, f"must be a string or an array of content parts, got {json_kind(content)}"
        )
    if not content:
        raise RequestValidationError(param, "must not be an empty array")
    allowed = _PART_TYPES[role]
    for j, part in enumerate(content):
        part_param = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise RequestValidationError(part_param, f"must be an object, got {json_kind(part)}")
        part_type = part.get("type")
        if not isinstance(part_type, str) or part_type not in allowed:  # a dict is unhashable
            raise RequestValidationError(
                f"{part_param}.type",
                f"must be one of {', '.join(sorted(allowed))} for {role} messages"
                + (f", got {part_type!r}" if isinstance(part_type, str) else ""),
            )
        if part_type in ("text", "refusal"):
            if not isinstance(part.get(part_type), str):
                raise RequestValidationError(f"{part_param}.{part_type}", "must be a string")
        else:
            _validate_image_part(part, part_param)


def _validate_image_part(part: dict, param: str) -> None:
    image = part.get("image_url")
    url = image if isinstance(image, str) else image.get("url") if isinstance(image, dict) else None
    if not isinstance(url, str):
        raise RequestValidationError(f"{param}.image_url.url", "must be a string")
    if not url.startswith(("http://", "https://", "data:")):
        raise RequestValidationError(
            f"{param}.image_url.url", "must be an http(s) URL or a data: URL"
        )
    if url.startswith("data:") and ";base64," not in url[:100]:
        raise RequestValidationError(
            f"{param}.image_url.url", "data URLs must be base64 (data:<type>;base64,<data>)"
        )
    if isinstance(image, dict) and image.get("detail") not in (None, *_IMAGE_DETAILS):
        raise RequestValidationError(
            f"{param}.image_url.detail", f"must be one of {', '.join(_IMAGE_DETAILS)}"
        )


def _validate_tool_calls(tool_calls: Any, param: str, seen_ids: set[str]) -> None:
    if not isinstance(tool_calls, list) or not tool_calls:
        raise RequestValidationError(param, "must be a non-empty array")
    for k, call in enumerate(tool_calls):
        call_param = f"{param}[{k}]"
        if not isinstance(call, dict):
            raise RequestValidationError(call_param, "must be an object")
        if not isinstance(call.get("id"), str) or not call["id"]:
            raise RequestValidationError(f"{call_param}.id", "must be a non-empty string")
        if call.get("type", "function") != "function":
            raise RequestValidationError(f"{call_param}.type", "must be 'function'")
        function = call.get("function")
        if not isinstance(function, dict):
            raise RequestValidationError(f"{call_param}.function", "must be an object")
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise RequestValidationError(f"{call_param}.function.name", "must be a string")
        if not isinstance(function.get("arguments"), str):
            raise RequestValidationError(
                f"{call_param}.function.arguments", "must be a string (JSON-encoded arguments)"
            )
        seen_ids.add(call["id"])


def _validate_messages(messages: Any) -> list[dict]:
    if messages is None:
        raise RequestValidationError("messages", "is required")
    if not isinstance(messages, list):
        raise RequestValidationError("messages", f"must be an array, got {json_kind(messages)}")
    if not messages:
        raise RequestValidationError("messages", "must contain at least one message")
    tool_call_ids: set[str] = set()
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise RequestValidationError(param, f"must be an object, got {json_kind(message)}")
        role = message.get("role")
        if role not in ROLES:
            got = f", got {role!r}" if isinstance(role, str) else ""
            raise RequestValidationError(f"{param}.role", f"must be one of {', '.join(ROLES)}{got}")
        _check_str(message, "name", f"{param}.name")
        has_tool_calls = role == "assistant" and message.get("tool_calls") is not None
        _validate_content(
            message.get("content"), role, f"{param}.content", required=not has_tool_calls
        )
        if has_tool_calls:
            _validate_tool_calls(message["tool_calls"], f"{param}.tool_calls", tool_call_ids)
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise RequestValidationError(f"{param}.tool_call_id", "must be a non-empty string")
            if call_id not in tool_call_ids:
                raise RequestValidationError(
                    f"{param}.tool_call_id",
                    "does not answer any tool call of an earlier assistant message",
                )
    return messages


def _validate_tools(tools: Any) -> list[dict] | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise RequestValidationError("tools", f"must be an array, got {json_kind(tools)}")
    for i, tool in enumerate(tools):
        param = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise RequestValidationError(param, "must be an object")
        if tool.get("type", "function") != "function":
            raise RequestValidationError(f"{param}.type", "must be 'function'")
        function = tool.get("function")
        if not isinstance(function, dict):
            raise RequestValidationError(f"{param}.function", "must be an object")
        name = function.get("name")
        if not isinstance(name, str) or not _TOOL_NAME_RE.match(name):
            raise RequestValidationError(
                f"{param}.function.name", "must be 1-64 characters of a-z, A-Z, 0-9, '_' or '-'"
            )
        _check_str(function, "description", f"{param}.function.description")
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise RequestValidationError(
                f"{param}.function.parameters", "must be a JSON Schema object"
            )
    return tools or None


def _validate_tool_choice(choice: Any, tools: list[dict] | None) -> str | dict | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise RequestValidationError(
                "tool_choice", "must be 'none', 'auto', 'required' or a named function"
            )
        if choice == "required" and not tools:
            raise RequestValidationError("tool_choice", "'required' needs tools")
        return choice
    if not isinstance(choice, dict) or choice.get("type") != "function":
        raise RequestValidationError(
            "tool_choice", "must be 'none', 'auto', 'required' or a named function"
        )
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise RequestValidationError("tool_choice.function.name", "must be a string")
    if name not in {tool["function"]["name"] for tool in tools or ()}:
        raise RequestValidationError("tool_choice.function.name", f"no tool is named {name!r}")
    return choice


def _validate_response_format(value: Any) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RequestValidationError(
            "response_format", f"must be an object, got {json_kind(value)}"
        )
    kind = value.get("type")
    if kind not in _RESPONSE_FORMATS:
        raise RequestValidationError(
            "response_format.type", f"must be one of {', '.join(_RESPONSE_FORMATS)}"
        )
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict):
            raise RequestValidationError("response_format.json_schema", "must be an object")
        name = spec.get("name")
        if not isinstance(name, str) or not _TOOL_NAME_RE.match(name):
            raise RequestValidationError(
                "response_format.json_schema.name",
                "must be 1-64 characters of a-z, A-Z, 0-9, '_' or '-'",
            )
        if spec.get("schema") is not None and not isinstance(spec["schema"], dict):
            raise RequestValidationError(
                "response_format.json_schema.schema", "must be a JSON Schema object"
            )
    return value


def _validate_stop(value: Any) -> str | list[str] | None:
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise RequestValidationError("stop", "must be a string or an array of strings")
    if len(value) > _MAX_STOP_SEQUENCES:
        raise RequestValidationError("stop", f"at most {_MAX_STOP_SEQUENCES} sequences")
    return value or None


@dataclass
class ChatRequest:
    """One chat-completion call in OpenAI's shape.

    `metadata` belongs to Auterity (routing hints, tags) and is never sent upstream; `extra`
    holds any other OpenAI parameter the client sent (`logprobs`, `logit_bias`...): the
    OpenAI-format adapters forward it, the Anthropic and Gemini adapters cannot and drop it.
    `include_usage` records whether the client asked for the final usage chunk; adapters
    always request usage upstream (the gateway needs it for cost) regardless.
    """

    model: str
    messages: list[dict]
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: str | list[str] | None = None
    tools: list[dict] | None = None
    tool_choice: str | dict | None = None
    response_format: dict | None = None
    user: str | None = None
    n: int | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    parallel_tool_calls: bool | None = None
    include_usage: bool = False
    metadata: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_openai(cls, body: Any, *, require_model: bool = True) -> ChatRequest:
        """Validate an OpenAI chat-completions request body.

        Raises RequestValidationError naming the first offending field. `require_model=False`
        lets the native API leave the model to the router (it becomes "").
        """
        if not isinstance(body, dict):
            raise RequestValidationError("body", f"must be a JSON object, got {json_kind(body)}")
        model = body.get("model")
        if model is None and not require_model:
            model = ""
        elif not isinstance(model, str) or not model:
            raise RequestValidationError("model", "must be a non-empty string")
        messages = _validate_messages(body.get("messages"))
        stream = body.get("stream", False)
        if stream is None:
            stream = False
        if not isinstance(stream, bool):
            raise RequestValidationError("stream", f"must be a boolean, got {json_kind(stream)}")
        include_usage = False
        stream_options = body.get("stream_options")
        if stream_options is not None:
            if not isinstance(stream_options, dict):
                raise RequestValidationError("stream_options", "must be an object")
            include_usage = stream_options.get("include_usage", False)
            if not isinstance(include_usage, bool):
                raise RequestValidationError("stream_options.include_usage", "must be a boolean")
        max_tokens = _check_int(body, "max_tokens", 1)
        max_completion_tokens = _check_int(body, "max_completion_tokens", 1)
        if max_completion_tokens is not None:
            # The newer name wins: it is what current OpenAI SDKs send.
            max_tokens = max_completion_tokens
        tools = _validate_tools(body.get("tools"))
        parallel_tool_calls = body.get("parallel_tool_calls")
        if parallel_tool_calls is not None and not isinstance(parallel_tool_calls, bool):
            raise RequestValidationError("parallel_tool_calls", "must be a boolean")
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise RequestValidationError(
                "metadata", f"must be an object, got {json_kind(metadata)}"
            )
        seed = body.get("seed")
        if seed is not None and not _is_int(seed):
            raise RequestValidationError("seed", f"must be an integer, got {json_kind(seed)}")
        return cls(
            model=model,
            messages=messages,
            stream=stream,
            temperature=_check_number(body, "temperature", 0, 2),
            top_p=_check_number(body, "top_p", 0, 1),
            max_tokens=max_tokens,
            stop=_validate_stop(body.get("stop")),
            tools=tools,
            tool_choice=_validate_tool_choice(body.get("tool_choice"), tools),
            response_format=_validate_response_format(body.get("response_format")),
            user=_check_str(body, "user"),
            n=_check_int(body, "n", 1, 128),
            seed=seed,
            presence_penalty=_check_number(body, "presence_penalty", -2, 2),
            frequency_penalty=_check_number(body, "frequency_penalty", -2, 2),
            parallel_tool_calls=parallel_tool_calls,
            include_usage=include_usage,
            metadata=metadata or {},
            extra={k: v for k, v in body.items() if k not in _KNOWN_FIELDS},
        )

    @property
    def stop_sequences(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def to_openai_body(
        self,
        model: str,
        *,
        max_tokens_field: str = "max_tokens",
        developer_role: bool = True,
    ) -> dict:
        """The body to send to an OpenAI-format upstream for `model`.

        Unset fields and Auterity-only ones (`metadata`) are left out; `tool_choice` and
        `parallel_tool_calls` only go with tools (OpenAI rejects them otherwise).
        `developer_role=False` rewrites developer messages as system ones for servers that
        predate the developer role. Streaming options are the adapter's business.
        """
        messages = self.messages
        if not developer_role and any(m.get("role") == "developer" for m in messages):
            messages = [
                {**m, "role": "system"} if m.get("role") == "developer" else m for m in messages
            ]
        body: dict[str, Any] = dict(self.extra)
        body["model"] = model
        body["messages"] = messages
        for name in (
            "temperature",
            "top_p",
            "n",
            "stop",
            "response_format",
            "user",
            "seed",
            "presence_penalty",
            "frequency_penalty",
        ):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        if self.max_tokens is not None:
            body[max_tokens_field] = self.max_tokens
        if self.tools:
            body["tools"] = self.tools
            if self.tool_choice is not None:
                body["tool_choice"] = self.tool_choice
            if self.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = self.parallel_tool_calls
        if self.stream:
            body["stream"] = True
        return body

    def required_capabilities(self) -> frozenset[Capability]:
        """What a model must support to serve this request."""
        needs = set()
        if self.tools:
            needs.add(Capability.TOOLS)
        if self.stream:
            needs.add(Capability.STREAMING)
        if self.response_format and self.response_format.get("type") in (
            "json_object",
            "json_schema",
        ):
            needs.add(Capability.JSON_MODE)
        if self.n is not None and self.n > 1:
            needs.add(Capability.MULTIPLE_CHOICES)
        if any(
            isinstance(part, dict) and part.get("type") == "image_url"
            for message in self.messages
            if isinstance(message.get("content"), list)
            for part in message["content"]
        ):
            needs.add(Capability.VISION)
        return frozenset(needs)


_MAX_EMBEDDING_INPUTS = 2048  # OpenAI's documented limit per request
_ENCODING_FORMATS = ("float", "base64")
_EMBEDDING_FIELDS = frozenset(
    {"model", "input", "encoding_format", "dimensions", "user", "metadata"}
)


def _validate_embedding_input(value: Any) -> list[str | list[int]]:
    """OpenAI's `input`: a string, an array of strings, an array of token ids (one input) or
    an array of token-id arrays; returned as a list of inputs (strings or token lists)."""
    if isinstance(value, str):
        inputs: list = [value]
    elif isinstance(value, list) and value and all(_is_int(v) for v in value):
        inputs = [value]
    elif isinstance(value, list) and value:
        inputs = value
    else:
        raise RequestValidationError(
            "input", "must be a non-empty string, array of strings or array of token arrays"
        )
    if len(inputs) > _MAX_EMBEDDING_INPUTS:
        raise RequestValidationError("input", f"at most {_MAX_EMBEDDING_INPUTS} inputs")
    for i, item in enumerate(inputs):
        if isinstance(item, str):
            if not item:
                raise RequestValidationError(f"input[{i}]", "must not be an empty string")
        elif not (isinstance(item, list) and item and all(_is_int(t) for t in item)):
            raise RequestValidationError(
                f"input[{i}]", "must be a non-empty string or a non-empty array of token ids"
            )
    return inputs


@dataclass
class EmbeddingsRequest:
    """One embeddings call in OpenAI's shape (`POST /v1/embeddings`). `inputs` is always a
    list: strings, or token-id lists (which only OpenAI-format providers accept). `metadata`
    is Auterity's routing input, never sent upstream."""

    model: str
    inputs: list
    encoding_format: str = "float"
    dimensions: int | None = None
    user: str | None = None
    metadata: dict = field(default_factory=dict)

    @classmethod
    def from_openai(cls, body: Any) -> EmbeddingsRequest:
        """Validate an OpenAI embeddings body; RequestValidationError names the field."""
        if not isinstance(body, dict):
            raise RequestValidationError("body", f"must be a JSON object, got {json_kind(body)}")
        unknown = sorted(set(body) - _EMBEDDING_FIELDS)
        if unknown:
            raise RequestValidationError(unknown[0], "is not an embeddings parameter")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise RequestValidationError("model", "must be a non-empty string")
        encoding = body.get("encoding_format") or "float"
        if encoding not in _ENCODING_FORMATS:
            raise RequestValidationError("encoding_format", "must be 'float' or 'base64'")
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise RequestValidationError(
                "metadata", f"must be an object, got {json_kind(metadata)}"
            )
        return cls(
            model=model,
            inputs=_validate_embedding_input(body.get("input")),
            encoding_format=encoding,
            dimensions=_check_int(body, "dimensions", 1, 65536),
            user=_check_str(body, "user"),
            metadata=metadata or {},
        )

    # What routing reads of a request (routing.decisions.request_context), as ChatRequest has.
    stream = False
    max_tokens = None
    n = None

    def required_capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.EMBEDDINGS})

    @property
    def texts(self) -> list[str] | None:
        """The inputs as strings, or None when some input is token ids."""
        if all(isinstance(item, str) for item in self.inputs):
            return list(self.inputs)
        return None

    def to_openai_body(self, model: str) -> dict:
        body: dict[str, Any] = {"model": model, "input": self.inputs}
        body["encoding_format"] = self.encoding_format
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        if self.user is not None:
            body["user"] = self.user
        return body


def estimate_embedding_tokens(request: EmbeddingsRequest) -> int:
    """Input tokens of an embeddings request before the call: token-id inputs count exactly,
    text with the model's BPE as chat text is (tokens.py)."""
    count = tokens.counter(tokens.encoding_for_model(request.model))
    return sum(len(item) if isinstance(item, list) else count(item) for item in request.inputs)


def image_url_of(part: Mapping) -> str:
    """The URL of an `image_url` content part (the object form or the bare-string form)."""
    image = part.get("image_url")
    return image if isinstance(image, str) else image["url"]


def split_data_url(url: str) -> tuple[str, str]:
    """(media type, base64 payload) of a `data:<type>;base64,<payload>` URL."""
    header, _, payload = url.partition(",")
    media_type = header[len("data:") :].split(";", 1)[0].strip()
    return media_type or "application/octet-stream", payload


def text_tokens(chars: int) -> int:
    """Tokens for `chars` characters of text by the chars/4 rule of thumb, rounded up: only for
    output a provider did not count (the adapters keep characters, not text, of a stream)."""
    return -(-chars // _CHARS_PER_TOKEN)


def estimate_input_tokens(request: ChatRequest) -> int:
    """Estimate the prompt tokens of `request` before calling anyone.

    Every text part, tool call and tool definition is counted with OpenAI's BPE for the
    requested model (tokens.py): exact for an OpenAI model's text, an approximation for other
    providers' tokenizers (docs/providers.md#token-estimates has the measured error). Framing
    follows OpenAI's documented rule for its current chat models: 3 tokens per message, 1 more
    for a `name`, 3 to prime the reply; each image counts a flat 85 (the low-detail price).
    Tool definitions are counted as their JSON, which is wordier than the form OpenAI feeds
    the model, so an estimate with tools is a little high. It is used for routing (context
    window checks, the cost guard, the token rate limit) and as the fallback when a provider
    reports no usage; the provider's own count replaces it whenever one arrives.
    """
    count = tokens.counter(tokens.encoding_for_model(request.model))
    total = _TOKENS_REPLY_PRIMING
    for message in request.messages:
        total += _TOKENS_PER_MESSAGE
        content = message.get("content")
        if isinstance(content, str):
            total += count(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "image_url":
                    total += _TOKENS_PER_IMAGE
                else:
                    text = part.get("text") or part.get("refusal")
                    if isinstance(text, str):
                        total += count(text)
        name = message.get("name")
        if isinstance(name, str) and name:
            total += _TOKENS_PER_NAME + count(name)
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            total += count(function.get("name") or "") + count(function.get("arguments") or "")
    if request.tools:
        total += count(json.dumps(request.tools, separators=(",", ":")))
    return total


@dataclass(frozen=True)
class Usage:
    """Tokens one call consumed, in OpenAI's convention whatever the provider's: `prompt_tokens`
    counts every input token, including `cached_tokens` (read from the provider's prompt
    cache) and `cache_write_tokens` (written to it, which Anthropic bills); `completion_tokens`
    counts every output token, including `reasoning_tokens` (hidden thinking, billed as
    output). Each adapter converts its provider's fields to this (docs/providers.md#usage).
    `estimated` is True when a count came from our estimate because the provider did not say
    (some OpenAI-compatible servers, broken streams)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict:
        """OpenAI's `usage` object; the details only when there is something in them."""
        data: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cached_tokens or self.cache_write_tokens:
            data["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
            if self.cache_write_tokens:
                # Not an OpenAI field: Anthropic's name for it, as LiteLLM also reports it.
                data["cache_creation_input_tokens"] = self.cache_write_tokens
        if self.reasoning_tokens:
            data["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return data


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


# Keys of a provider's config that are ProviderEndpoint fields rather than options.
_ENDPOINT_FIELDS = ("base_url", "timeout", "connect_timeout")


@dataclass(frozen=True)
class ProviderEndpoint:
    """Where and how to reach one provider account.

    `api_key` is plaintext in memory only and kept out of repr. `timeout` is the read
    timeout (seconds between bytes, so it also bounds a stalled stream), `connect_timeout`
    the TCP/TLS connect timeout. `options` are the rest of the provider's config: the keys
    every type reads (options.COMMON_OPTIONS) and the ones its adapter class declares
    (`ProviderAdapter.options`). `type` names the adapter (`adapter_for` refuses an unknown
    one). Options are frozen on construction so an endpoint can key caches.
    """

    provider_id: str
    type: str
    base_url: str
    api_key: str = field(default="", repr=False)
    timeout: float = 60.0
    connect_timeout: float = 5.0
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self):
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        object.__setattr__(self, "options", _freeze(self.options or {}))

    @classmethod
    def from_config(
        cls, provider_id: str, type: str, config: Mapping[str, Any], api_key: str = ""
    ) -> ProviderEndpoint:
        """Build from a Provider row's `config` JSON: base_url and timeouts become fields,
        every other key an option."""
        kwargs = {}
        if config.get("timeout") is not None:
            kwargs["timeout"] = float(config["timeout"])
        if config.get("connect_timeout") is not None:
            kwargs["connect_timeout"] = float(config["connect_timeout"])
        return cls(
            provider_id=provider_id,
            type=type,
            base_url=config.get("base_url", ""),
            api_key=api_key or "",
            options={k: v for k, v in config.items() if k not in _ENDPOINT_FIELDS},
            **kwargs,
        )
