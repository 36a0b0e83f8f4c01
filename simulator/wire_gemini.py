"""Gemini API (generativelanguage, v1beta) wire format."""

from __future__ import annotations

import json

from . import embeddings as embedding_vectors
from .generation import (
    DEFAULT_COMPLETION_TOKENS,
    FINISH_LENGTH,
    FINISH_STOP,
    FINISH_STOP_SEQUENCE,
    FINISH_TOOL,
    Generation,
    Output,
    RequestInvalid,
    choose_tool,
    json_answer_output,
    json_output,
    prompt_tokens_for,
    random_id,
    text_output,
    tool_output,
)
from .instances import instance_for

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
    "gemini-embedding-001": ("Gemini Embedding 001", 2048, 1),
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
    if embedding_vectors.is_embedding_model(model_id):
        methods = ["embedContent", "countTextTokens", "countTokens"]
    else:
        methods = ["generateContent", "countTokens"]
    model = {
        "name": f"models/{model_id}",
        "version": "001",
        "displayName": display,
        "description": f"Simulated {display}",
        "inputTokenLimit": input_limit,
        "outputTokenLimit": output_limit,
        "supportedGenerationMethods": methods,
    }
    if not embedding_vectors.is_embedding_model(model_id):
        model.update(temperature=1, topP=0.95, topK=64, maxTemperature=2)
        if _family(model_id) is not None:
            model["thinking"] = True
    return model


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


def _prompt(body: dict) -> tuple[str, str]:
    """The prompt's text (system instruction, then contents) and the last user text."""
    contents = body.get("contents")
    if isinstance(contents, dict):
        contents = [contents]
    if not contents or not isinstance(contents, list):
        raise RequestInvalid(400, "* GenerateContentRequest.contents: contents is not specified\n")
    texts = [_parts_text(_get(body, "systemInstruction", "system_instruction"))]
    last_user_text = ""
    for content in contents:
        text = _parts_text(content)
        texts.append(text)
        if not isinstance(content, dict) or content.get("role", "user") == "user":
            last_user_text = text
    return "".join(texts), last_user_text


# Implicit caching: the shortest prompt cached per model family (simulator's rule, README).
CACHE_MINIMUM_TOKENS = {"pro": 2048, "flash": 1024}
# Thinking tokens a thinking model spends when the request sets no thinkingBudget, and with
# -1 (dynamic), and the budgets each family accepts (simulator's rule, README). Pro always
# thinks. Real Flash models also think dynamically by default; the simulator's Flash thinks
# only when asked (a budget, or -1), so that its answers keep the plain, fixed size that
# tests and cost checks count on.
DEFAULT_THINKING_TOKENS = {"pro": 1024, "flash": 0, "flash-lite": 0}
DYNAMIC_THINKING_TOKENS = {"pro": 1024, "flash": 512, "flash-lite": 512}
_THINKING_BUDGETS = {"pro": (128, 32768), "flash": (0, 24576), "flash-lite": (512, 24576)}


def _family(model: str) -> str | None:
    """ "pro", "flash" or "flash-lite" for thinking models (Gemini 2.5 and later), else None."""
    if not model.startswith("gemini-") or model.startswith(("gemini-1", "gemini-2.0")):
        return None
    if "flash-lite" in model:
        return "flash-lite"
    if "flash" in model:
        return "flash"
    if "pro" in model:
        return "pro"
    return None


def _thinking(config: dict, model: str) -> int:
    family = _family(model)
    thinking = _get(config, "thinkingConfig", "thinking_config")
    budget = (
        _get(thinking, "thinkingBudget", "thinking_budget") if isinstance(thinking, dict) else None
    )
    if family is None:
        if budget not in (None, 0):
            raise RequestInvalid(400, "Thinking is not supported by this model.")
        return 0
    if budget is None:
        return DEFAULT_THINKING_TOKENS[family]
    if budget == -1:
        return DYNAMIC_THINKING_TOKENS[family]
    low, high = _THINKING_BUDGETS[family]
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise RequestInvalid(
            400,
            "Invalid value at 'generation_config.thinking_config.thinking_budget' (TYPE_INT32), "
            f"{json.dumps(budget)}",
        )
    if budget == 0 and family == "pro":
        raise RequestInvalid(400, "Budget 0 is invalid. This model only works in thinking mode.")
    if budget != 0 and not low <= budget <= high:
        raise RequestInvalid(
            400,
            f"The thinking budget {budget} is invalid. Please choose a value between {low} and "
            f"{high}.",
        )
    return budget


