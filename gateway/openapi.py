"""The gateway's endpoints in the OpenAPI schema (`/api/schema/`, `/api/docs/`).

The gateway is not DRF (its views speak OpenAI's and Anthropic's own shapes), so
drf-spectacular cannot discover it; `gateway_schema_hook` (a postprocessing hook in
SPECTACULAR_SETTINGS) adds its paths and components to the generated schema. Each request
schema states the checks the gateway itself makes (types, ranges, required fields), each
response the status codes it answers with, so the schema can drive contract tests.
`ENDPOINTS` lists what is described; a path is only added while the URLconf serves it, so the
schema never documents an endpoint that does not answer.
"""

from __future__ import annotations

import re
from typing import Any

from django.urls import Resolver404, resolve

# --- building blocks ----------------------------------------------------------------------------


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict, required: tuple[str, ...] = (), **extra) -> dict:
    schema: dict[str, Any] = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    return schema


def nullable(schema: dict) -> dict:
    return (
        {"oneOf": [schema, {"type": "null"}]}
        if "$ref" in schema
        else {
            **schema,
            "nullable": True,
        }
    )


STRING = {"type": "string"}
NON_EMPTY = {"type": "string", "minLength": 1}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}
ANY_OBJECT = {"type": "object", "additionalProperties": True}
TOOL_NAME = {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"}
SSE = {"type": "string", "description": "Server-sent events (text/event-stream)."}

GATEWAY_HEADERS = {
    "X-Request-ID": "The gateway's id of this request (the request log's `request_id`).",
    "X-Auterity-Policy": "The routing policy that decided (`none` without one).",
    "X-Auterity-Provider": "The provider that answered (`none` when none did).",
    "X-Auterity-Model": "The model that answered.",
    "X-Auterity-Attempts": "Upstream calls made.",
    "X-Auterity-Cost-USD": "The request's cost in USD (not on streams: see the final usage).",
}


def _headers(names=tuple(GATEWAY_HEADERS)) -> dict:
    return {name: {"schema": STRING, "description": GATEWAY_HEADERS[name]} for name in names}


def json_body(schema: dict, description: str = "", headers: dict | None = None) -> dict:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        response["headers"] = headers
    return response


# --- OpenAI-compatible shapes -----------------------------------------------------------------

_TEXT_PART = obj({"type": {"enum": ["text"]}, "text": STRING}, ("type", "text"))
_IMAGE_PART = obj(
    {
        "type": {"enum": ["image_url"]},
        "image_url": obj(
            {
                "url": {
                    "type": "string",
                    "description": "An http(s) URL or a data:<type>;base64,<data> URL.",
                },
                "detail": {"enum": ["auto", "low", "high"]},
            },
            ("url",),
        ),
    },
    ("type", "image_url"),
)
_TOOL_CALL = obj(
    {
        "id": NON_EMPTY,
        "type": {"enum": ["function"]},
        "function": obj(
            {
                "name": NON_EMPTY,
                "arguments": {"type": "string", "description": "JSON-encoded arguments."},
            },
            ("name", "arguments"),
        ),
    },
    ("id", "function"),
)
_SAMPLING = {
    "temperature": {"type": "number", "minimum": 0, "maximum": 2, "nullable": True},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1, "nullable": True},
    "max_tokens": {"type": "integer", "minimum": 1, "nullable": True},
    "max_completion_tokens": {"type": "integer", "minimum": 1, "nullable": True},
    "stop": {
        "oneOf": [STRING, {"type": "array", "items": STRING, "maxItems": 4}],
        "nullable": True,
    },
    "n": {
        "type": "integer",
        "minimum": 1,
        "maximum": 128,
        "nullable": True,
        "description": "Choices per request; above 1 only OpenAI-format providers serve it, "
        "anything else is a 400 naming `n`.",
    },
    "seed": {"type": "integer", "nullable": True},
    "presence_penalty": {"type": "number", "minimum": -2, "maximum": 2, "nullable": True},
    "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2, "nullable": True},
    "user": {"type": "string", "nullable": True},
    "tools": {"type": "array", "items": ref("ChatTool"), "nullable": True},
    "tool_choice": {
        "oneOf": [
            {"enum": ["none", "auto", "required"]},
            obj(
                {"type": {"enum": ["function"]}, "function": obj({"name": TOOL_NAME}, ("name",))},
                ("type", "function"),
            ),
        ],
        "nullable": True,
    },
    "parallel_tool_calls": {"type": "boolean", "nullable": True},
    "response_format": {"allOf": [ref("ResponseFormat")], "nullable": True},
    "metadata": {
        "type": "object",
        "additionalProperties": True,
        "nullable": True,
        "description": "Auterity's: routing input (policies match `metadata.<key>`); never "
        "sent to a provider.",
    },
}

