"""The provider simulator over real HTTP: wire formats, token usage, faults, control API."""

import json
import math
import time
from http.client import HTTPConnection

import openai
import pytest
import requests

from simulator import FaultValidationError, SimulatorServer

OPENAI_AUTH = {"Authorization": "Bearer test-key"}
ANTHROPIC_AUTH = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
GEMINI_AUTH = {"x-goog-api-key": "test-key"}
WEATHER_TOOL_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer"},
    },
    "required": ["city", "unit"],
}


@pytest.fixture(scope="module")
def sim():
    with SimulatorServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _clean_simulator(sim):
    sim.clear_faults()
    sim.reset_stats()
    yield
    sim.clear_faults()


@pytest.fixture
def session():
    with requests.Session() as session:
        yield session


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) pairs of a complete server-sent-events body."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].strip())
        if data:
            events.append((name, "\n".join(data)))
    return events


def read_until_broken(response) -> tuple[bytes, Exception | None]:
    """Body bytes received before the connection broke, and the error it broke with."""
    received = b""
    try:
        for piece in response.iter_content(chunk_size=None):
            received += piece
    except requests.exceptions.RequestException as exc:
        return received, exc
    return received, None


def openai_chat(session, sim, name="openai", headers=OPENAI_AUTH, **body):
    body.setdefault("model", "gpt-4o-mini")
    body.setdefault("messages", [{"role": "user", "content": "Hello there"}])
    return session.post(f"{sim.base_url(name)}/v1/chat/completions", json=body, headers=headers)


def anthropic_messages(session, sim, name="anthropic", headers=ANTHROPIC_AUTH, **body):
    body.setdefault("model", "claude-sonnet-4-20250514")
    body.setdefault("max_tokens", 16)
    body.setdefault("messages", [{"role": "user", "content": "Hello there"}])
    return session.post(f"{sim.base_url(name)}/v1/messages", json=body, headers=headers)


def gemini_generate(session, sim, name="google", method="generateContent", query="", **body):
    body.setdefault("contents", [{"role": "user", "parts": [{"text": "Hello there"}]}])
    url = f"{sim.base_url(name)}/v1beta/models/gemini-2.5-flash:{method}{query}"
    return session.post(url, json=body, headers=GEMINI_AUTH)


# --- OpenAI ---------------------------------------------------------------------------------


def test_openai_completion_has_the_documented_shape_and_size_based_usage(session, sim):
    # given 12 characters of system prompt and 9 of user text: ceil(21 / 4) = 6 prompt tokens
    messages = [
        {"role": "system", "content": "Be concise."},
        {"role": "user", "content": [{"type": "text", "text": "Hi, how a"}]},
    ]

    response = openai_chat(session, sim, messages=messages)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "gpt-4o-mini"
    [choice] = body["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert len(choice["message"]["content"].split()) == 16
    assert body["usage"]["prompt_tokens"] == math.ceil(len("Be concise.Hi, how a") / 4)
    assert body["usage"]["completion_tokens"] == 16
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 16


def test_openai_usage_follows_the_request_size(session, sim):
    short = openai_chat(
        session, sim, messages=[{"role": "user", "content": "x" * 40}], max_tokens=5
    )
    long = openai_chat(
        session, sim, messages=[{"role": "user", "content": "x" * 401}], max_completion_tokens=50
    )

    assert short.json()["usage"]["prompt_tokens"] == 10
    assert short.json()["usage"]["completion_tokens"] == 5
    assert len(short.json()["choices"][0]["message"]["content"].split()) == 5
    assert long.json()["usage"]["prompt_tokens"] == 101
    assert long.json()["usage"]["completion_tokens"] == 50


def test_openai_stream_sends_role_content_finish_usage_then_done(session, sim):
    response = openai_chat(
        session, sim, stream=True, stream_options={"include_usage": True}, max_tokens=4
    )

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = [data for _, data in sse_events(response.text)]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(data) for data in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-2])
    assert text == "lorem ipsum dolor sit"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 4
    assert chunks[-1]["usage"]["prompt_tokens"] == math.ceil(len("Hello there") / 4)