def _json_schema(config: dict):
    """The schema of a JSON-mode request, {} for JSON without one, None for text."""
    mime = _get(config, "responseMimeType", "response_mime_type")
    schema = _get(config, "responseSchema", "response_schema")
    json_schema = _get(config, "responseJsonSchema", "response_json_schema")
    if schema is not None and json_schema is not None:
        raise RequestInvalid(400, "response_schema and response_json_schema cannot both be set.")
    if mime in (None, "text/plain"):
        if schema is not None or json_schema is not None:
            raise RequestInvalid(
                400,
                "* GenerateContentRequest.generation_config.response_mime_type: must be "
                "application/json when response_schema is set.\n",
            )
        return None
    if mime not in ("application/json", "text/x.enum"):
        raise RequestInvalid(
            400,
            "* GenerateContentRequest.generation_config.response_mime_type: allowed mimetypes "
            f"are `text/plain`, `application/json`, and `text/x.enum`. Got {mime}.\n",
        )
    chosen = json_schema if json_schema is not None else _lower_types(schema)
    if chosen is not None and not isinstance(chosen, dict):
        raise RequestInvalid(400, "Invalid JSON payload received. Unknown name for the schema.")
    return chosen or {}


def _stop_sequences(config: dict) -> tuple[str, ...]:
    value = _get(config, "stopSequences", "stop_sequences")
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RequestInvalid(
            400, "Invalid value at 'generation_config.stop_sequences' (TYPE_STRING)"
        )
    if len(value) > 5:
        raise RequestInvalid(
            400, "* GenerateContentRequest.generation_config.stop_sequences: at most 5 allowed.\n"
        )
    return tuple(value)


def _candidate_count(config: dict) -> int:
    value = _get(config, "candidateCount", "candidate_count")
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 8:
        raise RequestInvalid(
            400,
            "* GenerateContentRequest.generation_config.candidate_count: must be between 1 "
            "and 8.\n",
        )
    return value


def parse(body, model: str, stream: bool, ctx=None) -> Generation:
    if not isinstance(body, dict):
        raise RequestInvalid(400, "Invalid JSON payload received. Expected an object.")
    prompt_text, last_user_text = _prompt(body)
    config = _get(body, "generationConfig", "generation_config") or {}
    if not isinstance(config, dict):
        config = {}
    limit = None
    value = _get(config, "maxOutputTokens", "max_output_tokens")
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RequestInvalid(
                400,
                "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), "
                f"{json.dumps(value)}",
            )
        limit = value
    completion = limit if limit is not None else DEFAULT_COMPLETION_TOKENS
    stops = _stop_sequences(config)
    schema = _json_schema(config)
    thoughts = _thinking(config, model)
    tool_call = _tool_call(body, last_user_text)
    outputs = []
    for index in range(_candidate_count(config)):
        if tool_call is not None:
            outputs.append(tool_output(tool_call, completion))
        elif schema:
            outputs.append(json_output(instance_for(schema), limit))
        elif schema is not None:
            outputs.append(json_answer_output(completion, limit, offset=index))
        else:
            outputs.append(text_output(completion, stops, offset=index))
    cached = 0
    family = _family(model) or "flash"
    if ctx is not None:
        minimum = CACHE_MINIMUM_TOKENS["pro" if family == "pro" else "flash"]
        cached = ctx.cache.automatic((ctx.name, "gemini", model), prompt_text, minimum)
    return Generation(
        model=model,
        prompt_tokens=prompt_tokens_for(len(prompt_text)),
        outputs=tuple(outputs),
        stream=stream,
        cached_tokens=cached,
        reasoning_tokens=thoughts,
    )


