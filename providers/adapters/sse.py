"""Incremental server-sent-events parser shared by every adapter.

Follows the WHATWG event-stream rules: lines end in CRLF, LF or CR (a CRLF split across two
network reads is still one line end), `data:` lines of one event are joined with "\\n",
`event:` names the event, lines starting with ":" are comments (keep-alives), a blank line
dispatches. Feeding raw bytes rather than `requests`' `iter_lines()` matters: iter_lines
splits a CRLF that straddles two chunks into two line ends, which would dispatch an event
early.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(slots=True)
class SSEEvent:
    event: str
    data: str
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed bytes as they arrive; get back the events they complete."""

    def __init__(self):
        self._buffer = bytearray()
        self._skip_lf = False
        self._first_line = True
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        buffer = self._buffer
        buffer += chunk
        events = []
        start = 0
        size = len(buffer)
        while start < size:
            lf = buffer.find(b"\n", start)
            cr = buffer.find(b"\r", start, lf if lf != -1 else size)
            if cr != -1:
                end = cr
                if cr + 1 < size:
                    next_start = cr + 2 if buffer[cr + 1] == 0x0A else cr + 1
                else:
                    # The LF of a CRLF may be the first byte of the next chunk.
                    next_start = cr + 1
                    self._skip_lf = True
            elif lf != -1:
                end, next_start = lf, lf + 1
            else:
                break
            event = self._line(bytes(buffer[start:end]))
            start = next_start
            if event is not None:
                events.append(event)
        del buffer[:start]
        return events

    def flush(self) -> list[SSEEvent]:
        """End of stream. An event whose lines all arrived but whose closing blank line did
        not is still dispatched (some servers close right after the last data line); a line
        cut in the middle is discarded with its event, as the spec requires."""
        if self._buffer:
            self._buffer.clear()
            self._data.clear()
            return []
        event = self._line(b"")
        return [event] if event is not None else []

    def _line(self, raw: bytes) -> SSEEvent | None:
        line = raw.decode("utf-8", errors="replace")
        if self._first_line:
            self._first_line = False
            if line.startswith("\ufeff"):
                line = line[1:]
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = SSEEvent(
            event=self._event or "message",
            data="\n".join(self._data),
            id=self._last_id,
            retry=self._retry,
        )
        self._data = []
        self._event = ""
        return event


def iter_sse(chunks: Iterable[bytes]) -> Iterator[SSEEvent]:
    """Events from an iterable of raw byte chunks, yielded as soon as each completes."""
    decoder = SSEDecoder()
    for chunk in chunks:
        if chunk:
            yield from decoder.feed(chunk)
    yield from decoder.flush()
