"""Embeddings, JSON mode, n > 1, stop sequences and usage details, per wire format, over real
HTTP: the official `openai` and `anthropic` SDKs where they apply, plain HTTP for Gemini."""

import base64
import json
import math
import struct

import anthropic
import jsonschema
import openai
import pydantic
import pytest
import requests

from simulator import SimulatorServer

OPENAI_AUTH = {"Authorization": "Bearer test-key"}
GEMINI_AUTH = {"x-goog-api-key": "test-key"}
# A schema with what structured outputs use: nesting, $defs/$ref, arrays with a minimum,
# enums, nullable fields (anyOf with null), integer bounds, formats, no extra properties.
ORDER_SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "enum": ["open", "shipped", "closed"]},
        "placed_at": {"type": "string", "format": "date-time"},
        "customer": {"$ref": "#/$defs/customer"},
        "lines": {"type": "array", "items": {"$ref": "#/$defs/line"}, "minItems": 2},
        "note": {"anyOf": [{"type": "string", "minLength": 12}, {"type": "null"}]},
        "priority": {"type": "integer", "minimum": 3, "maximum": 5},
        "score": {"type": "number", "exclusiveMinimum": 10, "multipleOf": 0.5},
        "gift": {"type": "boolean"},
    },
    "required": [
        "order_id",
        "status",
        "placed_at",
        "customer",
        "lines",
        "note",
        "priority",
        "score",
        "gift",
    ],
    "additionalProperties": False,
    "$defs": {
        "customer": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "email": {"type": "string"}},
            "required": ["name", "email"],
            "additionalProperties": False,
        },
        "line": {
            "type": "object",
            "properties": {
                "sku": {"type": "string", "pattern": "^[A-Z]+[0-9]$"},
                "quantity": {"type": "integer", "minimum": 1},
            },
            "required": ["sku", "quantity"],
            "additionalProperties": False,
        },
    },
}
LONG_PROMPT = "The quick brown fox jumps over the lazy dog. " * 120  # 5,400 characters


@pytest.fixture(scope="module")
def sim():
    with SimulatorServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(sim):
    sim.clear_faults()
    sim.reset_stats()  # also forgets the prompts seen: nothing starts cached


@pytest.fixture
def oai(sim):
    return openai.OpenAI(base_url=sim.base_url("openai") + "/v1", api_key="k", max_retries=0)


@pytest.fixture
def claude(sim):
    return anthropic.Anthropic(base_url=sim.base_url("anthropic"), api_key="k", max_retries=0)


def _norm(values) -> float:
    return math.sqrt(sum(v * v for v in values))


def _gemini(sim, model, method, body, query=""):
    url = f"{sim.base_url('google')}/v1beta/models/{model}:{method}{query}"
    return requests.post(url, json=body, headers=GEMINI_AUTH, timeout=10)


def _sse_json(text: str) -> list[dict]:
    events = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith("data: ") and line != "data: [DONE]":
            events.append(json.loads(line[len("data: ") :]))
    return events


# --- embeddings -----------------------------------------------------------------------------


def test_openai_embeddings_are_deterministic_unit_vectors_with_usage(oai, sim):
    first = oai.embeddings.create(
        model="text-embedding-3-small", input=["hello world", "goodbye"], encoding_format="float"
    )
    again = oai.embeddings.create(
        model="text-embedding-3-small", input="hello world", encoding_format="float"
    )

    assert [d.index for d in first.data] == [0, 1]
    assert all(len(d.embedding) == 1536 for d in first.data)
    assert all(math.isclose(_norm(d.embedding), 1.0, rel_tol=1e-9) for d in first.data)
    assert first.data[0].embedding == again.data[0].embedding
    assert first.data[0].embedding != first.data[1].embedding
    # ceil(11 / 4) + ceil(7 / 4)
    assert (first.usage.prompt_tokens, first.usage.total_tokens) == (5, 5)
    assert first.model == "text-embedding-3-small"
    assert sim.stats("openai")["by_kind"] == {"embeddings": 2}
    assert sim.stats("openai")["prompt_tokens"] == 5 + 3


