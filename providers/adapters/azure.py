"""Azure OpenAI: OpenAI's format on per-deployment URLs.

`POST {base_url}/openai/deployments/{deployment}/chat/completions?api-version=...` with an
`api-key` header. The deployment is `options.deployments[model]`, else the model name
itself (operators often name deployments after models).
"""

from __future__ import annotations

from urllib.parse import quote

from .openai import OpenAIAdapter
from .options import BOOLEAN, DEPLOYMENTS, STRING, Option
from .types import ChatRequest, EmbeddingsRequest

DEFAULT_API_VERSION = "2024-10-21"  # latest GA data-plane version when this was written


class AzureOpenAIAdapter(OpenAIAdapter):
    """Differences from OpenAI: `max_tokens` rather than `max_completion_tokens` (every
    Azure api-version accepts it), developer messages sent as system messages (Azure only
    takes the developer role on reasoning models with recent api-versions)."""

    provider_type = "azure_openai"
    label = "Azure OpenAI"
    options = {
        "api_version": Option("a string", STRING.check, required=True),
        "deployments": DEPLOYMENTS,
        "stream_usage": BOOLEAN,
    }
    price_source = "azure"  # genai-prices falls back to OpenAI's prices for Azure
    max_tokens_field = "max_tokens"
    developer_role = False

    def __init__(self, endpoint):
        super().__init__(endpoint)
        options = endpoint.options
        self.api_version = options.get("api_version") or DEFAULT_API_VERSION
        self.deployments = dict(options.get("deployments") or {})
        self._query = f"api-version={quote(self.api_version, safe='')}"

    def auth_headers(self) -> dict[str, str]:
        return {"api-key": self.endpoint.api_key}

    def sends_stream_usage(self) -> bool:
        # stream_options arrived with api-version 2024-09-01-preview (GA in 2024-10-21);
        # older versions answer 400. "v1"/"latest"/"preview" are current by definition.
        version = self.endpoint.options.get("api_version") or DEFAULT_API_VERSION
        return not version[:4].isdigit() or version[:10] >= "2024-09-01"

    def deployment(self, model: str) -> str:
        return self.deployments.get(model, model)

    def chat_url(self, model: str, *, stream: bool) -> str:
        deployment = quote(self.deployment(model), safe="")
        return f"{self.base_url}/openai/deployments/{deployment}/chat/completions?{self._query}"

    def models_url(self) -> str:
        # Models - List of the data-plane API: cheap, authenticated, no deployment needed.
        return f"{self.base_url}/openai/models?{self._query}"

    def build_body(self, request: ChatRequest, model: str, *, stream: bool) -> dict:
        return super().build_body(request, self.deployment(model), stream=stream)

    def embeddings_url(self, model: str) -> str:
        deployment = quote(self.deployment(model), safe="")
        return f"{self.base_url}/openai/deployments/{deployment}/embeddings?{self._query}"

    def build_embeddings_body(self, request: EmbeddingsRequest, model: str) -> dict:
        return super().build_embeddings_body(request, self.deployment(model))
