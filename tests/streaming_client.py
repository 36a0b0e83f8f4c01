"""A client that starts a slow stream and leaves it: what tests of client disconnects need."""

import json
import socket
from urllib.parse import urlparse

SLOW_STREAM = {
    "model": "claude-haiku-4-5",
    "messages": [{"role": "user", "content": "Tell me a long story."}],
    "max_tokens": 200,
    "stream": True,
}


def read_events_then_leave(base_url: str, key: str, events: int = 3) -> bytes:
    """POST SLOW_STREAM to /v1/chat/completions over a raw socket, read until `events` SSE
    events arrived, then close the connection. Returns what was read."""
    url = urlparse(base_url)
    body = json.dumps(SLOW_STREAM).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection((url.hostname, url.port), timeout=10) as conn:
        conn.sendall(request)
        received = b""
        while received.count(b"data: ") < events:
            chunk = conn.recv(4096)
            assert chunk, received  # the server ended the stream before those events
            received += chunk
    return received
