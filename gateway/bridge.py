"""The gateway application served from inside Django: the test client, `live_server`,
`manage.py runserver` and any WSGI server.

In production auterity/asgi.py hands the gateway's paths to gateway/app.py before Django sees
them. A Django request for one of those paths (gateway/urls.py) comes here instead and is
served by the same application, with Django's middleware around it: the request becomes an
ASGI scope, the application runs on one event loop kept for the process (its aiohttp sessions
live as long as it does), and its response messages become a Django response, streamed chunk
by chunk when the application streams. A client that goes away (the response closed early)
is an `http.disconnect` for the application, as under the ASGI server.

The application's blocking work (gateway/offload.py) runs on the Django request's own thread
while it waits for the application (`CallerThread`): that thread's database connection is the
one that sees a test's uncommitted rows. No asgiref thread-sensitive executor is involved.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.middleware import checks_own_body_size, content_length
from providers.adapters import aclose_sessions

from .app import GatewayApp
from .offload import CallerThread, use_executor

_app = GatewayApp()
_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _gateway_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="gateway-bridge", daemon=True).start()
            atexit.register(_close_sessions, loop)
            _loop = loop
    return _loop


def _close_sessions(loop: asyncio.AbstractEventLoop) -> None:
    """At exit: the loop's upstream sessions closed (else aiohttp reports them unclosed)."""
    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(aclose_sessions(), loop).result(5)


def _scope_of(request) -> dict:
    headers = [
        (name.lower().encode("latin-1"), str(value).encode("latin-1"))
        for name, value in request.headers.items()
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.path.encode(),
        "query_string": request.META.get("QUERY_STRING", "").encode("latin-1"),
        "root_path": "",
        "headers": headers,
        "client": (request.META.get("REMOTE_ADDR", "127.0.0.1"), 0),
        "server": (request.META.get("SERVER_NAME", "testserver"), int(request.get_port())),
        # RequestContextMiddleware already gave the request its id (and writes the access line).
        "auterity.request_id": request.request_id,
    }


class _Exchange:
    """One request's messages between this thread and the application on the loop."""

    def __init__(self, loop, scope: dict, body: bytes):
        self.loop = loop
        self.caller = CallerThread()
        self.body = body
        self.outbox: asyncio.Queue = asyncio.Queue(maxsize=1)
        self.gone = asyncio.Event()
        self.body_sent = False
        self.ended = False  # the application's closing None was read
        self.done = asyncio.run_coroutine_threadsafe(self.run(scope), loop)

    async def receive(self) -> dict:
        if not self.body_sent:
            self.body_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        await self.outbox.put(message)

    async def run(self, scope: dict) -> None:
        use_executor(self.caller)
        try:
            await _app(scope, self.receive, self.send)
        finally:
            await self.outbox.put(None)

    def next_message(self) -> dict | None:
        """The application's next message, serving its blocking work meanwhile."""
        if self.ended:
            return None
        message = self.caller.wait_for(
            asyncio.run_coroutine_threadsafe(self.outbox.get(), self.loop)
        )
        self.ended = message is None
        return message

    def finish(self) -> None:
        """The response ended or the client left: let the application end, and wait for it
        (the row of a stream is written as it ends)."""
        self.loop.call_soon_threadsafe(self.gone.set)
        # Drain what it still sends (nobody reads it now) until its closing None.
        while self.next_message() is not None:
            pass
        self.caller.wait_for(self.done)


@checks_own_body_size
@csrf_exempt
def serve(request, **_url_kwargs):
    """Any gateway path: gateway/app.py's answer, through Django."""
    loop = _gateway_loop()
    # An oversized body is refused by the application before it reads it.
    body = request.body if content_length(request) <= settings.MAX_REQUEST_BODY_BYTES else b""
    exchange = _Exchange(loop, _scope_of(request), body)
    start = exchange.next_message()
    if start is None:  # the application failed before answering: its exception, for Django
        exchange.caller.wait_for(exchange.done)
        raise RuntimeError("the gateway application ended without a response")
    first = exchange.next_message() or {}
    status, headers = start["status"], start["headers"]
    content_type = next((v for n, v in headers if n == b"content-type"), b"").decode()
    if not first.get("more_body"):
        exchange.finish()
        response = HttpResponse(first.get("body", b""), status=status, content_type=content_type)
    else:
        response = StreamingHttpResponse(
            _chunks(exchange, first.get("body", b"")), status=status, content_type=content_type
        )
    for name, value in headers:
        if name not in (b"content-type", b"content-length") or not response.streaming:
            response[name.decode("latin-1")] = value.decode("latin-1")
    return response


def _chunks(exchange: _Exchange, first: bytes):
    try:
        if first:
            yield first
        while True:
            message = exchange.next_message()
            if message is None:
                return
            if message.get("body"):
                yield message["body"]
            if not message.get("more_body"):
                return
    finally:
        exchange.finish()


def call(async_fn, /, *args, **kwargs):
    """`await async_fn(*args, **kwargs)` on the gateway's loop from synchronous code (tests,
    commands), its blocking work on this thread."""
    caller = CallerThread()

    async def run():
        use_executor(caller)
        return await async_fn(*args, **kwargs)

    return caller.wait_for(asyncio.run_coroutine_threadsafe(run(), _gateway_loop()))
