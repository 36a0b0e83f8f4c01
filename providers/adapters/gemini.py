"""Google Gemini API (`generateContent` / `streamGenerateContent?alt=sse`), translated to and
from OpenAI's format.

Request translation:
- system and developer messages -> `systemInstruction`; user -> `user` turns, assistant ->
  `model` turns, consecutive turns of one role merged;
- assistant `tool_calls` -> `functionCall` parts, tool messages -> `functionResponse` parts
  (Gemini matches responses by function name, recovered from the earlier tool call; a JSON
  object result is passed as is, anything else as `{"content": text}`);
- images: data URLs -> `inlineData`, http(s) URLs -> `fileData` (Gemini fetches public
  URLs itself; the MIME type is guessed from the path, image/jpeg when unknown);
- `generationConfig`: temperature, topP, maxOutputTokens, stopSequences, candidateCount (`n`:
  each candidate is one choice, streamed or not),
  seed, presence/frequencyPenalty, and responseMimeType/responseSchema from response_format;
- tools -> one `functionDeclarations` tool; tool_choice -> `toolConfig.functionCallingConfig`
  (auto -> AUTO, required -> ANY, none -> NONE, named -> ANY restricted to that name).
  JSON Schemas (tool parameters, response schemas) are reduced to the OpenAPI subset
  Gemini's Schema accepts: local $refs inlined, type lists and null variants turned into
  `nullable`, unsupported keywords (additionalProperties, $schema, ...) dropped;
- `user`, `parallel_tool_calls` and `extra` have no Gemini equivalent and are dropped.

Thinking models attach a `thoughtSignature` to function calls that must come back with the
call in the next turn. OpenAI's format has no place for it, so it rides inside the tool call
id we hand out (`call_<hex>__thought__<signature>`) and is restored from it.
"""

from __future__ import annotations

import json
import mimetypes
import re
import uuid
from typing import Any
from urllib.parse import quote, urlsplit

from vocabulary import Capability

from .base import ProviderAdapter, StreamTranslator, completion_response, embedding_item
from .errors import MalformedResponse, mentions_context_overflow
from .sse import SSEEvent
from .types import ChatRequest, EmbeddingsRequest, Usage, image_url_of, split_data_url

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}

# Keywords of Gemini's Schema object (an OpenAPI 3.0 subset); everything else is dropped.
_SCHEMA_KEYS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "default",
        "minimum",
        "maximum",
        "propertyOrdering",
    }
)
_MAX_SCHEMA_DEPTH = 32
_SIGNATURE_SEPARATOR = "__thought__"
_RETRY_DELAY_RE = re.compile(r"^([\d.]+)s$")


def _tool_call_id(signature: str | None) -> str:
    call_id = f"call_{uuid.uuid4().hex[:24]}"
    return f"{call_id}{_SIGNATURE_SEPARATOR}{signature}" if signature else call_id


def _signature_of(call_id: str) -> str | None:
    _, separator, signature = call_id.partition(_SIGNATURE_SEPARATOR)
    return signature if separator and signature else None


class _SchemaError(ValueError):
    pass