OPENAI_SCHEMAS: dict[str, dict] = {
    "OpenAIError": obj(
        {
            "error": obj(
                {
                    "message": STRING,
                    "type": STRING,
                    "param": {"type": "string", "nullable": True},
                    "code": {"type": "string", "nullable": True},
                },
                ("message", "type"),
            )
        },
        ("error",),
        description="OpenAI's error shape; `param` names the offending field.",
    ),
    "ChatMessage": obj(
        {
            "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
            "content": {
                "oneOf": [STRING, {"type": "array", "items": {"oneOf": [_TEXT_PART, _IMAGE_PART]}}],
                "nullable": True,
                "description": "Text, or text and image parts (images in user messages).",
            },
            "name": STRING,
            "tool_calls": {"type": "array", "items": _TOOL_CALL, "minItems": 1},
            "tool_call_id": {
                "type": "string",
                "description": "Tool messages: the id of the assistant tool call answered.",
            },
        },
        ("role",),
    ),
    "ChatTool": obj(
        {
            "type": {"enum": ["function"]},
            "function": obj(
                {"name": TOOL_NAME, "description": STRING, "parameters": ANY_OBJECT},
                ("name",),
            ),
        },
        ("function",),
    ),
    "ResponseFormat": obj(
        {
            "type": {"enum": ["text", "json_object", "json_schema"]},
            "json_schema": obj(
                {"name": TOOL_NAME, "schema": ANY_OBJECT, "strict": BOOLEAN}, ("name",)
            ),
        },
        ("type",),
        description="JSON mode, honoured by every adapter: OpenAI formats natively, Anthropic "
        "through a forced tool, Gemini through responseMimeType/responseSchema.",
    ),
    "ChatCompletionRequest": obj(
        {
            "model": NON_EMPTY,
            "messages": {"type": "array", "items": ref("ChatMessage"), "minItems": 1},
            "stream": {"type": "boolean", "nullable": True},
            "stream_options": obj({"include_usage": BOOLEAN}, nullable=True),
            **_SAMPLING,
        },
        ("model", "messages"),
        additionalProperties=True,
        description="OpenAI's chat completions body. Other OpenAI parameters (`logprobs`, "
        "`logit_bias`...) are forwarded to OpenAI-format providers.",
    ),
    "Usage": obj(
        {
            "prompt_tokens": INTEGER,
            "completion_tokens": INTEGER,
            "total_tokens": INTEGER,
            "cost": {"type": "number", "description": "Auterity's: this request's cost, USD."},
        },
        ("prompt_tokens", "completion_tokens", "total_tokens"),
    ),
    "ChatCompletion": obj(
        {
            "id": STRING,
            "object": {"enum": ["chat.completion"]},
            "created": INTEGER,
            "model": STRING,
            "choices": {
                "type": "array",
                "items": obj(
                    {
                        "index": INTEGER,
                        "message": obj(
                            {
                                "role": {"enum": ["assistant"]},
                                "content": {"type": "string", "nullable": True},
                                "refusal": {"type": "string", "nullable": True},
                                "tool_calls": {"type": "array", "items": _TOOL_CALL},
                            },
                            ("role",),
                        ),
                        "finish_reason": {"type": "string", "nullable": True},
                    },
                    ("index", "message"),
                ),
            },
            "usage": ref("Usage"),
        },
        ("id", "object", "created", "model", "choices", "usage"),
    ),
    "Model": obj(
        {
            "id": STRING,
            "object": {"enum": ["model"]},
            "created": INTEGER,
            "owned_by": {"type": "string", "description": "The model's default provider."},
        },
        ("id", "object", "created", "owned_by"),
    ),
    "ModelList": obj(
        {"object": {"enum": ["list"]}, "data": {"type": "array", "items": ref("Model")}},
        ("object", "data"),
    ),
}

