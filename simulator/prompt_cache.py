"""Prompt caching as the providers bill it, made a deterministic function of the requests seen.

Providers serve a prompt's prefix from a cache when a recent request under the same account
and model started with the same prefix, and report those tokens apart (cheaper). The
simulator keeps the prefixes it has seen per (simulated provider name, model) and applies
each format's rules:

- OpenAI (automatic): prompts of 1,024 tokens or more are cached in 128-token steps; a
  request's `cached_tokens` is the longest 128-token boundary (at least 1,024) up to which
  an earlier request's prompt was the same.
- Gemini (implicit caching): the same rule, with a minimum of 1,024 tokens for Flash models
  and 2,048 for Pro.
- Anthropic (explicit `cache_control` breakpoints): each breakpoint's prefix of at least
  1,024 tokens (2,048 on Haiku models) is cached; the longest breakpoint prefix seen before
  is read from the cache (`cache_read_input_tokens`), what lies between it and the last
  breakpoint is written (`cache_creation_input_tokens`).

Tokens are the simulator's characters / 4 (see generation.py), so a token boundary `k` is
the character `4 k`. Entries live until `capacity` newer prefixes push them out (least
recently used first); `clear()` empties it (`POST /_sim/stats/reset` does too).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

STEP_TOKENS = 128
CHARS_PER_TOKEN = 4


def _key(scope: tuple, text: str) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(scope).encode())
    digest.update(b"\0")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.digest()


class PromptCache:
    def __init__(self, capacity: int = 100_000):
        self.capacity = capacity
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    def _hit(self, key: bytes) -> bool:
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        return False

    def _store(self, key: bytes) -> None:
        self._seen[key] = None
        self._seen.move_to_end(key)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)

    def automatic(self, scope: tuple, text: str, minimum_tokens: int) -> int:
        """Cached tokens of `text` under the automatic (OpenAI, Gemini) rule; records it."""
        step_chars = STEP_TOKENS * CHARS_PER_TOKEN
        first = -(-minimum_tokens // STEP_TOKENS)
        boundaries = range(first, len(text) // step_chars + 1)
        cached = 0
        with self._lock:
            for steps in boundaries:
                key = _key(scope, text[: steps * step_chars])
                if self._hit(key):
                    cached = steps * STEP_TOKENS
                else:
                    self._store(key)
        return cached

    def breakpoints(self, scope: tuple, prefixes: list[str], minimum_tokens: int):
        """(read, written) tokens for Anthropic's breakpoint prefixes (shortest first)."""
        read = written = 0
        last = 0
        with self._lock:
            for prefix in prefixes:
                tokens = -(-len(prefix) // CHARS_PER_TOKEN)
                if tokens < minimum_tokens:
                    continue
                key = _key(scope, prefix)
                if self._hit(key):
                    read = tokens
                else:
                    self._store(key)
                last = max(last, tokens)
        if last > read:
            written = last - read
        return read, written
