"""Token counts before the call (providers/adapters/tokens.py).

The expected counts were taken from tiktoken with OpenAI's published o200k_base and
cl100k_base files (sha256-checked, bench/token_estimate.py); they pin the vocabulary the
gateway counts with, so a tokenizer upgrade that changes a count fails here.
"""

import threading

import pytest

from providers.adapters import tokens
from providers.adapters.types import EmbeddingsRequest, estimate_embedding_tokens

from .payloads import chat_request

# text -> (o200k_base, cl100k_base) token counts, from tiktoken and OpenAI's files
REFERENCE = {
    "Say hello to the gateway, please.": (8, 8),
    "def price(offer, usage):\n    return offer.pricing.cost(usage.prompt_tokens,"
    " usage.completion_tokens)\n": (23, 23),
    "人工智能路由器根据策略选择最便宜的提供商。": (15, 26),
    "Маршрутизатор выбирает самого дешёвого поставщика.": (14, 23),
    '{"id": 4711, "status": "shipped", "items": [{"sku": "A-1", "qty": 2}]}': (32, 32),
    "🚀🔥 launch! 🎉": (7, 11),
    # Special-token markup in a prompt is ordinary text, never a control token.
    "<|endoftext|> is just text here": (11, 11),
}


@pytest.mark.parametrize("text", REFERENCE)
def test_counts_match_openai_reference(text):
    o200k, cl100k = REFERENCE[text]

    assert tokens.counter(tokens.O200K)(text) == o200k
    assert tokens.counter(tokens.CL100K)(text) == cl100k


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", tokens.O200K),
        ("gpt-4o-mini-2024-07-18", tokens.O200K),
        ("gpt-4.1-nano", tokens.O200K),
        ("gpt-5", tokens.O200K),
        ("o3-mini", tokens.O200K),
        ("azure/gpt-4o", tokens.O200K),
        ("gpt-4-turbo", tokens.CL100K),
        ("gpt-3.5-turbo", tokens.CL100K),
        ("text-embedding-3-small", tokens.CL100K),
        # Other providers publish no tokenizer a package ships: counted with o200k_base.
        ("claude-sonnet-4-5", tokens.O200K),
        ("gemini-2.5-pro", tokens.O200K),
        ("", tokens.O200K),
    ],
)
def test_encoding_per_model(model, encoding):
    assert tokens.encoding_for_model(model) == encoding


def test_non_latin_text_is_counted_by_tokens_not_characters():
    chinese = chat_request(messages=[{"role": "user", "content": "人工智能路由器" * 100}])
    from providers.adapters.types import estimate_input_tokens

    # chars/4 would say 175 tokens; the tokenizer counts what OpenAI bills.
    assert estimate_input_tokens(chinese) == tokens.counter()("人工智能路由器" * 100) + 3 + 3
    assert estimate_input_tokens(chinese) > 400


def test_embeddings_count_text_with_the_models_encoding_and_token_ids_exactly():
    request = EmbeddingsRequest.from_openai(
        {
            "model": "text-embedding-3-small",
            "input": ["人工智能路由器根据策略选择最便宜的提供商。", [1, 2, 3]],
        }
    )

    assert estimate_embedding_tokens(request) == 26 + 3


def test_counting_from_many_threads_at_once_agrees():
    text = "Маршрутизатор выбирает самого дешёвого поставщика." * 50
    expected = tokens.counter()(text)
    results = []

    def count():
        results.extend(tokens.counter()(text) for _ in range(50))

    threads = [threading.Thread(target=count) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [expected] * 200
