"""OpenAI Chat Completions wire format (also served for Azure OpenAI deployments)."""

from __future__ import annotations

import json
import re
import time

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
    max_tokens_field,
    prompt_tokens_for,
    random_id,
    text_output,
    tool_output,
)
from .instances import instance_for

# Fixed `created` values so /v1/models answers the same on every run.
_MODEL_CREATED = {
    "gpt-4o": 1715367049,
    "gpt-4o-mini": 1721172741,
    "gpt-4.1": 1744316542,
    "gpt-4.1-mini": 1744318173,
    "gpt-3.5-turbo": 1677610602,
    "o4-mini": 1744225351,
    "gpt-5": 1754425777,
    "text-embedding-3-small": 1705948997,
    "text-embedding-3-large": 1705953180,
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
                        "chat_completion": not embedding_vectors.is_embedding_model(model_id),
                        "completion": False,
                        "embeddings": embedding_vectors.is_embedding_model(model_id),
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

# Reasoning models think before they answer: o-series and gpt-5 (not its chat variant).
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
# Reasoning tokens spent per `reasoning_effort` (the simulator's rule; default "medium").
REASONING_TOKENS = {"none": 0, "minimal": 0, "low": 128, "medium": 512, "high": 2048}
# OpenAI caches prompts of at least this many tokens automatically.
CACHE_MINIMUM_TOKENS = 1024
_MAX_N = 128
_MAX_STOP = 4


def is_reasoning_model(model: str) -> bool:
    return model.startswith(_REASONING_PREFIXES) and "-chat" not in model


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


def _messages(body: dict) -> list:
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
    return messages


def _model(body: dict, default_model: str | None) -> str:
    model = body.get("model") or default_model
    if not model:
        raise RequestInvalid(400, "you must provide a model parameter")
    if not isinstance(model, str):
        raise RequestInvalid(400, "Invalid type for 'model': expected a string.", param="model")
    return model


def _n(body: dict) -> int:
    value = body.get("n")
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestInvalid(400, "Invalid type for 'n': expected an integer.", param="n")
    if value < 1:
        raise RequestInvalid(
            400,
            "Invalid 'n': integer below minimum value. Expected a value >= 1, but got "
            f"{value} instead.",
            param="n",
            code="integer_below_min_value",
        )
    if value > _MAX_N:
        raise RequestInvalid(
            400,
            f"Invalid 'n': integer above maximum value. Expected a value <= {_MAX_N}, but got "
            f"{value} instead.",
            param="n",
            code="integer_above_max_value",
        )
    return value


def _stop(body: dict) -> tuple[str, ...]:
    value = body.get("stop")
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RequestInvalid(
            400, "Invalid type for 'stop': expected a string or an array of strings.", param="stop"
        )
    if len(value) > _MAX_STOP:
        raise RequestInvalid(
            400,
            f"Invalid 'stop': array too long. Expected an array with maximum length {_MAX_STOP}, "
            f"but got an array with length {len(value)} instead.",
            param="stop",
            code="array_above_max_length",
        )
    return tuple(value)


def _response_format(body: dict, messages_text: str):
    """None for text, else ("json_object", None) or ("json_schema", schema)."""
    value = body.get("response_format")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RequestInvalid(
            400, "Invalid type for 'response_format': expected an object.", param="response_format"
        )
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        if "json" not in messages_text.lower():
            raise RequestInvalid(
                400,
                "'messages' must contain the word 'json' in some form, to use 'response_format' "
                "of type 'json_object'.",
                param="messages",
            )
        return ("json_object", None)
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict):
            raise RequestInvalid(
                400,
                "Missing required parameter: 'response_format.json_schema'.",
                param="response_format.json_schema",
                code="missing_required_parameter",
            )
        if not isinstance(spec.get("name"), str) or not spec["name"]:
            raise RequestInvalid(
                400,
                "Missing required parameter: 'response_format.json_schema.name'.",
                param="response_format.json_schema.name",
                code="missing_required_parameter",
            )
        schema = spec.get("schema")
        if schema is not None and not isinstance(schema, dict):
            raise RequestInvalid(
                400,
                "Invalid type for 'response_format.json_schema.schema': expected an object.",
                param="response_format.json_schema.schema",
            )
        return ("json_schema", schema or {"type": "object"})
    raise RequestInvalid(
        400,
        f"Invalid value: {json.dumps(kind)}. Supported values are: 'text', 'json_object', and "
        "'json_schema'.",
        param="response_format.type",
        code="invalid_value",
    )