# --- native API shapes ------------------------------------------------------------------------

_ATTEMPT = obj(
    {
        "provider": STRING,
        "model": STRING,
        "outcome": {"type": "string", "description": "`ok` or the error type."},
        "latency_ms": NUMBER,
        "status": INTEGER,
        "retry_after": NUMBER,
        "note": STRING,
    },
    ("provider", "model", "outcome", "latency_ms"),
)
_TARGET = obj(
    {
        "provider_id": STRING,
        "model": STRING,
        "upstream_model": STRING,
        "expected_cost": NUMBER,
        "reason": STRING,
    },
    ("provider_id", "model", "upstream_model", "expected_cost", "reason"),
)

NATIVE_SCHEMAS: dict[str, dict] = {
    "ExecuteRequest": obj(
        {
            "prompt": {"type": "string", "minLength": 1, "description": "Or `messages`."},
            "messages": {"type": "array", "items": ref("ChatMessage"), "minItems": 1},
            "system": STRING,
            "model": {
                "type": "string",
                "minLength": 1,
                "description": "Default: GATEWAY_DEFAULT_MODEL.",
            },
            **_SAMPLING,
        },
        additionalProperties=True,
        description="`prompt` or `messages` (not both); the OpenAI sampling fields; no "
        "streaming (use /v1/chat/completions).",
    ),
    "ExecuteResponse": obj(
        {
            "id": STRING,
            "output": {"type": "string", "nullable": True},
            "message": ANY_OBJECT,
            "finish_reason": {"type": "string", "nullable": True},
            "usage": ref("Usage"),
            "routing": obj(
                {
                    "policy": obj(
                        {
                            "id": {"type": "string", "nullable": True},
                            "name": {"type": "string", "nullable": True},
                        }
                    ),
                    "provider": STRING,
                    "model": STRING,
                    "requested_model": STRING,
                    "strategy": STRING,
                    "attempts": {"type": "array", "items": _ATTEMPT},
                    "cost_usd": NUMBER,
                    "baseline_cost_usd": NUMBER,
                    "latency_ms": NUMBER,
                    "reasons": {"type": "array", "items": STRING},
                },
                ("policy", "provider", "model", "attempts", "cost_usd", "baseline_cost_usd"),
            ),
        },
        ("id", "output", "message", "usage", "routing"),
    ),
    "SimulateRequest": {
        "oneOf": [ref("ChatCompletionRequest"), ref("ExecuteRequest")],
        "description": "Either API's body; `stream: true` makes the decision require streaming.",
    },
    "Decision": obj(
        {
            "policy_id": {"type": "string", "nullable": True},
            "policy_name": {"type": "string", "nullable": True},
            "strategy": STRING,
            "targets": {"type": "array", "items": _TARGET},
            "baseline": {**_TARGET, "nullable": True},
            "dropped": {
                "type": "array",
                "items": obj({"provider_id": STRING, "model": STRING, "reason": STRING}),
            },
            "reasons": {"type": "array", "items": STRING},
            "retry": ANY_OBJECT,
            "fallback": ANY_OBJECT,
            "timeout_s": {"type": "number", "nullable": True},
            "snapshot_version": {"oneOf": [STRING, INTEGER], "nullable": True},
        },
        ("strategy", "targets", "dropped", "reasons"),
    ),
    "SimulateResponse": obj(
        {
            "request_id": STRING,
            "input_tokens_estimate": INTEGER,
            "required_capabilities": {"type": "array", "items": STRING},
            "flags": {"type": "object", "additionalProperties": BOOLEAN},
            "decision": ref("Decision"),
        },
        ("request_id", "input_tokens_estimate", "required_capabilities", "flags", "decision"),
    ),
}