def test_openai_stream_without_include_usage_has_no_usage_chunk(session, sim):
    response = openai_chat(session, sim, stream=True)

    chunks = [json.loads(d) for _, d in sse_events(response.text) if d != "[DONE]"]
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_openai_tool_call_when_forced_or_named_by_the_user(session, sim):
    tools = [
        {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_TOOL_SCHEMA}}
    ]

    forced = openai_chat(session, sim, tools=tools, tool_choice="required").json()
    mentioned = openai_chat(
        session, sim, tools=tools, messages=[{"role": "user", "content": "use get_weather please"}]
    ).json()
    plain = openai_chat(session, sim, tools=tools).json()
    refused = openai_chat(
        session,
        sim,
        tools=tools,
        tool_choice="none",
        messages=[{"role": "user", "content": "use get_weather"}],
    ).json()

    for body in (forced, mentioned):
        choice = body["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        assert choice["message"]["content"] is None
        [call] = choice["message"]["tool_calls"]
        assert call["id"].startswith("call_")
        assert call["type"] == "function"
        assert call["function"]["name"] == "get_weather"
        assert json.loads(call["function"]["arguments"]) == {"city": "lorem", "unit": "celsius"}
    assert plain["choices"][0]["finish_reason"] == "stop"
    assert refused["choices"][0]["finish_reason"] == "stop"


def test_openai_streamed_tool_call_arguments_join_into_json(session, sim):
    tools = [
        {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_TOOL_SCHEMA}}
    ]

    response = openai_chat(
        session,
        sim,
        stream=True,
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )

    chunks = [json.loads(d) for _, d in sse_events(response.text) if d != "[DONE]"]
    calls = [c["choices"][0]["delta"].get("tool_calls") for c in chunks]
    assert calls[0][0]["function"]["name"] == "get_weather"
    arguments = "".join(call[0]["function"]["arguments"] for call in calls if call)
    assert json.loads(arguments) == {"city": "lorem", "unit": "celsius"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_openai_models_list(session, sim):
    response = session.get(f"{sim.base_url('openai')}/v1/models", headers=OPENAI_AUTH)

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert "gpt-4o" in [m["id"] for m in body["data"]]
    assert set(body["data"][0]) == {"id", "object", "created", "owned_by"}
    assert body["data"][0]["object"] == "model"


@pytest.mark.parametrize(
    ("headers", "code"),
    [({}, None), ({"Authorization": "Bearer invalid"}, "invalid_api_key")],
)
def test_openai_rejects_missing_or_invalid_key(session, sim, headers, code):
    response = openai_chat(session, sim, headers=headers)

    assert response.status_code == 401
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["code"] == code
    assert sim.stats("openai")["by_outcome"] == {"auth_error": 1}


def test_openai_validation_errors_name_the_parameter(session, sim):
    missing = session.post(
        f"{sim.base_url('openai')}/v1/chat/completions",
        json={"model": "gpt-4o"},
        headers=OPENAI_AUTH,
    )
    not_json = session.post(
        f"{sim.base_url('openai')}/v1/chat/completions",
        data=b"{not json",
        headers={**OPENAI_AUTH, "Content-Type": "application/json"},
    )
    bad_max = openai_chat(session, sim, max_tokens=0)

    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "messages"
    assert missing.json()["error"]["code"] == "missing_required_parameter"
    assert not_json.status_code == 400
    assert not_json.json()["error"]["type"] == "invalid_request_error"
    assert bad_max.status_code == 400
    assert bad_max.json()["error"]["param"] == "max_tokens"


def test_openai_sdk_works_unchanged_streaming_and_not(sim):
    client = openai.OpenAI(base_url=sim.base_url("openai") + "/v1", api_key="k", max_retries=0)

    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello SDK"}], max_tokens=3
    )
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Hello SDK"}],
        max_tokens=3,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    models = client.models.list()

    assert completion.choices[0].message.content == "lorem ipsum dolor"
    assert completion.usage.prompt_tokens == 3
    assert completion.usage.completion_tokens == 3
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "lorem ipsum dolor"
    )
    assert chunks[-1].usage.total_tokens == 6
    assert "gpt-4o" in [m.id for m in models]


