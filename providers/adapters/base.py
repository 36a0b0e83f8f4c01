"""What every provider adapter shares: pooled HTTP connections, error mapping, the non-stream
call and the streaming machinery (StreamResult + a per-provider StreamTranslator).

An adapter subclass supplies only its wire format: URLs, auth headers, request body,
response parsing, a stream translator and its error body parsing.

Transport: each endpoint has one `requests.Session` (its HTTPAdapter holds the pool size, TLS
settings and no-retry policy), but calls go straight to that adapter's urllib3 connection
pool. `Session.request` costs about 1.5 ms of CPU per call here (netrc and CA-bundle file
checks, cookie and proxy merging, hooks) against about 0.5 ms for the pool's `urlopen`, and
the gateway's throughput is bounded by CPU. When the environment sets a proxy for the
endpoint, calls take the full `Session.request` path so HTTP(S)_PROXY/NO_PROXY keep working.

The gateway's event loop calls the `a`-prefixed methods (`achat`, `astream`, `aembed`,
`acount_tokens`, `alist_models`) instead: the same request building and response parsing over
an aiohttp `ClientSession` per endpoint and event loop, whose TCPConnector keeps connections
alive between calls. A waiting call then costs a coroutine, not a thread. aiohttp rather than
httpx: measured here against the simulator, aiohttp cost 0.76-0.86 ms of CPU per call at c=1
and served 822-1,189 calls/s at 1,000 concurrent, httpx 1.12 ms and 86-88 calls/s. The
synchronous methods stay for Celery's probes and the management commands.
"""

from __future__ import annotations

import asyncio
import base64
import http.cookiejar
import json
import logging
import os
import ssl
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
import requests
import urllib3
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from vocabulary import Capability

from .errors import (
    InvalidRequest,
    MalformedResponse,
    ProviderError,
    StreamInterrupted,
    UpstreamConnectionError,
    UpstreamTimeout,
    error_for_status,
    parse_retry_after,
)
from .options import Option
from .sse import SSEDecoder, SSEEvent, iter_sse
from .types import (
    ChatRequest,
    EmbeddingsRequest,
    ProviderEndpoint,
    Usage,
    estimate_embedding_tokens,
    estimate_input_tokens,
    text_tokens,
)

logger = logging.getLogger(__name__)

USER_AGENT = "auterity-router/0.1"
DEFAULT_MAX_CONNECTIONS = 64
_READ_SIZE = 64 * 1024
_ERROR_BODY_PREVIEW = 300

# --- pooled connections ------------------------------------------------------------------------


def _new_session(max_connections: int) -> requests.Session:
    session = requests.Session()
    # Retries are the router's job: it knows about fallbacks and budgets, urllib3 does not.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max_connections, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    # One session serves every tenant's requests to this endpoint: no cookie may leak
    # from one call into the next.
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


class _Transport:
    """One endpoint's session and, unless a proxy applies, its urllib3 connection pool."""

    def __init__(self, base_url: str, max_connections: int):
        self.session = _new_session(max_connections)
        self.pool: urllib3.HTTPConnectionPool | None = None
        if not requests.utils.get_environ_proxies(base_url):
            # The same pool, TLS verification and CA bundle Session.request would use.
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            probe = requests.Request("GET", base_url).prepare()
            self.pool = self.session.get_adapter(base_url).get_connection_with_tls_context(
                probe, verify=verify or True
            )

    def urlopen(self, method, url, body, headers, timeout):
        """The pool's urlopen: no retries, no redirects (x-api-key style headers would follow
        them to the new host), the body read by the caller."""
        parts = urlsplit(url)
        target = f"{parts.path or '/'}?{parts.query}" if parts.query else parts.path or "/"
        return self.pool.urlopen(
            method,
            target,
            body=body,
            headers=headers,
            retries=False,
            redirect=False,
            assert_same_host=False,
            timeout=timeout,
            preload_content=False,
            decode_content=True,
        )


_transports: dict[tuple[str, str], _Transport] = {}
_transports_lock = threading.Lock()


def _transport_for(endpoint: ProviderEndpoint) -> _Transport:
    key = (endpoint.provider_id, endpoint.base_url)
    transport = _transports.get(key)
    if transport is None:
        with _transports_lock:
            transport = _transports.get(key)
            if transport is None:
                max_connections = int(
                    endpoint.options.get("max_connections") or DEFAULT_MAX_CONNECTIONS
                )
                transport = _Transport(endpoint.base_url, max_connections)
                _transports[key] = transport
    return transport


def session_for(endpoint: ProviderEndpoint) -> requests.Session:
    """The process-wide pooled session for `endpoint` (keyed by provider id and base URL)."""
    return _transport_for(endpoint).session


