"""Gemini API (generativelanguage, v1beta) wire format."""

from __future__ import annotations

import json

from .generation import Generation, RequestInvalid, choose_tool, prompt_tokens_for, random_id

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
    529: "UNAVAILABLE",
}
_FAULT_MESSAGES = {
    429: "You exceeded your current quota, please check your plan and billing details.",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    502: "The service is currently unavailable.",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
    529: "The model is overloaded. Please try again later.",
}
# Gemini frames its server-sent events with CRLF line ends.
_SSE_END = b"\r\n\r\n"

_MODEL_INFO = {
    "gemini-2.5-pro": ("Gemini 2.5 Pro", 1048576, 65536),
    "gemini-2.5-flash": ("Gemini 2.5 Flash", 1048576, 65536),
    "gemini-2.0-flash": ("Gemini 2.0 Flash", 1048576, 8192),
    "gemini-2.0-flash-lite": ("Gemini 2.0 Flash-Lite", 1048576, 8192),
}


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def error_body(status: int, message: str, details: list | None = None) -> bytes:
    error = {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "INTERNAL")}
    if details:
        error["details"] = details
    return _dumps({"error": error})


def fault_error(status: int, retry_after: int) -> bytes:
    details = None
    if status == 429:
        details = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after}s"}
        ]
    return error_body(status, _FAULT_MESSAGES[status], details)


def invalid(exc: RequestInvalid) -> bytes:
    return error_body(exc.status, exc.message, exc.details)


def unknown_url(method: str, path: str) -> bytes:
    return error_body(404, f"Method not found: {method} {path}")


def check_auth(headers, query) -> RequestInvalid | None:
    key = headers.get("x-goog-api-key", "").strip() or query.get("key", "").strip()
    if not key:
        return RequestInvalid(
            403,
            "Method doesn't allow unregistered callers (callers without established "
            "identity). Please use API Key or other form of API consumer identity to call "
            "this API.",
        )
    if key == "invalid":
        message = "API key not valid. Please pass a valid API key."
        return RequestInvalid(
            400,
            message,
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": message,
                },
            ],
        )
    return None


# --- models ---------------------------------------------------------------------------------


def _model_object(model_id: str) -> dict:
    display, input_limit, output_limit = _MODEL_INFO.get(model_id, (model_id, 1048576, 8192))
    return {
        "name": f"models/{model_id}",
        "version": "001",
        "displayName": display,
        "description": f"Simulated {display}",
        "inputTokenLimit": input_limit,
        "outputTokenLimit": output_limit,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
    }


def models_body(ids) -> bytes:
    return _dumps({"models": [_model_object(i) for i in ids]})


def model_body(model_id: str, ids, api_version: str) -> tuple[int, bytes]:
    if model_id not in ids:
        return 404, error_body(
            404,
            f"models/{model_id} is not found for API version {api_version}, or is not "
            "supported for generateContent. Call ListModels to see the list of available "
            "models and their supported methods.",
        )
    return 200, _dumps(_model_object(model_id))


# --- generateContent ------------------------------------------------------------------------


