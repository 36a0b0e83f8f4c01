"""The providers' default beat schedules (docs/jobs.md): the health probes every
PROVIDER_PROBE_INTERVAL_SECONDS, the price sync on PRICE_SYNC_SCHEDULE. Installed by
migration 0005 and, after a transactional test flushed the database, by tests; an existing
row is left as it is."""

from django.conf import settings

from core.schedules import cron_fields, periodic_task_install


def install_default_schedules(apps) -> None:
    every = settings.PROVIDER_PROBE_INTERVAL_SECONDS
    periodic_task_install(
        apps,
        name="provider-probes",
        task="providers.tasks.probe_providers_task",
        description="Each provider's model list, timed; status with hysteresis (docs/jobs.md).",
        every_seconds=every,
        expire_seconds=max(1, round(every)),
    )
    periodic_task_install(
        apps,
        name="price-sync",
        task="providers.tasks.sync_prices_task",
        description="Model prices from the maintained price source; overrides kept (docs/jobs.md).",
        cron=cron_fields("PRICE_SYNC_SCHEDULE", settings.PRICE_SYNC_SCHEDULE),
        time_zone=settings.TIME_ZONE,
        expire_seconds=3600,
    )