def gemini_schema(schema: Any, defs: dict | None = None, depth: int = 0) -> Any:
    """Reduce a JSON Schema to what Gemini's Schema object accepts."""
    if not isinstance(schema, dict):
        return schema
    if depth > _MAX_SCHEMA_DEPTH:
        raise _SchemaError("schema is nested too deeply (recursive $ref?)")
    if defs is None:
        defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        if name not in defs:
            raise _SchemaError(f"unresolvable $ref {schema['$ref']!r}")
        merged = {**defs[name], **{k: v for k, v in schema.items() if k != "$ref"}}
        return gemini_schema(merged, defs, depth + 1)
    out: dict[str, Any] = {}
    kind = schema.get("type")
    if isinstance(kind, list):
        variants = [k for k in kind if k != "null"]
        if len(variants) < len(kind):
            out["nullable"] = True
        if len(variants) == 1:
            out["type"] = variants[0]
        elif variants:
            out["anyOf"] = [{"type": k} for k in variants]
    elif kind is not None:
        out["type"] = kind
    for key in ("anyOf", "oneOf"):
        if not isinstance(schema.get(key), list):
            continue
        variants = []
        for variant in schema[key]:
            if isinstance(variant, dict) and variant.get("type") == "null":
                out["nullable"] = True
            else:
                variants.append(gemini_schema(variant, defs, depth + 1))
        if len(variants) == 1 and isinstance(variants[0], dict):
            out.update({k: v for k, v in variants[0].items() if k not in out})
        elif variants:
            out["anyOf"] = variants
    for key, value in schema.items():
        if key in _SCHEMA_KEYS and key not in out:
            out[key] = value
    if "const" in schema and "enum" not in out:
        out["enum"] = [schema["const"]]
    if isinstance(schema.get("properties"), dict) and schema["properties"]:
        out["properties"] = {
            name: gemini_schema(value, defs, depth + 1)
            for name, value in schema["properties"].items()
        }
        required = [r for r in schema.get("required") or () if r in out["properties"]]
        if required:
            out["required"] = required
    if isinstance(schema.get("items"), dict):
        out["items"] = gemini_schema(schema["items"], defs, depth + 1)
    return out


def _function_response(content: Any) -> dict:
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    content = content or ""
    try:
        parsed = json.loads(content)
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"content": content}


def _image_part(part: dict) -> dict:
    url = image_url_of(part)
    if url.startswith("data:"):
        media_type, data = split_data_url(url)
        return {"inlineData": {"mimeType": media_type, "data": data}}
    media_type = mimetypes.guess_type(urlsplit(url).path)[0]
    if not media_type or not media_type.startswith("image/"):
        media_type = "image/jpeg"
    return {"fileData": {"mimeType": media_type, "fileUri": url}}


