"""Request counters per simulated provider name, for tests, demos and benchmarks."""

from __future__ import annotations

import threading
from collections import Counter


class _NameStats:
    __slots__ = (
        "by_kind",
        "by_outcome",
        "completion_tokens",
        "prompt_tokens",
        "requests",
        "streams",
    )

    def __init__(self):
        self.requests = 0
        self.streams = 0
        self.by_kind: Counter[str] = Counter()
        self.by_outcome: Counter[str] = Counter()
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "streams": self.streams,
            "by_kind": dict(sorted(self.by_kind.items())),
            "by_outcome": dict(sorted(self.by_outcome.items())),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


class SimulatorStats:
    """Counts requests by path kind and by outcome; tokens count only answered requests.

    Kinds: `chat_completions`, `azure_chat_completions`, `embeddings`, `azure_embeddings`,
    `messages`, `count_tokens`, `generate_content`, `stream_generate_content`,
    `embed_content`, `batch_embed_contents`, `models`, `unknown` (no such path).
    `streams` counts requests that asked for a stream, whatever their outcome.

    Outcomes: `ok`, `error_<status>` (injected), `down`, `timeout`, `reset`, `malformed`,
    `cut_stream`, `auth_error` (401/403), `bad_request` (400), `not_found` (404).
    """

    def __init__(self):
        self._by_name: dict[str, _NameStats] = {}
        self._lock = threading.Lock()

    def record(
        self,
        name: str,
        kind: str,
        outcome: str,
        *,
        stream: bool = False,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> None:
        with self._lock:
            entry = self._by_name.get(name)
            if entry is None:
                entry = self._by_name[name] = _NameStats()
            entry.requests += 1
            entry.streams += stream
            entry.by_kind[kind] += 1
            entry.by_outcome[outcome] += 1
            entry.prompt_tokens += prompt_tokens
            entry.completion_tokens += completion_tokens

    def get(self, name: str) -> dict:
        with self._lock:
            entry = self._by_name.get(name)
            return (entry or _NameStats()).as_dict()

    def snapshot(self) -> dict[str, dict]:
        with self._lock:
            return {name: entry.as_dict() for name, entry in sorted(self._by_name.items())}

    def reset(self) -> None:
        with self._lock:
            self._by_name.clear()
