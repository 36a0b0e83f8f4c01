"""The gateway bills with the full price rules: cached input, thinking tokens and long-context
tiers, from what the provider reported, in the request log, the header and `usage.cost`.

The official OpenAI SDK talks to a live Auterity whose Gemini provider is a scripted HTTP
server answering with Gemini's own usage fields (the simulator reports no cache hits).
"""

import openai
import pytest

from accounts.services import api_key_create
from analytics.models import RequestLog
from providers.adapters.tests.recording_server import RecordingServer, Reply, sse
from providers.models import Provider, ProviderModel
from providers.prices import model_prices_sync

pytestmark = pytest.mark.django_db(transaction=True)

M = 1e-6
# A long prompt mostly read from Gemini's context cache, and a thinking answer.
USAGE = {
    "promptTokenCount": 250_000,
    "cachedContentTokenCount": 200_000,
    "candidatesTokenCount": 40,
    "thoughtsTokenCount": 900,
    "totalTokenCount": 250_940,
}
# gemini-2.5-pro above 200k input tokens: input $2.50, cached $0.25, output (thinking
# included) $15 per 1M tokens, on every token of the call.
EXPECTED = 50_000 * 2.5 * M + 200_000 * 0.25 * M + 940 * 15 * M


def gemini_answer(finish="STOP"):
    candidate = {"content": {"role": "model", "parts": [{"text": "Hello!"}]}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": USAGE, "responseId": "r-1"}


@pytest.fixture
def gemini_stub():
    server = RecordingServer().start()
    provider = Provider.objects.create(
        id="gemini-stub", name="Gemini (stub)", type="gemini", config={"base_url": server.base_url}
    )
    ProviderModel.objects.create(
        provider=provider,
        model="gemini-2.5-pro",
        input_price=1,  # wrong on purpose: the sync brings the real rules
        output_price=1,
        context_window=1_048_576,
        is_default=True,
    )
    model_prices_sync()
    yield server
    server.stop()


@pytest.fixture
def key(django_user_model):
    user = django_user_model.objects.create_user("payer", password="pw-123456")
    return api_key_create(user=user, name="payer-key", scopes=["ai:execute"])[1]


def client(live_server, key):
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0)


def test_cached_input_thinking_and_tier_are_billed(live_server, key, gemini_stub):
    gemini_stub.reply(Reply(body=gemini_answer()))

    raw = client(live_server, key).chat.completions.with_raw_response.create(
        model="gemini-2.5-pro", messages=[{"role": "user", "content": "Hi"}]
    )
    completion = raw.parse()

    assert completion.usage.prompt_tokens_details.cached_tokens == 200_000
    assert completion.usage.completion_tokens_details.reasoning_tokens == 900
    assert completion.usage.completion_tokens == 940
    assert float(raw.headers["X-Auterity-Cost-USD"]) == pytest.approx(EXPECTED, abs=1e-8)
    row = RequestLog.objects.get()
    assert (row.prompt_tokens, row.cached_tokens, row.cache_write_tokens) == (250_000, 200_000, 0)
    assert (row.completion_tokens, row.reasoning_tokens) == (940, 900)
    assert float(row.cost) == pytest.approx(EXPECTED, rel=1e-9)
    assert row.baseline_cost == row.cost


def test_stream_is_billed_the_same_way(live_server, key, gemini_stub):
    partial = {**USAGE, "candidatesTokenCount": 20}
    first = gemini_answer(finish=None)
    first["usageMetadata"] = partial
    gemini_stub.reply(Reply(events=sse(first, gemini_answer())))

    chunks = list(
        client(live_server, key).chat.completions.create(
            model="gemini-2.5-pro",
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    usage = chunks[-1].usage
    assert usage.completion_tokens_details.reasoning_tokens == 900
    assert usage.model_extra["cost"] == pytest.approx(EXPECTED, rel=1e-9)
    row = RequestLog.objects.get()
    assert (row.cached_tokens, row.reasoning_tokens) == (200_000, 900)
    assert float(row.cost) == pytest.approx(EXPECTED, rel=1e-9)
