"""The provider simulator's HTTP server: routing, fault application and the control API.

Layout of the URL space (one port):

    /<name>/v1/chat/completions                                  OpenAI
    /<name>/v1/embeddings                                        OpenAI
    /<name>/v1/models[/<id>]                                     OpenAI, or Anthropic when the
                                                                 request has anthropic-version
                                                                 or x-api-key, or Gemini when it
                                                                 has x-goog-api-key or ?key=
    /<name>/openai/deployments/<deployment>/chat/completions     Azure OpenAI (?api-version=)
    /<name>/openai/deployments/<deployment>/embeddings           Azure OpenAI
    /<name>/openai/models                                        Azure OpenAI model list
    /<name>/v1/messages, /<name>/v1/messages/count_tokens        Anthropic
    /<name>/v1beta/models/<model>:generateContent                Gemini; also
                                                                 :streamGenerateContent,
                                                                 :countTokens, :embedContent,
                                                                 :batchEmbedContents, and
                                                                 under /v1/
    /<name>/v1beta/models[/<model>]                              Gemini model list / model
    /_sim/...                                                    control API (faults, latency
                                                                 profile, stats, health)

`<name>` is any [a-z0-9_-]+ label; faults and stats are kept per name, and every name speaks
every wire format. `_sim` is reserved for the control API.

Faults are applied in this order: down (503 in the endpoint's error shape, every endpoint of
the name including the model lists), added latency, connection reset, timeout (hang), then
the request's own auth and validation errors, then injected error statuses, malformed bodies
and cut streams.

The server is asynchronous (aiohttp.web on one asyncio event loop): a request that waits
(latency, a hang, the gap between stream events) holds no thread, so one process keeps
thousands of slow calls and streams open. `SimulatorServer` runs the loop on a background
thread for synchronous tests; `serve_forever` runs it in the foreground for the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import resource
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl

from aiohttp import web

from . import wire_openai
from .catalog import resolve_models
from .endpoints import Context, Reply, route
from .faults import FaultPlan, FaultRegistry, FaultSet, FaultValidationError
from .generation import Generation, RequestInvalid
from .latency import LatencyProfile, LatencyValidationError
from .prompt_cache import PromptCache
from .stats import SimulatorStats

logger = logging.getLogger("simulator")

NAME_PATTERN = re.compile(r"^[a-z0-9_-]+$")
CONTROL_PREFIX = "_sim"
MAX_BODY_BYTES = 32 * 1024 * 1024
# Idle keep-alive connections are dropped after this long so dead clients free their socket.
IDLE_TIMEOUT_S = 120
DEFAULT_PORT = 9100
# Pending connections the kernel queues while the loop is busy (capped by net.core.somaxconn).
LISTEN_BACKLOG = 4096
SERVER_NAME = "auterity-provider-simulator/2.0"

_JSON = "application/json"

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_REASONS[529] = "Site Overloaded"


@dataclass
class SimulatorState:
    """Everything the request handlers share: models, faults, latency, stats, live tasks."""

    models: dict[str, tuple[str, ...]]
    profile: LatencyProfile = field(default_factory=LatencyProfile)
    faults: FaultRegistry = field(default_factory=FaultRegistry)
    stats: SimulatorStats = field(default_factory=SimulatorStats)
    cache: PromptCache = field(default_factory=PromptCache)
    started_at: float = field(default_factory=time.time)
    # Handlers in progress, cancelled on stop so hung and slow requests end at once.
    tasks: set = field(default_factory=set)


# --- faults that act on the connection ------------------------------------------------------


def _corrupt(event: bytes) -> bytes:
    """Cut the JSON payload of one stream event in half, keeping its framing."""
    start = event.rfind(b"data: ")
    start = 0 if start < 0 else start + len(b"data: ")
    end = len(event.rstrip(b"\r\n"))
    cut = start + max(1, (end - start) // 2)
    return event[:cut] + event[end:]


def _reset(request: web.Request) -> None:
    """Close with SO_LINGER 0 so the kernel sends RST instead of FIN."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _close(request: web.Request) -> None:
    """Close after what was written is sent (FIN), without ending the HTTP message."""
    if request.transport is not None:
        request.transport.close()


# A response for aiohttp to "send" after the handler closed the connection itself: writing
# it fails at once, which aiohttp treats as the client having gone.
def _gone() -> web.Response:
    return web.Response(status=200)


