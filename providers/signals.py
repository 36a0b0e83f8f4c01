"""Keep each provider's blended price (`cost_per_token`) in step with its models' prices."""

from django.db.models.signals import post_delete, post_save

from .models import ProviderModel
from .prices import provider_blended_prices_refresh


def _model_changed(sender, instance, raw=False, **kwargs):
    if not raw:  # fixtures load rows as they are
        provider_blended_prices_refresh([instance.provider_id])


def connect() -> None:
    post_save.connect(_model_changed, sender=ProviderModel, dispatch_uid="providers-blend-save")
    post_delete.connect(_model_changed, sender=ProviderModel, dispatch_uid="providers-blend-del")
