"""The gateway end to end: the official OpenAI SDK -> live Auterity -> provider simulator.

Every test talks over real HTTP to a live server and to the simulator; nothing is mocked.
"""

import json
import threading
import time

import openai
import pytest
import requests

from accounts.services import api_key_create
from analytics.log_writer import request_log_writer
from analytics.models import RequestLog
from gateway import bridge
from gateway import service as gateway
from routing.decisions import provider_stats
from tests.streaming_client import read_events_then_leave

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "Say hello to the gateway, please."}]


@pytest.fixture
def plain_key(django_user_model, demo_catalogue):
    """A key without the ai:execute scope."""
    user = django_user_model.objects.create_user("viewer", password="pw-123456")
    return api_key_create(user=user, name="viewer-key", scopes=["routing:view"])[1]


@pytest.fixture(params=["background", "before_response"])
def log_mode(request, settings):
    """Both ways of writing request-log rows (REQUEST_LOG_COMMIT_BEFORE_RESPONSE)."""
    settings.REQUEST_LOG_COMMIT_BEFORE_RESPONSE = request.param == "before_response"
    return request.param


def sdk(live_server, key, **kwargs):
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0, **kwargs)


def only_row():
    rows = list(RequestLog.objects.all())
    assert len(rows) == 1, [(r.request_id, r.status) for r in rows]
    return rows[0]


def test_sdk_chat_completion_is_routed_recorded_and_labelled(live_server, routed_key):
    # when
    raw = sdk(live_server, routed_key).chat.completions.with_raw_response.create(
        model="claude-haiku-4-5", messages=HELLO, max_tokens=12
    )
    completion = raw.parse()
    # then
    assert completion.choices[0].message.content
    assert completion.usage.completion_tokens == 12
    assert raw.headers["X-Auterity-Provider"] == "anthropic"
    assert raw.headers["X-Auterity-Model"] == "claude-haiku-4-5"
    assert raw.headers["X-Auterity-Attempts"] == "1"
    row = only_row()
    assert row.request_id == raw.headers["X-Request-ID"]
    assert row.status == "success"
    assert row.provider_id == "anthropic"
    assert row.prompt_tokens == completion.usage.prompt_tokens
    # list prices of claude-haiku-4-5: $1 / $5 per million tokens
    expected = completion.usage.prompt_tokens * 1e-6 + 12 * 5e-6
    assert float(row.cost) == pytest.approx(expected)
    assert float(raw.headers["X-Auterity-Cost-USD"]) == pytest.approx(expected)
    assert row.baseline_cost == row.cost  # default route: nothing saved, nothing lost