def _parts(content: Any) -> list[dict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts = []
    for part in content:
        kind = part.get("type")
        if kind == "image_url":
            parts.append(_image_part(part))
        elif kind in ("text", "refusal") and part.get(kind):
            parts.append({"text": part[kind]})
    return parts


def _texts(content: Any) -> list[str]:
    return [p["text"] for p in _parts(content) if "text" in p]


def _usage(meta: Any) -> tuple[int | None, int | None, int, int]:
    """(prompt, completion, cached, thinking) from usageMetadata, in OpenAI's convention.
    `promptTokenCount` already includes `cachedContentTokenCount`; `candidatesTokenCount`
    does not include `thoughtsTokenCount`, so the thinking (billed as output) is added to the
    completion and reported as its reasoning part."""
    if not isinstance(meta, dict):
        return None, None, 0, 0
    prompt = meta.get("promptTokenCount")
    thoughts = meta.get("thoughtsTokenCount") or 0
    completion = None
    if "candidatesTokenCount" in meta or "thoughtsTokenCount" in meta:
        completion = (meta.get("candidatesTokenCount") or 0) + thoughts
    elif isinstance(prompt, int):
        completion = 0  # nothing generated (e.g. blocked), Gemini then omits the count
    cached = meta.get("cachedContentTokenCount") or 0
    return (prompt if isinstance(prompt, int) else None), completion, cached, thoughts


def _finish_reason(reason: str | None, has_tool_calls: bool) -> str:
    finish = FINISH_REASONS.get(reason or "", "stop")
    return "tool_calls" if has_tool_calls and finish == "stop" else finish


def _tool_call(part: dict) -> dict:
    call = part["functionCall"]
    return {
        "id": _tool_call_id(part.get("thoughtSignature")),
        "type": "function",
        "function": {
            "name": call["name"],
            "arguments": json.dumps(call.get("args") or {}, ensure_ascii=False),
        },
    }


class GeminiStreamTranslator(StreamTranslator):
    """Each SSE event is a whole GenerateContentResponse holding the next piece of text,
    whole function calls, cumulative usageMetadata and, last, the finishReason. The stream
    has no end marker: it is complete when a finishReason arrived."""

    def __init__(self, request: ChatRequest, adapter: GeminiAdapter):
        super().__init__(request)
        self.adapter = adapter
        self.role_sent = False
        self.choices = request.n or 1  # candidateCount: each candidate is one choice index
        self.tool_counts: dict[int, int] = {}
        self.finished: set[int] = set()

    def indexed(self, index: int, delta: dict, finish_reason: str | None = None) -> dict:
        chunk = self.chunk(delta, finish_reason)
        chunk["choices"][0]["index"] = index
        return chunk

    def feed(self, event: SSEEvent) -> list[dict]:
        payload = json.loads(event.data)
        if isinstance(payload, list):
            payload = payload[0] if payload else {}
        if "error" in payload:
            error = payload["error"] if isinstance(payload["error"], dict) else {}
            status = error.get("code") if isinstance(error.get("code"), int) else 500
            raise self.adapter.stream_error(status, payload)
        if payload.get("responseId") and not self.role_sent:
            self.id = payload["responseId"]
        prompt, completion, cached, thoughts = _usage(payload.get("usageMetadata"))
        if prompt is not None:
            self.prompt_tokens = prompt
            self.cached_tokens = cached
        if completion is not None:
            self.completion_tokens = completion
            self.reasoning_tokens = thoughts
        chunks = []
        if not self.role_sent:
            self.role_sent = True
            for index in range(self.choices):
                chunks.append(self.indexed(index, {"role": "assistant", "content": ""}))
        candidates = payload.get("candidates") or []
        if not candidates:
            if (payload.get("promptFeedback") or {}).get("blockReason"):
                self.finish_seen = True
                for index in range(self.choices):
                    chunks.append(self.indexed(index, {}, "content_filter"))
            return chunks
        for position, candidate in enumerate(candidates):
            index = candidate.get("index", position)
            for part in (candidate.get("content") or {}).get("parts") or ():
                if "functionCall" in part:
                    tools = self.tool_counts.get(index, 0)
                    self.tool_counts[index] = tools + 1
                    call = {"index": tools, **_tool_call(part)}
                    chunks.append(self.indexed(index, {"tool_calls": [call]}))
                elif isinstance(part.get("text"), str) and part["text"] and not part.get("thought"):
                    chunks.append(self.indexed(index, {"content": part["text"]}))
            if candidate.get("finishReason"):
                self.finished.add(index)
                has_tools = self.tool_counts.get(index, 0) > 0
                finish = _finish_reason(candidate["finishReason"], has_tools)
                chunks.append(self.indexed(index, {}, finish))
        # Complete once every candidate has finished (there is no end marker).
        self.finish_seen = len(self.finished) >= self.choices
        return chunks


class GeminiAdapter(ProviderAdapter):
    provider_type = "gemini"
    label = "Google Gemini"
    price_source = "google"
    # n > 1 is generationConfig.candidateCount, each candidate one choice; embeddings too.
    capabilities = frozenset(Capability)
    supports_count_tokens = True

    def auth_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.endpoint.api_key}

    def chat_url(self, model: str, *, stream: bool) -> str:
        name = quote(model.removeprefix("models/"), safe="")
        if stream:
            return f"{self.base_url}/v1beta/models/{name}:streamGenerateContent?alt=sse"
        return f"{self.base_url}/v1beta/models/{name}:generateContent"

    def models_url(self) -> str:
        return f"{self.base_url}/v1beta/models"

    # -- token counting: `countTokens` with the whole generateContent request -------------

    def count_tokens_url(self, model: str) -> str:
        name = quote(model.removeprefix("models/"), safe="")
        return f"{self.base_url}/v1beta/models/{name}:countTokens"

    def build_count_tokens_body(self, request: ChatRequest, model: str) -> dict:
        body = self.build_body(request, model, stream=False)
        body.pop("generationConfig", None)  # sampling does not count
        return {
            "generateContentRequest": {"model": f"models/{model.removeprefix('models/')}", **body}
        }

    def parse_count_tokens(self, data: dict) -> int:
        return data["totalTokens"]

    # -- embeddings: `batchEmbedContents`, one request per input, answers in input order -----

    def embeddings_url(self, model: str) -> str:
        name = quote(model.removeprefix("models/"), safe="")
        return f"{self.base_url}/v1beta/models/{name}:batchEmbedContents"

    def build_embeddings_body(self, request: EmbeddingsRequest, model: str) -> dict:
        texts = request.texts
        if texts is None:
            raise self.invalid("Gemini embeds text only: send strings, not token ids", "input")
        name = f"models/{model.removeprefix('models/')}"
        requests = []
        for text in texts:
            item: dict[str, Any] = {"model": name, "content": {"parts": [{"text": text}]}}
            if request.dimensions is not None:
                item["outputDimensionality"] = request.dimensions
            requests.append(item)
        return {"requests": requests}

    def parse_embeddings(self, data: dict, request: EmbeddingsRequest) -> dict:
        if "error" in data:
            error = data["error"] if isinstance(data["error"], dict) else {}
            raise self.stream_error(error.get("code") or 500, data)
        embeddings = data.get("embeddings")
        if not isinstance(embeddings, list) or len(embeddings) != len(request.inputs):
            raise MalformedResponse(
                f"expected {len(request.inputs)} embeddings", provider_id=self.provider_id
            )
        result: dict[str, Any] = {
            "object": "list",
            "data": [
                embedding_item(i, [float(v) for v in e["values"]], request.encoding_format)
                for i, e in enumerate(embeddings)
            ],
            "model": request.model,
        }
        # The Gemini API reports no usage for embeddings; where a deployment does, it is used.
        prompt = (data.get("usageMetadata") or {}).get("promptTokenCount")
        if isinstance(prompt, int):
            result["usage"] = {"prompt_tokens": prompt, "total_tokens": prompt}
        return result

    def parse_models(self, data: dict) -> list[str]:
        return [item["name"].removeprefix("models/") for item in data.get("models") or ()]

    # -- request ------------------------------------------------------------------------

    def build_body(self, request: ChatRequest, model: str, *, stream: bool) -> dict:
        system, contents = self._convert_messages(request.messages)
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": [{"text": text} for text in system]}
        config: dict[str, Any] = {}
        for source, target in (
            ("temperature", "temperature"),
            ("top_p", "topP"),
            ("max_tokens", "maxOutputTokens"),
            ("n", "candidateCount"),
            ("seed", "seed"),
            ("presence_penalty", "presencePenalty"),
            ("frequency_penalty", "frequencyPenalty"),
        ):
            value = getattr(request, source)
            if value is not None:
                config[target] = value
        if request.stop_sequences:
            config["stopSequences"] = request.stop_sequences
        response_format = request.response_format or {}
        if response_format.get("type") in ("json_object", "json_schema"):
            config["responseMimeType"] = "application/json"
            schema = (response_format.get("json_schema") or {}).get("schema")
            if schema:
                config["responseSchema"] = self._schema(schema, "response_format.json_schema")
        if config:
            body["generationConfig"] = config
        if request.tools:
            body["tools"] = [{"functionDeclarations": self._declarations(request.tools)}]
            tool_config = self._tool_config(request.tool_choice)
            if tool_config:
                body["toolConfig"] = {"functionCallingConfig": tool_config}
        return body

    def _schema(self, schema: dict, param: str) -> dict:
        try:
            return gemini_schema(schema)
        except _SchemaError as exc:
            raise self.invalid(f"{param}: {exc}") from None

    def _declarations(self, tools: list[dict]) -> list[dict]:
        declarations = []
        for i, tool in enumerate(tools):
            function = tool["function"]
            declaration = {"name": function["name"]}
            if function.get("description"):
                declaration["description"] = function["description"]
            parameters = function.get("parameters")
            if parameters and parameters.get("properties"):
                # Gemini rejects an OBJECT schema with no properties: leave those out.
                declaration["parameters"] = self._schema(
                    parameters, f"tools[{i}].function.parameters"
                )
            declarations.append(declaration)
        return declarations

    @staticmethod
    def _tool_config(choice: Any) -> dict | None:
        if choice is None:
            return None
        if choice == "auto":
            return {"mode": "AUTO"}
        if choice == "required":
            return {"mode": "ANY"}
        if choice == "none":
            return {"mode": "NONE"}
        return {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}

    def _convert_messages(self, messages: list[dict]) -> tuple[list[str], list[dict]]:
        system: list[str] = []
        contents: list[dict] = []
        names_by_call_id: dict[str, str] = {}
        for i, message in enumerate(messages):
            role = message["role"]
            content = message.get("content")
            if role in ("system", "developer"):
                system.extend(_texts(content))
                continue
            if role == "assistant":
                target = "model"
                parts = _parts(content)
                for k, call in enumerate(message.get("tool_calls") or ()):
                    function = call["function"]
                    names_by_call_id[call["id"]] = function["name"]
                    part: dict[str, Any] = {
                        "functionCall": {
                            "name": function["name"],
                            "args": self.tool_call_arguments(
                                function, f"messages[{i}].tool_calls[{k}]"
                            ),
                        }
                    }
                    signature = _signature_of(call["id"])
                    if signature:
                        part["thoughtSignature"] = signature
                    parts.append(part)
            elif role == "tool":
                target = "user"
                name = names_by_call_id.get(message["tool_call_id"]) or message.get("name")
                if not name:
                    raise self.invalid(
                        f"messages[{i}].tool_call_id does not match an earlier tool call"
                    )
                response = _function_response(content)
                parts = [{"functionResponse": {"name": name, "response": response}}]
            else:
                target = "user"
                parts = _parts(content)
            if not parts:
                continue
            if contents and contents[-1]["role"] == target:
                contents[-1]["parts"].extend(parts)
            else:
                contents.append({"role": target, "parts": parts})
        return system, contents

    # -- response -----------------------------------------------------------------------

    def parse_response(self, data: dict, request: ChatRequest) -> dict:
        if "error" in data:
            error = data["error"] if isinstance(data["error"], dict) else {}
            raise self.stream_error(error.get("code") or 500, data)
        candidates = data.get("candidates") or []
        choices = []
        for position, candidate in enumerate(candidates):
            parts = (candidate.get("content") or {}).get("parts") or []
            texts = [
                p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought")
            ]
            tool_calls = [_tool_call(p) for p in parts if "functionCall" in p]
            finish = _finish_reason(candidate.get("finishReason"), bool(tool_calls))
            text = "".join(texts) if texts else None
            choice = completion_response(request, None, text, tool_calls, finish)["choices"][0]
            choice["index"] = candidate.get("index", position)
            choices.append(choice)
        if not choices:
            if not (data.get("promptFeedback") or {}).get("blockReason"):
                raise MalformedResponse("response has no candidates", provider_id=self.provider_id)
            choices = [completion_response(request, None, None, [], "content_filter")["choices"][0]]
        result = completion_response(request, data.get("responseId"), None, [], "stop")
        result["choices"] = sorted(choices, key=lambda choice: choice["index"])
        prompt, completion, cached, thoughts = _usage(data.get("usageMetadata"))
        if prompt is not None and completion is not None:
            result["usage"] = Usage(
                prompt, completion, cached_tokens=cached, reasoning_tokens=thoughts
            ).to_dict()
        return result

    def stream_translator(self, request: ChatRequest) -> StreamTranslator:
        return GeminiStreamTranslator(request, self)

    def error_details(self, status: int, body: Any) -> dict:
        """`{"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED",
        "details": [...]}}` (sometimes inside a one-element list). A bad key is a 400 with
        reason API_KEY_INVALID; the wait before retrying a 429 is in a RetryInfo detail;
        context overflow is a 400 "The input token count (N) exceeds the maximum number of
        tokens allowed (M)"."""
        if isinstance(body, list) and body:
            body = body[0]
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return {}
        message = error.get("message")
        code = error.get("status")
        details = [d for d in error.get("details") or () if isinstance(d, dict)]
        reasons = {d.get("reason") for d in details}
        result: dict[str, Any] = {
            "message": message,
            "code": code,
            "auth_failed": code in ("UNAUTHENTICATED", "PERMISSION_DENIED")
            or "API_KEY_INVALID" in reasons
            or (isinstance(message, str) and "API key not valid" in message),
            "context_exceeded": status == 400 and mentions_context_overflow(message),
        }
        for detail in details:
            if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
                match = _RETRY_DELAY_RE.match(str(detail.get("retryDelay", "")))
                if match:
                    result["retry_after"] = float(match.group(1))
        return result
