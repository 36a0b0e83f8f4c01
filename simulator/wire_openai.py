"""OpenAI Chat Completions wire format (also served for Azure OpenAI deployments)."""

from __future__ import annotations

import json
import re
import time

from .generation import (
    Generation,
    RequestInvalid,
    choose_tool,
    max_tokens_field,
    prompt_tokens_for,
    random_id,
)

# Fixed `created` values so /v1/models answers the same on every run.
_MODEL_CREATED = {
    "gpt-4o": 1715367049,
    "gpt-4o-mini": 1721172741,
    "gpt-4.1": 1744316542,
    "gpt-4.1-mini": 1744318173,
    "gpt-3.5-turbo": 1677610602,
}
_DEFAULT_CREATED = 1700000000
_FINGERPRINT = "fp_sim0000001"

_AZURE_API_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2}(-preview)?|v1|latest|preview)$")


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# --- errors ---------------------------------------------------------------------------------

_FAULT_ERRORS = {
    429: (
        "Rate limit reached for requests. Please try again later.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    502: ("Bad gateway.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
    504: ("Gateway timeout.", "server_error", None),
    529: ("The server is overloaded.", "server_error", None),
}


def error_body(message: str, type_: str, param=None, code=None) -> bytes:
    return _dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def fault_error(status: int) -> bytes:
    message, type_, code = _FAULT_ERRORS[status]
    return error_body(message, type_, None, code)


def invalid(exc: RequestInvalid) -> bytes:
    return error_body(exc.message, "invalid_request_error", exc.param, exc.code)


def unknown_url(method: str, path: str) -> bytes:
    return error_body(f"Invalid URL ({method} {path})", "invalid_request_error")


def check_auth(headers) -> RequestInvalid | None:
    value = headers.get("Authorization", "")
    scheme, _, key = value.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return RequestInvalid(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
            "or as the password field (with blank username) if you're accessing the API "
            "from your browser and are prompted for a username. You can obtain an API key "
            "from https://platform.openai.com/account/api-keys.",
        )
    if key == "invalid":
        return RequestInvalid(
            401,
            f"Incorrect API key provided: {key}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )
    return None


# --- Azure specifics ------------------------------------------------------------------------


def azure_error_body(code: str, message: str) -> bytes:
    return _dumps({"error": {"code": code, "message": message}})


AZURE_AUTH_MESSAGE = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
    "provide a valid key for an active subscription and use a correct regional API "
    "endpoint for your resource."
)


def azure_check(headers, query) -> tuple[int, bytes] | None:
    """Azure's own gate before the OpenAI-shaped handler: api-version, then the key."""
    version = query.get("api-version")
    if not version:
        return 404, azure_error_body("404", "Resource not found")
    if not _AZURE_API_VERSION.match(version):
        return 400, azure_error_body("BadRequest", "API version not supported")
    key = headers.get("api-key", "").strip()
    if not key:
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
    if not key or key == "invalid":
        return 401, azure_error_body("401", AZURE_AUTH_MESSAGE)
    return None


def azure_rate_limit_body(api_version: str, retry_after: int) -> bytes:
    return azure_error_body(
        "429",
        "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
        f"{api_version} have exceeded call rate limit of your current OpenAI S0 pricing tier. "
        f"Please retry after {retry_after} seconds. Please go here: "
        "https://aka.ms/oai/quotaincrease if you would like to further increase the default "
        "rate limit.",
    )


def azure_models_body(ids) -> bytes:
    """GET /openai/models: the base models the resource can deploy."""
    return _dumps(
        {
            "data": [
                {
                    "id": model_id,
                    "object": "model",
                    "created_at": _MODEL_CREATED.get(model_id, _DEFAULT_CREATED),
                    "status": "succeeded",
                    "capabilities": {
                        "chat_completion": True,
                        "completion": False,
                        "embeddings": False,
                        "fine_tune": False,
                        "inference": True,
                    },
                    "lifecycle_status": "generally-available",
                }
                for model_id in ids
            ],
            "object": "list",
        }
    )


# --- models ---------------------------------------------------------------------------------


def _model_object(model_id: str) -> dict:
    return {
        "id": model_id,
        "object": "model",
        "created": _MODEL_CREATED.get(model_id, _DEFAULT_CREATED),
        "owned_by": "openai" if model_id in _MODEL_CREATED else "system",
    }


def models_body(ids) -> bytes:
    return _dumps({"object": "list", "data": [_model_object(i) for i in ids]})


def model_body(model_id: str, ids) -> tuple[int, bytes]:
    if model_id not in ids:
        return 404, error_body(
            f"The model '{model_id}' does not exist",
            "invalid_request_error",
            "model",
            "model_not_found",
        )
    return 200, _dumps(_model_object(model_id))


# --- chat completions -----------------------------------------------------------------------


def _text_of(content) -> tuple[int, str]:
    if isinstance(content, str):
        return len(content), content
    if isinstance(content, list):
        texts = [
            p.get("text", "")
            for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        ]
        joined = "".join(texts)
        return len(joined), joined
    return 0, ""


def parse(body, default_model: str | None = None) -> Generation:
    if not isinstance(body, dict):
        raise RequestInvalid(400, "Invalid body: expected a JSON object.")
    model = body.get("model") or default_model
    if not model:
        raise RequestInvalid(400, "you must provide a model parameter")
    if not isinstance(model, str):
        raise RequestInvalid(400, "Invalid type for 'model': expected a string.", param="model")
    messages = body.get("messages")
    if messages is None:
        raise RequestInvalid(
            400,
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    if not isinstance(messages, list):
        raise RequestInvalid(
            400, "Invalid type for 'messages': expected an array.", param="messages"
        )
    if not messages:
        raise RequestInvalid(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but "
            "got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    characters = 0
    last_user_text = ""
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message:
            raise RequestInvalid(
                400,
                f"Missing required parameter: 'messages[{index}].role'.",
                param=f"messages[{index}].role",
                code="missing_required_parameter",
            )
        count, text = _text_of(message.get("content"))
        characters += count
        if message["role"] == "user":
            last_user_text = text
    completion = max_tokens_field(body, "max_completion_tokens", "max_tokens")
    stream = body.get("stream") is True
    options = body.get("stream_options")
    include_usage = stream and isinstance(options, dict) and options.get("include_usage") is True
    return Generation(
        model=model,
        prompt_tokens=prompt_tokens_for(characters),
        completion_tokens=completion,
        tool_call=_tool_call(body, last_user_text),
        stream=stream,
        include_usage=include_usage,
    )


def _tool_call(body: dict, last_user_text: str):
    tools = []
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            tools.append((function["name"], function.get("parameters") or {}))
    choice = body.get("tool_choice", "auto")
    if choice == "none":
        return None
    forced_name = None
    if isinstance(choice, dict):
        forced_name = (choice.get("function") or {}).get("name")
    forced = choice == "required" or forced_name is not None
    return choose_tool(tools, forced, forced_name, last_user_text)


def _usage(gen: Generation) -> dict:
    return {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "total_tokens": gen.total_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def new_id() -> str:
    return "chatcmpl-" + random_id(29)


def render(gen: Generation, response_id: str) -> bytes:
    message = {"role": "assistant", "content": gen.text, "refusal": None, "annotations": []}
    finish_reason = "stop"
    if gen.tool_call is not None:
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": "call_" + random_id(24),
                "type": "function",
                "function": {
                    "name": gen.tool_call.name,
                    "arguments": json.dumps(gen.tool_call.arguments),
                },
            }
        ]
        finish_reason = "tool_calls"
    return _dumps(
        {
            "id": response_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": gen.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": _usage(gen),
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }
    )


def _fragments(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def stream(gen: Generation, response_id: str) -> list[bytes]:
    """The SSE events of the answer, each framed `data: ...\\n\\n`, ending with [DONE]."""
    common = {
        "id": response_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": gen.model,
        "service_tier": "default",
        "system_fingerprint": _FINGERPRINT,
    }

    def chunk(delta: dict, finish_reason=None) -> bytes:
        payload = {
            **common,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if gen.include_usage:
            payload["usage"] = None
        return b"data: " + _dumps(payload) + b"\n\n"

    events = []
    if gen.tool_call is None:
        events.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        events.extend(chunk({"content": word}) for word in gen.words)
        events.append(chunk({}, "stop"))
    else:
        call_id = "call_" + random_id(24)
        header = {"index": 0, "id": call_id, "type": "function"}
        header["function"] = {"name": gen.tool_call.name, "arguments": ""}
        events.append(
            chunk({"role": "assistant", "content": None, "tool_calls": [header], "refusal": None})
        )
        for fragment in _fragments(json.dumps(gen.tool_call.arguments)):
            events.append(
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]})
            )
        events.append(chunk({}, "tool_calls"))
    if gen.include_usage:
        payload = {**common, "choices": [], "usage": _usage(gen)}
        events.append(b"data: " + _dumps(payload) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events