def test_openai_sdk_sees_rate_limit_and_retry_after(sim):
    sim.set_fault("openai", error_rate=1.0, error_status=429, retry_after=7)
    client = openai.OpenAI(base_url=sim.base_url("openai") + "/v1", api_key="k", max_retries=0)

    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
        )

    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.code == "rate_limit_exceeded"


# --- Azure OpenAI ---------------------------------------------------------------------------


def azure_url(sim, query="?api-version=2024-10-21", deployment="prod-gpt4o"):
    return f"{sim.base_url('azure')}/openai/deployments/{deployment}/chat/completions{query}"


def test_azure_deployment_answers_in_openai_shape(session, sim):
    body = {"messages": [{"role": "user", "content": "Hello Azure"}], "max_tokens": 2}

    response = session.post(azure_url(sim), json=body, headers={"api-key": "k"})

    assert response.status_code == 200
    assert response.json()["object"] == "chat.completion"
    assert response.json()["model"] == "prod-gpt4o"
    assert response.json()["usage"]["completion_tokens"] == 2
    assert sim.stats("azure")["by_kind"] == {"azure_chat_completions": 1}


def test_azure_gates_on_api_version_then_key(session, sim):
    body = {"messages": [{"role": "user", "content": "Hi"}]}

    no_version = session.post(azure_url(sim, query=""), json=body, headers={"api-key": "k"})
    bad_version = session.post(azure_url(sim, query="?api-version=junk"), json=body)
    no_key = session.post(azure_url(sim), json=body)
    models = session.get(
        f"{sim.base_url('azure')}/openai/models?api-version=2024-10-21", headers={"api-key": "k"}
    )

    assert no_version.status_code == 404
    assert no_version.json() == {"error": {"code": "404", "message": "Resource not found"}}
    assert bad_version.status_code == 400
    assert no_key.status_code == 401
    assert no_key.json()["error"]["code"] == "401"
    assert models.status_code == 200
    assert "gpt-4o" in [m["id"] for m in models.json()["data"]]


def test_azure_rate_limit_carries_retry_after_and_retry_after_ms(session, sim):
    sim.set_fault("azure", error_rate=1.0, error_status=429, retry_after=3)
    body = {"messages": [{"role": "user", "content": "Hi"}]}

    response = session.post(azure_url(sim), json=body, headers={"api-key": "k"})

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.headers["retry-after-ms"] == "3000"
    assert response.json()["error"]["code"] == "429"


# --- Anthropic ------------------------------------------------------------------------------


def test_anthropic_message_shape_and_usage(session, sim):
    system = [{"type": "text", "text": "You are terse."}]
    messages = [
        {"role": "user", "content": "First"},
        {"role": "assistant", "content": [{"type": "text", "text": "Ok"}]},
        {"role": "user", "content": [{"type": "text", "text": "Second"}]},
    ]

    response = anthropic_messages(session, sim, system=system, messages=messages, max_tokens=7)

    assert response.status_code == 200
    assert response.headers["request-id"].startswith("req_")
    body = response.json()
    assert body["id"].startswith("msg_")
    assert body["type"] == "message"
    assert body["role"] == "assistant"
    assert body["model"] == "claude-sonnet-4-20250514"
    [block] = body["content"]
    assert block["type"] == "text"
    assert len(block["text"].split()) == 7
    assert body["stop_reason"] == "end_turn"
    assert body["stop_sequence"] is None
    assert body["usage"]["input_tokens"] == math.ceil(len("You are terse.FirstOkSecond") / 4)
    assert body["usage"]["output_tokens"] == 7