# --- Anthropic-compatible and embeddings shapes ------------------------------------------------

_ANTHROPIC_TEXT = obj(
    {"type": {"enum": ["text"]}, "text": STRING, "cache_control": ANY_OBJECT},
    ("type", "text"),
)
_ANTHROPIC_BLOCK = obj(
    {
        "type": {
            "enum": ["text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking"]
        },
        "text": STRING,
        "source": obj(
            {
                "type": {"enum": ["base64", "url"]},
                "media_type": {"enum": ["image/jpeg", "image/png", "image/gif", "image/webp"]},
                "data": STRING,
                "url": STRING,
            },
            ("type",),
        ),
        "id": STRING,
        "name": STRING,
        "input": ANY_OBJECT,
        "tool_use_id": STRING,
        "content": {"oneOf": [STRING, {"type": "array", "items": ANY_OBJECT}]},
        "is_error": BOOLEAN,
        "cache_control": ANY_OBJECT,
    },
    ("type",),
    description="A content block: text; image (base64 or url source); tool_use (assistant); "
    "tool_result (user); thinking blocks are accepted and dropped.",
)
_ANTHROPIC_PROMPT = {
    "model": NON_EMPTY,
    "messages": {
        "type": "array",
        "minItems": 1,
        "items": obj(
            {
                "role": {"enum": ["user", "assistant", "system"]},
                "content": {
                    "oneOf": [STRING, {"type": "array", "items": ref("AnthropicContentBlock")}]
                },
            },
            ("role", "content"),
        ),
    },
    "system": {"oneOf": [STRING, {"type": "array", "items": _ANTHROPIC_TEXT}]},
    "tools": {
        "type": "array",
        "items": obj(
            {
                "type": {"enum": ["custom"]},
                "name": TOOL_NAME,
                "description": STRING,
                "input_schema": ANY_OBJECT,
            },
            ("name", "input_schema"),
        ),
    },
    "tool_choice": obj(
        {
            "type": {"enum": ["auto", "any", "tool", "none"]},
            "name": STRING,
            "disable_parallel_tool_use": BOOLEAN,
        },
        ("type",),
    ),
    "output_config": obj(
        {
            "format": obj(
                {"type": {"enum": ["json_schema"]}, "schema": ANY_OBJECT}, ("type", "schema")
            ),
            "effort": STRING,
        }
    ),
    "cache_control": ANY_OBJECT,
    "thinking": {**ANY_OBJECT, "description": "Accepted, not forwarded."},
}

