"""Model prices from the maintained source (genai-prices), operator overrides, and how the API
and the admin show them."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from genai_prices import Usage as SourceUsage
from genai_prices import calc_price

from accounts.models import AuditEvent
from providers.demo import demo_catalogue_install
from providers.models import Provider, ProviderModel
from providers.prices import model_prices_sync
from providers.tasks import sync_prices_task
from routing.offers import offer_pricing

from .factories import ProviderFactory, ProviderModelFactory

pytestmark = pytest.mark.django_db

MODELS = "/api/provider-models/"

# Our provider type -> the genai-prices provider id the oracle prices with.
SOURCE_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "gemini": "google"}

# Usage shapes that exercise every rule: plain, cached reads, cache writes, thinking, and a
# prompt above the 200k long-context threshold.
USAGES = [
    dict(prompt=1_000, completion=300),
    dict(prompt=40_000, completion=900, cached=30_000),
    dict(prompt=9_000, completion=100, cached=2_000, cache_write=5_000),
    dict(prompt=3_000, completion=2_500, reasoning=2_000),
    dict(prompt=250_000, completion=4_000, cached=100_000),
]


@pytest.fixture
def demo_rows():
    demo_catalogue_install("http://127.0.0.1:9")
    return ProviderModel.objects.select_related("provider")


def test_synced_rules_bill_like_the_source_itself(demo_rows):
    """An independent oracle: for every demo model of OpenAI, Anthropic and Google, our stored
    rules price each usage exactly as genai-prices' own calc_price does."""
    checked = 0
    for row in demo_rows.filter(provider__type__in=list(SOURCE_PROVIDER)):
        rules = offer_pricing(row)
        for u in USAGES:
            ours = rules.cost(
                u["prompt"],
                u["completion"],
                u.get("cached", 0),
                u.get("cache_write", 0),
                u.get("reasoning", 0),
            )
            theirs = calc_price(
                SourceUsage(
                    input_tokens=u["prompt"],
                    cache_read_tokens=u.get("cached", 0),
                    cache_write_tokens=u.get("cache_write", 0),
                    output_tokens=u["completion"],
                ),
                row.model,
                provider_id=SOURCE_PROVIDER[row.provider.type],
            ).total_price
            assert ours == pytest.approx(float(theirs), rel=1e-9), (row, u)
            checked += 1
    assert checked >= 12 * len(USAGES)


def test_sync_brings_tiers_and_cached_prices(demo_rows):
    pro = demo_rows.get(model="gemini-2.5-pro")
    sonnet = demo_rows.get(model="claude-sonnet-4-5")

    assert pro.cached_input_price == Decimal("0.000000125")
    assert pro.price_tiers == [
        {"above_input_tokens": 200000, "input": 2.5e-06, "output": 1.5e-05, "cached_input": 2.5e-07}
    ]
    assert pro.price_source.startswith("genai-prices ")
    assert pro.price_source.endswith(": google/gemini-2.5-pro")
    assert sonnet.cache_write_price == Decimal("0.00000375")
    assert sonnet.price_tiers[0]["above_input_tokens"] == 200000
    assert sonnet.price_tiers[0]["output"] == pytest.approx(22.5e-6)


def test_sync_is_idempotent(demo_rows):
    events = AuditEvent.objects.count()

    run = model_prices_sync()

    assert run.updated == []
    assert len(run.unchanged) == demo_rows.count()
    assert AuditEvent.objects.count() == events


def test_sync_corrects_a_drifted_price_and_audits_it(demo_rows):
    ProviderModel.objects.filter(model="gpt-4o").update(input_price=Decimal("0.000009"))

    run = model_prices_sync()

    assert run.updated == ["openai/gpt-4o"]
    assert ProviderModel.objects.get(model="gpt-4o").input_price == Decimal("0.0000025")
    event = AuditEvent.objects.filter(object_repr__contains="gpt-4o").latest("id")
    assert event.actor_label == "price sync"