def test_anthropic_stream_event_sequence(session, sim):
    response = anthropic_messages(session, sim, stream=True, max_tokens=3)

    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    payloads = [json.loads(data) for _, data in events]
    assert all(p["type"] == name for (name, _), p in zip(events, payloads, strict=True))
    assert payloads[0]["message"]["usage"]["input_tokens"] == 3
    assert "".join(p["delta"]["text"] for p in payloads[3:6]) == "lorem ipsum dolor"
    assert payloads[3]["delta"]["type"] == "text_delta"
    assert payloads[7]["delta"]["stop_reason"] == "end_turn"
    assert payloads[7]["usage"]["output_tokens"] == 3


def test_anthropic_tool_use_when_tool_choice_forces_it(session, sim):
    tools = [{"name": "get_weather", "input_schema": WEATHER_TOOL_SCHEMA}]

    forced = anthropic_messages(session, sim, tools=tools, tool_choice={"type": "any"}).json()
    auto = anthropic_messages(session, sim, tools=tools, tool_choice={"type": "auto"}).json()
    streamed = anthropic_messages(
        session, sim, tools=tools, tool_choice={"type": "tool", "name": "get_weather"}, stream=True
    )

    [block] = forced["content"]
    assert block["type"] == "tool_use"
    assert block["id"].startswith("toolu_")
    assert block["name"] == "get_weather"
    assert block["input"] == {"city": "lorem", "unit": "celsius"}
    assert forced["stop_reason"] == "tool_use"
    assert auto["content"][0]["type"] == "text"
    payloads = [json.loads(d) for _, d in sse_events(streamed.text)]
    assert payloads[1]["content_block"]["type"] == "tool_use"
    partial = "".join(
        p["delta"]["partial_json"] for p in payloads if p["type"] == "content_block_delta"
    )
    assert json.loads(partial) == {"city": "lorem", "unit": "celsius"}


@pytest.mark.parametrize(
    ("headers", "body", "status", "error_type"),
    [
        ({"anthropic-version": "2023-06-01"}, {}, 401, "authentication_error"),
        (
            {"x-api-key": "invalid", "anthropic-version": "2023-06-01"},
            {},
            401,
            "authentication_error",
        ),
        ({"x-api-key": "k"}, {}, 400, "invalid_request_error"),
        (ANTHROPIC_AUTH, {"max_tokens": None}, 400, "invalid_request_error"),
    ],
    ids=["no-key", "invalid-key", "no-version", "no-max-tokens"],
)
def test_anthropic_errors_use_its_error_shape(session, sim, headers, body, status, error_type):
    payload = {"model": "claude-sonnet-4-20250514", "max_tokens": 8, **body}
    payload["messages"] = [{"role": "user", "content": "Hi"}]
    payload = {k: v for k, v in payload.items() if v is not None}

    response = session.post(
        f"{sim.base_url('anthropic')}/v1/messages", json=payload, headers=headers
    )

    assert response.status_code == status
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == error_type
    assert error["error"]["message"]


def test_anthropic_models_list_when_anthropic_headers_are_sent(session, sim):
    response = session.get(f"{sim.base_url('anthropic')}/v1/models", headers=ANTHROPIC_AUTH)
    page = session.get(
        f"{sim.base_url('anthropic')}/v1/models?limit=1", headers={"x-api-key": "k"}
    ).json()

    body = response.json()
    assert body["has_more"] is False
    assert body["first_id"] == body["data"][0]["id"]
    assert body["last_id"] == body["data"][-1]["id"]
    assert set(body["data"][0]) == {"type", "id", "display_name", "created_at"}
    assert body["data"][0]["type"] == "model"
    assert len(page["data"]) == 1
    assert page["has_more"] is True


# --- Gemini ---------------------------------------------------------------------------------