SURFACE_SCHEMAS: dict[str, dict] = {
    "AnthropicError": obj(
        {
            "type": {"enum": ["error"]},
            "error": obj({"type": STRING, "message": STRING}, ("type", "message")),
            "request_id": {"type": "string", "nullable": True},
        },
        ("type", "error"),
        description="Anthropic's error shape; `error.type` is Anthropic's for the status.",
    ),
    "AnthropicContentBlock": _ANTHROPIC_BLOCK,
    "AnthropicMessagesRequest": obj(
        {
            **_ANTHROPIC_PROMPT,
            "max_tokens": {"type": "integer", "minimum": 1},
            "stream": BOOLEAN,
            "stop_sequences": {"type": "array", "items": NON_EMPTY},
            "temperature": {"type": "number", "minimum": 0, "maximum": 1},
            "top_p": {"type": "number", "minimum": 0, "maximum": 1},
            "top_k": {**INTEGER, "description": "Accepted, not forwarded."},
            "metadata": obj(
                {"user_id": {"type": "string", "nullable": True}},
                additionalProperties=True,
                description="`user_id`, and Auterity's routing input (other keys).",
            ),
            "service_tier": STRING,
        },
        ("model", "max_tokens", "messages"),
        additionalProperties=False,
        description="Anthropic's Messages body (docs/gateway.md lists what each field does).",
    ),
    "AnthropicCountTokensRequest": obj(
        _ANTHROPIC_PROMPT, ("model", "messages"), additionalProperties=False
    ),
    "AnthropicTokenCount": obj({"input_tokens": INTEGER}, ("input_tokens",)),
    "AnthropicMessage": obj(
        {
            "id": STRING,
            "type": {"enum": ["message"]},
            "role": {"enum": ["assistant"]},
            "model": STRING,
            "content": {
                "type": "array",
                "items": obj(
                    {
                        "type": {"enum": ["text", "tool_use"]},
                        "text": STRING,
                        "id": STRING,
                        "name": STRING,
                        "input": ANY_OBJECT,
                    },
                    ("type",),
                ),
            },
            "stop_reason": {
                "enum": ["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal"]
            },
            "stop_sequence": {"type": "string", "nullable": True},
            "usage": obj(
                {
                    "input_tokens": INTEGER,
                    "output_tokens": INTEGER,
                    "cache_creation_input_tokens": INTEGER,
                    "cache_read_input_tokens": INTEGER,
                    "cost": {"type": "number", "description": "Auterity's: USD."},
                },
                ("input_tokens", "output_tokens"),
            ),
        },
        ("id", "type", "role", "model", "content", "stop_reason", "usage"),
    ),
    "EmbeddingsRequest": obj(
        {
            "model": NON_EMPTY,
            "input": {
                "oneOf": [
                    NON_EMPTY,
                    {"type": "array", "items": NON_EMPTY, "minItems": 1, "maxItems": 2048},
                    {"type": "array", "items": INTEGER, "minItems": 1},
                    {
                        "type": "array",
                        "items": {"type": "array", "items": INTEGER, "minItems": 1},
                        "minItems": 1,
                        "maxItems": 2048,
                    },
                ]
            },
            "encoding_format": {"enum": ["float", "base64"]},
            "dimensions": {"type": "integer", "minimum": 1, "maximum": 65536},
            "user": STRING,
            "metadata": {**ANY_OBJECT, "description": "Auterity's routing input."},
        },
        ("model", "input"),
        additionalProperties=False,
    ),
    "EmbeddingsResponse": obj(
        {
            "object": {"enum": ["list"]},
            "data": {
                "type": "array",
                "items": obj(
                    {
                        "object": {"enum": ["embedding"]},
                        "index": INTEGER,
                        "embedding": {
                            "oneOf": [
                                {"type": "array", "items": NUMBER},
                                {"type": "string", "description": "base64 float32 values"},
                            ]
                        },
                    },
                    ("object", "index", "embedding"),
                ),
            },
            "model": STRING,
            "usage": obj(
                {"prompt_tokens": INTEGER, "total_tokens": INTEGER, "cost": NUMBER},
                ("prompt_tokens", "total_tokens"),
            ),
        },
        ("object", "data", "model", "usage"),
    ),
}

# --- paths ------------------------------------------------------------------------------------

OPENAI_ERRORS = {
    "400": "Invalid body: `param` names the field.",
    "401": "No, unknown, expired or revoked key.",
    "403": "The key lacks the endpoint's scope.",
    "404": "No provider offers the model (`model_not_found`).",
    "413": "Body over MAX_REQUEST_BODY_BYTES.",
    "429": "The key's rate, token or budget limit, or every target rate limited (Retry-After).",
    "502": "Every target failed.",
    "503": "No target is eligible now (the message says why).",
    "504": "Every target timed out.",
}


def errors(codes: str, schema: str = "OpenAIError") -> dict:
    return {code: json_body(ref(schema), OPENAI_ERRORS[code]) for code in codes.split()}