def count_tokens(body) -> bytes:
    if not isinstance(body, dict):
        raise RequestInvalid(400, "Invalid JSON payload received. Expected an object.")
    request = body.get("generateContentRequest") or body.get("generate_content_request") or body
    prompt_text, _ = _prompt(request)
    tokens = prompt_tokens_for(len(prompt_text))
    return _dumps(
        {"totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]}
    )


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


_FINISH_REASONS = {
    FINISH_STOP: "STOP",
    FINISH_STOP_SEQUENCE: "STOP",
    FINISH_LENGTH: "MAX_TOKENS",
    FINISH_TOOL: "STOP",
}


def _usage(gen: Generation, emitted: int) -> dict:
    """usageMetadata: thoughts are billed as output but counted apart from the candidates."""
    usage = {
        "promptTokenCount": gen.prompt_tokens,
        "candidatesTokenCount": emitted,
        "totalTokenCount": gen.prompt_tokens + emitted + gen.reasoning_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": gen.prompt_tokens}],
    }
    if gen.cached_tokens:
        usage["cachedContentTokenCount"] = gen.cached_tokens
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": gen.cached_tokens}]
    if gen.reasoning_tokens:
        usage["thoughtsTokenCount"] = gen.reasoning_tokens
    return usage


def _candidate(output: Output, index: int, parts: list[dict], finished: bool) -> dict:
    candidate = {"content": {"parts": parts, "role": "model"}}
    if finished:
        candidate["finishReason"] = _FINISH_REASONS[output.finish]
    candidate["index"] = index
    return candidate


def _response(gen: Generation, response_id: str, candidates: list[dict], emitted: int) -> dict:
    return {
        "candidates": candidates,
        "usageMetadata": _usage(gen, emitted),
        "modelVersion": gen.model,
        "responseId": response_id,
    }


def _final_parts(output: Output) -> list[dict]:
    if output.tool_call is not None:
        call = output.tool_call
        return [{"functionCall": {"name": call.name, "args": call.arguments}}]
    return [{"text": output.text}]


def _whole(gen: Generation, response_id: str) -> dict:
    candidates = [
        _candidate(output, index, _final_parts(output), True)
        for index, output in enumerate(gen.outputs)
    ]
    return _response(gen, response_id, candidates, gen.visible_tokens)


def render(gen: Generation, response_id: str) -> bytes:
    return _dumps(_whole(gen, response_id))


def _stream_responses(gen: Generation, response_id: str, pieces_per_chunk: int = 8):
    """Chunks of up to eight pieces per candidate; a candidate's last chunk carries its
    finishReason, and every chunk the usage so far (the last one the whole usage)."""
    longest = max(len(o.pieces) for o in gen.outputs)
    if gen.tool_call is not None or longest == 0:
        return [_whole(gen, response_id)]
    responses = []
    for start in range(0, longest, pieces_per_chunk):
        end = start + pieces_per_chunk
        candidates = []
        for index, output in enumerate(gen.outputs):
            if start >= len(output.pieces):
                continue
            text = "".join(output.pieces[start:end])
            finished = end >= len(output.pieces)
            candidates.append(_candidate(output, index, [{"text": text}], finished))
        last = end >= longest
        emitted = gen.visible_tokens if last else sum(min(end, o.tokens) for o in gen.outputs)
        responses.append(_response(gen, response_id, candidates, emitted))
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


# --- embeddings -----------------------------------------------------------------------------


def _embed_one(request, model: str, field: str) -> tuple[dict, int]:
    if not isinstance(request, dict):
        raise RequestInvalid(400, f"Invalid JSON payload received. {field} must be an object.")
    text = _parts_text(request.get("content"))
    if not text:
        raise RequestInvalid(400, f"* {field}.content: content is not specified\n")
    full = embedding_vectors.full_dimensions(model)
    dimensions = _get(request, "outputDimensionality", "output_dimensionality")
    if dimensions is None:
        dimensions = full
    elif isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
        raise RequestInvalid(
            400,
            f"Invalid value at '{field}.output_dimensionality' (TYPE_INT32), "
            f"{json.dumps(dimensions)}",
        )
    values = embedding_vectors.shortened(embedding_vectors.vector(text, full), dimensions)
    return {"values": values}, prompt_tokens_for(len(text))


def embed_content(body, model: str) -> tuple[bytes, int]:
    """POST models/{model}:embedContent -> {"embedding": {"values": [...]}} and its tokens."""
    embedding, tokens = _embed_one(body, model, "EmbedContentRequest")
    return _dumps({"embedding": embedding}), tokens


def batch_embed_contents(body, model: str) -> tuple[bytes, int]:
    """POST models/{model}:batchEmbedContents -> {"embeddings": [...]} in request order."""
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise RequestInvalid(
            400, "* BatchEmbedContentsRequest.requests: requests is not specified\n"
        )
    if len(requests) > 100:
        raise RequestInvalid(
            400, "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n"
        )
    embeddings, total = [], 0
    for index, request in enumerate(requests):
        field = f"BatchEmbedContentsRequest.requests[{index}]"
        named = request.get("model") if isinstance(request, dict) else None
        if named is not None and named != f"models/{model}":
            raise RequestInvalid(
                400,
                f"* {field}.model: Model name in the request ({named}) does not match the "
                f"model in the URL (models/{model}).\n",
            )
        embedding, tokens = _embed_one(request, model, field)
        embeddings.append(embedding)
        total += tokens
    return _dumps({"embeddings": embeddings}), total