def test_openai_embeddings_base64_and_dimensions(oai, sim):
    floats = oai.embeddings.create(
        model="text-embedding-3-large", input="hello", encoding_format="float"
    )
    # The SDK asks for base64 by default and decodes it: the same vector must come out.
    decoded = oai.embeddings.create(model="text-embedding-3-large", input="hello")
    raw = requests.post(
        f"{sim.base_url('openai')}/v1/embeddings",
        json={"model": "text-embedding-3-large", "input": "hello", "encoding_format": "base64"},
        headers=OPENAI_AUTH,
        timeout=10,
    ).json()
    short = oai.embeddings.create(
        model="text-embedding-3-large", input="hello", dimensions=256, encoding_format="float"
    )

    full = floats.data[0].embedding
    packed = base64.b64decode(raw["data"][0]["embedding"])
    assert struct.unpack(f"<{len(packed) // 4}f", packed) == pytest.approx(full, abs=1e-6)
    assert list(decoded.data[0].embedding) == pytest.approx(full, abs=1e-6)
    assert len(full) == 3072
    assert len(short.data[0].embedding) == 256
    assert math.isclose(_norm(short.data[0].embedding), 1.0, rel_tol=1e-9)
    # a shortened vector points the way the full one's first values do
    head = full[:256]
    cosine = sum(a * b for a, b in zip(head, short.data[0].embedding, strict=True)) / _norm(head)
    assert math.isclose(cosine, 1.0, rel_tol=1e-9)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "text-embedding-3-small"}, "input"),
        ({"model": "text-embedding-3-small", "input": ""}, "input"),
        ({"model": "text-embedding-3-small", "input": "x", "encoding_format": "int8"}, None),
        ({"model": "text-embedding-ada-002", "input": "x", "dimensions": 8}, "dimensions"),
        ({"model": "text-embedding-3-small", "input": "x", "dimensions": 5000}, "dimensions"),
    ],
)
def test_openai_embeddings_reject_bad_requests_naming_the_parameter(oai, body, param):
    with pytest.raises(openai.BadRequestError) as caught:
        oai.post("/embeddings", body=body, cast_to=object)

    error = caught.value.body
    assert error["type"] == "invalid_request_error"
    assert error["param"] == (param or "encoding_format")


def test_azure_embeddings_through_the_azure_sdk_client(sim):
    client = openai.AzureOpenAI(
        azure_endpoint=sim.base_url("azure"), api_key="k", api_version="2024-10-21"
    )

    result = client.embeddings.create(model="my-embedder", input=["a", "b", "c"])

    assert len(result.data) == 3
    assert result.usage.prompt_tokens == 3
    assert sim.stats("azure")["by_kind"] == {"azure_embeddings": 1}


def test_gemini_embed_content_and_batch(sim):
    one = _gemini(
        sim, "gemini-embedding-001", "embedContent", {"content": {"parts": [{"text": "hello"}]}}
    )
    batch = _gemini(
        sim,
        "gemini-embedding-001",
        "batchEmbedContents",
        {
            "requests": [
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": t}]}}
                for t in ("hello", "world")
            ]
            + [{"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 768}]
        },
    )
    mismatch = _gemini(
        sim,
        "gemini-embedding-001",
        "batchEmbedContents",
        {"requests": [{"model": "models/other", "content": {"parts": [{"text": "x"}]}}]},
    )

    values = one.json()["embedding"]["values"]
    assert len(values) == 3072 and math.isclose(_norm(values), 1.0, rel_tol=1e-9)
    embeddings = batch.json()["embeddings"]
    assert [len(e["values"]) for e in embeddings] == [3072, 3072, 768]
    assert embeddings[0]["values"] == values
    assert embeddings[1]["values"] != values
    assert math.isclose(_norm(embeddings[2]["values"]), 1.0, rel_tol=1e-9)
    assert mismatch.status_code == 400
    assert mismatch.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert sim.stats("google")["by_kind"] == {"batch_embed_contents": 2, "embed_content": 1}


def test_model_lists_include_embedding_models(oai, sim):
    openai_ids = [m.id for m in oai.models.list()]
    gemini = requests.get(
        f"{sim.base_url('google')}/v1beta/models/gemini-embedding-001", headers=GEMINI_AUTH
    ).json()
    azure = requests.get(
        f"{sim.base_url('azure')}/openai/models?api-version=2024-10-21",
        headers={"api-key": "k"},
        timeout=10,
    ).json()

    assert {"text-embedding-3-small", "text-embedding-3-large"} <= set(openai_ids)
    assert gemini["supportedGenerationMethods"][0] == "embedContent"
    capabilities = {m["id"]: m["capabilities"] for m in azure["data"]}
    assert capabilities["text-embedding-3-small"]["embeddings"] is True
    assert capabilities["gpt-4o"]["embeddings"] is False


# --- JSON mode ------------------------------------------------------------------------------


def test_openai_json_schema_answers_validate_streamed_or_not(oai):
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "order", "schema": ORDER_SCHEMA, "strict": True},
    }
    messages = [{"role": "user", "content": "Extract the order"}]

    answer = oai.chat.completions.create(
        model="gpt-4o", messages=messages, response_format=response_format
    )
    streamed = oai.chat.completions.create(
        model="gpt-4o",
        messages=messages,
        response_format=response_format,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(streamed)

    content = answer.choices[0].message.content
    jsonschema.validate(json.loads(content), ORDER_SCHEMA)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == content
    assert answer.usage.completion_tokens == math.ceil(len(content) / 4)
    assert chunks[-1].usage.completion_tokens == answer.usage.completion_tokens


def test_openai_sdk_parse_fills_a_pydantic_model(oai):
    class Step(pydantic.BaseModel):
        explanation: str
        output: str

    class Reasoning(pydantic.BaseModel):
        steps: list[Step]
        final_answer: str

    completion = oai.chat.completions.parse(
        model="gpt-4o",
        messages=[{"role": "user", "content": "solve 8x + 7 = -23"}],
        response_format=Reasoning,
    )

    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Reasoning)
    assert parsed.final_answer == "lorem"