API_KEY_SECURITY = [{"apiKey": []}, {"jwt": []}]


def _operation(summary: str, description: str, tag: str, **fields) -> dict:
    return {
        "summary": summary,
        "description": description,
        "tags": [tag],
        "security": API_KEY_SECURITY,
        **fields,
    }


# (URL name, path, {method: operation}) for every endpoint the gateway may serve.
ENDPOINTS: list[tuple[str, str, dict]] = [
    (
        "openai-chat-completions",
        "/v1/chat/completions",
        {
            "post": _operation(
                "Chat completion (OpenAI-compatible)",
                "Routed by the policies to any provider; the answer is OpenAI's whatever the "
                "provider. `stream: true` answers server-sent `chat.completion.chunk` events, "
                "a final usage chunk with `cost`, then `data: [DONE]`.",
                "gateway",
                operationId="chat_completions_create",
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": ref("ChatCompletionRequest")}},
                },
                responses={
                    "200": {
                        "description": "The completion, or its event stream.",
                        "headers": _headers(),
                        "content": {
                            "application/json": {"schema": ref("ChatCompletion")},
                            "text/event-stream": {"schema": SSE},
                        },
                    },
                    **errors("400 401 403 404 413 429 502 503 504"),
                },
            )
        },
    ),
    (
        "openai-models",
        "/v1/models",
        {
            "get": _operation(
                "List models (OpenAI-compatible)",
                "Every model an enabled provider offers; `owned_by` is its default provider.",
                "gateway",
                operationId="models_list",
                responses={
                    "200": json_body(ref("ModelList"), "The models."),
                    **errors("401 403"),
                },
            )
        },
    ),
    (
        "ai-execute",
        "/api/ai/execute",
        {
            "post": _operation(
                "Execute (native API)",
                "The output plus the routing decision: policy, provider, model, attempts, "
                "cost, baseline cost, latency.",
                "gateway",
                operationId="ai_execute",
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": ref("ExecuteRequest")}},
                },
                responses={
                    "200": json_body(ref("ExecuteResponse"), "Answer and decision.", _headers()),
                    **errors("400 401 403 404 413 429 502 503 504"),
                },
            )
        },
    ),
    (
        "routing-simulate",
        "/api/routing/simulate",
        {
            "post": _operation(
                "Dry run a routing decision",
                "The decision and its reasons for a request (either API's body); no provider "
                "is called and nothing is written. Scope `routing:view`.",
                "gateway",
                operationId="routing_simulate",
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": ref("SimulateRequest")}},
                },
                responses={
                    "200": json_body(
                        ref("SimulateResponse"), "The decision.", _headers(("X-Request-ID",))
                    ),
                    **errors("400 401 403 404 413"),
                },
            )
        },
    ),
]

ANTHROPIC_ERRORS = {
    "400": "invalid_request_error: the message starts with the field's path.",
    "401": "authentication_error: no, unknown, expired or revoked key.",
    "403": "permission_error: the key lacks ai:execute.",
    "404": "not_found_error: no provider offers the model.",
    "413": "request_too_large: body over MAX_REQUEST_BODY_BYTES.",
    "429": "rate_limit_error: the key's limits, or every target rate limited (Retry-After).",
    "502": "api_error: every target failed.",
    "503": "overloaded_error: no target is eligible now.",
    "504": "timeout_error: every target timed out.",
}
ANTHROPIC_SECURITY = [{"anthropicApiKey": []}, {"apiKey": []}]


def anthropic_errors(codes: str) -> dict:
    return {
        code: json_body(ref("AnthropicError"), ANTHROPIC_ERRORS[code]) for code in codes.split()
    }