def test_gemini_generate_content_shape_and_usage(session, sim):
    response = gemini_generate(
        session,
        sim,
        systemInstruction={"parts": [{"text": "Be brief"}]},
        contents=[
            {"role": "user", "parts": [{"text": "Hello"}]},
            {"role": "model", "parts": [{"text": "Hi"}]},
            {"role": "user", "parts": [{"text": "Tell me more"}]},
        ],
        generationConfig={"temperature": 0.2, "maxOutputTokens": 6},
    )

    assert response.status_code == 200
    body = response.json()
    [candidate] = body["candidates"]
    assert candidate["content"]["role"] == "model"
    assert len(candidate["content"]["parts"][0]["text"].split()) == 6
    assert candidate["finishReason"] == "STOP"
    assert candidate["index"] == 0
    usage = body["usageMetadata"]
    assert usage["promptTokenCount"] == math.ceil(len("Be briefHelloHiTell me more") / 4)
    assert usage["candidatesTokenCount"] == 6
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + 6
    assert body["modelVersion"] == "gemini-2.5-flash"


def test_gemini_sse_stream_uses_crlf_frames_with_usage_on_each(session, sim):
    response = gemini_generate(
        session,
        sim,
        method="streamGenerateContent",
        query="?alt=sse",
        generationConfig={"maxOutputTokens": 20},
    )

    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert "\r\n\r\n" in response.text
    chunks = [json.loads(d) for _, d in sse_events(response.text)]
    assert len(chunks) > 1
    assert all("usageMetadata" in c for c in chunks)
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert len(text.split()) == 20
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "finishReason" not in chunks[0]["candidates"][0]
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 20


def test_gemini_stream_without_sse_is_a_json_array(session, sim):
    response = gemini_generate(session, sim, method="streamGenerateContent")

    chunks = response.json()
    assert isinstance(chunks, list)
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_gemini_function_call_in_any_mode(session, sim):
    declaration = {
        "name": "get_weather",
        "parameters": {
            "type": "OBJECT",
            "properties": {"city": {"type": "STRING"}},
            "required": ["city"],
        },
    }

    body = gemini_generate(
        session,
        sim,
        tools=[{"functionDeclarations": [declaration]}],
        toolConfig={"functionCallingConfig": {"mode": "ANY"}},
    ).json()

    [part] = body["candidates"][0]["content"]["parts"]
    assert part["functionCall"] == {"name": "get_weather", "args": {"city": "lorem"}}


def test_gemini_auth_by_header_or_query_and_its_errors(session, sim):
    url = f"{sim.base_url('google')}/v1beta/models/gemini-2.5-flash:generateContent"
    body = {"contents": [{"parts": [{"text": "Hi"}]}]}

    by_query = session.post(url + "?key=k", json=body)
    missing = session.post(url, json=body)
    invalid = session.post(url, json=body, headers={"x-goog-api-key": "invalid"})

    assert by_query.status_code == 200
    assert missing.status_code == 403
    assert missing.json()["error"]["status"] == "PERMISSION_DENIED"
    assert invalid.status_code == 400
    error = invalid.json()["error"]
    assert error["code"] == 400
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["details"][0]["reason"] == "API_KEY_INVALID"


def test_gemini_models_list(session, sim):
    response = session.get(f"{sim.base_url('google')}/v1beta/models", headers=GEMINI_AUTH)

    names = [m["name"] for m in response.json()["models"]]
    assert "models/gemini-2.5-flash" in names


