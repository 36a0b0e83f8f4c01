"""The transport under the adapters: what goes on the wire, and the proxy path."""

from providers.adapters import ProviderEndpoint, adapter_for

from .payloads import chat_request
from .recording_server import Reply
from .test_openai import COMPLETION


def test_the_wire_carries_the_session_defaults_and_no_cookies(stub, stub_adapter):
    stub.reply(Reply(body=COMPLETION, headers={"Set-Cookie": "tenant=a"}), Reply(body=COMPLETION))
    adapter = stub_adapter("openai")

    adapter.chat(chat_request(), "gpt-4o")
    adapter.chat(chat_request(), "gpt-4o")

    first, second = stub.requests
    assert first.headers["user-agent"] == "auterity-router/0.1"
    assert "gzip" in first.headers["accept-encoding"]
    assert first.headers["content-type"] == "application/json"
    assert "cookie" not in second.headers  # one tenant's cookie never reaches the next call


def test_an_environment_proxy_carries_the_calls(stub, monkeypatch):
    # given a proxy for plain HTTP in the environment (the stub plays the proxy)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", stub.base_url)
    monkeypatch.setenv("HTTP_PROXY", stub.base_url)
    stub.reply(Reply(body=COMPLETION, headers={"Set-Cookie": "tenant=a"}), Reply(body=COMPLETION))
    endpoint = ProviderEndpoint("behind-proxy", "openai", "http://upstream.invalid:8080", "k")

    # when
    result = adapter_for(endpoint).chat(chat_request(), "gpt-4o")
    adapter_for(endpoint).chat(chat_request(), "gpt-4o")

    # then the request went to the proxy, addressed to the real upstream
    assert result.response["choices"][0]["message"]["content"]
    seen, second = stub.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["host"] == "upstream.invalid:8080"
    assert seen.headers["authorization"] == "Bearer k"
    # this path goes through the shared Session: its cookie jar must keep nothing either
    assert "cookie" not in second.headers