def close_sessions() -> None:
    """Close every pooled session (tests, shutdown). New calls open fresh ones."""
    with _transports_lock:
        transports = list(_transports.values())
        _transports.clear()
    for transport in transports:
        transport.session.close()


def _forget_sessions_after_fork() -> None:
    # A forked worker (granian's web workers, Celery prefork) must not share its parent's
    # sockets. Dropping the references is enough; the parent still owns and closes them.
    global _transports_lock
    _transports.clear()
    _transports_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_sessions_after_fork)


# --- pooled connections on an event loop (the gateway) ------------------------------------------

# An aiohttp session belongs to the loop it was made on: one set per running loop. A server
# worker has one loop for its life; tests and `asyncio.run` callers make others, and a session
# of a closed loop must never be reused (its connections died with the loop).
_loop_sessions: dict[asyncio.AbstractEventLoop, dict[tuple[str, str], aiohttp.ClientSession]] = {}


def _ssl_context() -> ssl.SSLContext | bool:
    # The CA bundle the synchronous path (requests) honours, so both verify alike.
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return ssl.create_default_context(cafile=bundle) if bundle else True


def _new_async_session(endpoint: ProviderEndpoint) -> aiohttp.ClientSession:
    # No cap by default: the gateway's concurrency limit (GATEWAY_MAX_CONCURRENT_REQUESTS)
    # bounds the calls; a provider's `max_connections` option caps its own.
    limit = int(endpoint.options.get("max_connections") or 0)
    connector = aiohttp.TCPConnector(
        limit=limit, limit_per_host=0, ttl_dns_cache=300, ssl=_ssl_context()
    )
    return aiohttp.ClientSession(
        connector=connector,
        # One session serves every tenant: no cookie may leak from one call into the next.
        cookie_jar=aiohttp.DummyCookieJar(),
        # Proxies from the environment only where one applies (reading them costs per call).
        trust_env=bool(requests.utils.get_environ_proxies(endpoint.base_url)),
        auto_decompress=True,
    )


def async_session_for(endpoint: ProviderEndpoint) -> aiohttp.ClientSession:
    """The running loop's pooled session for `endpoint` (keyed by provider id and base URL)."""
    loop = asyncio.get_running_loop()
    sessions = _loop_sessions.get(loop)
    if sessions is None:
        for other in [other for other in _loop_sessions if other.is_closed()]:
            del _loop_sessions[other]
        sessions = _loop_sessions[loop] = {}
    key = (endpoint.provider_id, endpoint.base_url)
    session = sessions.get(key)
    if session is None or session.closed:
        session = sessions[key] = _new_async_session(endpoint)
    return session


async def aclose_sessions() -> None:
    """Close the running loop's sessions (a worker's shutdown, tests). New calls open fresh
    ones."""
    sessions = _loop_sessions.pop(asyncio.get_running_loop(), {})
    for session in sessions.values():
        await session.close()


def _forget_async_sessions_after_fork() -> None:
    _loop_sessions.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_async_sessions_after_fork)


class _AsyncResponse:
    """An aiohttp response, shaped like `_Response` for the shared parsing."""

    __slots__ = ("headers", "raw", "status_code")

    def __init__(self, raw: aiohttp.ClientResponse):
        self.status_code = raw.status
        self.headers = raw.headers
        self.raw = raw

    async def read_all(self) -> bytes:
        return await self.raw.read()

    def close(self) -> None:
        """Give the connection back to the pool when the body was read to the end, else drop
        it (an unread remainder would be the next call's response)."""
        raw = self.raw
        if raw.content.at_eof():
            raw.release()
        else:
            raw.close()


class _Response:
    """An upstream response whichever path fetched it: status, headers, and the urllib3
    response whose body the caller reads (`raw`)."""

    __slots__ = ("_session_response", "headers", "raw", "status_code")

    def __init__(self, status_code, headers, raw, session_response=None):
        self.status_code = status_code
        self.headers = headers
        self.raw = raw
        self._session_response = session_response

    def read_all(self) -> bytes:
        if self._session_response is not None:
            return self._session_response.content
        return self.raw.read(decode_content=True)

    def close(self) -> None:
        """Give the connection back to the pool when the body was read to the end, else drop
        it (as requests' Response.close does)."""
        if self._session_response is not None:
            self._session_response.close()
            return
        raw = self.raw
        if not raw.isclosed():
            raw.close()
        raw.release_conn()


# --- results -------------------------------------------------------------------------------


@dataclass
class ChatResult:
    """A finished non-streaming call: an OpenAI `chat.completion` dict and its usage."""

    response: dict
    usage: Usage


@dataclass
class EmbeddingsResult:
    """A finished embeddings call: an OpenAI embeddings `list` dict and its usage."""

    response: dict
    usage: Usage


