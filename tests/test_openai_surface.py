"""The OpenAI-compatible face on every adapter, with the official openai SDK against a live
server and the simulator: JSON mode (json_object and json_schema) and n > 1 where the
provider can serve it. Every request is one request-log row with its cost."""

import json

import openai
import pytest

from analytics.models import RequestLog
from tests.conftest import ADAPTER_MODELS

pytestmark = pytest.mark.django_db(transaction=True)

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "celsius": {"type": "integer"}},
    "required": ["city", "celsius"],
}
ASK_JSON = [{"role": "user", "content": "Give the weather in Oslo as json."}]


def sdk(live_server, key):
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0)


def one_row_with_cost():
    (row,) = RequestLog.objects.all()
    assert row.status == "success"
    assert row.cost > 0
    return row


@pytest.mark.parametrize("adapter", sorted(ADAPTER_MODELS))
def test_json_schema_answer_on_every_adapter(live_server, routed_key, every_adapter, adapter):
    raw = sdk(live_server, routed_key).chat.completions.with_raw_response.create(
        model=every_adapter[adapter],
        messages=ASK_JSON,
        max_tokens=200,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "weather", "schema": SCHEMA},
        },
    )
    completion = raw.parse()
    answer = json.loads(completion.choices[0].message.content)
    assert isinstance(answer["city"], str) and isinstance(answer["celsius"], int)
    assert completion.choices[0].finish_reason == "stop"
    row = one_row_with_cost()
    assert row.provider_id == raw.headers["X-Auterity-Provider"]


@pytest.mark.parametrize("adapter", sorted(ADAPTER_MODELS))
def test_json_object_answer_on_every_adapter(live_server, routed_key, every_adapter, adapter):
    # No max_tokens: the simulator's json_object answer wraps max_tokens words in JSON, which
    # then no longer fits in max_tokens and is cut for length.
    completion = sdk(live_server, routed_key).chat.completions.create(
        model=every_adapter[adapter], messages=ASK_JSON, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(completion.choices[0].message.content), dict)
    one_row_with_cost()


@pytest.mark.parametrize("adapter", ["openai", "azure_openai", "openai_compatible", "gemini"])
def test_n_choices_where_the_provider_serves_them(live_server, routed_key, every_adapter, adapter):
    completion = sdk(live_server, routed_key).chat.completions.create(
        model=every_adapter[adapter],
        messages=[{"role": "user", "content": "Name a colour."}],
        max_tokens=3,
        n=3,
    )
    assert [c.index for c in completion.choices] == [0, 1, 2]
    texts = {c.message.content for c in completion.choices}
    assert len(texts) == 3  # the simulator's choices differ
    assert completion.usage.completion_tokens == 9
    row = one_row_with_cost()
    assert row.completion_tokens == 9


@pytest.mark.parametrize("adapter", ["anthropic"])
def test_n_refused_where_the_provider_cannot(live_server, routed_key, every_adapter, adapter):
    with pytest.raises(openai.BadRequestError) as info:
        sdk(live_server, routed_key).chat.completions.create(
            model=every_adapter[adapter], messages=ASK_JSON, n=2
        )
    assert info.value.body["param"] == "n"


@pytest.mark.parametrize("adapter", ["openai", "gemini"])
def test_n_choices_streamed(live_server, routed_key, every_adapter, adapter):
    stream = sdk(live_server, routed_key).chat.completions.create(
        model=every_adapter[adapter],
        messages=[{"role": "user", "content": "Name a colour."}],
        max_tokens=3,
        n=2,
        stream=True,
    )
    texts, finishes = {0: "", 1: ""}, {}
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert finishes == {0: "stop", 1: "stop"}
    assert all(len(text.split()) == 3 for text in texts.values())
    assert texts[0] != texts[1]
    assert one_row_with_cost().completion_tokens == 6
