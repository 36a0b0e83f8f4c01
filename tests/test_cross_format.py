"""Requests in one provider's format served by another, through the gateway: an OpenAI-format
request served by Anthropic keeps its tools, system prompt, stop sequences and usage (and its
cost is Claude's)."""

import openai
import pytest

from analytics.models import RequestLog

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
SYSTEM = "You answer questions about the weather. " * 25  # 1,025 characters
ASK = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Oslo?"}]


def create(live_server, key, **kwargs):
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="claude-haiku-4-5", **kwargs)
    assert raw.headers["X-Auterity-Provider"] == "anthropic"
    assert raw.headers["X-Auterity-Model"] == "claude-haiku-4-5"
    return raw.parse()


def test_tools_and_usage_survive_the_trip_to_anthropic(live_server, routed_key, demo_catalogue):
    completion = create(
        live_server, routed_key, messages=ASK, tools=[WEATHER], tool_choice="required"
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert call.id.startswith("toolu_")  # Anthropic's own id
    row = RequestLog.objects.get()
    assert (row.provider_id, row.model) == ("anthropic", "claude-haiku-4-5")
    assert row.prompt_tokens == completion.usage.prompt_tokens > 0
    assert float(row.cost) == pytest.approx(completion.usage.model_extra["cost"])


def test_system_prompt_survives_the_trip_to_anthropic(live_server, routed_key, demo_catalogue):
    with_system = create(live_server, routed_key, messages=ASK, max_tokens=3)
    without = create(live_server, routed_key, messages=ASK[1:], max_tokens=3)
    # the simulator counts ceil(characters / 4) of everything it was sent as prompt tokens
    added = with_system.usage.prompt_tokens - without.usage.prompt_tokens
    assert added == pytest.approx(len(SYSTEM) / 4, abs=2)


def test_stop_sequences_survive_the_trip_to_anthropic(live_server, routed_key, demo_catalogue):
    # the simulator's text is lorem ipsum: "ipsum" ends it after the first word
    completion = create(live_server, routed_key, messages=ASK, max_tokens=20, stop=["ipsum"])
    text = completion.choices[0].message.content
    assert "ipsum" not in text and len(text.split()) < 20
    assert completion.choices[0].finish_reason == "stop"
    # the matched sequence is named, where vLLM names it
    assert completion.choices[0].model_extra["stop_reason"] == "ipsum"
