"""The model offers the engine routes among, read from the providers' catalogue rows."""

from providers.models import ProviderModel
from routing.engine import ModelOffer


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
                pricing=row.price_rules(),
                thinking_tokens=row.expected_thinking_tokens,
            )
        )
    return offers
