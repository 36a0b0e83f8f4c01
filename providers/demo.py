"""Demo catalogue: providers pointing at the simulator, with public list prices.

Prices come from shared/data/model_prices.json (USD per token, late 2026), copied here into
`demo_prices.json` so the project does not depend on files outside its tree; Gemini's
embedding model, which that file lacks, carries Google's list price ($0.15 per 1M input tokens).

Capabilities are what each adapter serves: JSON mode on every chat model (OpenAI formats
natively, Anthropic through a forced tool, Gemini through responseMimeType/responseSchema),
embeddings on the embedding models of providers whose adapter has an embeddings API.
"""

import json
from pathlib import Path

from django.db import transaction

from .choices import ProviderType
from .models import Provider, ProviderModel

PRICES_FILE = Path(__file__).with_name("demo_prices.json")

# provider id -> (name, type, litellm_provider key in the price file, capacity)
DEMO_PROVIDERS = {
    "openai": ("OpenAI", ProviderType.OPENAI, "openai", 200),
    "anthropic": ("Anthropic", ProviderType.ANTHROPIC, "anthropic", 100),
    "google": ("Google Gemini", ProviderType.GEMINI, "gemini", 100),
    "together": (
        "Together AI (OpenAI-compatible)",
        ProviderType.OPENAI_COMPATIBLE,
        "together_ai",
        50,
    ),
    "mistral": ("Mistral (OpenAI-compatible)", ProviderType.OPENAI_COMPATIBLE, "mistral", 50),
    "deepseek": ("DeepSeek (OpenAI-compatible)", ProviderType.OPENAI_COMPATIBLE, "deepseek", 50),
}


def public_model_name(key: str, litellm_provider: str) -> str:
    """'gemini/gemini-2.5-flash' -> 'gemini-2.5-flash'; OpenAI and Anthropic keys are bare."""
    prefix = f"{litellm_provider}/"
    return key[len(prefix) :] if key.startswith(prefix) else key


def load_prices() -> dict:
    return json.loads(PRICES_FILE.read_text())


@transaction.atomic
def demo_catalogue_install(simulator_url: str) -> list[Provider]:
    """Create or update the demo providers and their chat models; idempotent."""
    prices = load_prices()
    providers = []
    for provider_id, (name, ptype, source, capacity) in DEMO_PROVIDERS.items():
        provider, _ = Provider.objects.update_or_create(
            id=provider_id,
            defaults={
                "name": name,
                "type": ptype,
                "capacity": capacity,
                "config": {
                    "base_url": f"{simulator_url.rstrip('/')}/{provider_id}",
                    "timeout": 60,
                    "connect_timeout": 5,
                },
            },
        )
        if not provider.api_key:
            provider.api_key = f"demo-{provider_id}-key"  # the simulator accepts any key
            provider.save(update_fields=["api_key"])
        providers.append(provider)
        for key, spec in prices.items():
            mode = spec.get("mode")
            if spec.get("litellm_provider") != source or mode not in ("chat", "embedding"):
                continue
            chat = mode == "chat"
            model = public_model_name(key, source)
            ProviderModel.objects.update_or_create(
                provider=provider,
                model=model,
                defaults={
                    "upstream_model": model,
                    "input_price": spec["input_cost_per_token"],
                    "output_price": spec["output_cost_per_token"],
                    "context_window": spec.get("max_input_tokens") or 131072,
                    "max_output_tokens": spec.get("max_output_tokens"),
                    "supports_streaming": chat,
                    "supports_tools": bool(spec.get("supports_function_calling")),
                    "supports_vision": bool(spec.get("supports_vision")),
                    "supports_json_mode": chat,
                    "supports_embeddings": not chat,
                    "is_default": True,
                },
            )
    return providers