ENDPOINTS += [
    (
        "openai-model",
        "/v1/models/{model}",
        {
            "get": _operation(
                "Retrieve a model (OpenAI-compatible)",
                "One model of GET /v1/models; 404 `model_not_found` for any other id.",
                "gateway",
                operationId="models_retrieve",
                parameters=[{"name": "model", "in": "path", "required": True, "schema": STRING}],
                responses={
                    "200": json_body(ref("Model"), "The model."),
                    **errors("401 403 404"),
                },
            )
        },
    ),
    (
        "openai-embeddings",
        "/v1/embeddings",
        {
            "post": _operation(
                "Embeddings (OpenAI-compatible)",
                "Routed by the policies among the providers that offer the model with the "
                "embeddings capability (OpenAI, Azure OpenAI, OpenAI-compatible, Gemini).",
                "gateway",
                operationId="embeddings_create",
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": ref("EmbeddingsRequest")}},
                },
                responses={
                    "200": json_body(ref("EmbeddingsResponse"), "The vectors.", _headers()),
                    **errors("400 401 403 404 413 429 502 503 504"),
                },
            )
        },
    ),
    (
        "anthropic-messages",
        "/v1/messages",
        {
            "post": {
                **_operation(
                    "Messages (Anthropic-compatible)",
                    "Anthropic's Messages API, routed by the same policies as chat completions "
                    "to any provider. `stream: true` answers Anthropic's server-sent events "
                    "(message_start, ping, content_block_start/delta/stop, message_delta, "
                    "message_stop).",
                    "gateway",
                    operationId="messages_create",
                    requestBody={
                        "required": True,
                        "content": {
                            "application/json": {"schema": ref("AnthropicMessagesRequest")}
                        },
                    },
                    responses={
                        "200": {
                            "description": "The message, or its event stream.",
                            "headers": _headers(),
                            "content": {
                                "application/json": {"schema": ref("AnthropicMessage")},
                                "text/event-stream": {"schema": SSE},
                            },
                        },
                        **anthropic_errors("400 401 403 404 413 429 502 503 504"),
                    },
                ),
                "security": ANTHROPIC_SECURITY,
            }
        },
    ),
    (
        "anthropic-count-tokens",
        "/v1/messages/count_tokens",
        {
            "post": {
                **_operation(
                    "Count tokens (Anthropic-compatible)",
                    "The prompt's input tokens: the provider's own count where the model's "
                    "provider has a counting endpoint (Anthropic, Gemini), else the gateway's "
                    "estimate. No model runs; nothing is billed.",
                    "gateway",
                    operationId="messages_count_tokens",
                    requestBody={
                        "required": True,
                        "content": {
                            "application/json": {"schema": ref("AnthropicCountTokensRequest")}
                        },
                    },
                    responses={
                        "200": json_body(ref("AnthropicTokenCount"), "The count."),
                        **anthropic_errors("400 401 403 404 413 502 503 504"),
                    },
                ),
                "security": ANTHROPIC_SECURITY,
            }
        },
    ),
]

SCHEMAS = {**OPENAI_SCHEMAS, **NATIVE_SCHEMAS, **SURFACE_SCHEMAS}


def _served(name: str, path: str) -> bool:
    """Whether the URLconf answers `path` (a `{parameter}` stands for any value) with the
    endpoint's own view (the URL named `name`), not a catch-all."""
    try:
        match = resolve(re.sub(r"\{\w+\}", "x", path))
    except Resolver404:
        return False
    return match.url_name == name


def gateway_schema_hook(result, generator, request, public):
    """drf-spectacular postprocessing hook: the gateway's paths and components."""
    paths = result.setdefault("paths", {})
    for name, path, operations in ENDPOINTS:
        if _served(name, path):
            paths[path] = operations
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(SCHEMAS)
    components.setdefault("securitySchemes", {})["anthropicApiKey"] = {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "An Auterity API key in Anthropic's header (Bearer works too).",
    }
    tags = result.setdefault("tags", [])
    if not any(tag.get("name") == "gateway" for tag in tags):
        tags.append(
            {
                "name": "gateway",
                "description": "The AI gateway: OpenAI- and Anthropic-compatible APIs and "
                "the native one (docs/gateway.md).",
            }
        )
    return result