def test_models_list_is_configurable():
    with SimulatorServer(models={"openai": ["my-model"]}) as custom, requests.Session() as client:
        openai_ids = client.get(f"{custom.base_url('x')}/v1/models", headers=OPENAI_AUTH).json()
        gemini = client.get(f"{custom.base_url('x')}/v1beta/models", headers=GEMINI_AUTH).json()

    assert [m["id"] for m in openai_ids["data"]] == ["my-model"]
    assert "models/gemini-2.5-flash" in [m["name"] for m in gemini["models"]]


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "name", "error_of"),
    [
        (openai_chat, "openai", lambda b: b["error"]["code"]),
        (anthropic_messages, "anthropic", lambda b: b["error"]["type"]),
        (gemini_generate, "google", lambda b: b["error"]["status"]),
    ],
    ids=["openai", "anthropic", "gemini"],
)
def test_rate_limit_fault_sends_429_with_retry_after(session, sim, call, name, error_of):
    sim.set_fault(name, error_rate=1.0, error_status=429, retry_after=5)

    response = call(session, sim, name=name)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "5"
    assert error_of(response.json()) in {
        "rate_limit_exceeded",
        "rate_limit_error",
        "RESOURCE_EXHAUSTED",
    }
    assert sim.stats(name)["by_outcome"] == {"error_429": 1}


@pytest.mark.parametrize(
    ("status", "openai_type", "anthropic_type", "gemini_status"),
    [
        (500, "server_error", "api_error", "INTERNAL"),
        (503, "server_error", "api_error", "UNAVAILABLE"),
        (529, "server_error", "overloaded_error", "UNAVAILABLE"),
    ],
)
def test_server_error_faults_in_each_wire_shape(
    session, sim, status, openai_type, anthropic_type, gemini_status
):
    for name in ("openai", "anthropic", "google"):
        sim.set_fault(name, error_rate=1.0, error_status=status)

    from_openai = openai_chat(session, sim)
    from_anthropic = anthropic_messages(session, sim)
    from_gemini = gemini_generate(session, sim)

    assert from_openai.status_code == from_anthropic.status_code == status
    assert from_gemini.status_code == status
    assert from_openai.json()["error"]["type"] == openai_type
    assert from_anthropic.json()["error"]["type"] == anthropic_type
    assert from_gemini.json()["error"]["status"] == gemini_status
    assert "Retry-After" not in from_openai.headers


def test_timeout_fault_holds_the_request_past_the_client_timeout(session, sim):
    sim.set_fault("openai", timeout_rate=1.0, hang_seconds=2)

    with pytest.raises(requests.exceptions.ReadTimeout):
        session.post(
            f"{sim.base_url('openai')}/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
            headers=OPENAI_AUTH,
            timeout=0.3,
        )


def test_timeout_fault_closes_without_answer_after_hang_seconds(session, sim):
    sim.set_fault("openai", timeout_rate=1.0, hang_seconds=0.2)

    with pytest.raises(requests.exceptions.ConnectionError):
        openai_chat(session, sim)

    assert sim.stats("openai")["by_outcome"] == {"timeout": 1}


def test_reset_fault_resets_the_connection(session, sim):
    sim.set_fault("openai", reset_rate=1.0)

    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        openai_chat(session, sim)

    assert "reset" in str(caught.value).lower()
    sim.clear_faults("openai")
    assert openai_chat(session, sim).status_code == 200
    assert sim.stats("openai")["by_outcome"] == {"ok": 1, "reset": 1}


def test_malformed_fault_sends_200_with_invalid_json(session, sim):
    sim.set_fault("openai", malformed_rate=1.0)

    response = openai_chat(session, sim)
    stream = openai_chat(session, sim, stream=True)

    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert stream.status_code == 200
    payloads = [d for _, d in sse_events(stream.text) if d != "[DONE]"]
    broken = 0
    for data in payloads:
        try:
            json.loads(data)
        except ValueError:
            broken += 1
    assert broken == 1
    assert sim.stats("openai")["by_outcome"] == {"malformed": 2}


