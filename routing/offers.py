"""The model offers the engine routes among, read from the providers' catalogue rows."""

import logging

from providers.models import ProviderModel
from routing.engine import ModelOffer, PriceRules

logger = logging.getLogger(__name__)


def offer_pricing(row: ProviderModel) -> PriceRules:
    """A catalogue row's price rules as the engine bills with them. Tiers are validated when
    saved; a row broken behind the catalogue's back (SQL) is priced without its tiers, loudly,
    rather than taking the whole catalogue down."""
    prices = (
        row.input_price,
        row.output_price,
        row.cached_input_price,
        row.cache_write_price,
        row.reasoning_price,
    )
    try:
        return PriceRules.build(*prices, tiers=row.price_tiers or ())
    except (ValueError, TypeError, KeyError) as exc:
        logger.error("%s: price tiers ignored, they are malformed: %s", row, exc)
        return PriceRules.build(*prices)


def catalogue_offers() -> list[ModelOffer]:
    """Every enabled model offer, straight from the database."""
    offers = []
    for row in ProviderModel.objects.filter(enabled=True).select_related("provider"):
        offers.append(
            ModelOffer(
                provider_id=row.provider_id,
                model=row.model,
                upstream_model=row.upstream_model or row.model,
                input_price=float(row.input_price),
                output_price=float(row.output_price),
                context_window=row.context_window,
                max_output_tokens=row.max_output_tokens or 0,
                capabilities=row.capabilities,
                is_default=row.is_default,
                pricing=offer_pricing(row),
                thinking_tokens=row.expected_thinking_tokens,
            )
        )
    return offers
