"""OpenAI chat completions (`POST /v1/chat/completions`), the format Auterity speaks itself.

Requests pass through almost untouched; responses are checked for shape and get the
client's model name. Streams always ask for `stream_options.include_usage` so the final
usage chunk arrives and costs are exact.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from vocabulary import Capability

from .base import (
    ProviderAdapter,
    StreamTranslator,
    completion_chars,
    new_completion_id,
    usage_from_openai,
)
from .errors import InvalidRequest, MalformedResponse, mentions_context_overflow
from .options import BOOLEAN, STRING
from .sse import SSEEvent
from .types import ChatRequest, EmbeddingsRequest

logger = logging.getLogger(__name__)

# Status to assume for an error object that arrives inside a 200 stream, by OpenAI `type`.
_STREAM_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "server_error": 500,
    "api_error": 500,
    "overloaded_error": 503,
}


def openai_error_details(status: int, body: Any) -> dict:
    """Read an OpenAI-style error body: `{"error": {"message", "type", "param", "code"}}`,
    plus the shapes OpenAI-compatible servers use (`{"error": "text"}`, vLLM's
    `{"object": "error", "message", "type", "code"}`, FastAPI's `{"detail": ...}`)."""
    if isinstance(body, list) and body:
        body = body[0]
    if not isinstance(body, dict):
        return {}
    error = body.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        code = error.get("code") or error.get("type")
    elif isinstance(error, str):
        message, code = error, None
    elif body.get("object") == "error":
        message, code = body.get("message"), body.get("type")
    elif "detail" in body:
        message, code = body["detail"], None
    else:
        return {}
    message = message if isinstance(message, str) else json.dumps(message)
    code = str(code) if code is not None else None
    details: dict = {"message": message, "code": code}
    if code == "context_length_exceeded" or (
        status in (400, 413, 422) and mentions_context_overflow(message)
    ):
        details["context_exceeded"] = True
    if code == "insufficient_quota":
        # A 429 that means "out of credit": waiting will not help, another provider might.
        details["retryable"] = False
    return details


def _stream_error_status(body: dict) -> int:
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    code = error.get("code")
    if isinstance(code, int) and 400 <= code < 600:
        return code
    for key in ("type", "code"):
        status = _STREAM_ERROR_STATUS.get(str(error.get(key)))
        if status:
            return status
    return 500


def without_cache_control(messages: list[dict]) -> list[dict]:
    """`messages` without Anthropic's `cache_control` markers on content parts (the Anthropic
    adapter sends them on; OpenAI and Azure answer 400 "Unrecognized request argument"). The
    request's own messages are left as they are: a fallback to Anthropic still has them."""
    if not any(
        isinstance(m.get("content"), list)
        and any(isinstance(p, dict) and "cache_control" in p for p in m["content"])
        for m in messages
    ):
        return messages
    return [
        {
            **m,
            "content": [
                {k: v for k, v in p.items() if k != "cache_control"} if isinstance(p, dict) else p
                for p in m["content"]
            ],
        }
        if isinstance(m.get("content"), list)
        else m
        for m in messages
    ]


class OpenAIStreamTranslator(StreamTranslator):
    """OpenAI chunks are already the target format: record usage and finish, relabel the
    model, hold usage back for the single final usage chunk, drop empty-choice chunks that
    carry no usage (Azure's prompt-filter announcements)."""

    def __init__(self, request: ChatRequest, adapter: OpenAIAdapter):
        super().__init__(request)
        self.adapter = adapter

    def feed(self, event: SSEEvent) -> list[dict]:
        data = event.data.strip()
        if data == "[DONE]":
            self.done = True
            return []
        chunk = json.loads(data)
        if not isinstance(chunk, dict):
            raise ValueError("stream event is not a JSON object")
        if "error" in chunk or chunk.get("object") == "error":
            raise self.adapter.stream_error(_stream_error_status(chunk), chunk)
        choices = chunk.get("choices") or []
        usage = usage_from_openai(chunk.pop("usage", None))
        if usage is not None:
            self.prompt_tokens = usage.prompt_tokens
            self.completion_tokens = usage.completion_tokens
            self.cached_tokens = usage.cached_tokens
            self.cache_write_tokens = usage.cache_write_tokens
            self.reasoning_tokens = usage.reasoning_tokens
            if not choices:
                self.usage_final = True
        if not choices:
            return []
        if isinstance(chunk.get("id"), str) and chunk["id"]:
            self.id = chunk["id"]
        if isinstance(chunk.get("created"), int):
            self.created = chunk["created"]
        for choice in choices:
            self.output_chars += completion_chars(choice.get("delta") or {})
            if choice.get("finish_reason"):
                self.finish_seen = True
        chunk["model"] = self.request.model
        chunk["object"] = "chat.completion.chunk"
        return [chunk]


class OpenAIAdapter(ProviderAdapter):
    """OpenAI itself: Bearer auth, optional `OpenAI-Organization`/`OpenAI-Project` headers
    from the `organization`/`project` options; sends `max_completion_tokens` (OpenAI has
    deprecated `max_tokens`, and o-series models reject it).

    Streams ask for `stream_options.include_usage`. Some servers of this format reject the
    field (Mistral answers 422, Azure before api-version 2024-09-01 answers 400): when a
    stream is refused for naming it, the adapter drops it for good and starts the stream
    again, once; usage is then read from wherever the server puts it, or estimated. The
    `stream_usage` option (true/false) pins the choice instead.
    """

    provider_type = "openai"
    label = "OpenAI"
    options = {"organization": STRING, "project": STRING, "stream_usage": BOOLEAN}
    price_source = "openai"
    capabilities = frozenset(Capability)  # n > 1 and embeddings too
    max_tokens_field = "max_completion_tokens"
    developer_role = True

    def __init__(self, endpoint):
        super().__init__(endpoint)
        configured = endpoint.options.get("stream_usage")
        self._negotiate_stream_usage = configured is None
        self._stream_usage = self.sends_stream_usage() if configured is None else bool(configured)

    def sends_stream_usage(self) -> bool:
        """Whether to send stream_options before learning otherwise."""
        return True

    def auth_headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.endpoint.api_key}"}
        options = self.endpoint.options
        if options.get("organization"):
            headers["OpenAI-Organization"] = options["organization"]
        if options.get("project"):
            headers["OpenAI-Project"] = options["project"]
        return headers

    @property
    def api_root(self) -> str:
        return f"{self.base_url}/v1"

    def chat_url(self, model: str, *, stream: bool) -> str:
        return f"{self.api_root}/chat/completions"

    def models_url(self) -> str:
        return f"{self.api_root}/models"

    def build_body(self, request: ChatRequest, model: str, *, stream: bool) -> dict:
        body = request.to_openai_body(
            model, max_tokens_field=self.max_tokens_field, developer_role=self.developer_role
        )
        body["messages"] = without_cache_control(body["messages"])
        if stream:
            body["stream"] = True
            if self._stream_usage:
                body["stream_options"] = {"include_usage": True}
        else:
            body.pop("stream", None)
        return body

    def stream(self, request: ChatRequest, model: str = ""):
        try:
            return super().stream(request, model)
        except InvalidRequest as exc:
            self._stream_usage_refused(exc)
        return super().stream(request, model)

    async def astream(self, request: ChatRequest, model: str = ""):
        try:
            return await super().astream(request, model)
        except InvalidRequest as exc:
            self._stream_usage_refused(exc)
        return await super().astream(request, model)

    def _stream_usage_refused(self, exc: InvalidRequest) -> None:
        """Re-raise `exc` unless it is a server refusing stream_options, which is then left
        out of this provider's streams from now on."""
        if not (
            self._negotiate_stream_usage and self._stream_usage and "stream_options" in exc.message
        ):
            raise exc
        logger.info("provider %s rejects stream_options; streaming without", self.provider_id)
        self._stream_usage = False

    def parse_response(self, data: dict, request: ChatRequest) -> dict:
        if "error" in data and "choices" not in data:
            # Some OpenAI-compatible servers answer errors with HTTP 200.
            raise self.stream_error(_stream_error_status(data), data)
        choices = data.get("choices")
        if (
            not isinstance(choices, list)
            or not choices
            or not all(isinstance(c, dict) and isinstance(c.get("message"), dict) for c in choices)
        ):
            raise MalformedResponse(
                "response has no choices with a message", provider_id=self.provider_id
            )
        data["model"] = request.model
        data["object"] = "chat.completion"
        if not data.get("id"):
            data["id"] = new_completion_id()
        if not isinstance(data.get("created"), int):
            data["created"] = int(time.time())
        return data

    def stream_translator(self, request: ChatRequest) -> StreamTranslator:
        return OpenAIStreamTranslator(request, self)

    def error_details(self, status: int, body: Any) -> dict:
        return openai_error_details(status, body)

    def parse_models(self, data: dict) -> list[str]:
        return [item["id"] for item in data["data"]]

    # -- embeddings (`POST /v1/embeddings`): OpenAI's own shape both ways ------------------

    def embeddings_url(self, model: str) -> str:
        return f"{self.api_root}/embeddings"

    def build_embeddings_body(self, request: EmbeddingsRequest, model: str) -> dict:
        return request.to_openai_body(model)

    def parse_embeddings(self, data: dict, request: EmbeddingsRequest) -> dict:
        if "error" in data and "data" not in data:
            raise self.stream_error(_stream_error_status(data), data)
        items = data.get("data")
        if not isinstance(items, list) or len(items) != len(request.inputs):
            raise MalformedResponse(
                f"expected {len(request.inputs)} embeddings", provider_id=self.provider_id
            )
        items = sorted(items, key=lambda item: item["index"])
        if not all(isinstance(item.get("embedding"), list | str) for item in items):
            raise MalformedResponse("an embedding is missing", provider_id=self.provider_id)
        return {
            "object": "list",
            "data": [{**item, "object": "embedding"} for item in items],
            "model": request.model,
            "usage": data.get("usage"),
        }