def _get(obj: dict, camel: str, snake: str):
    """The REST API accepts proto field names in camelCase and snake_case alike."""
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _parts_text(content) -> str:
    if not isinstance(content, dict):
        return ""
    parts = content.get("parts")
    if not isinstance(parts, list):
        return ""
    return "".join(
        p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


def _prompt(body: dict) -> tuple[int, str]:
    contents = body.get("contents")
    if isinstance(contents, dict):
        contents = [contents]
    if not contents or not isinstance(contents, list):
        raise RequestInvalid(400, "* GenerateContentRequest.contents: contents is not specified\n")
    characters = len(_parts_text(_get(body, "systemInstruction", "system_instruction")))
    last_user_text = ""
    for content in contents:
        text = _parts_text(content)
        characters += len(text)
        if not isinstance(content, dict) or content.get("role", "user") == "user":
            last_user_text = text
    return characters, last_user_text


def parse(body, model: str, stream: bool) -> Generation:
    if not isinstance(body, dict):
        raise RequestInvalid(400, "Invalid JSON payload received. Expected an object.")
    characters, last_user_text = _prompt(body)
    config = _get(body, "generationConfig", "generation_config") or {}
    completion = 16
    if isinstance(config, dict):
        value = _get(config, "maxOutputTokens", "max_output_tokens")
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise RequestInvalid(
                    400,
                    "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), "
                    f"{json.dumps(value)}",
                )
            completion = value
    return Generation(
        model=model,
        prompt_tokens=prompt_tokens_for(characters),
        completion_tokens=completion,
        tool_call=_tool_call(body, last_user_text),
        stream=stream,
    )


def count_tokens(body) -> bytes:
    if not isinstance(body, dict):
        raise RequestInvalid(400, "Invalid JSON payload received. Expected an object.")
    request = body.get("generateContentRequest") or body.get("generate_content_request") or body
    characters, _ = _prompt(request)
    return _dumps({"totalTokens": prompt_tokens_for(characters)})


def _tool_call(body: dict, last_user_text: str):
    tools = []
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        for declaration in _get(tool, "functionDeclarations", "function_declarations") or []:
            if isinstance(declaration, dict) and isinstance(declaration.get("name"), str):
                schema = declaration.get("parameters") or _get(
                    declaration, "parametersJsonSchema", "parameters_json_schema"
                )
                tools.append((declaration["name"], _lower_types(schema or {})))
    tool_config = _get(body, "toolConfig", "tool_config") or {}
    calling = _get(tool_config, "functionCallingConfig", "function_calling_config") or {}
    mode = str(calling.get("mode", "AUTO")).upper()
    if mode == "NONE":
        return None
    allowed = _get(calling, "allowedFunctionNames", "allowed_function_names") or []
    forced_name = allowed[0] if allowed else None
    return choose_tool(tools, mode == "ANY", forced_name, last_user_text)


def _lower_types(schema):
    """Gemini's OpenAPI subset spells types in upper case (STRING, OBJECT, ...)."""
    if isinstance(schema, dict):
        return {
            k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


def new_id() -> str:
    return random_id(23)


def _response(gen: Generation, response_id: str, parts, finished: bool, emitted: int) -> dict:
    candidate = {"content": {"parts": parts, "role": "model"}}
    if finished:
        candidate["finishReason"] = "STOP"
    candidate["index"] = 0
    return {
        "candidates": [candidate],
        "usageMetadata": {
            "promptTokenCount": gen.prompt_tokens,
            "candidatesTokenCount": emitted,
            "totalTokenCount": gen.prompt_tokens + emitted,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": gen.prompt_tokens}],
        },
        "modelVersion": gen.model,
        "responseId": response_id,
    }


def _final_parts(gen: Generation) -> list[dict]:
    if gen.tool_call is not None:
        return [{"functionCall": {"name": gen.tool_call.name, "args": gen.tool_call.arguments}}]
    return [{"text": gen.text}]


def render(gen: Generation, response_id: str) -> bytes:
    return _dumps(_response(gen, response_id, _final_parts(gen), True, gen.completion_tokens))


def _stream_responses(gen: Generation, response_id: str, words_per_chunk: int = 8):
    if gen.tool_call is not None:
        return [_response(gen, response_id, _final_parts(gen), True, gen.completion_tokens)]
    words = gen.words
    responses = []
    for start in range(0, len(words), words_per_chunk):
        end = min(start + words_per_chunk, len(words))
        text = "".join(words[start:end])
        responses.append(_response(gen, response_id, [{"text": text}], end == len(words), end))
    return responses


def stream_sse(gen: Generation, response_id: str) -> list[bytes]:
    """`?alt=sse`: one `data:` event per GenerateContentResponse, usage on each."""
    return [b"data: " + _dumps(r) + _SSE_END for r in _stream_responses(gen, response_id)]


def stream_json_array(gen: Generation, response_id: str) -> list[bytes]:
    """Without alt=sse the same responses arrive as one JSON array, element by element."""
    responses = _stream_responses(gen, response_id)
    pieces = [(b"[" if i == 0 else b",\r\n") + _dumps(r) for i, r in enumerate(responses)]
    pieces.append(b"]")
    return pieces
