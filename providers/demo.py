"""Demo catalogue: providers pointing at the simulator, with public list prices.

The models, their context windows and capabilities come from shared/data/model_prices.json
(late 2026), copied here into `demo_prices.json` so the project does not depend on files
outside its tree; Gemini's embedding model, which that file lacks, carries Google's list price
($0.15 per 1M input tokens). Those flat prices are a new row's first prices; the full price
rules (cached input, cache writes, long-context tiers) then come from the maintained price
source, as `sync_prices` applies them (providers/prices.py), so the demo bills like
production does.

Capabilities are what each adapter serves: JSON mode on every chat model (OpenAI formats
natively, Anthropic through a forced tool, Gemini through responseMimeType/responseSchema),
embeddings on the embedding models of providers whose adapter has an embeddings API.
"""

import json
from pathlib import Path

from django.db import transaction

from .models import Provider, ProviderModel
from .prices import model_prices_sync

PRICES_FILE = Path(__file__).with_name("demo_prices.json")

# provider id -> (name, type, litellm_provider key in the price file, capacity)
DEMO_PROVIDERS = {
    "openai": ("OpenAI", "openai", "openai", 200),
    "anthropic": ("Anthropic", "anthropic", "anthropic", 100),
    "google": ("Google Gemini", "gemini", "gemini", 100),
    "together": (
        "Together AI (OpenAI-compatible)",
        "openai_compatible",
        "together_ai",
        50,
    ),
    "mistral": ("Mistral (OpenAI-compatible)", "openai_compatible", "mistral", 50),
    "deepseek": ("DeepSeek (OpenAI-compatible)", "openai_compatible", "deepseek", 50),
}


# Models that think before they answer by default, and the thinking tokens the cost guard
# assumes per call until the request log has measured them (docs/providers.md#pricing): an
# assumption, deliberately not small, since thinking is billed as output.
THINKING_MODELS = frozenset(
    {"gemini-2.5-pro", "gemini-2.5-flash", "gpt-5", "gpt-5-mini", "gpt-5-nano", "o3-mini"}
)
DEMO_THINKING_TOKENS = 1024


def public_model_name(key: str, litellm_provider: str) -> str:
    """'gemini/gemini-2.5-flash' -> 'gemini-2.5-flash'; OpenAI and Anthropic keys are bare."""
    prefix = f"{litellm_provider}/"
    return key[len(prefix) :] if key.startswith(prefix) else key


def load_prices() -> dict:
    return json.loads(PRICES_FILE.read_text())


@transaction.atomic
def demo_catalogue_install(simulator_url: str) -> list[Provider]:
    """Create or update the demo providers and their chat and embedding models, then price
    them from the price source; idempotent (prices an operator overrode are kept)."""
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
            catalogue = {
                "upstream_model": model,
                "context_window": spec.get("max_input_tokens") or 131072,
                "max_output_tokens": spec.get("max_output_tokens"),
                "supports_streaming": chat,
                "supports_tools": bool(spec.get("supports_function_calling")),
                "supports_vision": bool(spec.get("supports_vision")),
                "supports_json_mode": chat,
                "supports_embeddings": not chat,
                "is_default": True,
            }
            ProviderModel.objects.update_or_create(
                provider=provider,
                model=model,
                defaults=catalogue,
                # Prices only on creation: afterwards they belong to sync_prices or an operator.
                create_defaults={
                    **catalogue,
                    "input_price": spec["input_cost_per_token"],
                    "output_price": spec["output_cost_per_token"],
                    "cached_input_price": spec.get("cache_read_input_token_cost"),
                    "expected_thinking_tokens": DEMO_THINKING_TOKENS
                    if model in THINKING_MODELS
                    else 0,
                },
            )
    model_prices_sync()
    return providers