def embedding_item(index: int, values: list[float], encoding_format: str) -> dict:
    """One OpenAI `embedding` object; `base64` is OpenAI's encoding (little-endian float32
    values, base64), which the openai SDK asks for by default and decodes itself."""
    embedding: list[float] | str = values
    if encoding_format == "base64":
        embedding = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
    return {"object": "embedding", "index": index, "embedding": embedding}


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def completion_response(
    request: ChatRequest,
    response_id: str | None,
    content: str | None,
    tool_calls: list[dict],
    finish_reason: str,
) -> dict:
    """An OpenAI `chat.completion` dict with one assistant choice, for adapters that translate
    another format; the caller adds `usage` when the provider reported it."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": response_id or new_completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
    }


def _count(container: Any, key: str) -> int:
    value = container.get(key) if isinstance(container, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from_openai(usage: Any) -> Usage | None:
    """Usage from an OpenAI-shaped `usage` object, or None when it is absent or not numbers.

    `prompt_tokens` already includes `prompt_tokens_details.cached_tokens` and
    `completion_tokens` already includes `completion_tokens_details.reasoning_tokens` (OpenAI's
    convention, which Usage keeps). `cache_creation_input_tokens` is read too: the Anthropic
    adapter reports cache writes under that name, as LiteLLM does.
    """
    if not isinstance(usage, Mapping):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    cached = min(_count(usage.get("prompt_tokens_details"), "cached_tokens"), prompt)
    cache_write = min(_count(usage, "cache_creation_input_tokens"), prompt - cached)
    reasoning = min(_count(usage.get("completion_tokens_details"), "reasoning_tokens"), completion)
    return Usage(
        prompt,
        completion,
        cached_tokens=cached,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
    )


def completion_chars(message: Mapping) -> int:
    """Characters of generated output in an OpenAI message or delta (text and tool calls)."""
    chars = 0
    content = message.get("content")
    if isinstance(content, str):
        chars += len(content)
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        chars += len(function.get("name") or "") + len(function.get("arguments") or "")
    return chars


class StreamTranslator:
    """Turns one provider's SSE events into OpenAI `chat.completion.chunk` dicts.

    Subclasses implement `feed`; they record what the provider says about usage in
    `prompt_tokens`/`completion_tokens` and the parts `cached_tokens`, `cache_write_tokens`
    and `reasoning_tokens` (`usage_final` once the numbers are the final ones),
    set `finish_seen` when a finish reason arrives and `done` on the provider's explicit end
    marker. A stream that ends without `done` counts as complete only if a finish reason was
    seen; otherwise it was cut.
    """

    def __init__(self, request: ChatRequest):
        self.request = request
        self.id = new_completion_id()
        self.created = int(time.time())
        self.done = False
        self.finish_seen = False
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.usage_final = False
        self.cached_tokens = 0
        self.cache_write_tokens = 0
        self.reasoning_tokens = 0
        self.output_chars = 0
        self._prompt_estimate: int | None = None

    def feed(self, event: SSEEvent) -> list[dict]:
        raise NotImplementedError

    @property
    def complete(self) -> bool:
        return self.done or self.finish_seen

    def chunk(self, delta: dict, finish_reason: str | None = None) -> dict:
        self.output_chars += completion_chars(delta)
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.request.model,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }

    def usage(self) -> Usage:
        """Tokens so far: the provider's numbers where it gave them, else estimates."""
        estimated = False
        prompt = self.prompt_tokens
        cached, cache_write = self.cached_tokens, self.cache_write_tokens
        if prompt is None:
            if self._prompt_estimate is None:
                self._prompt_estimate = estimate_input_tokens(self.request)
            prompt = self._prompt_estimate
            cached = cache_write = 0
            estimated = True
        from_text = text_tokens(self.output_chars)
        if self.completion_tokens is not None and (
            self.usage_final or self.complete or self.completion_tokens >= from_text
        ):
            completion = self.completion_tokens
        else:
            # The visible text so far, plus the thinking the provider already reported.
            completion = from_text + self.reasoning_tokens
            estimated = True
        return Usage(
            prompt,
            completion,
            estimated,
            cached_tokens=min(cached, prompt),
            cache_write_tokens=min(cache_write, prompt - min(cached, prompt)),
            reasoning_tokens=min(self.reasoning_tokens, completion),
        )

    def usage_chunk(self) -> dict:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.request.model,
            "choices": [],
            "usage": self.usage().to_dict(),
        }


def _has_content(chunk: dict) -> bool:
    """Whether a chunk carries something the client must see (not just the role)."""
    for choice in chunk.get("choices") or ():
        if choice.get("finish_reason"):
            return True
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls") or delta.get("refusal"):
            return True
    return not chunk.get("choices")


