"""The Anthropic-compatible face (`POST /v1/messages`, `/v1/messages/count_tokens`) with the
official anthropic SDK, unchanged, against a live server and the provider simulator: create,
stream and tools on every adapter (a Claude-format request may be served by any provider),
count_tokens, each error class in Anthropic's shape, and one request-log row with its cost
per request."""

import json

import anthropic
import openai
import pytest
import requests
from django.contrib.auth.models import User

from accounts.services import api_key_create
from analytics.models import RequestLog
from gateway.formats.anthropic import messages_request
from providers.adapters.types import estimate_input_tokens
from routing.models import RoutingPolicy
from tests.conftest import ADAPTER_MODELS

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
HELLO = [{"role": "user", "content": "Say hello."}]
SYSTEM = "You answer questions about the weather. " * 25  # 1,025 characters
PROVIDER_OF = {
    "openai": "openai",
    "azure_openai": "azure",
    "anthropic": "anthropic",
    "gemini": "google",
    "openai_compatible": "deepseek",
}


def sdk(live_server, key, **kwargs) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live_server.url, api_key=key, max_retries=0, **kwargs)


def the_row(**expected) -> RequestLog:
    (row,) = RequestLog.objects.all()
    for name, value in expected.items():
        assert getattr(row, name) == value, (name, getattr(row, name))
    return row


@pytest.mark.parametrize("adapter", sorted(ADAPTER_MODELS))
def test_messages_create_on_every_adapter(live_server, routed_key, every_adapter, adapter):
    raw = sdk(live_server, routed_key).messages.with_raw_response.create(
        model=every_adapter[adapter],
        max_tokens=20,
        system="Answer briefly.",
        messages=HELLO,
    )
    message = raw.parse()
    assert isinstance(message, anthropic.types.Message)
    assert message.model == every_adapter[adapter]  # the model asked for, whoever served it
    (block,) = message.content
    assert block.type == "text" and block.text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert raw.headers["X-Auterity-Provider"] == PROVIDER_OF[adapter]
    assert raw.headers["X-Auterity-Attempts"] == "1"
    row = the_row(endpoint="messages", status="success", stream=False)
    assert raw.headers["X-Auterity-Model"] == row.model  # a policy may pick a cheaper one
    assert row.request_id == raw.headers["X-Request-ID"]
    assert message.id == f"msg_{row.request_id}" or adapter == "anthropic"
    assert row.cost > 0
    assert float(raw.headers["X-Auterity-Cost-USD"]) == pytest.approx(float(row.cost), abs=1e-8)
    assert message.usage.model_extra["cost"] == pytest.approx(float(row.cost))
    assert row.prompt_tokens == message.usage.input_tokens
    assert row.completion_tokens == message.usage.output_tokens


@pytest.mark.parametrize("adapter", sorted(ADAPTER_MODELS))
def test_messages_stream_on_every_adapter(live_server, routed_key, every_adapter, adapter):
    client = sdk(live_server, routed_key)
    with client.messages.stream(
        model=every_adapter[adapter], max_tokens=20, messages=HELLO
    ) as stream:
        assert stream.response.headers["X-Auterity-Provider"] == PROVIDER_OF[adapter]
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert text and message.content[0].text == text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.output_tokens > 0
    row = the_row(endpoint="messages", status="success", stream=True)
    assert row.cost > 0
    assert row.completion_tokens == message.usage.output_tokens


