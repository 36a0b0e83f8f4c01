"""A tiny real HTTP server for adapter tests that must see exactly what an adapter sent, or
answer with bodies the provider simulator does not produce (provider-specific error bodies,
usage-less streams).

It records every request (method, path, query, headers, JSON body, client port) and answers
with scripted `Reply` objects in order, then with `default`.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    headers: dict  # lower-cased names
    body: bytes
    client_port: int

    @property
    def json(self):
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    """What to answer. `events` are sent as a chunked stream (with `pause` seconds before
    each one after the first); `cut` drops the connection before the chunked terminator;
    `reset` answers nothing and resets the connection."""

    status: int = 200
    body: bytes | dict | list | None = None
    headers: dict = field(default_factory=dict)
    events: list[bytes] | None = None
    pause: float = 0.0
    cut: bool = False
    reset: bool = False

    def payload(self) -> bytes:
        if isinstance(self.body, dict | list):
            return json.dumps(self.body).encode()
        return self.body or b""


def sse(*payloads, event: str | None = None) -> list[bytes]:
    """`data:` events for JSON payloads (or raw strings such as "[DONE]")."""
    prefix = f"event: {event}\n".encode() if event else b""
    return [
        prefix
        + b"data: "
        + (p.encode() if isinstance(p, str) else json.dumps(p).encode())
        + b"\n\n"
        for p in payloads
    ]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        self.server.owner.requests.append(
            Recorded(
                method=self.command,
                path=parts.path,
                query=dict(parse_qsl(parts.query)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                client_port=self.client_address[1],
            )
        )
        try:
            self._answer(self.server.owner.next_reply())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up, as some tests make it

    do_GET = do_POST

    def _answer(self, reply: Reply) -> None:
        if reply.reset:
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
            return
        self.send_response(reply.status)
        if reply.events is not None:
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
        else:
            payload = reply.payload()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.cut:
            self.send_header("Connection", "close")
        self.end_headers()
        if reply.events is None:
            self.wfile.write(payload)
            return
        for i, event in enumerate(reply.events):
            if i and reply.pause:
                time.sleep(reply.pause)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
        if reply.cut:
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, owner: RecordingServer):
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)


class RecordingServer:
    def __init__(self):
        self.requests: list[Recorded] = []
        self.replies: deque[Reply] = deque()
        self.default = Reply(body={})
        self._lock = threading.Lock()
        self._httpd = _Server(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> RecordingServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def reply(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def next_reply(self) -> Reply:
        with self._lock:
            return self.replies.popleft() if self.replies else self.default

    @property
    def last(self) -> Recorded:
        return self.requests[-1]
