"""Servers that speak OpenAI's chat-completions format: vLLM, Ollama, Together, Groq,
Mistral, OpenRouter, LM Studio...

Base URL rule: if any segment of the base URL's path is an API version (`v1`, `v1beta`,
`v2`...), the base URL already is the API root and `/chat/completions` is appended to it
(`https://api.groq.com/openai/v1`, `https://api.together.xyz/v1`,
`https://generativelanguage.googleapis.com/v1beta/openai`); otherwise `/v1` is added first
(`http://localhost:11434` -> `http://localhost:11434/v1/chat/completions`).

The Authorization header is sent only when an API key is configured. Servers that omit usage
from streams (or from responses) get it estimated; `Usage.estimated` says so.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .openai import OpenAIAdapter
from .options import BOOLEAN

_VERSION_SEGMENT = re.compile(r"^v\d+[a-z0-9]*$")


def api_root(base_url: str) -> str:
    segments = [s for s in urlsplit(base_url).path.split("/") if s]
    if any(_VERSION_SEGMENT.match(s) for s in segments):
        return base_url
    return f"{base_url}/v1"


class OpenAICompatibleAdapter(OpenAIAdapter):
    """`max_tokens` (understood by every such server; `max_completion_tokens` is not) and
    developer messages sent as system messages."""

    provider_type = "openai_compatible"
    label = "OpenAI-compatible server"
    options = {"stream_usage": BOOLEAN}
    price_source = None  # anyone's server: config.price_provider, its id or its base URL
    max_tokens_field = "max_tokens"
    developer_role = False

    def __init__(self, endpoint):
        self._api_root = api_root(endpoint.base_url.rstrip("/"))
        super().__init__(endpoint)

    @property
    def api_root(self) -> str:
        return self._api_root

    def auth_headers(self) -> dict[str, str]:
        if not self.endpoint.api_key:
            return {}
        return {"Authorization": f"Bearer {self.endpoint.api_key}"}