class StreamResult:
    """An upstream stream translated to OpenAI chunks.

    Iterate it for `chat.completion.chunk` dicts; the last one is a usage chunk
    (`choices: []`, `usage`). `usage` can be read at any time (tokens seen so far).
    `close()` drops the upstream connection; use it, or the context manager, when the
    client goes away. `adapter.stream()` has already read up to the first chunk with
    content, so failures before the answer started (including error events sent before any
    text, and a stall until the read timeout) raise the ordinary errors from `stream()`
    and the caller may fall back; failures after that raise StreamInterrupted from
    iteration.
    """

    def __init__(self, adapter: ProviderAdapter, response: _Response, translator):
        self._adapter = adapter
        self._response = response
        self._translator: StreamTranslator = translator
        self._events = iter_sse(_iter_body(response))
        self._pending: deque[dict] = deque()
        self._started = False
        self._ended = False
        self._closed = False

    @property
    def usage(self) -> Usage:
        return self._translator.usage()

    @property
    def id(self) -> str:
        return self._translator.id

    def __iter__(self) -> Iterator[dict]:
        return self

    def __next__(self) -> dict:
        while not self._pending:
            if self._ended or self._closed:
                raise StopIteration
            self._pull()
        return self._pending.popleft()

    def __enter__(self) -> StreamResult:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._response.close()

    def _prime(self) -> None:
        """Read until the first chunk with content (or the end), mapping failures to the
        pre-stream error classes."""
        try:
            while not self._ended and not any(_has_content(c) for c in self._pending):
                self._pull()
        except BaseException:
            self.close()
            raise
        self._started = True

    def _pull(self) -> None:
        try:
            self._take(next(self._events, None))
        except Exception as exc:
            self._pull_failed(exc)

    def _take(self, event: SSEEvent | None) -> None:
        """One upstream event (None: the body ended) into pending chunks."""
        translator = self._translator
        if event is None:
            if not translator.complete:
                raise _StreamCut("the upstream stream ended before the response was complete")
            self._finish()
            return
        if translator.done:
            return  # trailing events after the end marker: drain, ignore
        self._pending.extend(translator.feed(event))

    def _pull_failed(self, exc: Exception) -> None:
        """A failed read or event: end quietly, or raise the taxonomy error."""
        if self._closed and not isinstance(exc, ProviderError):
            self._ended = True  # our own close() broke the read: not an upstream failure
            return
        if self._translator.complete and not isinstance(exc, ProviderError | _StreamCut):
            # The answer was complete (a finish reason arrived); only the tail after it
            # failed: the usage chunk or end marker, or the drain of the connection.
            self._finish()
            return
        raise self._failure(exc) from None

    def _failure(self, exc: Exception) -> ProviderError:
        provider_id = self._adapter.provider_id
        if isinstance(exc, ProviderError):
            error = exc  # an error event sent by the provider
        elif isinstance(exc, _StreamCut):
            if self._started:
                return self._interrupted(str(exc))
            error = MalformedResponse(str(exc), provider_id=provider_id)
        elif isinstance(exc, ValueError | KeyError | TypeError | AttributeError | IndexError):
            message = f"unreadable stream event: {type(exc).__name__}: {exc}"
            error = MalformedResponse(message, provider_id=provider_id)
        else:
            error = self._adapter.transport_error(exc)
        if not self._started:
            return error
        return self._interrupted(error.message, error)

    def _finish(self) -> None:
        self._pending.append(self._translator.usage_chunk())
        self._ended = True
        self._response.close()

    def _interrupted(self, message: str, cause: ProviderError | None = None) -> StreamInterrupted:
        self.close()
        return StreamInterrupted(
            message,
            usage=self._translator.usage(),
            provider_id=self._adapter.provider_id,
            status_code=cause.status_code if cause else None,
            upstream_code=cause.upstream_code if cause else None,
        )