def _reasoning(body: dict, model: str) -> int:
    if not is_reasoning_model(model):
        return 0
    effort = body.get("reasoning_effort")
    if effort is None:
        return REASONING_TOKENS["medium"]
    if effort not in REASONING_TOKENS:
        allowed = ", ".join(f"'{e}'" for e in REASONING_TOKENS)
        raise RequestInvalid(
            400,
            f"Invalid value: {json.dumps(effort)}. Supported values are: {allowed}.",
            param="reasoning_effort",
            code="invalid_value",
        )
    return REASONING_TOKENS[effort]


def parse(body, ctx=None, default_model: str | None = None) -> Generation:
    """The answer to a chat completion request (rules in generation.py and the README)."""
    if not isinstance(body, dict):
        raise RequestInvalid(400, "Invalid body: expected a JSON object.")
    model = _model(body, default_model)
    messages = _messages(body)
    texts = []
    last_user_text = ""
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message:
            raise RequestInvalid(
                400,
                f"Missing required parameter: 'messages[{index}].role'.",
                param=f"messages[{index}].role",
                code="missing_required_parameter",
            )
        _, text = _text_of(message.get("content"))
        texts.append(text)
        if message["role"] == "user":
            last_user_text = text
    prompt_text = "".join(texts)
    n = _n(body)
    stops = _stop(body)
    json_mode = _response_format(body, prompt_text)
    limit = None
    for name in ("max_completion_tokens", "max_tokens"):
        if body.get(name) is not None:
            limit = max_tokens_field(body, name)
            break
    visible = limit if limit is not None else DEFAULT_COMPLETION_TOKENS
    reasoning = _reasoning(body, model)
    cut_by_reasoning = False
    if reasoning and limit is not None:
        # max_completion_tokens bounds reasoning and answer together.
        if reasoning >= limit:
            reasoning, visible, cut_by_reasoning = limit, 0, True
        else:
            visible = limit - reasoning
    tool_call = _tool_call(body, last_user_text)
    outputs = []
    for index in range(n):
        if cut_by_reasoning:
            outputs.append(Output(finish=FINISH_LENGTH))
        elif tool_call is not None:
            outputs.append(tool_output(tool_call, visible))
        elif json_mode is not None:
            kind, schema = json_mode
            if kind == "json_schema":
                outputs.append(json_output(instance_for(schema), limit))
            else:
                outputs.append(json_answer_output(visible, limit, offset=index))
        else:
            outputs.append(text_output(visible, stops, offset=index))
    cached = 0
    if ctx is not None:
        cached = ctx.cache.automatic((ctx.name, "openai", model), prompt_text, CACHE_MINIMUM_TOKENS)
    stream = body.get("stream") is True
    options = body.get("stream_options")
    include_usage = stream and isinstance(options, dict) and options.get("include_usage") is True
    return Generation(
        model=model,
        prompt_tokens=prompt_tokens_for(len(prompt_text)),
        outputs=tuple(outputs),
        stream=stream,
        include_usage=include_usage,
        cached_tokens=cached,
        reasoning_tokens=reasoning * n,
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
        "prompt_tokens_details": {"cached_tokens": gen.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": gen.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


_FINISH_REASONS = {
    FINISH_STOP: "stop",
    FINISH_STOP_SEQUENCE: "stop",
    FINISH_LENGTH: "length",
    FINISH_TOOL: "tool_calls",
}


def new_id() -> str:
    return "chatcmpl-" + random_id(29)


def _call_id() -> str:
    return "call_" + random_id(24)


def _message(output: Output) -> dict:
    message = {"role": "assistant", "content": output.text, "refusal": None, "annotations": []}
    if output.tool_call is not None:
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": _call_id(),
                "type": "function",
                "function": {
                    "name": output.tool_call.name,
                    "arguments": json.dumps(output.tool_call.arguments),
                },
            }
        ]
    return message


def render(gen: Generation, response_id: str) -> bytes:
    return _dumps(
        {
            "id": response_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": gen.model,
            "choices": [
                {
                    "index": index,
                    "message": _message(output),
                    "logprobs": None,
                    "finish_reason": _FINISH_REASONS[output.finish],
                }
                for index, output in enumerate(gen.outputs)
            ],
            "usage": _usage(gen),
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }
    )


