"""The provider simulator's HTTP server: routing, fault application and the control API.

Layout of the URL space (one port):

    /<name>/v1/chat/completions                                  OpenAI
    /<name>/v1/models[/<id>]                                     OpenAI, or Anthropic when the
                                                                 request has anthropic-version
                                                                 or x-api-key, or Gemini when it
                                                                 has x-goog-api-key or ?key=
    /<name>/openai/deployments/<deployment>/chat/completions     Azure OpenAI (?api-version=)
    /<name>/openai/models                                        Azure OpenAI model list
    /<name>/v1/messages, /<name>/v1/messages/count_tokens        Anthropic
    /<name>/v1beta/models/<model>:generateContent                Gemini; also
                                                                 :streamGenerateContent and
                                                                 :countTokens, and under /v1/
    /<name>/v1beta/models[/<model>]                              Gemini model list / model
    /_sim/...                                                    control API (faults, stats, health)

`<name>` is any [a-z0-9_-]+ label; faults and stats are kept per name, and every name speaks
every wire format. `_sim` is reserved for the control API.

Faults are applied in this order: down (503 in the endpoint's error shape, every endpoint of
the name including the model lists), added latency, connection reset, timeout (hang), then
the request's own auth and validation errors, then injected error statuses, malformed bodies
and cut streams.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import re
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote

from . import wire_anthropic, wire_gemini, wire_openai
from .catalog import resolve_models
from .faults import FaultPlan, FaultRegistry, FaultSet, FaultValidationError
from .generation import Generation, RequestInvalid
from .stats import SimulatorStats

logger = logging.getLogger("simulator")

NAME_PATTERN = re.compile(r"^[a-z0-9_-]+$")
CONTROL_PREFIX = "_sim"
MAX_BODY_BYTES = 32 * 1024 * 1024
# Idle keep-alive connections are dropped after this long so dead clients free their thread.
IDLE_TIMEOUT_S = 120
DEFAULT_PORT = 9100
_MAX_HEADERS = 100
_MAX_HEADER_LINE = 65536

_GEMINI_CALL = re.compile(r"^/(v1beta|v1)/models/([^/:]+):([A-Za-z]+)$")
_GEMINI_MODEL = re.compile(r"^/(v1beta)/models/([^/:]+)$")
_AZURE_CHAT = re.compile(r"^/openai/deployments/([^/]+)/chat/completions$")
_MODEL_ITEM = re.compile(r"^/v1/models/([^/:]+)$")

_JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_REASONS[529] = "Site Overloaded"


class _ConnectionGone(Exception):
    """The client went away while we were answering."""


@dataclass
class Reply:
    """A successful (or format-level 4xx) answer before faults touch it."""

    status: int = 200
    body: bytes = b""
    events: list[bytes] | None = None
    content_type: str = _JSON
    generation: Generation | None = None


@dataclass
class SimulatorState:
    """Everything the request handlers share: models, faults, stats, the stop signal."""

    models: dict[str, tuple[str, ...]]
    faults: FaultRegistry = field(default_factory=FaultRegistry)
    stats: SimulatorStats = field(default_factory=SimulatorStats)
    stopping: threading.Event = field(default_factory=threading.Event)
    started_at: float = field(default_factory=time.time)


# --- wire adapters: one per endpoint family, created per request ----------------------------


class _OpenAIEndpoint:
    kind = "chat_completions"
    wire = "openai"

    def __init__(self, state: SimulatorState, headers, query):
        self.state, self.headers, self.query = state, headers, query
        self.request_id = "req_" + wire_openai.random_id(32)

    def response_headers(self) -> list[tuple[str, str]]:
        return [("x-request-id", self.request_id)]

    def streaming(self, body) -> bool:
        return isinstance(body, dict) and body.get("stream") is True

    def gate(self) -> tuple[int, bytes] | None:
        failure = wire_openai.check_auth(self.headers)
        return (failure.status, wire_openai.invalid(failure)) if failure else None

    def bad_json(self) -> tuple[int, bytes]:
        return 400, wire_openai.error_body(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON. If you have trouble figuring out how to fix "
            "this, please contact us through our help center at help.openai.com.)",
            "invalid_request_error",
        )

    def invalid(self, exc: RequestInvalid) -> bytes:
        return wire_openai.invalid(exc)

    def fault_error(self, status: int, retry_after: int) -> tuple[bytes, list]:
        headers = [("Retry-After", str(retry_after))] if status == 429 else []
        return wire_openai.fault_error(status), headers

    def default_model(self) -> str | None:
        return None

    def answer(self, body) -> Reply:
        gen = wire_openai.parse(body, self.default_model())
        response_id = wire_openai.new_id()
        if gen.stream:
            return Reply(
                events=wire_openai.stream(gen, response_id), content_type=_SSE, generation=gen
            )
        return Reply(body=wire_openai.render(gen, response_id), generation=gen)


class _AzureEndpoint(_OpenAIEndpoint):
    kind = "azure_chat_completions"

    def __init__(self, state, headers, query, deployment: str):
        super().__init__(state, headers, query)
        self.deployment = deployment

    def response_headers(self):
        return [("x-request-id", self.request_id), ("apim-request-id", self.request_id)]

    def gate(self):
        return wire_openai.azure_check(self.headers, self.query)

    def fault_error(self, status, retry_after):
        if status != 429:
            return super().fault_error(status, retry_after)
        version = self.query.get("api-version", "")
        headers = [("Retry-After", str(retry_after)), ("retry-after-ms", str(retry_after * 1000))]
        return wire_openai.azure_rate_limit_body(version, retry_after), headers

    def default_model(self):
        # Azure routes by deployment; the body's model is optional and only echoed.
        return self.deployment


class _AzureModelsEndpoint(_AzureEndpoint):
    kind = "models"

    def __init__(self, state, headers, query):
        super().__init__(state, headers, query, deployment="")

    def streaming(self, body):
        return False

    def answer(self, body):
        return Reply(body=wire_openai.azure_models_body(self.state.models["openai"]))


class _OpenAIModelsEndpoint(_OpenAIEndpoint):
    kind = "models"

    def __init__(self, state, headers, query, model_id: str | None):
        super().__init__(state, headers, query)
        self.model_id = model_id

    def streaming(self, body):
        return False

    def answer(self, body):
        ids = self.state.models["openai"]
        if self.model_id is None:
            return Reply(body=wire_openai.models_body(ids))
        status, payload = wire_openai.model_body(self.model_id, ids)
        return Reply(status=status, body=payload)


class _AnthropicEndpoint:
    kind = "messages"
    wire = "anthropic"
    needs_version = True

    def __init__(self, state: SimulatorState, headers, query):
        self.state, self.headers, self.query = state, headers, query
        self.request_id = wire_anthropic.new_request_id()

    def response_headers(self):
        return [("request-id", self.request_id)]

    def streaming(self, body) -> bool:
        return isinstance(body, dict) and body.get("stream") is True

    def gate(self):
        failure = wire_anthropic.check_auth(self.headers, needs_version=self.needs_version)
        return (failure.status, self.invalid(failure)) if failure else None

    def bad_json(self):
        return 400, wire_anthropic.error_body(
            400, "There was an error parsing the body: invalid JSON", self.request_id
        )

    def invalid(self, exc: RequestInvalid) -> bytes:
        return wire_anthropic.invalid(exc, self.request_id)

    def fault_error(self, status, retry_after):
        headers = [("retry-after", str(retry_after))] if status == 429 else []
        return wire_anthropic.fault_error(status, self.request_id), headers

    def answer(self, body) -> Reply:
        gen = wire_anthropic.parse(body)
        message_id = wire_anthropic.new_id()
        if gen.stream:
            events = wire_anthropic.stream(gen, message_id)
            return Reply(events=events, content_type=_SSE, generation=gen)
        return Reply(body=wire_anthropic.render(gen, message_id), generation=gen)


class _AnthropicCountTokensEndpoint(_AnthropicEndpoint):
    kind = "count_tokens"

    def streaming(self, body):
        return False

    def answer(self, body):
        return Reply(body=wire_anthropic.count_tokens(body))


class _AnthropicModelsEndpoint(_AnthropicEndpoint):
    kind = "models"
    # Listing models only needs the key; the version header is optional there.
    needs_version = False

    def __init__(self, state, headers, query, model_id: str | None):
        super().__init__(state, headers, query)
        self.model_id = model_id

    def streaming(self, body):
        return False

    def answer(self, body):
        ids = self.state.models["anthropic"]
        if self.model_id is None:
            status, payload = wire_anthropic.models_body(ids, self.query)
        else:
            status, payload = wire_anthropic.model_body(self.model_id, ids)
        return Reply(status=status, body=payload)


class _GeminiBase:
    wire = "gemini"
    kind = "models"

    def __init__(self, state: SimulatorState, headers, query, api_version: str):
        self.state, self.headers, self.query = state, headers, query
        self.api_version = api_version

    def response_headers(self):
        return []

    def streaming(self, body) -> bool:
        return False

    def gate(self):
        failure = wire_gemini.check_auth(self.headers, self.query)
        return (failure.status, wire_gemini.invalid(failure)) if failure else None

    def bad_json(self):
        return 400, wire_gemini.error_body(400, "Invalid JSON payload received. Unexpected token.")

    def invalid(self, exc: RequestInvalid) -> bytes:
        return wire_gemini.invalid(exc)

    def fault_error(self, status, retry_after):
        headers = [("Retry-After", str(retry_after))] if status == 429 else []
        return wire_gemini.fault_error(status, retry_after), headers


class _GeminiEndpoint(_GeminiBase):
    _KINDS = {
        "generateContent": "generate_content",
        "streamGenerateContent": "stream_generate_content",
        "countTokens": "count_tokens",
    }

    def __init__(self, state, headers, query, api_version: str, model: str, method: str):
        super().__init__(state, headers, query, api_version)
        self.model, self.method = model, method
        self.kind = self._KINDS[method]

    def streaming(self, body) -> bool:
        return self.method == "streamGenerateContent"

    def answer(self, body) -> Reply:
        if self.method == "countTokens":
            return Reply(body=wire_gemini.count_tokens(body))
        gen = wire_gemini.parse(body, self.model, self.streaming(body))
        response_id = wire_gemini.new_id()
        if not gen.stream:
            return Reply(body=wire_gemini.render(gen, response_id), generation=gen)
        if self.query.get("alt") == "sse":
            events = wire_gemini.stream_sse(gen, response_id)
            return Reply(events=events, content_type="text/event-stream", generation=gen)
        events = wire_gemini.stream_json_array(gen, response_id)
        return Reply(events=events, content_type=_JSON, generation=gen)


class _GeminiModelsEndpoint(_GeminiBase):
    def __init__(self, state, headers, query, api_version: str, model_id: str | None):
        super().__init__(state, headers, query, api_version)
        self.model_id = model_id

    def answer(self, body):
        ids = self.state.models["gemini"]
        if self.model_id is None:
            return Reply(body=wire_gemini.models_body(ids))
        status, payload = wire_gemini.model_body(self.model_id, ids, self.api_version)
        return Reply(status=status, body=payload)


def _models_wire(headers, query) -> str:
    if headers.get("anthropic-version") or headers.get("x-api-key"):
        return "anthropic"
    if headers.get("x-goog-api-key") or query.get("key"):
        return "gemini"
    return "openai"


def route(state: SimulatorState, method: str, rest: str, headers, query):
    """The endpoint object for a path below /<name>, or None when nothing matches."""
    if method == "POST":
        if rest == "/v1/chat/completions":
            return _OpenAIEndpoint(state, headers, query)
        if rest == "/v1/messages":
            return _AnthropicEndpoint(state, headers, query)
        if rest == "/v1/messages/count_tokens":
            return _AnthropicCountTokensEndpoint(state, headers, query)
        match = _GEMINI_CALL.match(rest)
        if match and match[3] in _GeminiEndpoint._KINDS:
            return _GeminiEndpoint(state, headers, query, match[1], match[2], match[3])
        match = _AZURE_CHAT.match(rest)
        if match:
            return _AzureEndpoint(state, headers, query, match[1])
        return None
    if method != "GET":
        return None
    if rest == "/openai/models":
        return _AzureModelsEndpoint(state, headers, query)
    if rest == "/v1beta/models":
        return _GeminiModelsEndpoint(state, headers, query, "v1beta", None)
    match = _GEMINI_MODEL.match(rest)
    if match:
        return _GeminiModelsEndpoint(state, headers, query, match[1], match[2])
    match = _MODEL_ITEM.match(rest)
    if rest == "/v1/models" or match:
        model_id = match[1] if match else None
        wire = _models_wire(headers, query)
        if wire == "anthropic":
            return _AnthropicModelsEndpoint(state, headers, query, model_id)
        if wire == "gemini":
            return _GeminiModelsEndpoint(state, headers, query, "v1", model_id)
        return _OpenAIModelsEndpoint(state, headers, query, model_id)
    return None


# --- HTTP plumbing --------------------------------------------------------------------------


class _DateHeader:
    """RFC 7231 Date value, recomputed at most once a second."""

    def __init__(self):
        self._second = -1
        self._value = ""

    def value(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._value = email.utils.formatdate(now, usegmt=True)
            self._second = now
        return self._value


_date = _DateHeader()


def _corrupt(event: bytes) -> bytes:
    """Cut the JSON payload of one stream event in half, keeping its framing."""
    start = event.rfind(b"data: ")
    start = 0 if start < 0 else start + len(b"data: ")
    end = len(event.rstrip(b"\r\n"))
    cut = start + max(1, (end - start) // 2)
    return event[:cut] + event[end:]


class SimulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 256

    def __init__(self, address, state: SimulatorState):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, SimulatorHandler)

    def track(self, sock: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(sock)

    def close_connections(self) -> None:
        """Wake every handler thread blocked on a keep-alive or hung connection."""
        with self._connections_lock:
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class RequestHeaders(dict):
    """Request headers by lower-cased name; repeated headers are joined with ", "."""

    def add(self, name: str, value: str) -> None:
        key = name.lower()
        existing = dict.get(self, key)
        self[key] = value if existing is None else f"{existing}, {value}"

    def get(self, name: str, default=None):
        return dict.get(self, name.lower(), default)


class SimulatorHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "auterity-provider-simulator/1.0"
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    server: SimulatorHTTPServer

    # -- connection lifecycle --

    def parse_request(self) -> bool:
        """A lean HTTP/1.x request parser.

        The stock one builds an email.message.Message per request, which costs more than
        everything else a simulated call does; this keeps only what a client can rely on:
        keep-alive rules, Expect: 100-continue and sane limits.
        """
        self.command = None
        # Errors below are answered as HTTP/1.1; HTTP/0.9 requests are not supported.
        self.request_version = "HTTP/1.1"
        self.close_connection = True
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.requestline = requestline
        words = requestline.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request line {requestline!r}")
            return False
        self.command, self.path, self.request_version = words
        headers = RequestHeaders()
        for _ in range(_MAX_HEADERS + 1):
            line = self.rfile.readline(_MAX_HEADER_LINE + 1)
            if line in (b"\r\n", b"\n", b""):
                break
            name, colon, value = str(line, "iso-8859-1").partition(":")
            if len(line) > _MAX_HEADER_LINE or not colon:
                self.send_error(HTTPStatus.BAD_REQUEST, "Bad header line")
                return False
            headers.add(name.strip(), value.strip())
        else:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
            return False
        self.headers = headers
        connection = headers.get("connection", "").lower()
        if self.request_version == "HTTP/1.1":
            self.close_connection = "close" in connection
        else:
            self.close_connection = "keep-alive" not in connection
        if headers.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def setup(self):
        super().setup()
        # One write per response plus no Nagle delay keeps keep-alive round trips short.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format, *args):
        logger.debug("%s - " + format, self.address_string(), *args)

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    # -- writing --

    def _head(self, status: int, content_type: str, headers, length: int | None) -> bytes:
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
            f"Server: {self.server_version}",
            f"Date: {_date.value()}",
            f"Content-Type: {content_type}",
        ]
        if length is None:
            lines.append("Transfer-Encoding: chunked")
            lines.append("Cache-Control: no-cache")
        else:
            lines.append(f"Content-Length: {length}")
        lines.extend(f"{k}: {v}" for k, v in headers)
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
        except OSError as exc:
            self.close_connection = True
            raise _ConnectionGone from exc

    def _send(self, status: int, body: bytes, content_type: str = _JSON, headers=()) -> None:
        self._status = status
        self._write(self._head(status, content_type, headers, len(body)) + body)

    def _send_json(self, status: int, obj, headers=()) -> None:
        self._send(status, json.dumps(obj, separators=(",", ":")).encode(), _JSON, headers)

    def _send_stream(self, reply: Reply, headers, plan: FaultPlan) -> None:
        self._status = 200
        events = reply.events
        if plan.malformed:
            events = list(events)
            index = 1 if len(events) > 1 else 0
            events[index] = _corrupt(events[index])
        stop_at = len(events)
        if plan.cut_stream:
            # About half the events, always short of the final ones.
            stop_at = max(1, min(len(events) // 2, len(events) - 2))
            self.close_connection = True
        framed = [b"%x\r\n%s\r\n" % (len(e), e) for e in events[:stop_at]]
        if not plan.cut_stream:
            framed.append(b"0\r\n\r\n")
        head = self._head(200, reply.content_type, headers, None)
        if plan.chunk_delay_s <= 0:
            self._write(head + b"".join(framed))
            return
        self._write(head + framed[0])
        for piece in framed[1:]:
            if self.server.state.stopping.wait(plan.chunk_delay_s):
                self.close_connection = True
                return
            self._write(piece)

    def _reset(self) -> None:
        """Close with SO_LINGER 0 so the kernel sends RST instead of FIN."""
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # The buffered reader holds a reference to the socket; drop it so close() is real.
            self.rfile.close()
            sock.close()
        except OSError:
            pass

    # -- reading --

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError:
            return None
        if size < 0 or size > MAX_BODY_BYTES:
            return None
        return self.rfile.read(size)

    def _read_chunked(self) -> bytes | None:
        parts, total = [], 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                return None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    # -- dispatch --

    def _handle(self) -> None:
        self._status = 0
        started = time.perf_counter()
        raw = self._read_body()
        path, _, query_string = self.path.partition("?")
        path = unquote(path)
        try:
            if raw is None:
                self.close_connection = True
                self._send_json(400, {"error": {"message": "unreadable request body"}})
            elif path == "/" + CONTROL_PREFIX or path.startswith("/" + CONTROL_PREFIX + "/"):
                self._control(path, raw)
            else:
                query = dict(parse_qsl(query_string)) if query_string else {}
                self._provider(path, query, raw)
        except _ConnectionGone:
            pass
        except Exception:
            logger.exception("simulator failed on %s %s", self.command, self.path)
            self.close_connection = True
            with contextlib.suppress(_ConnectionGone):
                self._send_json(500, {"error": {"message": "simulator internal error"}})
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %s in %.1f ms",
                self.command,
                self.path,
                self._status or "no response",
                (time.perf_counter() - started) * 1000,
            )

    def _provider(self, path: str, query: dict, raw: bytes) -> None:
        state = self.server.state
        name, _, rest = path[1:].partition("/")
        if not NAME_PATTERN.match(name):
            self._send(404, wire_openai.unknown_url(self.command, path))
            return
        rest = "/" + rest
        endpoint = route(state, self.command, rest, self.headers, query)
        if endpoint is None:
            state.stats.record(name, "unknown", "not_found")
            self._send(404, wire_openai.unknown_url(self.command, rest))
            return
        body, body_ok = None, True
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body_ok = False
        streaming = endpoint.streaming(body)

        def record(outcome: str, gen: Generation | None = None) -> None:
            # Called before the answer goes out, so a client that has its answer also sees it
            # counted.
            tokens = {}
            if outcome == "ok" and gen is not None:
                tokens = {
                    "prompt_tokens": gen.prompt_tokens,
                    "completion_tokens": gen.completion_tokens,
                }
            state.stats.record(name, endpoint.kind, outcome, stream=streaming, **tokens)

        self._serve(name, endpoint, body, body_ok, streaming, record)

    def _serve(self, name: str, endpoint, body, body_ok: bool, streaming: bool, record) -> None:
        """Answer one provider request, applying the faults drawn for it."""
        state = self.server.state
        plan = state.faults.draw(name, streaming)
        headers = endpoint.response_headers()

        if plan.down:
            record("down")
            payload, _ = endpoint.fault_error(503, 0)
            self._send(503, payload, _JSON, headers)
            return
        if plan.latency_s > 0 and state.stopping.wait(plan.latency_s):
            self.close_connection = True
            return
        if plan.reset:
            record("reset")
            self._reset()
            return
        if plan.hang_s is not None:
            record("timeout")
            state.stopping.wait(plan.hang_s)
            self.close_connection = True
            return

        gate = endpoint.gate()
        if gate is not None:
            status, payload = gate
            record(_client_outcome(status))
            self._send(status, payload, _JSON, headers)
            return
        if not body_ok:
            status, payload = endpoint.bad_json()
            record("bad_request")
            self._send(status, payload, _JSON, headers)
            return
        try:
            reply = endpoint.answer(body)
        except RequestInvalid as exc:
            record(_client_outcome(exc.status))
            self._send(exc.status, endpoint.invalid(exc), _JSON, headers)
            return
        if reply.status != 200:
            record(_client_outcome(reply.status))
            self._send(reply.status, reply.body, reply.content_type, headers)
            return

        if plan.error_status is not None:
            record(f"error_{plan.error_status}")
            payload, extra = endpoint.fault_error(plan.error_status, plan.retry_after)
            self._send(plan.error_status, payload, _JSON, headers + extra)
            return
        if plan.malformed:
            record("malformed")
        elif plan.cut_stream:
            record("cut_stream")
        else:
            record("ok", reply.generation)
        if reply.events is not None:
            self._send_stream(reply, headers, plan)
        elif plan.malformed:
            self._send(200, reply.body[: max(1, len(reply.body) // 2)], reply.content_type, headers)
        else:
            self._send(200, reply.body, reply.content_type, headers)

    # -- control API --

    def _control(self, path: str, raw: bytes) -> None:
        state = self.server.state
        parts = path.strip("/").split("/")[1:]
        method = self.command
        if parts == ["health"] and method == "GET":
            self._send_json(
                200, {"status": "ok", "uptime_s": round(time.time() - state.started_at, 3)}
            )
        elif parts == ["faults"] and method == "GET":
            self._send_json(200, {"faults": state.faults.snapshot()})
        elif parts == ["faults"] and method == "DELETE":
            state.faults.clear()
            self._send_json(200, {"cleared": "all"})
        elif (
            len(parts) == 2 and parts[0] == "faults" and method in ("GET", "PUT", "PATCH", "DELETE")
        ):
            self._control_fault(parts[1], method, raw)
        elif parts == ["stats"] and method == "GET":
            self._send_json(200, {"stats": state.stats.snapshot()})
        elif len(parts) == 2 and parts[0] == "stats" and parts[1] != "reset" and method == "GET":
            self._send_json(200, {"name": parts[1], "stats": state.stats.get(parts[1])})
        elif parts == ["stats", "reset"] and method == "POST":
            state.stats.reset()
            self._send_json(200, {"reset": True})
        else:
            self._send_json(
                404, {"error": {"message": f"no control endpoint {method} {path}", "field": None}}
            )

    def _control_fault(self, name: str, method: str, raw: bytes) -> None:
        faults = self.server.state.faults
        if not NAME_PATTERN.match(name) or name == CONTROL_PREFIX:
            self._send_json(
                400, {"error": {"message": "name must match [a-z0-9_-]+", "field": "name"}}
            )
            return
        if method == "GET":
            current = faults.get(name)
            fields = (current or FaultSet()).as_dict()
            self._send_json(200, {"name": name, "active": current is not None, "faults": fields})
            return
        if method == "DELETE":
            faults.clear(name)
            self._send_json(200, {"name": name, "cleared": True})
            return
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            self._send_json(400, {"error": {"message": "body is not valid JSON", "field": None}})
            return
        try:
            fault_set = faults.put(name, data) if method == "PUT" else faults.patch(name, data)
        except FaultValidationError as exc:
            self._send_json(400, {"error": {"message": exc.message, "field": exc.field}})
            return
        self._send_json(200, {"name": name, "active": True, "faults": fault_set.as_dict()})


def _client_outcome(status: int) -> str:
    if status in (401, 403):
        return "auth_error"
    if status == 404:
        return "not_found"
    return "bad_request"


# --- public entry points --------------------------------------------------------------------


class SimulatorServer:
    """A simulator on a background thread, for tests and benchmarks.

    >>> with SimulatorServer() as sim:
    ...     sim.set_fault("openai", error_rate=1.0, error_status=429, retry_after=2)
    ...     requests.post(sim.base_url("openai") + "/v1/chat/completions", ...)
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, models=None):
        self.host = host
        self.port = port
        self._state = SimulatorState(models=resolve_models(models))
        self._httpd: SimulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SimulatorServer:
        if self._httpd is not None:
            return self
        self._httpd = SimulatorHTTPServer((self.host, self.port), self._state)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"provider-simulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._state.stopping.set()
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the simulator is not started")
        return _url(self.host, self.port)

    def base_url(self, name: str) -> str:
        """Base URL of one simulated provider; append the wire format's own paths."""
        _check_name(name)
        return f"{self.url}/{name}"

    def set_fault(self, name: str, **fields) -> dict:
        """Replace the fault set of `name` (fields not given take their defaults)."""
        _check_name(name)
        return self._state.faults.put(name, fields).as_dict()

    def clear_faults(self, name: str | None = None) -> None:
        if name is not None:
            _check_name(name)
        self._state.faults.clear(name)

    def faults(self) -> dict[str, dict]:
        return self._state.faults.snapshot()

    def stats(self, name: str) -> dict:
        return self._state.stats.get(name)

    def all_stats(self) -> dict[str, dict]:
        return self._state.stats.snapshot()

    def reset_stats(self) -> None:
        self._state.stats.reset()


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or name == CONTROL_PREFIX:
        raise ValueError(f"provider name must match [a-z0-9_-]+ (not {CONTROL_PREFIX!r}): {name!r}")


def _url(host: str, port: int) -> str:
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def serve_forever(host: str = "127.0.0.1", port: int = DEFAULT_PORT, models=None) -> None:
    """Run the simulator in the foreground until interrupted (the management command's body)."""
    state = SimulatorState(models=resolve_models(models))
    httpd = SimulatorHTTPServer((host, port), state)
    bound = httpd.server_address[1]
    base = _url(host, bound)
    print(
        f"Provider simulator listening on {base} "
        f"(providers at {base}/<name>/..., control at {base}/_sim/)",
        file=sys.stdout,
        flush=True,
    )
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        state.stopping.set()
        httpd.close_connections()
        httpd.server_close()
