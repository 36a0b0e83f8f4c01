"""OpenAI's chat completions stream as the gateway relays it: the adapters' OpenAI-shaped
`chat.completion.chunk`s out as server-sent `data:` lines, then `data: [DONE]`.

The relay (gateway/service.py) asks a stream renderer for bytes at each step; this one and
`anthropic.MessageStream` share the steps:

    render_start(upstream id, usage so far)   before the first chunk
    render_chunk(chunk)                       per chunk; the last is the usage chunk, priced
    render_closing()                          after the last chunk, before the row is written
    render_end()                              the end marker, once the row is written
    render_error(status, message, code)       for a stream that broke after it started
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from providers.adapters.types import ChatRequest

DONE = b"data: [DONE]\n\n"


def sse(data: Mapping) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


class ChunkStream:
    """The chunks as they come, except that those carrying a finish_reason (one per choice
    when n > 1) are held until the usage chunk: without `stream_options.include_usage` OpenAI
    sends no choices-less usage chunk, and clients that read `choices[0]` would break on one,
    so the usage (with Auterity's `cost`) rides on the last finish chunk instead."""

    def __init__(self, request: ChatRequest):
        self.include_usage = request.include_usage
        self.finals: list[dict] = []

    def render_start(self, upstream_id: Any, usage_so_far: Mapping | None) -> list[bytes]:
        return []

    def _flush(self) -> list[bytes]:
        frames = [sse(final) for final in self.finals]
        self.finals.clear()
        return frames

    def render_chunk(self, chunk: dict) -> list[bytes]:
        choices = chunk.get("choices")
        if not choices and "usage" in chunk:
            if not self.include_usage and self.finals:
                self.finals[-1]["usage"] = chunk["usage"]
                return self._flush()
        elif choices and choices[0].get("finish_reason") is not None:
            self.finals.append(chunk)
            return []
        return [*self._flush(), sse(chunk)]

    def render_closing(self) -> list[bytes]:
        return self._flush()

    def render_end(self) -> list[bytes]:
        return [DONE]

    def render_error(self, status: int, message: str, code: str | None = None) -> list[bytes]:
        error = {"message": message, "type": "upstream_error", "param": None, "code": code}
        return [sse({"error": error})]
