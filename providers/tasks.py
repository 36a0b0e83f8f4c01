"""Celery tasks of the providers app (docs/jobs.md)."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import prices, services


# A provider's failure is an outcome, never an exception; only the database is retried.
@shared_task(
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=30,
    max_retries=2,
)
def probe_providers_task() -> dict:
    return services.provider_probe_all().as_dict()


@shared_task(
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=5,
)
def sync_prices_task() -> dict:
    return prices.model_prices_sync().as_dict()
