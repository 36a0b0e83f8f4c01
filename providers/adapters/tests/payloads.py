"""Requests and models the adapter tests share."""

from providers.adapters import ChatRequest

# A model the simulator's catalog lists, per adapter type.
SIM_MODELS = {
    "openai": "gpt-4o",
    "azure_openai": "gpt-4o",
    "openai_compatible": "gpt-4o-mini",
    "anthropic": "claude-sonnet-4-20250514",
    "gemini": "gemini-2.5-flash",
}
ADAPTER_TYPES = tuple(SIM_MODELS)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}


def chat_request(**body) -> ChatRequest:
    body.setdefault("model", "client-model")
    body.setdefault("messages", [{"role": "user", "content": "Say hello in five words."}])
    return ChatRequest.from_openai(body)


def only_choice(response: dict) -> dict:
    """The one choice of a translated `chat.completion`, after checking the OpenAI envelope
    around it (what completion_response() builds for every translating adapter)."""
    assert response["object"] == "chat.completion"
    assert response["model"] == "client-model"
    assert isinstance(response["created"], int)
    (choice,) = response["choices"]
    assert (choice["index"], choice["logprobs"]) == (0, None)
    assert (choice["message"]["role"], choice["message"]["refusal"]) == ("assistant", None)
    return choice