@pytest.mark.parametrize("adapter", sorted(ADAPTER_MODELS))
@pytest.mark.parametrize("streamed", [False, True], ids=["create", "stream"])
def test_tools_on_every_adapter(live_server, routed_key, every_adapter, adapter, streamed):
    client = sdk(live_server, routed_key)
    kwargs = dict(
        model=every_adapter[adapter],
        max_tokens=100,
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER],
        tool_choice={"type": "any"},
    )
    if streamed:
        with client.messages.stream(**kwargs) as stream:
            message = stream.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    assert message.stop_reason == "tool_use"
    (call,) = [block for block in message.content if block.type == "tool_use"]
    assert call.name == "get_weather" and isinstance(call.input, dict) and call.id
    # the answer goes back as a tool_result, and the conversation continues
    follow_up = client.messages.create(
        model=every_adapter[adapter],
        max_tokens=20,
        tools=[WEATHER],
        messages=[
            kwargs["messages"][0],
            {"role": "assistant", "content": [block.model_dump() for block in message.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "12 C"}],
            },
        ],
    )
    assert follow_up.content and follow_up.stop_reason in ("end_turn", "max_tokens", "tool_use")
    assert RequestLog.objects.filter(status="success", cost__gt=0).count() == 2


@pytest.fixture
def claude_to_openai(demo_catalogue):
    """A policy that serves Claude Haiku requests tagged metadata.route=openai with GPT-4o mini
    (cheaper, so within the cost guard)."""
    RoutingPolicy.objects.create(
        name="Claude to OpenAI",
        priority=1,
        status="active",
        conditions={"model": "claude-haiku-4-5", "metadata.route": "openai"},
        actions={
            "targets": [{"provider": "openai", "model": "gpt-4o-mini"}],
            "allow_downgrade_to": "economy",
        },
    )


def to_openai(live_server, key, **kwargs):
    raw = sdk(live_server, key).messages.with_raw_response.create(
        model="claude-haiku-4-5", metadata={"route": "openai"}, **kwargs
    )
    assert raw.headers["X-Auterity-Policy"] == "Claude to OpenAI"
    assert (raw.headers["X-Auterity-Provider"], raw.headers["X-Auterity-Model"]) == (
        "openai",
        "gpt-4o-mini",
    )
    return raw.parse()


def test_a_claude_request_served_by_openai_keeps_tools(live_server, routed_key, claude_to_openai):
    message = to_openai(
        live_server,
        routed_key,
        max_tokens=100,
        system=SYSTEM,
        messages=[{"role": "user", "content": "Oslo?"}],
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    assert message.stop_reason == "tool_use"
    (call,) = message.content
    assert call.type == "tool_use" and call.name == "get_weather"
    row = the_row(provider_id="openai", model="gpt-4o-mini", requested_model="claude-haiku-4-5")
    assert row.prompt_tokens == message.usage.input_tokens > 0
    assert float(row.cost) == pytest.approx(message.usage.model_extra["cost"])


def test_a_claude_request_served_by_openai_keeps_system_prompt_and_stop_sequences(
    live_server, routed_key, claude_to_openai
):
    ask = [{"role": "user", "content": "Oslo?"}]
    with_system = to_openai(live_server, routed_key, max_tokens=3, system=SYSTEM, messages=ask)
    without = to_openai(live_server, routed_key, max_tokens=3, messages=ask)
    # the simulator counts ceil(characters / 4) of everything it was sent as prompt tokens
    added = with_system.usage.input_tokens - without.usage.input_tokens
    assert added == pytest.approx(len(SYSTEM) / 4, abs=2)
    # the simulator's text is lorem ipsum: "ipsum" ends it after the first word
    stopped = to_openai(
        live_server, routed_key, max_tokens=20, messages=ask, stop_sequences=["ipsum"]
    )
    assert stopped.stop_reason in ("end_turn", "stop_sequence")
    text = stopped.content[0].text
    assert "ipsum" not in text and len(text.split()) < 20


def test_count_tokens_is_the_providers_own_count_where_it_has_one(
    live_server, routed_key, every_adapter
):
    client = sdk(live_server, routed_key)
    body = dict(system=SYSTEM, messages=[{"role": "user", "content": "Oslo?"}], tools=[WEATHER])
    counted = client.messages.with_raw_response.count_tokens(model="claude-haiku-4-5", **body)
    assert counted.headers["X-Auterity-Provider"] == "anthropic"
    assert counted.headers["X-Auterity-Token-Count"] == "provider"
    claude = counted.parse().input_tokens
    created = client.messages.create(model="claude-haiku-4-5", max_tokens=3, **body)
    assert claude == created.usage.input_tokens  # what the provider then bills
    # OpenAI has no counting endpoint: its own BPE (tiktoken's encoding), counted here
    estimate = client.messages.with_raw_response.count_tokens(model="gpt-4o-mini", **body)
    assert estimate.headers["X-Auterity-Token-Count"] == "estimate"
    request = messages_request({"model": "gpt-4o-mini", "max_tokens": 1, **body})
    assert estimate.parse().input_tokens == estimate_input_tokens(request)
    # counting bills nothing and writes no request-log row (only the create above)
    assert RequestLog.objects.get().endpoint == "messages"


def test_count_tokens_falls_back_to_the_estimate_when_the_provider_fails(
    live_server, routed_key, demo_catalogue, sim
):
    sim.set_fault("anthropic", error_rate=1.0, error_status=500)
    raw = sdk(live_server, routed_key).messages.with_raw_response.count_tokens(
        model="claude-haiku-4-5", messages=HELLO
    )
    assert raw.headers["X-Auterity-Token-Count"] == "estimate"
    assert raw.parse().input_tokens > 0


def test_authorization_bearer_works_as_well_as_x_api_key(live_server, routed_key, demo_catalogue):
    client = anthropic.Anthropic(base_url=live_server.url, auth_token=routed_key, max_retries=0)
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HELLO)
    assert message.content[0].text