def test_openai_json_object_needs_json_in_the_messages(oai):
    answer = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Reply in JSON please"}],
        response_format={"type": "json_object"},
    )

    assert isinstance(json.loads(answer.choices[0].message.content), dict)
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Reply please"}],
            response_format={"type": "json_object"},
        )
    assert caught.value.body["param"] == "messages"
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "json"}],
            response_format={"type": "json_schema", "json_schema": {"schema": {}}},
        )
    assert caught.value.body["param"] == "response_format.json_schema.name"


def test_openai_json_longer_than_max_tokens_ends_for_length(oai):
    answer = oai.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "json"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "order", "schema": ORDER_SCHEMA},
        },
        max_tokens=10,
    )

    assert answer.choices[0].finish_reason == "length"
    assert len(answer.choices[0].message.content) == 40
    assert answer.usage.completion_tokens == 10


def test_anthropic_forced_tool_is_its_json_mode_streamed_or_not(claude):
    tool = {"name": "record_order", "description": "Record it", "input_schema": ORDER_SCHEMA}
    request = {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 256,
        "tools": [tool],
        "tool_choice": {"type": "tool", "name": "record_order"},
        "messages": [{"role": "user", "content": "Extract the order"}],
    }

    message = claude.messages.create(**request)
    with claude.messages.stream(**request) as stream:
        deltas = [e.delta.type for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()

    [block] = message.content
    assert block.type == "tool_use" and block.name == "record_order"
    jsonschema.validate(block.input, ORDER_SCHEMA)
    assert message.stop_reason == "tool_use"
    assert set(deltas) == {"input_json_delta"}
    assert final.content[0].input == block.input


def test_gemini_response_schema_and_response_json_schema(sim):
    openapi_schema = {
        "type": "OBJECT",
        "properties": {
            "title": {"type": "STRING"},
            "ratings": {"type": "ARRAY", "items": {"type": "INTEGER"}, "minItems": 2},
            "genre": {"type": "STRING", "format": "enum", "enum": ["drama", "comedy"]},
            "sequel": {"type": "STRING", "nullable": True},
        },
        "required": ["title", "ratings", "genre", "sequel"],
        "propertyOrdering": ["title", "ratings", "genre", "sequel"],
    }
    prompt = {"contents": [{"role": "user", "parts": [{"text": "Describe a film"}]}]}

    with_schema = _gemini(
        sim,
        "gemini-2.5-flash",
        "generateContent",
        {
            **prompt,
            "generationConfig": {
                "responseMimeType": "application/json",
                "responseSchema": openapi_schema,
            },
        },
    ).json()
    with_json_schema = _gemini(
        sim,
        "gemini-2.5-flash",
        "streamGenerateContent",
        {
            **prompt,
            "generationConfig": {
                "responseMimeType": "application/json",
                "responseJsonSchema": ORDER_SCHEMA,
            },
        },
        query="?alt=sse",
    )
    both = _gemini(
        sim,
        "gemini-2.5-flash",
        "generateContent",
        {
            **prompt,
            "generationConfig": {
                "responseMimeType": "application/json",
                "responseSchema": openapi_schema,
                "responseJsonSchema": ORDER_SCHEMA,
            },
        },
    )

    value = json.loads(with_schema["candidates"][0]["content"]["parts"][0]["text"])
    assert list(value) == ["title", "ratings", "genre", "sequel"]
    assert value["genre"] == "drama" and len(value["ratings"]) == 2
    streamed = "".join(
        r["candidates"][0]["content"]["parts"][0]["text"] for r in _sse_json(with_json_schema.text)
    )
    jsonschema.validate(json.loads(streamed), ORDER_SCHEMA)
    assert both.status_code == 400


# --- n > 1 and stop sequences ---------------------------------------------------------------


def test_openai_n_gives_n_choices_streamed_per_index(oai):
    answer = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Hello"}],
        n=3,
        max_tokens=5,
    )
    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Hello"}],
            n=3,
            max_tokens=5,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    texts = [c.message.content for c in answer.choices]
    assert [c.index for c in answer.choices] == [0, 1, 2]
    assert len(set(texts)) == 3
    assert answer.usage.completion_tokens == 15
    streamed = {0: "", 1: "", 2: ""}
    finished = {}
    for chunk in chunks:
        for choice in chunk.choices:
            streamed[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished[choice.index] = choice.finish_reason
    assert [streamed[i] for i in range(3)] == texts
    assert finished == {0: "stop", 1: "stop", 2: "stop"}
    assert chunks[-1].usage.completion_tokens == 15
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], n=0
        )
    assert caught.value.body["param"] == "n"