def _fragments(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _deltas(output: Output) -> list[dict]:
    """The deltas of one choice after its first chunk."""
    if output.tool_call is None:
        return [{"content": piece} for piece in output.pieces]
    arguments = json.dumps(output.tool_call.arguments)
    return [
        {"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}
        for fragment in _fragments(arguments)
    ]


def _first_delta(output: Output) -> dict:
    if output.tool_call is None:
        return {"role": "assistant", "content": "", "refusal": None}
    header = {"index": 0, "id": _call_id(), "type": "function"}
    header["function"] = {"name": output.tool_call.name, "arguments": ""}
    return {"role": "assistant", "content": None, "tool_calls": [header], "refusal": None}


def stream(gen: Generation, response_id: str) -> list[bytes]:
    """The SSE events of the answer, each framed `data: ...\n\n`, ending with [DONE].

    With n > 1 the choices advance together: each round sends one chunk per choice index.
    """
    common = {
        "id": response_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": gen.model,
        "service_tier": "default",
        "system_fingerprint": _FINGERPRINT,
    }

    def chunk(index: int, delta: dict, finish_reason=None) -> bytes:
        payload = {
            **common,
            "choices": [
                {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if gen.include_usage:
            payload["usage"] = None
        return b"data: " + _dumps(payload) + b"\n\n"

    outputs = gen.outputs
    deltas = [_deltas(output) for output in outputs]
    events = [chunk(i, _first_delta(output)) for i, output in enumerate(outputs)]
    for step in range(max(len(d) for d in deltas)):
        events.extend(chunk(i, d[step]) for i, d in enumerate(deltas) if step < len(d))
    events.extend(chunk(i, {}, _FINISH_REASONS[output.finish]) for i, output in enumerate(outputs))
    if gen.include_usage:
        payload = {**common, "choices": [], "usage": _usage(gen)}
        events.append(b"data: " + _dumps(payload) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


# --- embeddings -----------------------------------------------------------------------------

_INPUT_INVALID = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."


def _embedding_inputs(body: dict) -> list[tuple[str, int]]:
    """(text to embed, tokens) per input: a string, strings, token ids or lists of them."""
    value = body.get("input")
    if value is None:
        raise RequestInvalid(
            400,
            "Missing required parameter: 'input'.",
            param="input",
            code="missing_required_parameter",
        )
    if isinstance(value, str) or (
        isinstance(value, list)
        and value
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        value = [value]
    if not isinstance(value, list) or not value or len(value) > 2048:
        raise RequestInvalid(400, _INPUT_INVALID, param="input")
    inputs = []
    for item in value:
        if isinstance(item, str) and item:
            inputs.append((item, prompt_tokens_for(len(item))))
        elif (
            isinstance(item, list)
            and item
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in item)
        ):
            inputs.append((" ".join(map(str, item)), len(item)))
        else:
            raise RequestInvalid(400, _INPUT_INVALID, param="input")
    return inputs


def embeddings(body, default_model: str | None = None) -> tuple[bytes, int]:
    """The answer to POST /v1/embeddings and its prompt tokens."""
    if not isinstance(body, dict):
        raise RequestInvalid(400, "Invalid body: expected a JSON object.")
    model = _model(body, default_model)
    inputs = _embedding_inputs(body)
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise RequestInvalid(
            400,
            f"Invalid value: {json.dumps(encoding)}. Supported values are: 'float' and 'base64'.",
            param="encoding_format",
            code="invalid_value",
        )
    full = embedding_vectors.full_dimensions(model)
    dimensions = body.get("dimensions")
    if dimensions is None:
        dimensions = full
    elif not model.startswith("text-embedding-3"):
        raise RequestInvalid(
            400, "This model does not support specifying dimensions.", param="dimensions"
        )
    elif isinstance(dimensions, bool) or not isinstance(dimensions, int):
        raise RequestInvalid(
            400, "Invalid type for 'dimensions': expected an integer.", param="dimensions"
        )
    elif not 1 <= dimensions <= full:
        raise RequestInvalid(
            400,
            f"Invalid 'dimensions': expected a value between 1 and {full}, but got "
            f"{dimensions} instead.",
            param="dimensions",
        )
    data = []
    for index, (text, _) in enumerate(inputs):
        values = embedding_vectors.shortened(embedding_vectors.vector(text, full), dimensions)
        encoded = embedding_vectors.as_base64(values) if encoding == "base64" else values
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(t for _, t in inputs)
    body = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return _dumps(body), tokens
