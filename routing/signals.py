"""Catalogue changes (providers, models, policies) invalidate every process's snapshot."""

from django.db.models.signals import post_delete, post_save

from providers.models import Provider, ProviderModel

from .catalog import catalogue_changed
from .models import ModelQuality, PolicyCanary, RoutingPolicy


def _changed(sender, **kwargs):
    catalogue_changed()


def connect():
    for model in (Provider, ProviderModel, RoutingPolicy, ModelQuality, PolicyCanary):
        post_save.connect(_changed, sender=model, dispatch_uid=f"catalogue-{model.__name__}-save")
        post_delete.connect(
            _changed, sender=model, dispatch_uid=f"catalogue-{model.__name__}-delete"
        )