def test_stop_sequences_in_every_format(oai, claude, sim):
    # the simulated text is "lorem ipsum dolor sit amet ..."
    openai_answer = oai.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Hi"}], stop=["sit", "dolor"]
    )
    claude_answer = claude.messages.create(
        model="claude-sonnet-4-20250514",
        max_tokens=16,
        stop_sequences=["amet"],
        messages=[{"role": "user", "content": "Hi"}],
    )
    with claude.messages.stream(
        model="claude-sonnet-4-20250514",
        max_tokens=16,
        stop_sequences=["amet"],
        messages=[{"role": "user", "content": "Hi"}],
    ) as stream:
        claude_streamed = stream.get_final_message()
    gemini_answer = _gemini(
        sim,
        "gemini-2.5-flash",
        "generateContent",
        {
            "contents": [{"parts": [{"text": "Hi"}]}],
            "generationConfig": {"stopSequences": ["psum"]},
        },
    ).json()

    assert openai_answer.choices[0].message.content == "lorem ipsum "
    assert openai_answer.choices[0].finish_reason == "stop"
    assert openai_answer.usage.completion_tokens == 3  # "lorem", " ipsum", " "
    assert claude_answer.content[0].text == "lorem ipsum dolor sit "
    assert claude_answer.stop_reason == "stop_sequence"
    assert claude_answer.stop_sequence == "amet"
    assert claude_streamed.stop_reason == "stop_sequence"
    assert claude_streamed.stop_sequence == "amet"
    assert claude_streamed.content[0].text == claude_answer.content[0].text
    candidate = gemini_answer["candidates"][0]
    assert candidate["content"]["parts"][0]["text"] == "lorem i"
    assert candidate["finishReason"] == "STOP"
    assert gemini_answer["usageMetadata"]["candidatesTokenCount"] == 2


# --- usage details: cached and reasoning tokens --------------------------------------------


def test_openai_repeated_long_prefix_counts_as_cached(oai):
    def call(suffix):
        return oai.chat.completions.create(
            model="gpt-4o",
            messages=[
                {"role": "system", "content": LONG_PROMPT},
                {"role": "user", "content": suffix},
            ],
        ).usage

    first, second, other_model = call("one"), call("two"), None
    other_model = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": LONG_PROMPT}, {"role": "user", "content": "x"}],
    ).usage

    assert first.prompt_tokens_details.cached_tokens == 0
    # 5,403 characters: 128-token steps of 512 characters, the 10th is the longest boundary
    assert second.prompt_tokens_details.cached_tokens == 1280
    assert second.prompt_tokens == math.ceil((len(LONG_PROMPT) + 3) / 4)
    assert other_model.prompt_tokens_details.cached_tokens == 0


