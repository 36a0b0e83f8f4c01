"""Token counts before the call, with OpenAI's own BPE vocabularies.

The counts come from toktok (pinned in requirements.txt): OpenAI's `o200k_base` and
`cl100k_base` vocabularies compiled into a Rust extension, so nothing is downloaded at run
time (tiktoken itself fetches its vocabulary files on first use, which an air-gapped gateway
cannot). bench/token_estimate.py checks it against tiktoken with OpenAI's published
vocabulary files (sha256-verified): identical counts on every text of its corpus, at 10-20x
tiktoken's speed (docs/providers.md#token-estimates has the figures).

OpenAI models use their own encoding (`o200k_base` for gpt-4o, gpt-4.1, gpt-5 and the
o-series; `cl100k_base` for gpt-4, gpt-3.5 and the text-embedding-3 models). Anthropic,
Google and open models publish no tokenizer a package ships, so their prompts are counted
with `o200k_base` too: an approximation, documented with what it is known to miss.

A vocabulary takes about a second to load and some 50 MB; each is loaded once per process,
on first use (`warm_up()` loads o200k_base at server start).
"""

from __future__ import annotations

import threading

import toktok

O200K = "o200k_base"
CL100K = "cl100k_base"

# Model-name prefixes of OpenAI's two chat encodings (as tiktoken's model table has them).
_O200K_PREFIXES = ("gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4")
_CL100K_PREFIXES = ("gpt-4", "gpt-3.5", "text-embedding-3", "text-embedding-ada")

_lock = threading.Lock()
_counters: dict = {}


def encoding_for_model(model: str) -> str:
    """The BPE encoding to count `model`'s prompts with (o200k_base unless it is an older
    OpenAI model)."""
    name = model.lower().rsplit("/", 1)[-1]
    if name.startswith(_O200K_PREFIXES):
        return O200K
    if name.startswith(_CL100K_PREFIXES):
        return CL100K
    return O200K


def counter(encoding: str = O200K):
    """`count(text) -> int` for an encoding, loading it on first use. Counting releases the
    GIL, so threads count in parallel."""
    count = _counters.get(encoding)
    if count is None:
        with _lock:
            count = _counters.get(encoding)
            if count is None:
                # toktok's public batch_count() costs 20-70 us of thread set-up per call; the
                # tokenizer object it caches counts one text in about a microsecond plus the
                # text's length (bench/token_estimate.py), which is what a request needs.
                count = _counters[encoding] = toktok._encoding(encoding).count
    return count


def warm_up() -> None:
    """Load the default vocabulary now, so the first request does not wait for it."""
    counter(O200K)
