"""The long-call benchmark's own load generator, for what wrk cannot measure: concurrent
streams (time to the first event, whole duration, whether each ended with [DONE]) and a
flood of idle TCP connections held open while other clients are timed.

    python -m bench.longcalls.client streams URL --concurrency 1000 --duration 10 \
        [--header 'Name: value' ...] [--body JSON]
    python -m bench.longcalls.client idle HOST:PORT --count 10000

`streams` prints one JSON line (BENCH_JSON ...). `idle` opens the connections (sending
nothing), prints `IDLE_READY {"opened": N, "failed": M}`, holds them until its standard input
closes, then prints `IDLE_DONE {"closed_by_server": K}` and exits.

HTTP/1.1 by hand on asyncio streams, keep-alive, one connection per client: an aiohttp
client costs several times more CPU per request, which on a 2-core machine would be taken
from the server under test. It reads exactly what the benchmark's servers send (a JSON body
with Content-Length, or a chunked event stream); it is not a general HTTP client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from urllib.parse import urlsplit

_END_OF_CHUNKED = b"\r\n0\r\n\r\n"


def _raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Result:
    def __init__(self):
        self.started = 0
        self.completed = 0  # 200, ended with [DONE], within the timeout
        self.failures: dict[str, int] = {}
        self.first_event: list[float] = []
        self.total: list[float] = []

    def fail(self, why: str) -> None:
        self.failures[why] = self.failures.get(why, 0) + 1


def _request_bytes(url: str, headers: list[str], body: bytes) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    lines = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *headers,
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return parts.hostname, parts.port or 80, head + body


async def _one_stream(reader, writer, request: bytes, result: Result, t0: float) -> bool:
    """Send one streamed request on an open connection and read it to its end. Returns
    whether the connection can be reused."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    lower = head.lower()
    keep = b"connection: close" not in lower
    if b"transfer-encoding: chunked" not in lower:
        length = 0
        for line in lower.split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length) if length else b""
        result.fail(f"HTTP {status}" if status != 200 else "not a stream")
        del body
        return keep
    first = None
    seen_done = False
    tail = b""
    while True:
        data = await reader.read(65536)
        if not data:
            result.fail("connection closed mid-stream")
            return False
        if first is None and b"data:" in data:
            first = time.monotonic() - t0
        if not seen_done and b"[DONE]" in (tail + data):
            seen_done = True
        if b'"error"' in data and status == 200:
            result.fail("error event")
            status = -1
        tail = (tail + data)[-16:]
        if tail.endswith(_END_OF_CHUNKED):
            break
    total = time.monotonic() - t0
    if status != 200:
        if status != -1:
            result.fail(f"HTTP {status}")
        return keep
    if not seen_done:
        result.fail("stream ended without [DONE]")
        return keep
    result.completed += 1
    result.first_event.append(first if first is not None else total)
    result.total.append(total)
    return keep


async def _stream_client(host, port, request, deadline, timeout, result: Result):
    reader = writer = None
    while time.monotonic() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port, limit=1 << 20), timeout
                )
            t0 = time.monotonic()
            result.started += 1
            keep = await asyncio.wait_for(_one_stream(reader, writer, request, result, t0), timeout)
            if not keep:
                writer.close()
                writer = None
        except TimeoutError:
            result.fail("timeout")
            writer = _drop(writer)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            result.fail(type(exc).__name__)
            writer = _drop(writer)
            await asyncio.sleep(0.05)
    _drop(writer)


def _drop(writer):
    if writer is not None:
        writer.close()
    return None


async def run_streams(args) -> dict:
    body = (args.body or "").encode()
    host, port, request = _request_bytes(args.url, args.header, body)
    result = Result()
    started = time.monotonic()
    deadline = started + args.duration
    clients = [
        _stream_client(host, port, request, deadline, args.timeout, result)
        for _ in range(args.concurrency)
    ]
    await asyncio.gather(*clients)
    elapsed = time.monotonic() - started

    def pct(values, q):
        if not values:
            return None
        values = sorted(values)
        return values[min(len(values) - 1, int(q * len(values)))]

    return {
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "elapsed_s": round(elapsed, 3),
        "started": result.started,
        "completed": result.completed,
        "failures": result.failures,
        "streams_per_s": round(result.completed / elapsed, 1),
        "first_event_p50_s": pct(result.first_event, 0.5),
        "first_event_p99_s": pct(result.first_event, 0.99),
        "total_p50_s": pct(result.total, 0.5),
        "total_p99_s": pct(result.total, 0.99),
        "total_max_s": max(result.total) if result.total else None,
    }


async def run_idle(args) -> None:
    host, _, port = args.target.rpartition(":")
    semaphore = asyncio.Semaphore(1000)
    writers = []
    failed = 0

    async def open_one():
        nonlocal failed
        async with semaphore:
            try:
                _reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, int(port)), args.connect_timeout
                )
                writers.append((_reader, writer))
            except (OSError, TimeoutError):
                failed += 1

    await asyncio.gather(*(open_one() for _ in range(args.count)))
    print(f"IDLE_READY {json.dumps({'opened': len(writers), 'failed': failed})}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the benchmark closes our stdin
    # A connection the server has closed reads EOF at once; an open one has nothing to read.
    closed = 0
    for reader, _writer in writers:
        if reader.at_eof():
            closed += 1
            continue
        try:
            data = await asyncio.wait_for(reader.read(1), 0.001)
            closed += data == b""
        except TimeoutError:
            pass
        except OSError:
            closed += 1
    for _reader, writer in writers:
        writer.close()
    print(f"IDLE_DONE {json.dumps({'closed_by_server': closed})}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    streams = sub.add_parser("streams")
    streams.add_argument("url")
    streams.add_argument("--concurrency", type=int, default=1000)
    streams.add_argument("--duration", type=float, default=10.0)
    streams.add_argument("--timeout", type=float, default=60.0, help="per stream, seconds")
    streams.add_argument("--header", action="append", default=[])
    streams.add_argument("--body")
    idle = sub.add_parser("idle")
    idle.add_argument("target", help="HOST:PORT")
    idle.add_argument("--count", type=int, default=10000)
    idle.add_argument("--connect-timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    _raise_nofile()
    if args.mode == "streams":
        summary = asyncio.run(run_streams(args))
        print(f"BENCH_JSON {json.dumps(summary)}", flush=True)
    else:
        asyncio.run(run_idle(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
