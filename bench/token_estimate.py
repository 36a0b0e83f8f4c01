"""How good and how fast the pre-call token estimate is (providers/adapters/types.py).

    .venv/bin/python -m bench.token_estimate [--repeat 2000] [--no-simulator]

Three measurements over one corpus of chat requests: English prose and Python code from this
repository, JSON (providers/demo_prices.json), GnuPG's help text in 12 languages
(/usr/share/gnupg/help.*.txt, where the machine has it: real translated prose, the same
content in each language) and requests with tools, several turns, and names.

1. Exactness of the text count against OpenAI's reference: tiktoken with OpenAI's published
   o200k_base / cl100k_base files, sha256-checked against the hashes tiktoken pins. Neither
   is a project dependency (tiktoken downloads its files on first use, which this gateway
   cannot); install them ad hoc to run this part: `pip install tiktoken bpe-openai` (the
   bpe-openai wheel ships both files). Skipped without them.
2. Error against provider-reported usage: each request sent to the provider simulator in the
   OpenAI, Anthropic and Gemini wire formats (adapters over real HTTP), its reported
   prompt_tokens compared with the estimate, and with the previous chars/4 estimate.
3. Speed: microseconds per estimate, the previous chars/4 estimate against the tokenizer, on a
   short chat turn, a request of the Azure trace's median size (about 1,000 tokens) and a
   30,000-token document.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GNUPG = Path("/usr/share/gnupg")
LANGUAGES = ("de", "es", "fr", "it", "pl", "ru", "el", "tr", "ja", "zh_CN", "zh_TW", "hu")
# tiktoken_ext/openai_public.py pins these hashes of OpenAI's published vocabulary files.
VOCABULARY_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Look up a customer order by its id and return its status.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "verbose": {"type": "boolean"}},
            "required": ["order_id"],
        },
    },
}


def chars_over_4(request) -> int:
    """The estimate before the tokenizer (kept here for comparison): ceil(chars / 4) of every
    text part, tool call and tool definition, 4 tokens a message, 3 to prime the reply and 85
    per image."""
    chars = images = 0
    for message in request.messages:
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "image_url":
                    images += 1
                else:
                    chars += len(part.get("text") or "")
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            chars += len(function.get("name") or "") + len(function.get("arguments") or "")
    if request.tools:
        chars += len(json.dumps(request.tools, separators=(",", ":")))
    return -(-chars // 4) + 4 * len(request.messages) + 3 + 85 * images


def corpus() -> dict[str, list[dict]]:
    """Chat bodies by kind of text, each a few hundred to a few thousand tokens."""
    prose = [
        (ROOT / "docs" / name).read_text()[:6000]
        for name in ("policies.md", "providers.md", "jobs.md", "security.md")
    ]
    code = [
        (ROOT / path).read_text()[:6000]
        for path in (
            "routing/engine/decide.py",
            "providers/adapters/base.py",
            "analytics/services.py",
            "gateway/service.py",
        )
    ]
    data = (ROOT / "providers" / "demo_prices.json").read_text()
    kinds: dict[str, list[str]] = {
        "English prose": prose,
        "Python code": code,
        "JSON": [data[:3000], data[3000:6000]],
    }
    for language in LANGUAGES:
        path = GNUPG / f"help.{language}.txt"
        if path.exists():
            kinds.setdefault("prose, other languages", []).append(path.read_text()[:3000])
    bodies: dict[str, list[dict]] = {}
    for kind, texts in kinds.items():
        bodies[kind] = [
            {"model": "gpt-4o", "messages": [{"role": "user", "content": text}]} for text in texts
        ]
    bodies["chat with tools, turns, names"] = [
        {
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": prose[0][:800]},
                {"role": "user", "name": "ana", "content": "Where is order 4711?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {
                                "name": "lookup_order",
                                "arguments": '{"order_id":"4711"}',
                            },
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'},
                {"role": "user", "content": code[i][:1500]},
            ],
            "tools": [TOOL],
        }
        for i in range(len(code))
    ]
    return bodies


# --- 1. exactness against tiktoken and OpenAI's files -------------------------------------


def reference_encodings():
    try:
        import importlib.resources

        import tiktoken
        from tiktoken_ext import openai_public
    except ImportError:
        return None
    try:
        data_dir = importlib.resources.files("bpe_openai") / "data"
    except ModuleNotFoundError:
        return None
    encodings = {}
    for name, sha in VOCABULARY_SHA256.items():
        raw = gzip.decompress((data_dir / f"{name}.tiktoken.gz").read_bytes())
        if hashlib.sha256(raw).hexdigest() != sha:
            sys.exit(f"{name}: the packaged file is not OpenAI's (sha256 differs)")
        ranks = {
            base64.b64decode(tok): int(rank)
            for tok, rank in (line.split() for line in raw.splitlines() if line)
        }
        pattern = _pattern(openai_public, name)
        encodings[name] = tiktoken.Encoding(
            name=name, pat_str=pattern, mergeable_ranks=ranks, special_tokens={}
        )
    return encodings


def _pattern(openai_public, name: str) -> str:
    """The split pattern of an encoding, read from tiktoken's own constructor without letting it
    download the file (its loader is swapped for one that returns no ranks)."""
    original = openai_public.load_tiktoken_bpe
    openai_public.load_tiktoken_bpe = lambda *args, **kwargs: {}
    try:
        return getattr(openai_public, name)()["pat_str"]
    finally:
        openai_public.load_tiktoken_bpe = original


def exactness(bodies) -> None:
    from providers.adapters import tokens

    reference = reference_encodings()
    if reference is None:
        print("\n1. exactness: skipped (pip install tiktoken bpe-openai to compare)")
        return
    by_kind: dict[str, list[str]] = {}
    for kind, kind_bodies in bodies.items():
        for body in kind_bodies:
            for message in body["messages"]:
                if isinstance(message.get("content"), str):
                    by_kind.setdefault(kind, []).append(message["content"])
    texts = [t for kind_texts in by_kind.values() for t in kind_texts]
    print(f"\n1. exactness: {len(texts)} texts, toktok against tiktoken + OpenAI's files")
    for name, encoding in reference.items():
        count = tokens.counter(name)
        differ = sum(count(t) != len(encoding.encode_ordinary(t)) for t in texts)
        total = sum(len(encoding.encode_ordinary(t)) for t in texts)
        print(f"   {name}: {total:,} tokens, texts counted differently: {differ}")
    print("   the chars/4 rule against OpenAI's o200k_base count of the same text")
    print(f"   {'text':<32}{'texts':>6}{'mean |error|':>14}{'range':>18}")
    exact = reference["o200k_base"]
    for kind, kind_texts in by_kind.items():
        errors = [
            (-(-len(t) // 4) - len(exact.encode_ordinary(t))) / len(exact.encode_ordinary(t))
            for t in kind_texts
        ]
        spread = f"{min(errors):+.0%} to {max(errors):+.0%}"
        print(
            f"   {kind:<32}{len(kind_texts):>6}"
            f"{statistics.mean(abs(e) for e in errors):>14.1%}{spread:>18}"
        )


# --- 2. error against the simulator's reported usage -----------------------------------------


def against_simulator(bodies) -> None:
    from providers.adapters import ChatRequest, ProviderEndpoint, adapter_for
    from providers.adapters.types import estimate_input_tokens
    from simulator import SimulatorServer

    server = SimulatorServer().start()
    models = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-pro"}
    print(
        "\n2. error against the simulator's prompt_tokens (mean |estimate - reported| / reported)"
    )
    print(f"   {'text':<32}{'wire format':<12}{'requests':>9}{'tokenizer':>11}{'chars/4':>9}")
    try:
        for kind, kind_bodies in bodies.items():
            for provider_type, model in models.items():
                endpoint = ProviderEndpoint(
                    f"bench-{provider_type}",
                    provider_type,
                    server.base_url(provider_type),
                    api_key="sk-bench",  # the simulator takes any key
                )
                adapter = adapter_for(endpoint)
                ours, old = [], []
                for body in kind_bodies:
                    request = ChatRequest.from_openai({**body, "max_tokens": 1})
                    reported = adapter.chat(request, model).usage.prompt_tokens
                    ours.append(abs(estimate_input_tokens(request) - reported) / reported)
                    old.append(abs(chars_over_4(request) - reported) / reported)
                print(
                    f"   {kind:<32}{provider_type:<12}{len(kind_bodies):>9}"
                    f"{statistics.mean(ours):>10.1%}{statistics.mean(old):>9.1%}"
                )
    finally:
        server.stop()


# --- 3. speed ---------------------------------------------------------------------------------


def speed(repeat: int) -> None:
    from providers.adapters import ChatRequest, tokens
    from providers.adapters.types import estimate_input_tokens

    tokens.warm_up()
    doc = (ROOT / "docs" / "policies.md").read_text()
    cases = {
        "short turn (8 tokens)": "Say hello to the gateway, please.",
        "trace median (~1,000 tokens)": doc[:4300],
        "long document (~30,000 tokens)": (doc * 4)[:120_000],
    }
    print(f"\n3. speed: microseconds per estimate (median of {repeat} calls, distinct texts)")
    print(f"   {'request':<32}{'chars/4':>9}{'tokenizer':>11}")
    for label, text in cases.items():
        n = repeat if len(text) < 10_000 else max(20, repeat // 50)
        # Distinct texts, so no cache anywhere can answer from a previous call.
        requests = [
            ChatRequest.from_openai(
                {"model": "gpt-4o", "messages": [{"role": "user", "content": f"{i} {text}"}]}
            )
            for i in range(n)
        ]
        row = []
        for estimate in (chars_over_4, estimate_input_tokens):
            timings = []
            for request in requests:
                started = time.perf_counter()
                estimate(request)
                timings.append(time.perf_counter() - started)
            row.append(statistics.median(timings) * 1e6)
        print(f"   {label:<32}{row[0]:>9.1f}{row[1]:>11.1f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--no-simulator", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    bodies = corpus()
    print("corpus: " + ", ".join(f"{kind} {len(b)}" for kind, b in bodies.items()))
    exactness(bodies)
    if not args.no_simulator:
        against_simulator(bodies)
    speed(args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