# --- errors: Anthropic's shape, Anthropic's type for each status --------------------------------


def error_type(exc: anthropic.APIStatusError) -> str:
    assert exc.body["type"] == "error"
    return exc.body["error"]["type"]


def test_bad_key_is_401_authentication_error(live_server, demo_catalogue):
    with pytest.raises(anthropic.AuthenticationError) as caught:
        sdk(live_server, "sk-wrong").messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=HELLO
        )
    assert error_type(caught.value) == "authentication_error"
    assert caught.value.response.headers["X-Request-ID"]


def test_missing_scope_is_403_permission_error(live_server, demo_catalogue):
    user = User.objects.create_user("viewer")
    _, key = api_key_create(user=user, name="viewer", scopes=["routing:view"])
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        sdk(live_server, key).messages.count_tokens(model="claude-haiku-4-5", messages=HELLO)
    assert error_type(caught.value) == "permission_error"
    assert "ai:execute" in caught.value.message


def test_unknown_model_is_404_not_found_error(live_server, routed_key, demo_catalogue):
    with pytest.raises(anthropic.NotFoundError) as caught:
        sdk(live_server, routed_key).messages.create(
            model="claude-nope", max_tokens=5, messages=HELLO
        )
    assert error_type(caught.value) == "not_found_error"
    assert "claude-nope" in caught.value.message


BAD_BODIES = [
    # (change to a good body, the field the message names)
    ({"max_tokens": None}, "max_tokens"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
    (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "base64", "media_type": "x/y"}}
                    ],
                }
            ]
        },
        "messages.0.content.0.source.media_type",
    ),
    ({"temperature": 3}, "temperature"),
    ({"tools": [{"name": "bad name!", "input_schema": {}}]}, "tools.0.name"),
    ({"tool_choice": {"type": "tool", "name": "x"}}, "tool_choice"),
    ({"container": "c1"}, "container"),
    ({"surprise": 1}, "surprise"),
]


@pytest.mark.parametrize("change,param", BAD_BODIES, ids=[b[1] for b in BAD_BODIES])
def test_bad_input_is_400_naming_the_field_and_changes_nothing(
    live_server, routed_key, demo_catalogue, sim, change, param
):
    body = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": HELLO, **change}
    body = {k: v for k, v in body.items() if v is not None}
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk(live_server, routed_key).post("/v1/messages", body=body, cast_to=object)
    assert error_type(caught.value) == "invalid_request_error"
    assert caught.value.body["error"]["message"].startswith(f"{param}:")
    assert not RequestLog.objects.exists()
    assert sim.stats("anthropic")["requests"] == 0


