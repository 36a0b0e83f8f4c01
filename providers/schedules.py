"""The health probes' default beat schedule (docs/jobs.md): every
PROVIDER_PROBE_INTERVAL_SECONDS. Installed by migration 0003 and, after a transactional test
flushed the database, by tests; an existing row is left as it is."""

from django.conf import settings

from core.schedules import periodic_task_install


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