def test_openai_reasoning_models_report_reasoning_tokens(oai):
    def usage(**kwargs):
        answer = oai.chat.completions.create(
            messages=[{"role": "user", "content": "Think"}], **kwargs
        )
        return answer, answer.usage

    _, default = usage(model="o4-mini")
    _, low = usage(model="gpt-5", reasoning_effort="low")
    cut, cut_usage = usage(model="o4-mini", reasoning_effort="high", max_completion_tokens=100)
    _, plain = usage(model="gpt-4o")

    assert default.completion_tokens_details.reasoning_tokens == 512
    assert default.completion_tokens == 512 + 16
    assert low.completion_tokens_details.reasoning_tokens == 128
    assert cut_usage.completion_tokens_details.reasoning_tokens == 100
    assert cut_usage.completion_tokens == 100
    assert cut.choices[0].message.content == ""
    assert cut.choices[0].finish_reason == "length"
    assert plain.completion_tokens_details.reasoning_tokens == 0


def test_anthropic_cache_breakpoints_write_then_read(claude):
    def call(question):
        return claude.messages.create(
            model="claude-sonnet-4-20250514",
            max_tokens=8,
            system=[{"type": "text", "text": LONG_PROMPT, "cache_control": {"type": "ephemeral"}}],
            messages=[{"role": "user", "content": question}],
        ).usage

    first, second = call("one?"), call("two?")
    counted = claude.messages.count_tokens(
        model="claude-sonnet-4-20250514",
        system=[{"type": "text", "text": LONG_PROMPT, "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "one?"}],
    )
    short = claude.messages.create(
        model="claude-sonnet-4-20250514",
        max_tokens=8,
        system=[{"type": "text", "text": "short", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "hi"}],
    ).usage

    prefix = math.ceil(len(LONG_PROMPT) / 4)
    assert (first.cache_creation_input_tokens, first.cache_read_input_tokens) == (prefix, 0)
    assert (second.cache_creation_input_tokens, second.cache_read_input_tokens) == (0, prefix)
    assert second.input_tokens == math.ceil((len(LONG_PROMPT) + 4) / 4) - prefix
    total = first.input_tokens + first.cache_creation_input_tokens
    assert counted.input_tokens == total
    assert (short.cache_creation_input_tokens, short.cache_read_input_tokens) == (0, 0)
    assert first.cache_creation.ephemeral_5m_input_tokens == prefix
    assert first.cache_creation.ephemeral_1h_input_tokens == 0


def test_anthropic_one_hour_cache_and_the_breakpoint_limit(claude):
    marked = {"type": "ephemeral", "ttl": "1h"}
    usage = claude.messages.create(
        model="claude-3-5-haiku-20241022",
        max_tokens=8,
        system=[
            {"type": "text", "text": LONG_PROMPT, "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": LONG_PROMPT, "cache_control": marked},
        ],
        messages=[{"role": "user", "content": "hi"}],
    ).usage
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.create(
            model="claude-sonnet-4-20250514",
            max_tokens=8,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}
                    ]
                    * 5,
                }
            ],
        )

    # Haiku caches from 2,048 tokens: only the second breakpoint (2 x 1,350 tokens) counts
    both = math.ceil(2 * len(LONG_PROMPT) / 4)
    assert usage.cache_creation_input_tokens == both
    assert usage.cache_creation.ephemeral_1h_input_tokens == both
    assert usage.cache_creation.ephemeral_5m_input_tokens == 0


def test_anthropic_count_tokens_matches_messages_usage(claude):
    request = {
        "model": "claude-sonnet-4-20250514",
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "What is 2 + 2?"}]},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "And 3 + 3?"},
        ],
    }

    counted = claude.messages.count_tokens(**request)
    usage = claude.messages.create(max_tokens=4, **request).usage

    assert counted.input_tokens == usage.input_tokens == math.ceil((14 + 14 + 1 + 10) / 4)