def test_every_target_failing_is_502_api_error_with_its_row(
    live_server, routed_key, sim, demo_catalogue
):
    sim.set_fault("anthropic", error_rate=1.0, error_status=500)
    with pytest.raises(anthropic.InternalServerError) as caught:
        sdk(live_server, routed_key).messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=HELLO
        )
    assert caught.value.status_code == 502
    assert error_type(caught.value) == "api_error"
    the_row(endpoint="messages", status="error", http_status=502)


def test_upstream_rate_limit_is_429_rate_limit_error_with_retry_after(
    live_server, routed_key, sim, demo_catalogue
):
    sim.set_fault("anthropic", error_rate=1.0, error_status=429, retry_after=30)
    with pytest.raises(anthropic.RateLimitError) as caught:
        sdk(live_server, routed_key).messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=HELLO
        )
    assert error_type(caught.value) == "rate_limit_error"
    assert int(caught.value.response.headers["Retry-After"]) >= 1


def test_a_stream_cut_midway_ends_with_an_error_event_and_an_error_row(
    live_server, routed_key, sim, demo_catalogue
):
    sim.set_fault("anthropic", cut_stream_rate=1.0)
    client = sdk(live_server, routed_key)
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model="claude-haiku-4-5", max_tokens=200, messages=HELLO) as stream,
    ):
        for _ in stream.text_stream:
            pass
    assert error_type(caught.value) == "api_error"
    assert "stream broke" in caught.value.message
    the_row(endpoint="messages", status="error", stream=True)


def test_wrong_method_is_a_json_405_in_anthropics_shape(live_server, routed_key):
    response = requests.get(
        f"{live_server.url}/v1/messages", headers={"x-api-key": routed_key}, timeout=10
    )
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_the_stream_is_anthropics_event_sequence_on_the_wire(
    live_server, routed_key, demo_catalogue
):
    response = requests.post(
        f"{live_server.url}/v1/messages",
        headers={"x-api-key": routed_key, "anthropic-version": "2023-06-01"},
        json={"model": "gpt-4o-mini", "max_tokens": 5, "messages": HELLO, "stream": True},
        stream=True,
        timeout=30,
    )
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = []
    for frame in response.text.strip().split("\n\n"):
        name_line, data_line = frame.split("\n")
        name = name_line.removeprefix("event: ")
        data = json.loads(data_line.removeprefix("data: "))
        assert data["type"] == name
        events.append(name)
    assert events[:3] == ["message_start", "ping", "content_block_start"]
    assert events[-4:] == [
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert set(events[3:-3]) == {"content_block_delta"}


def test_the_sdks_through_the_production_server(web_server, routed_key, demo_catalogue):
    # `python -m auterity.server` (granian, worker processes), as deployed
    server = web_server(workers=1)
    client = anthropic.Anthropic(base_url=server.url, api_key=routed_key, max_retries=0)
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=20, system="Be brief.", messages=HELLO
    ) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert text and message.content[0].text == text
    counted = client.messages.count_tokens(model="claude-haiku-4-5", messages=HELLO)
    assert counted.input_tokens > 0
    embedded = openai.OpenAI(
        base_url=f"{server.url}/v1", api_key=routed_key, max_retries=0
    ).embeddings.create(model="text-embedding-3-small", input="hello")
    assert embedded.data[0].embedding
    assert server.stop() == 0  # the workers' background log writers drain at exit
    rows = RequestLog.objects.order_by("created_at")
    assert [(r.endpoint, r.status, r.stream) for r in rows] == [
        ("messages", "success", True),
        ("embeddings", "success", False),
    ]
    assert all(row.cost > 0 for row in rows)