@pytest.mark.parametrize(
    ("path", "headers", "final_marker"),
    [
        ("/v1/chat/completions", OPENAI_AUTH, b"[DONE]"),
        ("/v1/messages", ANTHROPIC_AUTH, b"message_stop"),
    ],
    ids=["openai", "anthropic"],
)
def test_cut_stream_fault_stops_midway(session, sim, path, headers, final_marker):
    sim.set_fault("flaky", cut_stream_rate=1.0)
    body = {"model": "m", "max_tokens": 12, "stream": True}
    body["messages"] = [{"role": "user", "content": "Hi"}]

    response = session.post(sim.base_url("flaky") + path, json=body, headers=headers, stream=True)
    received, error = read_until_broken(response)

    assert response.status_code == 200
    assert isinstance(error, requests.exceptions.ChunkedEncodingError)
    assert received.count(b"data:") >= 2
    assert final_marker not in received
    assert sim.stats("flaky")["by_outcome"] == {"cut_stream": 1}


def test_cut_stream_leaves_non_stream_requests_alone(session, sim):
    sim.set_fault("openai", cut_stream_rate=1.0)

    assert openai_chat(session, sim).status_code == 200


def test_latency_fault_delays_the_answer(session, sim):
    sim.set_fault("openai", latency_ms=150)

    started = time.monotonic()
    response = openai_chat(session, sim)

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.15


def test_down_answers_503_everywhere_under_the_name(session, sim):
    sim.set_fault("openai", down=True)

    chat = openai_chat(session, sim)
    models = session.get(f"{sim.base_url('openai')}/v1/models", headers=OPENAI_AUTH)
    messages = anthropic_messages(session, sim, name="openai")
    health = session.get(f"{sim.url}/_sim/health")

    assert chat.status_code == models.status_code == messages.status_code == 503
    assert chat.json()["error"]["type"] == "server_error"
    assert messages.json()["type"] == "error"
    assert health.status_code == 200
    assert sim.stats("openai")["by_outcome"] == {"down": 3}


def test_error_rates_are_seeded_and_exact_at_the_ends(session, sim):
    def statuses(count):
        return [openai_chat(session, sim).status_code for _ in range(count)]

    sim.set_fault("openai", error_rate=0.5, error_status=503, seed=42)
    first = statuses(20)
    sim.set_fault("openai", error_rate=0.5, error_status=503, seed=42)
    again = statuses(20)
    sim.set_fault("openai", error_rate=0.0, error_status=503)
    never = statuses(20)
    sim.set_fault("openai", error_rate=1.0, error_status=503)
    always = statuses(20)

    assert first == again
    assert {200, 503} == set(first)
    assert set(never) == {200}
    assert set(always) == {503}


def test_faults_are_isolated_per_name(session, sim):
    sim.set_fault("alpha", error_rate=1.0, error_status=500)

    alpha = openai_chat(session, sim, name="alpha")
    beta = openai_chat(session, sim, name="beta")

    assert alpha.status_code == 500
    assert beta.status_code == 200
    assert sim.stats("alpha")["by_outcome"] == {"error_500": 1}
    assert sim.stats("beta")["by_outcome"] == {"ok": 1}


# --- control API, stats, plumbing -----------------------------------------------------------