def test_gemini_thinking_and_implicit_cache_in_usage_metadata(sim):
    def usage(model, config=None, text="Think about it"):
        body = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
        if config:
            body["generationConfig"] = config
        response = _gemini(sim, model, "generateContent", body)
        return response.status_code, response.json().get("usageMetadata")

    _, pro = usage("gemini-2.5-pro")
    _, budgeted = usage("gemini-2.5-pro", {"thinkingConfig": {"thinkingBudget": 200}})
    _, dynamic = usage("gemini-2.5-flash", {"thinkingConfig": {"thinkingBudget": -1}})
    _, flash = usage("gemini-2.5-flash")
    _, old = usage("gemini-2.0-flash")
    status, _ = usage("gemini-2.5-pro", {"thinkingConfig": {"thinkingBudget": 0}})
    _, first = usage("gemini-2.5-flash", text=LONG_PROMPT)
    _, second = usage("gemini-2.5-flash", text=LONG_PROMPT + " again")
    counted = _gemini(
        sim, "gemini-2.5-pro", "countTokens", {"contents": [{"parts": [{"text": "Think"}]}]}
    ).json()

    assert pro["thoughtsTokenCount"] == 1024
    assert pro["totalTokenCount"] == pro["promptTokenCount"] + pro["candidatesTokenCount"] + 1024
    assert budgeted["thoughtsTokenCount"] == 200
    assert dynamic["thoughtsTokenCount"] == 512
    assert "thoughtsTokenCount" not in flash and "thoughtsTokenCount" not in old
    assert status == 400
    assert "cachedContentTokenCount" not in first
    assert second["cachedContentTokenCount"] == 1280
    assert counted["totalTokens"] == 2


def test_anthropic_extended_thinking_bills_the_budget_as_output(claude):
    request = {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1500},
        "messages": [{"role": "user", "content": "Think first"}],
    }

    message = claude.messages.create(**request)
    with claude.messages.stream(**request) as stream:
        kinds = [e.delta.type for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.create(**{**request, "max_tokens": 1500})

    thinking, text = message.content
    assert thinking.type == "thinking" and thinking.thinking and thinking.signature
    assert text.type == "text" and len(text.text.split()) == 2048 - 1500
    assert message.usage.output_tokens == 2048
    assert kinds[:2] == ["thinking_delta", "signature_delta"]
    assert set(kinds[2:]) == {"text_delta"}
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.usage.output_tokens == 2048


def test_gemini_candidate_count_gives_that_many_candidates(sim):
    body = {
        "contents": [{"parts": [{"text": "Hello"}]}],
        "generationConfig": {"candidateCount": 2, "maxOutputTokens": 10},
    }

    answer = _gemini(sim, "gemini-2.5-flash", "generateContent", body).json()
    streamed = _gemini(sim, "gemini-2.5-flash", "streamGenerateContent", body, query="?alt=sse")
    refused = _gemini(
        sim,
        "gemini-2.5-flash",
        "generateContent",
        {**body, "generationConfig": {"candidateCount": 9}},
    )

    texts = [c["content"]["parts"][0]["text"] for c in answer["candidates"]]
    assert [c["index"] for c in answer["candidates"]] == [0, 1]
    assert len(set(texts)) == 2
    assert answer["usageMetadata"]["candidatesTokenCount"] == 20
    joined = {0: "", 1: ""}
    events = _sse_json(streamed.text)
    for event in events:
        for candidate in event["candidates"]:
            joined[candidate["index"]] += candidate["content"]["parts"][0]["text"]
    assert [joined[0], joined[1]] == texts
    assert events[-1]["usageMetadata"]["candidatesTokenCount"] == 20
    assert refused.status_code == 400


def test_json_object_answers_fit_the_max_tokens(oai, sim):
    answer = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Answer in JSON"}],
        response_format={"type": "json_object"},
        max_tokens=12,
    )
    gemini = _gemini(
        sim,
        "gemini-2.5-flash",
        "generateContent",
        {
            "contents": [{"parts": [{"text": "Answer in JSON"}]}],
            "generationConfig": {"responseMimeType": "application/json", "maxOutputTokens": 12},
        },
    ).json()

    content = answer.choices[0].message.content
    assert set(json.loads(content)) == {"answer"}
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage.completion_tokens == math.ceil(len(content) / 4) <= 12
    text = gemini["candidates"][0]["content"]["parts"][0]["text"]
    assert set(json.loads(text)) == {"answer"}
    assert gemini["candidates"][0]["finishReason"] == "STOP"