class AsyncStreamResult(StreamResult):
    """StreamResult on the event loop: `async for chunk in result`, `close()` (or
    `async with`) when the client goes away. The same error contract: `astream()` has read up
    to the first chunk with content."""

    def __init__(self, adapter: ProviderAdapter, response: _AsyncResponse, translator):
        self._adapter = adapter
        self._response = response
        self._translator = translator
        self._decoder = SSEDecoder()
        self._events_ready: deque[SSEEvent] = deque()
        self._eof = False
        self._pending = deque()
        self._started = False
        self._ended = False
        self._closed = False

    def __iter__(self):
        raise TypeError("an AsyncStreamResult is iterated with `async for`")

    def __aiter__(self) -> AsyncStreamResult:
        return self

    async def __anext__(self) -> dict:
        while not self._pending:
            if self._ended or self._closed:
                raise StopAsyncIteration
            await self._apull()
        return self._pending.popleft()

    async def __aenter__(self) -> AsyncStreamResult:
        return self

    async def __aexit__(self, *exc_info) -> None:
        self.close()

    async def _aprime(self) -> None:
        try:
            while not self._ended and not any(_has_content(c) for c in self._pending):
                await self._apull()
        except BaseException:
            self.close()
            raise
        self._started = True

    async def _apull(self) -> None:
        try:
            self._take(await self._next_event())
        except Exception as exc:
            self._pull_failed(exc)

    async def _next_event(self) -> SSEEvent | None:
        ready = self._events_ready
        while not ready:
            if self._eof:
                return None
            # Whatever one socket read produced: small events are never held back.
            data = await self._response.raw.content.readany()
            if data:
                ready.extend(self._decoder.feed(data))
            else:
                self._eof = True
                ready.extend(self._decoder.flush())
        return ready.popleft()


class _StreamCut(Exception):
    pass


def _encode(body: dict | None) -> bytes | None:
    return (
        None
        if body is None
        else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    )


def _iter_body(response: _Response) -> Iterator[bytes]:
    """Raw body bytes as they arrive. `read1` returns whatever one socket read produced;
    requests' `iter_content` would wait to fill its chunk size (urllib3 2 semantics), holding
    back small SSE events on non-chunked responses."""
    read1 = response.raw.read1
    while True:
        data = read1(_READ_SIZE, decode_content=True)
        if not data:
            return
        yield data


# --- the adapter base ----------------------------------------------------------------------