# --- responses ------------------------------------------------------------------------------


def _response(status: int, body: bytes, content_type: str = _JSON, headers=()) -> web.Response:
    response = web.Response(status=status, reason=_REASONS.get(status, "Unknown"), body=body)
    response.headers["Content-Type"] = content_type
    response.headers["Server"] = SERVER_NAME
    for name, value in headers:
        response.headers[name] = value
    return response


def _json(status: int, obj, headers=()) -> web.Response:
    return _response(status, json.dumps(obj, separators=(",", ":")).encode(), _JSON, headers)


async def _stream(
    request: web.Request, reply: Reply, headers, plan: FaultPlan, gap_s: float
) -> web.StreamResponse:
    events = reply.events
    if plan.malformed:
        events = list(events)
        index = 1 if len(events) > 1 else 0
        events[index] = _corrupt(events[index])
    stop_at = len(events)
    if plan.cut_stream:
        # About half the events, always short of the final ones.
        stop_at = max(1, min(len(events) // 2, len(events) - 2))
    response = web.StreamResponse(status=200)
    response.headers["Content-Type"] = reply.content_type
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Server"] = SERVER_NAME
    for name, value in headers:
        response.headers[name] = value
    response.enable_chunked_encoding()
    try:
        await response.prepare(request)
        if gap_s <= 0:
            await response.write(b"".join(events[:stop_at]))
        else:
            # Each event is due at a fixed offset from the first, so a late wake-up (a busy
            # loop) delays one event, not every event after it.
            loop = asyncio.get_running_loop()
            first = loop.time()
            await response.write(events[0])
            for index in range(1, stop_at):
                delay = first + index * gap_s - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await response.write(events[index])
    except ConnectionError:
        # The client left mid-stream; aiohttp finds the connection gone when it ends the
        # message and drops it quietly.
        return response
    if plan.cut_stream:
        # No final events, no chunked terminator: aiohttp's own end of message then fails on
        # the closed transport, which it takes for a client that left.
        _close(request)
    return response


# --- the request handler --------------------------------------------------------------------


def _client_outcome(status: int) -> str:
    if status in (401, 403):
        return "auth_error"
    if status == 404:
        return "not_found"
    return "bad_request"


class _Handler:
    """The aiohttp handler for every path: the control API or a simulated provider."""

    def __init__(self, state: SimulatorState):
        self.state = state

    async def handle(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        self.state.tasks.add(task)
        started = time.perf_counter()
        response = None
        try:
            try:
                raw = await request.read()
            except web.HTTPRequestEntityTooLarge:
                response = _json(413, {"error": {"message": "request body too large"}})
                response.force_close()
                return response
            path = request.path
            if path == "/" + CONTROL_PREFIX or path.startswith("/" + CONTROL_PREFIX + "/"):
                response = self._control(request.method, path, raw)
            else:
                query = dict(parse_qsl(request.query_string)) if request.query_string else {}
                response = await self._provider(request, path, query, raw)
            return response
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception:
            logger.exception("simulator failed on %s %s", request.method, request.path_qs)
            response = _json(500, {"error": {"message": "simulator internal error"}})
            response.force_close()
            return response
        finally:
            self.state.tasks.discard(task)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "%s %s -> %s in %.1f ms",
                    request.method,
                    request.path_qs,
                    response.status if response is not None else "no response",
                    (time.perf_counter() - started) * 1000,
                )

    async def _provider(self, request, path: str, query: dict, raw: bytes):
        state = self.state
        name, _, rest = path[1:].partition("/")
        if not NAME_PATTERN.match(name):
            return _response(404, wire_openai.unknown_url(request.method, path))
        rest = "/" + rest
        context = Context(name, state.models, state.cache)
        endpoint = route(context, request.method, rest, request.headers, query)
        if endpoint is None:
            state.stats.record(name, "unknown", "not_found")
            return _response(404, wire_openai.unknown_url(request.method, rest))
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

        return await self._serve(request, name, endpoint, body, body_ok, streaming, record)

    async def _serve(self, request, name, endpoint, body, body_ok, streaming, record):
        """Answer one provider request, applying the faults drawn for it."""
        state = self.state
        plan = state.faults.draw(name, streaming)
        headers = endpoint.response_headers()

        if plan.down:
            record("down")
            payload, _ = endpoint.fault_error(503, 0)
            return _response(503, payload, _JSON, headers)
        wait_s = plan.latency_s
        if endpoint.generates and state.profile.active:
            wait_s += state.profile.first_byte_s(streaming)
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        if plan.reset:
            record("reset")
            _reset(request)
            return _gone()
        if plan.hang_s is not None:
            record("timeout")
            await asyncio.sleep(plan.hang_s)
            _close(request)
            return _gone()

        gate = endpoint.gate()
        if gate is not None:
            status, payload = gate
            record(_client_outcome(status))
            return _response(status, payload, _JSON, headers)
        if not body_ok:
            status, payload = endpoint.bad_json()
            record("bad_request")
            return _response(status, payload, _JSON, headers)
        try:
            reply = endpoint.answer(body)
        except RequestInvalid as exc:
            record(_client_outcome(exc.status))
            return _response(exc.status, endpoint.invalid(exc), _JSON, headers)
        if reply.status != 200:
            record(_client_outcome(reply.status))
            return _response(reply.status, reply.body, reply.content_type, headers)

        if plan.error_status is not None:
            record(f"error_{plan.error_status}")
            payload, extra = endpoint.fault_error(plan.error_status, plan.retry_after)
            return _response(plan.error_status, payload, _JSON, headers + extra)
        if plan.malformed:
            record("malformed")
        elif plan.cut_stream:
            record("cut_stream")
        else:
            record("ok", reply.generation)
        if reply.events is not None:
            gap_s = plan.chunk_delay_s
            if state.profile.active:
                gap_s += state.profile.event_gap_s(len(reply.events))
            return await _stream(request, reply, headers, plan, gap_s)
        if plan.malformed:
            half = reply.body[: max(1, len(reply.body) // 2)]
            return _response(200, half, reply.content_type, headers)
        return _response(200, reply.body, reply.content_type, headers)

    # -- control API --

    def _control(self, method: str, path: str, raw: bytes) -> web.Response:
        state = self.state
        parts = path.strip("/").split("/")[1:]
        if parts == ["health"] and method == "GET":
            uptime = round(time.time() - state.started_at, 3)
            return _json(200, {"status": "ok", "uptime_s": uptime})
        if parts == ["faults"] and method == "GET":
            return _json(200, {"faults": state.faults.snapshot()})
        if parts == ["faults"] and method == "DELETE":
            state.faults.clear()
            return _json(200, {"cleared": "all"})
        if len(parts) == 2 and parts[0] == "faults" and method in ("GET", "PUT", "PATCH", "DELETE"):
            return self._control_fault(parts[1], method, raw)
        if parts == ["latency"] and method == "GET":
            return _json(200, {"latency": state.profile.as_dict()})
        if parts == ["latency"] and method == "PUT":
            return self._control_latency(raw)
        if parts == ["stats"] and method == "GET":
            return _json(200, {"stats": state.stats.snapshot()})
        if len(parts) == 2 and parts[0] == "stats" and parts[1] != "reset" and method == "GET":
            return _json(200, {"name": parts[1], "stats": state.stats.get(parts[1])})
        if parts == ["stats", "reset"] and method == "POST":
            state.stats.reset()
            state.cache.clear()
            return _json(200, {"reset": True})
        return _json(
            404, {"error": {"message": f"no control endpoint {method} {path}", "field": None}}
        )

    def _control_fault(self, name: str, method: str, raw: bytes) -> web.Response:
        faults = self.state.faults
        if not NAME_PATTERN.match(name) or name == CONTROL_PREFIX:
            return _json(
                400, {"error": {"message": "name must match [a-z0-9_-]+", "field": "name"}}
            )
        if method == "GET":
            current = faults.get(name)
            fields = (current or FaultSet()).as_dict()
            return _json(200, {"name": name, "active": current is not None, "faults": fields})
        if method == "DELETE":
            faults.clear(name)
            return _json(200, {"name": name, "cleared": True})
        data = _json_body(raw)
        if data is None:
            return _json(400, {"error": {"message": "body is not valid JSON", "field": None}})
        try:
            fault_set = faults.put(name, data) if method == "PUT" else faults.patch(name, data)
        except FaultValidationError as exc:
            return _json(400, {"error": {"message": exc.message, "field": exc.field}})
        return _json(200, {"name": name, "active": True, "faults": fault_set.as_dict()})

    def _control_latency(self, raw: bytes) -> web.Response:
        data = _json_body(raw)
        if data is None:
            return _json(400, {"error": {"message": "body is not valid JSON", "field": None}})
        try:
            self.state.profile = LatencyProfile.from_fields(data)
        except LatencyValidationError as exc:
            return _json(400, {"error": {"message": exc.message, "field": exc.field}})
        return _json(200, {"latency": self.state.profile.as_dict()})


def _json_body(raw: bytes):
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return None


# --- the server on an event loop ------------------------------------------------------------


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class _AsyncServer:
    """The aiohttp application, runner and site of one simulator; lives on one event loop."""

    def __init__(self, state: SimulatorState, sock: socket.socket):
        self.state = state
        self.sock = sock
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{path:.*}", _Handler(state).handle)
        self.runner = web.AppRunner(
            app,
            access_log=None,
            keepalive_timeout=IDLE_TIMEOUT_S,
            handle_signals=False,
            shutdown_timeout=0,
        )

    async def start(self) -> None:
        await self.runner.setup()
        site = web.SockSite(self.runner, self.sock, backlog=LISTEN_BACKLOG)
        await site.start()

    async def stop(self) -> None:
        # Hung requests, latencies and streams end now rather than after their timers.
        for task in list(self.state.tasks):
            task.cancel()
        await self.runner.cleanup()


def _raise_open_file_limit() -> None:
    """Every connection is a file descriptor: allow as many as the hard limit does."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- public entry points --------------------------------------------------------------------


class SimulatorServer:
    """A simulator whose event loop runs on a background thread, for tests and benchmarks.

    >>> with SimulatorServer() as sim:
    ...     sim.set_fault("openai", error_rate=1.0, error_status=429, retry_after=2)
    ...     requests.post(sim.base_url("openai") + "/v1/chat/completions", ...)

    `latency` is a default latency profile (a `LatencyProfile` or a mapping of its fields,
    e.g. {"first_token_ms": "200-800", "stream_duration_ms": 3000}).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, models=None, latency=None):
        self.host = host
        self.port = port
        self._state = SimulatorState(models=resolve_models(models), profile=_profile(latency))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: _AsyncServer | None = None

    def start(self) -> SimulatorServer:
        if self._server is not None:
            return self
        sock = _listening_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=loop.run_forever, name=f"provider-simulator:{self.port}", daemon=True
        )
        thread.start()
        server = _AsyncServer(self._state, sock)
        try:
            asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=10)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()
            sock.close()
            raise
        self._loop, self._thread, self._server = loop, thread, server
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        loop, thread, server = self._loop, self._thread, self._server
        self._loop = self._thread = self._server = None
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
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

    def set_latency(self, **fields) -> dict:
        """Replace the default latency profile (no fields: none)."""
        self._state.profile = LatencyProfile.from_fields(fields)
        return self._state.profile.as_dict()

    def latency(self) -> dict:
        return self._state.profile.as_dict()

    def stats(self, name: str) -> dict:
        return self._state.stats.get(name)

    def all_stats(self) -> dict[str, dict]:
        return self._state.stats.snapshot()

    def reset_stats(self) -> None:
        """Zero the counters and forget the prompts seen (nothing counts as cached)."""
        self._state.stats.reset()
        self._state.cache.clear()


def _profile(latency) -> LatencyProfile:
    if latency is None:
        return LatencyProfile()
    if isinstance(latency, LatencyProfile):
        return latency
    return LatencyProfile.from_fields(dict(latency))


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


def serve_forever(
    host: str = "127.0.0.1", port: int = DEFAULT_PORT, models=None, latency=None
) -> None:
    """Run the simulator in the foreground until SIGINT or SIGTERM (the command's body)."""
    _raise_open_file_limit()
    state = SimulatorState(models=resolve_models(models), profile=_profile(latency))
    sock = _listening_socket(host, port)
    base = _url(host, sock.getsockname()[1])

    async def main() -> None:
        server = _AsyncServer(state, sock)
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        profile = state.profile.as_dict() if state.profile.active else "none"
        print(
            f"Provider simulator listening on {base} "
            f"(providers at {base}/<name>/..., control at {base}/_sim/; latency profile: "
            f"{profile})",
            file=sys.stdout,
            flush=True,
        )
        try:
            await stop.wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