def test_control_api_sets_reads_and_clears_faults(session, sim):
    put = session.put(f"{sim.url}/_sim/faults/openai", json={"error_rate": 1, "error_status": 503})
    patched = session.patch(f"{sim.url}/_sim/faults/openai", json={"latency_ms": 5})
    listed = session.get(f"{sim.url}/_sim/faults").json()

    assert put.status_code == 200
    assert put.json()["faults"]["error_status"] == 503
    assert patched.json()["faults"]["error_rate"] == 1.0
    assert patched.json()["faults"]["latency_ms"] == 5
    assert listed["faults"]["openai"]["error_status"] == 503
    assert openai_chat(session, sim).status_code == 503

    assert session.delete(f"{sim.url}/_sim/faults/openai").status_code == 200
    assert openai_chat(session, sim).status_code == 200
    session.put(f"{sim.url}/_sim/faults/a", json={"down": True})
    session.put(f"{sim.url}/_sim/faults/b", json={"down": True})
    assert session.delete(f"{sim.url}/_sim/faults").status_code == 200
    assert session.get(f"{sim.url}/_sim/faults").json() == {"faults": {}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"error_rate": 1.5}, "error_rate"),
        ({"error_rate": "high"}, "error_rate"),
        ({"error_status": 418}, "error_status"),
        ({"hang_seconds": 10_000}, "hang_seconds"),
        ({"down": "yes"}, "down"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"explode": True}, "explode"),
    ],
)
def test_control_api_rejects_invalid_fields_naming_them(session, sim, body, field):
    response = session.put(f"{sim.url}/_sim/faults/openai", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert sim.faults() == {}


def test_control_api_rejects_bad_bodies_names_and_paths(session, sim):
    not_json = session.put(f"{sim.url}/_sim/faults/openai", data=b"{nope")
    not_object = session.put(f"{sim.url}/_sim/faults/openai", json=[1, 2])
    bad_name = session.put(f"{sim.url}/_sim/faults/Bad.Name", json={})
    unknown = session.get(f"{sim.url}/_sim/nothing")

    assert not_json.status_code == 400
    assert not_object.status_code == 400
    assert bad_name.json()["error"]["field"] == "name"
    assert unknown.status_code == 404
    assert unknown.headers["Content-Type"] == "application/json"


def test_set_fault_validates_like_the_http_api(sim):
    with pytest.raises(FaultValidationError) as caught:
        sim.set_fault("openai", reset_rate=2)

    assert caught.value.field == "reset_rate"
    with pytest.raises(ValueError):
        sim.set_fault("Not A Name", down=True)


def test_stats_count_by_kind_outcome_and_tokens(session, sim):
    openai_chat(session, sim, messages=[{"role": "user", "content": "x" * 8}], max_tokens=3)
    openai_chat(session, sim, stream=True, max_tokens=2)
    session.get(f"{sim.base_url('openai')}/v1/models", headers=OPENAI_AUTH)
    openai_chat(session, sim, headers={})
    session.get(f"{sim.base_url('openai')}/v1/nothing", headers=OPENAI_AUTH)

    stats = sim.stats("openai")
    over_http = session.get(f"{sim.url}/_sim/stats").json()["stats"]["openai"]
    assert stats == over_http
    assert stats["requests"] == 5
    assert stats["streams"] == 1
    assert stats["by_kind"] == {"chat_completions": 3, "models": 1, "unknown": 1}
    assert stats["by_outcome"] == {"ok": 3, "auth_error": 1, "not_found": 1}
    assert stats["prompt_tokens"] == 2 + 3
    assert stats["completion_tokens"] == 3 + 2

    assert session.post(f"{sim.url}/_sim/stats/reset").status_code == 200
    assert sim.stats("openai")["requests"] == 0


def test_unknown_paths_get_404_json(session, sim):
    under_name = session.get(f"{sim.base_url('openai')}/v2/whatever", headers=OPENAI_AUTH)
    bad_name = session.get(f"{sim.url}/UPPER/v1/models")

    for response in (under_name, bad_name):
        assert response.status_code == 404
        assert response.json()["error"]["message"]


def test_connections_are_kept_alive(sim):
    connection = HTTPConnection("127.0.0.1", sim.port)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    headers = {**OPENAI_AUTH, "Content-Type": "application/json"}
    try:
        for _ in range(3):
            connection.request("POST", "/openai/v1/chat/completions", body, headers)
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            assert response.will_close is False
        first_socket = connection.sock
        connection.request("POST", "/openai/v1/chat/completions", body, headers)
        connection.getresponse().read()
        assert connection.sock is first_socket
    finally:
        connection.close()


def test_stop_closes_the_port():
    server = SimulatorServer().start()
    url = server.base_url("openai") + "/v1/models"
    assert requests.get(url, headers=OPENAI_AUTH, timeout=5).status_code == 200

    server.stop()

    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, headers=OPENAI_AUTH, timeout=5)