def test_operator_override_is_kept_until_cleared(demo_rows, admin_client_api):
    row = demo_rows.get(model="gpt-4o")

    # An operator negotiated a discount: writing a price marks the row overridden.
    response = admin_client_api.patch(
        f"{MODELS}{row.pk}/", {"input_price": "0.000002"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["prices_overridden"] is True
    assert response.json()["price_source"] == ""

    run = model_prices_sync()
    assert "openai/gpt-4o" in run.overridden
    assert ProviderModel.objects.get(pk=row.pk).input_price == Decimal("0.000002")

    # Clearing the flag hands the row back to the sync.
    response = admin_client_api.patch(
        f"{MODELS}{row.pk}/", {"prices_overridden": False}, format="json"
    )
    assert response.json()["prices_overridden"] is False
    model_prices_sync()
    assert ProviderModel.objects.get(pk=row.pk).input_price == Decimal("0.0000025")


def test_api_shows_the_rules_and_rejects_bad_tiers(demo_rows, admin_client_api):
    row = demo_rows.get(model="gemini-2.5-pro")

    body = admin_client_api.get(f"{MODELS}{row.pk}/").json()

    assert body["cached_input_price"] == "0.000000125000"
    assert body["reasoning_price"] is None
    assert body["price_tiers"][0]["above_input_tokens"] == 200000
    assert body["expected_thinking_tokens"] == 1024
    response = admin_client_api.patch(
        f"{MODELS}{row.pk}/",
        {"price_tiers": [{"above_input_tokens": 0, "input": 1e-6}]},
        format="json",
    )
    assert response.status_code == 400
    assert "price_tiers[0].above_input_tokens" in str(response.json()["price_tiers"])
    assert ProviderModel.objects.get(pk=row.pk).price_tiers == body["price_tiers"]


def test_models_the_source_does_not_know_keep_their_prices():
    row = ProviderModelFactory(model="in-house-llama", input_price=Decimal("0.000001"))

    run = model_prices_sync()

    assert run.not_found == [f"{row.provider_id}/in-house-llama"]
    assert ProviderModel.objects.get(pk=row.pk).input_price == Decimal("0.000001")


def test_openai_compatible_providers_name_their_price_source():
    provider = ProviderFactory(
        id="my-gateway",
        type="openai_compatible",
        config={"base_url": "http://127.0.0.1:9/x", "price_provider": "groq"},
    )
    ProviderModelFactory(provider=provider, model="llama-3.3-70b-versatile")

    model_prices_sync()

    row = ProviderModel.objects.get(provider=provider)
    assert row.price_source.endswith(": groq/llama-3.3-70b-versatile")
    assert row.input_price == Decimal("0.00000059")


def test_cost_per_token_is_the_blended_price_of_the_models(demo_rows):
    anthropic = Provider.objects.get(id="anthropic")
    models = ProviderModel.objects.filter(provider=anthropic, enabled=True)
    expected = sum((3 * m.input_price + m.output_price) / 4 for m in models) / len(models)

    assert anthropic.cost_per_token == pytest.approx(expected)

    models.update(enabled=False)
    ProviderModel.objects.filter(provider=anthropic).first().save()
    assert Provider.objects.get(id="anthropic").cost_per_token is None


def test_command_and_task(demo_rows):
    ProviderModel.objects.filter(model="gpt-4o-mini").update(output_price=Decimal("0.000001"))
    out = StringIO()
    call_command("sync_prices", stdout=out)
    text = out.getvalue()

    assert "updated     openai/gpt-4o-mini: output_price $1/1M -> $0.6/1M" in text
    assert "1 updated" in text
    assert sync_prices_task() == {
        "source": text.splitlines()[0].removeprefix("source: "),
        "updated": [],
        "unchanged": demo_rows.count(),
        "overridden": [],
        "not_found": [],
    }


def test_admin_shows_and_takes_prices_per_million(demo_rows, admin_client):
    row = demo_rows.get(model="claude-sonnet-4-5")
    url = reverse("admin:providers_providermodel_change", args=[row.pk])

    page = admin_client.get(url).content.decode()
    assert 'name="input_price" value="3"' in page
    assert 'name="cache_write_price" value="3.75"' in page
    assert "above 200,000 input tokens: input $6" in page

    form = {
        "provider": row.provider_id,
        "model": row.model,
        "upstream_model": row.upstream_model,
        "is_default": "on",
        "enabled": "on",
        "input_price": "2.7",
        "cached_input_price": "0.3",
        "cache_write_price": "3.75",
        "output_price": "15",
        "reasoning_price": "",
        "price_tiers": "[]",
        "expected_thinking_tokens": "0",
        "context_window": row.context_window,
        "max_output_tokens": row.max_output_tokens,
        "supports_streaming": "on",
        "supports_tools": "on",
    }
    response = admin_client.post(url, form)

    assert response.status_code == 302, response.content.decode()[:2000]
    row.refresh_from_db()
    assert row.input_price == Decimal("0.0000027")
    assert row.price_tiers == []
    assert row.prices_overridden is True
    assert admin_client.get(reverse("admin:providers_providermodel_changelist")).status_code == 200
