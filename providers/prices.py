"""Model prices from a maintained source, and the rules for who may change them.

The source is the genai-prices data set (Pydantic's, MIT): per-model list prices for OpenAI,
Azure, Anthropic, Google and dozens more, with cached-input, cache-write and long-context
tiers, shipped inside the Python package, so a sync needs no network. The package is pinned in
requirements.txt; upgrading it (a reviewed dependency bump) is how new prices arrive, and
`sync_prices` (the command, and `sync_prices_task` under beat) applies them to the catalogue.

Operator overrides: a row whose `prices_overridden` is set is never touched by a sync. Editing
any price in the admin or the API sets it (`prices_edited`), unless the same edit sets
`prices_overridden` itself; clearing it hands the row back to the next sync.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from importlib.metadata import version

from django.db import transaction
from django.db.models import Avg, DecimalField, F
from django.utils import timezone
from genai_prices import data_snapshot
from genai_prices.types import ModelInfo, ModelPrice, TieredPrices

from accounts.audit import audit_actor

from .adapters import ADAPTER_CLASSES
from .models import Provider, ProviderModel
from .pricing import PER_MILLION, TIER_THRESHOLD

logger = logging.getLogger(__name__)

SOURCE_PACKAGE = "genai-prices"

# The fields that make up a model's price; editing one by hand marks the row overridden.
PRICE_FIELDS = (
    "input_price",
    "output_price",
    "cached_input_price",
    "cache_write_price",
    "reasoning_price",
    "price_tiers",
)

# genai-prices price keys -> our rates.
_RATE_KEYS = {
    "input": "input_mtok",
    "cached_input": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
    "output": "output_mtok",
    "reasoning": "output_reasoning_mtok",
}
_ROW_FIELD = {
    "input": "input_price",
    "cached_input": "cached_input_price",
    "cache_write": "cache_write_price",
    "output": "output_price",
    "reasoning": "reasoning_price",
}
_PER_TOKEN = Decimal(PER_MILLION)
_DECIMAL_PLACES = Decimal("1e-12")  # the price columns' precision


def source_version() -> str:
    return f"{SOURCE_PACKAGE} {version(SOURCE_PACKAGE)}"


@dataclass
class PriceSyncRun:
    """What a sync did: rows changed, rows already current, rows kept because an operator set
    them, rows the source does not price (kept as they were)."""

    source: str
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    overridden: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    changes: dict[str, dict] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "updated": self.updated,
            "unchanged": len(self.unchanged),
            "overridden": self.overridden,
            "not_found": self.not_found,
        }


def _source_provider_ids(provider: Provider, snapshot) -> list[str]:
    explicit = (provider.config or {}).get("price_provider")
    if explicit:
        return [explicit]
    # Each adapter names the genai-prices provider whose list prices apply to its type;
    # OpenAI-compatible servers are anyone's: the provider's own id when genai-prices knows it
    # (together, mistral, deepseek, groq...), else its base URL.
    adapter = ADAPTER_CLASSES.get(provider.type)
    if adapter is not None and adapter.price_source:
        return [adapter.price_source]
    known = {p.id for p in snapshot.providers}
    ids = [provider.id] if provider.id in known else []
    base_url = provider.base_url
    if base_url:
        with contextlib.suppress(LookupError):
            ids.append(snapshot.find_provider(None, None, base_url).id)
    return ids


def _lookup(snapshot, provider: Provider, row: ProviderModel) -> tuple[str, ModelInfo] | None:
    """(genai-prices provider id, model) for a catalogue row, or None if the source does not
    price it. The public model name is tried first, then the upstream name."""
    names = [row.model] + ([row.upstream_model] if row.upstream_model != row.model else [])
    for source_id in _source_provider_ids(provider, snapshot):
        for name in names:
            try:
                found_provider, model = snapshot.find_provider_model(name, None, source_id, None)
            except LookupError:
                continue
            return found_provider.id, model
    return None


def _per_token(value: Decimal) -> Decimal:
    return (Decimal(value) / _PER_TOKEN).quantize(_DECIMAL_PLACES)


def _json_number(value: Decimal) -> float:
    return float(_per_token(value))


def prices_from_source(model_price: ModelPrice) -> dict | None:
    """Our price fields for a genai-prices ModelPrice (USD per 1M tokens, maybe tiered), or
    None when it has no per-token input price (priced per request, per image...). A model
    priced on input alone (an embedding model) gets an output price of 0."""
    raw = {rate: getattr(model_price, key, None) for rate, key in _RATE_KEYS.items()}
    if raw["input"] is None:
        return None
    if raw["output"] is None:
        raw["output"] = Decimal(0)
    fields = {}
    for rate, value in raw.items():
        base = value.base if isinstance(value, TieredPrices) else value
        fields[_ROW_FIELD[rate]] = None if base is None else _per_token(base)
    thresholds = sorted(
        {
            tier.start
            for value in raw.values()
            if isinstance(value, TieredPrices)
            for tier in value.tiers
        }
    )
    tiers = []
    for start in thresholds:
        tier: dict = {TIER_THRESHOLD: start}
        for rate, value in raw.items():
            if not isinstance(value, TieredPrices):
                continue
            # The rate in force above `start`: the last of this rate's tiers that begins there
            # or lower (genai-prices' tiers are cliffs on the prompt's size, as ours are).
            applicable = [t.price for t in value.tiers if t.start <= start]
            if applicable:
                tier[rate] = _json_number(applicable[-1])
        tiers.append(tier)
    fields["price_tiers"] = tiers
    return fields


def _differs(row: ProviderModel, fields: dict) -> bool:
    for name, value in fields.items():
        current = getattr(row, name)
        if name == "price_tiers":
            if (current or []) != value:
                return True
        elif (current is None) != (value is None) or (
            current is not None and Decimal(current) != value
        ):
            return True
    return False


def model_prices_sync(*, now: datetime | None = None) -> PriceSyncRun:
    """Apply the source's current list prices to every catalogue row that is not overridden.

    Idempotent: a row whose prices already match is not written (no audit entry, no catalogue
    rebuild). Rows the source does not know keep their prices. Each change is saved like an
    operator's edit, in the audit trail as made by `price sync`, and bumps the catalogue
    version so every gateway process prices with it within a second.
    """
    now = now or timezone.now()
    snapshot = data_snapshot.get_snapshot()
    run = PriceSyncRun(source=source_version())
    with audit_actor("price sync", via="system"), transaction.atomic():
        rows = ProviderModel.objects.select_related("provider").select_for_update(of=("self",))
        for row in rows.order_by("provider_id", "model"):
            label = f"{row.provider_id}/{row.model}"
            if row.prices_overridden:
                run.overridden.append(label)
                continue
            found = _lookup(snapshot, row.provider, row)
            fields = prices_from_source(found[1].get_prices(now)) if found else None
            if fields is None:
                run.not_found.append(label)
                continue
            source = f"{source_version()}: {found[0]}/{found[1].id}"
            if not _differs(row, fields) and row.price_source == source:
                run.unchanged.append(label)
                continue
            run.changes[label] = {
                name: (getattr(row, name), value)
                for name, value in fields.items()
                if _differs(row, {name: value})
            }
            for name, value in fields.items():
                setattr(row, name, value)
            row.price_source = source
            row.prices_synced_at = now
            row.save(update_fields=[*fields, "price_source", "prices_synced_at", "updated_at"])
            run.updated.append(label)
    if run.updated:
        logger.info("price sync (%s): %d model(s) updated", run.source, len(run.updated))
    return run


def provider_blended_prices_refresh(provider_ids=None) -> None:
    """Recompute `Provider.cost_per_token`, the blended 3:1 list price of each provider's
    enabled models (NULL for a provider without any), after any save or delete of a model row
    (signals.py). One UPDATE per provider whose figure moved: a summary column, so no audit
    entry and no catalogue rebuild follow."""
    providers = Provider.objects.all()
    if provider_ids is not None:
        providers = providers.filter(id__in=provider_ids)
    blended = dict(
        ProviderModel.objects.filter(enabled=True, provider__in=providers)
        .values("provider_id")
        .annotate(
            price=Avg(
                (3 * F("input_price") + F("output_price")) / 4,
                output_field=DecimalField(max_digits=16, decimal_places=12),
            )
        )
        .values_list("provider_id", "price")
    )
    for provider_id, current in providers.values_list("id", "cost_per_token"):
        price = blended.get(provider_id)
        if price is not None:
            price = Decimal(price).quantize(_DECIMAL_PLACES)
        if price != current:
            Provider.objects.filter(id=provider_id).update(cost_per_token=price)


def prices_edited(row: ProviderModel, changed: set[str] | frozenset[str]) -> None:
    """An operator changed `changed` fields of `row` by hand (admin or API): when that includes
    a price and not the override flag itself, the row becomes overridden, so the next sync
    keeps the operator's prices."""
    if "prices_overridden" in changed:
        return
    if changed & set(PRICE_FIELDS):
        row.prices_overridden = True
        row.price_source = ""
