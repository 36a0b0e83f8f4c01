"""The providers' own token counting: Anthropic's count_tokens and Gemini's countTokens, on the
wire and against the simulator (whose counts equal the prompt tokens its answers report)."""

import pytest

from providers.adapters import InvalidRequest

from .payloads import SIM_MODELS, WEATHER_TOOL, chat_request
from .recording_server import Reply

PROMPT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "How warm is it in Oslo today?"},
]


def test_anthropic_counts_the_prompt_part_of_the_body(stub, stub_adapter):
    stub.reply(Reply(body={"input_tokens": 42}))
    request = chat_request(messages=PROMPT, tools=[WEATHER_TOOL], temperature=0.5, max_tokens=9)
    assert stub_adapter("anthropic").count_tokens(request, "claude-haiku-4-5") == 42
    sent = stub.last
    assert sent.path == "/v1/messages/count_tokens"
    assert set(sent.json) == {"model", "messages", "system", "tools"}  # no sampling fields
    assert sent.json["system"] == "Be brief."


def test_gemini_counts_the_whole_generate_content_request(stub, stub_adapter):
    stub.reply(Reply(body={"totalTokens": 17}))
    request = chat_request(messages=PROMPT, max_tokens=9)
    assert stub_adapter("gemini").count_tokens(request, "gemini-2.5-flash") == 17
    sent = stub.last
    assert sent.path == "/v1beta/models/gemini-2.5-flash:countTokens"
    assert sent.json == {
        "generateContentRequest": {
            "model": "models/gemini-2.5-flash",
            "contents": [{"role": "user", "parts": [{"text": "How warm is it in Oslo today?"}]}],
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
        }
    }


@pytest.mark.parametrize("provider_type", ["anthropic", "gemini"])
def test_counts_match_the_usage_of_the_answer(sim_adapter, provider_type):
    adapter = sim_adapter(provider_type)
    request = chat_request(messages=PROMPT, max_tokens=4)
    model = SIM_MODELS[provider_type]
    counted = adapter.count_tokens(request, model)
    assert counted == adapter.chat(request, model).usage.prompt_tokens > 0


@pytest.mark.parametrize("provider_type", ["openai", "azure_openai", "openai_compatible"])
def test_openai_formats_have_no_counting_endpoint(stub, stub_adapter, provider_type):
    with pytest.raises(InvalidRequest):
        stub_adapter(provider_type, options={"api_version": "2024-10-21"}).count_tokens(
            chat_request(), "gpt-4o"
        )
    assert stub.requests == []