class ProviderAdapter:
    """Base class of the provider adapters. One instance per endpoint, reused across calls
    and threads (it holds only immutable per-endpoint data)."""

    # The declaration of a provider type, read by the registry (ADAPTERS in __init__.py) and
    # from there by the Provider model's choices and config validation, the admin, the API
    # and the docs tests. Each registered class sets its own `provider_type` and `label`.
    provider_type: ClassVar[str] = ""  # the `type` stored on a Provider row
    label: ClassVar[str] = ""  # how the admin and the API's choices name it
    # The `config` keys this wire format reads beyond options.COMMON_OPTIONS.
    options: ClassVar[Mapping[str, Option]] = {}
    # The genai-prices provider whose list prices `sync_prices` applies (None: the provider's
    # `config.price_provider`, id or base URL says; providers/prices.py).
    price_source: ClassVar[str | None] = None
    # What the wire format carries (vocabulary.Capability); a model has a capability only if
    # its adapter carries it (ProviderModel.capabilities). Several choices per request and
    # embeddings are opt-in.
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.STREAMING, Capability.TOOLS, Capability.VISION, Capability.JSON_MODE}
    )
    supports_count_tokens: ClassVar[bool] = False

    def __init__(self, endpoint: ProviderEndpoint):
        self.endpoint = endpoint
        self.provider_id = endpoint.provider_id
        self.base_url = endpoint.base_url
        self._timeout = (endpoint.connect_timeout, endpoint.timeout)
        self._pool_timeout = urllib3.Timeout(
            connect=endpoint.connect_timeout, read=endpoint.timeout
        )
        # The same deadlines on the event loop: connecting, then each read (not the whole
        # call: a stream may run for minutes while its events keep coming).
        self._aio_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=endpoint.connect_timeout, sock_read=endpoint.timeout
        )
        # What Session.request would put on the wire: the session's defaults (User-Agent,
        # Accept-Encoding, keep-alive), then ours; merged once here instead of on every call.
        headers = dict(requests.utils.default_headers())
        headers["User-Agent"] = USER_AGENT
        headers.update({"Content-Type": "application/json", "Accept": "application/json"})
        headers.update(self.auth_headers())
        headers.update(endpoint.options.get("headers") or {})
        self._headers = headers
        self._stream_headers = {**headers, "Accept": "text/event-stream"}
        self._get_headers = {k: v for k, v in headers.items() if k != "Content-Type"}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.provider_id!r}, {self.base_url!r})"

    @property
    def session(self) -> requests.Session:
        return session_for(self.endpoint)

    # -- wire-format hooks (subclasses) ---------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    def chat_url(self, model: str, *, stream: bool) -> str:
        raise NotImplementedError

    def build_body(self, request: ChatRequest, model: str, *, stream: bool) -> dict:
        raise NotImplementedError

    def parse_response(self, data: dict, request: ChatRequest) -> dict:
        """The OpenAI `chat.completion` dict for a provider response. Its `usage` may be
        missing; chat() then estimates it."""
        raise NotImplementedError

    def stream_translator(self, request: ChatRequest) -> StreamTranslator:
        raise NotImplementedError

    def error_details(self, status: int, body: Any) -> dict:
        """Read the provider's error body: a dict of `message`, and optionally `code`,
        `context_exceeded`, `auth_failed`, `retry_after`, `retryable` for error_for_status."""
        raise NotImplementedError

    def models_url(self) -> str:
        raise NotImplementedError

    def parse_models(self, data: dict) -> list[str]:
        raise NotImplementedError

    def embeddings_url(self, model: str) -> str:
        raise NotImplementedError

    def build_embeddings_body(self, request: EmbeddingsRequest, model: str) -> dict:
        raise NotImplementedError

    def count_tokens_url(self, model: str) -> str:
        raise NotImplementedError

    def build_count_tokens_body(self, request: ChatRequest, model: str) -> dict:
        raise NotImplementedError

    def parse_count_tokens(self, data: dict) -> int:
        raise NotImplementedError

    def parse_embeddings(self, data: dict, request: EmbeddingsRequest) -> dict:
        """The OpenAI embeddings `list` dict (`data` in input order, `model` the client's) for
        a provider response. Its `usage` may be missing; embed() then estimates it."""
        raise NotImplementedError

    # -- public calls ---------------------------------------------------------------------

    def chat(self, request: ChatRequest, model: str = "") -> ChatResult:
        """One non-streaming completion. `model` is the upstream model name."""
        url, body = self._chat_call(request, model, stream=False)
        response = self._send("POST", url, body, self._headers)
        return self._chat_result(self._read_json(response), request)

    async def achat(self, request: ChatRequest, model: str = "") -> ChatResult:
        """`chat` on the event loop."""
        url, body = self._chat_call(request, model, stream=False)
        response = await self._asend("POST", url, body, self._headers)
        return self._chat_result(await self._aread_json(response), request)

    def stream(self, request: ChatRequest, model: str = "") -> StreamResult:
        """Start a streaming completion; see StreamResult for the error contract."""
        url, body = self._chat_call(request, model, stream=True)
        response = self._send("POST", url, body, self._stream_headers)
        result = StreamResult(self, response, self.stream_translator(request))
        result._prime()
        return result

    async def astream(self, request: ChatRequest, model: str = "") -> AsyncStreamResult:
        """`stream` on the event loop."""
        url, body = self._chat_call(request, model, stream=True)
        response = await self._asend("POST", url, body, self._stream_headers)
        result = AsyncStreamResult(self, response, self.stream_translator(request))
        await result._aprime()
        return result

    def embed(self, request: EmbeddingsRequest, model: str = "") -> EmbeddingsResult:
        """One embeddings call. `model` is the upstream model name."""
        url, body = self._embed_call(request, model)
        response = self._send("POST", url, body, self._headers)
        return self._embed_result(self._read_json(response), request)

    async def aembed(self, request: EmbeddingsRequest, model: str = "") -> EmbeddingsResult:
        """`embed` on the event loop."""
        url, body = self._embed_call(request, model)
        response = await self._asend("POST", url, body, self._headers)
        return self._embed_result(await self._aread_json(response), request)

    def count_tokens(self, request: ChatRequest, model: str = "") -> int:
        """The provider's own count of the prompt tokens of `request` (system prompt, messages
        and tools), for providers with a token-counting endpoint (`supports_count_tokens`)."""
        url, body = self._count_tokens_call(request, model)
        response = self._send("POST", url, body, self._headers)
        return self._count_tokens_result(self._read_json(response))

    async def acount_tokens(self, request: ChatRequest, model: str = "") -> int:
        """`count_tokens` on the event loop."""
        url, body = self._count_tokens_call(request, model)
        response = await self._asend("POST", url, body, self._headers)
        return self._count_tokens_result(await self._aread_json(response))

    def list_models(self) -> list[str]:
        """Model ids from the provider's cheap model-list endpoint (health probes)."""
        response = self._send("GET", self.models_url(), None, self._get_headers)
        return self._models_result(self._read_json(response))

    async def alist_models(self) -> list[str]:
        """`list_models` on the event loop."""
        response = await self._asend("GET", self.models_url(), None, self._get_headers)
        return self._models_result(await self._aread_json(response))

    # -- what the sync and async calls share: the request before, the parsing after --------

    def _chat_call(self, request: ChatRequest, model: str, *, stream: bool) -> tuple[str, dict]:
        model = model or request.model
        self.check_request(request, model)
        body = self.build_body(request, model, stream=stream)
        return self.chat_url(model, stream=stream), body

    def _chat_result(self, data: dict, request: ChatRequest) -> ChatResult:
        try:
            result = self.parse_response(data, request)
        except ProviderError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise MalformedResponse(
                f"unexpected response shape: {type(exc).__name__}: {exc}",
                provider_id=self.provider_id,
            ) from None
        usage = usage_from_openai(result.get("usage"))
        if usage is None:
            chars = sum(completion_chars(c.get("message") or {}) for c in result["choices"])
            usage = Usage(estimate_input_tokens(request), text_tokens(chars), estimated=True)
            result["usage"] = usage.to_dict()
        return ChatResult(result, usage)

    def _embed_call(self, request: EmbeddingsRequest, model: str) -> tuple[str, dict]:
        model = model or request.model
        if Capability.EMBEDDINGS not in self.capabilities:
            raise self.invalid(f"{self.provider_type} providers have no embeddings API", "model")
        return self.embeddings_url(model), self.build_embeddings_body(request, model)

    def _embed_result(self, data: dict, request: EmbeddingsRequest) -> EmbeddingsResult:
        try:
            result = self.parse_embeddings(data, request)
        except ProviderError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, struct.error) as exc:
            raise MalformedResponse(
                f"unexpected embeddings response: {type(exc).__name__}: {exc}",
                provider_id=self.provider_id,
            ) from None
        usage = usage_from_openai({"completion_tokens": 0, **(result.get("usage") or {})})
        if usage is None:
            usage = Usage(estimate_embedding_tokens(request), 0, estimated=True)
        result["usage"] = {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.total_tokens}
        return EmbeddingsResult(result, usage)

    def _count_tokens_call(self, request: ChatRequest, model: str) -> tuple[str, dict]:
        model = model or request.model
        if not self.supports_count_tokens:
            raise self.invalid(f"{self.provider_type} providers have no token-counting API")
        return self.count_tokens_url(model), self.build_count_tokens_body(request, model)

    def _count_tokens_result(self, data: dict) -> int:
        try:
            tokens = self.parse_count_tokens(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedResponse(
                f"unexpected token count: {type(exc).__name__}: {exc}", provider_id=self.provider_id
            ) from None
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
            raise MalformedResponse("token count is not a count", provider_id=self.provider_id)
        return tokens

    def _models_result(self, data: dict) -> list[str]:
        try:
            return self.parse_models(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedResponse(
                f"unexpected model list: {type(exc).__name__}: {exc}", provider_id=self.provider_id
            ) from None

    # -- shared machinery -----------------------------------------------------------------

    def check_request(self, request: ChatRequest, model: str) -> None:
        if not model:
            raise InvalidRequest("no model given", provider_id=self.provider_id)
        if request.n not in (None, 1) and Capability.MULTIPLE_CHOICES not in self.capabilities:
            raise InvalidRequest(
                f"n={request.n}: this provider returns one choice per request",
                provider_id=self.provider_id,
                upstream_code="n",
            )

    def invalid(self, message: str, code: str | None = None) -> InvalidRequest:
        """An InvalidRequest raised while translating, before anything was sent."""
        return InvalidRequest(message, provider_id=self.provider_id, upstream_code=code)

    def tool_call_arguments(self, function: dict, param: str) -> dict:
        """An OpenAI tool call's `arguments` (a JSON string) as the object Anthropic's `input`
        and Gemini's `args` need; `param` names the call in the error."""
        arguments = function.get("arguments") or ""
        try:
            parsed = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            raise self.invalid(f"{param}.function.arguments is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise self.invalid(f"{param}.function.arguments must encode a JSON object")
        return parsed

    def redact(self, text: str) -> str:
        key = self.endpoint.api_key
        if key and key in text:
            text = text.replace(key, "[redacted]")
        return text

    def _send(
        self,
        method: str,
        url: str,
        body: dict | None,
        headers: dict[str, str],
    ) -> _Response:
        """Send one request; the body is left unread (the caller reads it, or streams it)."""
        data = _encode(body)
        transport = _transport_for(self.endpoint)
        try:
            if transport.pool is not None:
                raw = transport.urlopen(method, url, data, headers, self._pool_timeout)
                response = _Response(raw.status, raw.headers, raw)
            else:
                session_response = transport.session.request(
                    method,
                    url,
                    data=data,
                    headers=headers,
                    timeout=self._timeout,
                    stream=True,
                    # Never follow redirects: x-api-key style headers would go to the new host.
                    allow_redirects=False,
                )
                response = _Response(
                    session_response.status_code,
                    session_response.headers,
                    session_response.raw,
                    session_response,
                )
        except Exception as exc:
            raise self.transport_error(exc) from None
        if response.status_code >= 300:
            try:
                raw_body = response.read_all()
            except Exception:
                raw_body = b""
            finally:
                response.close()
            raise self.error_from_response(response.status_code, response.headers, raw_body)
        return response

    async def _asend(
        self, method: str, url: str, body: dict | None, headers: dict[str, str]
    ) -> _AsyncResponse:
        """`_send` on the event loop."""
        data = _encode(body)
        session = async_session_for(self.endpoint)
        try:
            raw = await session.request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=self._aio_timeout,
                # Never follow redirects: x-api-key style headers would go to the new host.
                allow_redirects=False,
            )
        except Exception as exc:
            raise self.transport_error(exc) from None
        response = _AsyncResponse(raw)
        if response.status_code >= 300:
            try:
                raw_body = await response.read_all()
            except Exception:
                raw_body = b""
            finally:
                response.close()
            raise self.error_from_response(response.status_code, response.headers, raw_body)
        return response

    async def _aread_json(self, response: _AsyncResponse) -> dict:
        try:
            raw = await response.read_all()
        except Exception as exc:
            raise self.transport_error(exc) from None
        finally:
            response.close()
        return self._parse_json(raw)

    def _read_json(self, response: _Response) -> dict:
        try:
            raw = response.read_all()
        except Exception as exc:
            raise self.transport_error(exc) from None
        finally:
            response.close()
        return self._parse_json(raw)

    def _parse_json(self, raw: bytes) -> dict:
        try:
            data = json.loads(raw)
        except ValueError:
            raise MalformedResponse(
                f"response is not JSON: {self._preview(raw)!r}", provider_id=self.provider_id
            ) from None
        if not isinstance(data, dict):
            raise MalformedResponse("response is not a JSON object", provider_id=self.provider_id)
        return data

    def _preview(self, raw: bytes) -> str:
        return self.redact(raw[:_ERROR_BODY_PREVIEW].decode("utf-8", errors="replace"))

    def transport_error(self, exc: BaseException) -> ProviderError:
        """Map a requests/urllib3/socket exception to the taxonomy (pre-stream classes)."""
        description = self.redact(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, aiohttp.ClientError) and not isinstance(exc, TimeoutError):
            # aiohttp's timeouts are TimeoutErrors (below); a body that does not decode is
            # malformed; everything else (refused, reset, cut) is the connection.
            if "content-encoding" in str(exc).lower():
                return MalformedResponse(description, provider_id=self.provider_id)
            return UpstreamConnectionError(description, provider_id=self.provider_id)
        if isinstance(exc, urllib3.exceptions.NewConnectionError):
            # urllib3 derives "connection refused" from ConnectTimeoutError; it is no timeout.
            return UpstreamConnectionError(description, provider_id=self.provider_id)
        # requests reports a read timeout while downloading the body as a ConnectionError
        # wrapping urllib3's ReadTimeoutError.
        timed_out = isinstance(
            exc, requests.exceptions.Timeout | urllib3.exceptions.TimeoutError | TimeoutError
        ) or any(isinstance(arg, urllib3.exceptions.TimeoutError) for arg in exc.args)
        if timed_out:
            return UpstreamTimeout(description, provider_id=self.provider_id)
        if isinstance(
            exc, urllib3.exceptions.DecodeError | requests.exceptions.ContentDecodingError
        ):
            return MalformedResponse(description, provider_id=self.provider_id)
        if isinstance(
            exc,
            requests.exceptions.RequestException | urllib3.exceptions.HTTPError | OSError,
        ):
            return UpstreamConnectionError(description, provider_id=self.provider_id)
        raise exc

    def error_from_response(
        self, status: int, headers: Mapping[str, str], raw: bytes
    ) -> ProviderError:
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        details: dict = {}
        if body is not None:
            try:
                details = self.error_details(status, body) or {}
            except (KeyError, TypeError, ValueError, AttributeError, IndexError):
                details = {}
        message = details.get("message") or self._preview(raw) or f"HTTP {status}"
        retry_after = parse_retry_after(headers)
        if retry_after is None:
            retry_after = details.get("retry_after")
        error = self._error_for(status, details, message, retry_after)
        if details.get("retryable") is not None:
            error.retryable = details["retryable"]
        logger.info("provider %s answered HTTP %s: %s", self.provider_id, status, error.error_type)
        return error

    def stream_error(self, status: int, body: Any) -> ProviderError:
        """An error event inside a stream, mapped like an HTTP error with `status`."""
        details = self.error_details(status, body) or {}
        message = details.get("message") or "error event in stream"
        return self._error_for(status, details, message, details.get("retry_after"))

    def _error_for(
        self, status: int, details: dict, message: Any, retry_after: float | None
    ) -> ProviderError:
        """The taxonomy error for `status` and what error_details() read from the body."""
        return error_for_status(
            status,
            self.redact(str(message)),
            provider_id=self.provider_id,
            retry_after=retry_after,
            upstream_code=details.get("code"),
            context_exceeded=bool(details.get("context_exceeded")),
            auth_failed=bool(details.get("auth_failed")),
        )