def test_sdk_stream_ends_with_usage_and_cost_and_one_row(live_server, routed_key):
    stream = sdk(live_server, routed_key).chat.completions.create(
        model="gemini-2.5-flash", messages=HELLO, max_tokens=8, stream=True
    )
    chunks = list(stream)
    # no choices-less chunk unless asked for: naive clients index choices[0]
    assert all(c.choices for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len(text.split()) == 8
    assert chunks[-1].choices[0].finish_reason == "stop"
    usage = chunks[-1].usage
    assert usage.completion_tokens == 8
    assert usage.model_extra["cost"] > 0
    row = only_row()
    assert (row.status, row.stream, row.provider_id) == ("success", True, "google")
    assert row.completion_tokens == 8
    assert float(row.cost) == pytest.approx(usage.model_extra["cost"])


def test_stream_with_include_usage_gets_openais_separate_usage_chunk(live_server, routed_key):
    stream = sdk(live_server, routed_key).chat.completions.create(
        model="gpt-4o-mini",
        messages=HELLO,
        max_tokens=4,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 4
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage.model_extra["cost"] > 0


def test_models_endpoint_lists_the_catalogue(live_server, routed_key):
    ids = {m.id for m in sdk(live_server, routed_key).models.list()}
    assert {"gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro", "deepseek-chat"} <= ids


def test_policy_picks_the_cheapest_equivalent_and_records_savings(
    live_server, routed_key, cost_optimization_everywhere
):
    response = requests.post(
        f"{live_server.url}/api/ai/execute",
        headers={"Authorization": f"Bearer {routed_key}"},
        json={"model": "gpt-4o", "prompt": "Write a haiku about routers.", "max_tokens": 40},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    routing = response.json()["routing"]
    assert routing["policy"]["name"] == "GPT-4o class: cheapest equivalent"
    assert (routing["provider"], routing["model"]) == ("openai", "gpt-4.1")
    assert routing["cost_usd"] < routing["baseline_cost_usd"]
    row = only_row()
    assert row.policy_name == "GPT-4o class: cheapest equivalent"
    assert row.baseline_cost > row.cost
    assert row.flags["cost_optimization"] is True


def test_fallback_when_the_primary_fails(
    live_server, routed_key, sim, cost_optimization_everywhere
):
    # given: OpenAI answers 503 to everything
    sim.set_fault("openai", error_rate=1.0, error_status=503)
    # when
    raw = sdk(live_server, routed_key).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=HELLO, max_tokens=10
    )
    # then: gpt-4.1 at OpenAI failed twice (policy retries 2), Gemini served it
    assert raw.headers["X-Auterity-Provider"] == "google"
    row = only_row()
    assert row.status == "success"
    outcomes = [(a["provider"], a["outcome"]) for a in row.attempts_detail]
    assert outcomes[-1] == ("google", "ok")
    assert ("openai", "upstream_error") in outcomes
    assert row.attempts == len(outcomes) >= 2


def test_all_targets_failing_is_a_recorded_502(live_server, routed_key, sim):
    for name in ("openai", "google", "deepseek"):
        sim.set_fault(name, error_rate=1.0, error_status=500)
    client = sdk(live_server, routed_key)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert info.value.status_code == 502
    assert info.value.response.headers["X-Request-ID"]
    row = only_row()
    assert (row.status, row.http_status, row.error_type) == ("error", 502, "upstream_error")
    assert row.attempts >= 1
    assert row.cost == 0


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ("{not json", 400, None),
        (json.dumps({"model": "gpt-4o"}), 400, "messages"),
        (json.dumps({"model": "gpt-4o", "messages": "hi"}), 400, "messages"),
        (
            json.dumps({"model": "gpt-4o", "messages": HELLO, "temperature": "hot"}),
            400,
            "temperature",
        ),
        (json.dumps({"model": "no-such-model", "messages": HELLO}), 404, "model"),
        (json.dumps([1, 2]), 400, None),
    ],
)
def test_bad_input_gets_an_openai_error_and_writes_nothing(
    live_server, routed_key, body, status, param
):
    response = requests.post(
        f"{live_server.url}/v1/chat/completions",
        data=body,
        headers={"Authorization": f"Bearer {routed_key}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"]
    assert error["param"] == param
    assert not RequestLog.objects.exists()


def test_auth_is_required_and_scoped(live_server, plain_key):
    anonymous = requests.post(f"{live_server.url}/v1/chat/completions", json={}, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.PermissionDeniedError):
        sdk(live_server, plain_key).chat.completions.create(model="gpt-4o", messages=HELLO)
    with pytest.raises(openai.AuthenticationError):
        sdk(live_server, "sk-aut-not-a-real-key").chat.completions.create(
            model="gpt-4o", messages=HELLO
        )
    assert not RequestLog.objects.exists()


def test_one_row_per_request_under_concurrency(live_server, routed_key, log_mode):
    client = sdk(live_server, routed_key)
    ids, errors = [], []

    def call(i):
        try:
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini" if i % 2 else "claude-haiku-4-5",
                messages=HELLO,
                max_tokens=5,
                stream=False,
            )
            ids.append(raw.headers["X-Request-ID"])
        except Exception as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert request_log_writer().flush(10)  # background mode: what the writer still holds
    assert sorted(ids) == sorted(RequestLog.objects.values_list("request_id", flat=True))
    assert len(set(ids)) == 24


def test_client_disconnect_mid_stream_closes_upstream_and_keeps_the_row(
    live_server, routed_key, sim, log_mode
):
    # given: a slow stream (50 ms between events, 200 tokens)
    sim.set_fault("anthropic", chunk_delay_ms=50)
    # when: the client reads the first events and goes away
    read_events_then_leave(live_server.url, routed_key)
    # then: the row appears, cancelled, with the usage seen so far
    deadline = time.monotonic() + 10
    while not RequestLog.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    row = only_row()
    assert row.status == "cancelled"
    assert row.stream is True
    assert 0 < row.completion_tokens < 200
    assert row.prompt_tokens > 0
    # and the upstream stream was closed: its provider slot is free again
    assert provider_stats.view("anthropic").inflight == 0


def test_a_stream_closed_before_its_first_event_still_gets_its_row(routed_key, sim):
    # given: a stream the server never starts sending (the client left at once)
    from accounts.principal import principal_from_api_key
    from providers.adapters.types import ChatRequest

    principal = principal_from_api_key(routed_key)
    request = ChatRequest.from_openai(
        {"model": "gpt-4o-mini", "messages": HELLO, "stream": True, "max_tokens": 50}
    )
    result = bridge.call(
        gateway.chat_completion,
        principal=principal,
        request=request,
        request_id="closed-early",
        headers={},
    )
    # when
    bridge.call(result.stream.aclose)
    bridge.call(result.stream.aclose)  # a second close changes nothing
    # then: one cancelled row, and the provider's slot is free again
    row = only_row()
    assert (row.request_id, row.status, row.stream) == ("closed-early", "cancelled", True)
    assert provider_stats.view(row.provider_id).inflight == 0
