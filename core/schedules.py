"""Default Celery beat schedules, installed as django-celery-beat rows by data migrations.

Schedules live in the database (the admin's Periodic tasks pages, read by beat's
DatabaseScheduler), so operators can move a report or pause a job without a deploy. Each
app's data migration installs its own jobs' defaults through `periodic_task_install`, with
the values of today's settings; an existing row (perhaps edited by an operator) is never
changed. docs/jobs.md lists them.
"""

from __future__ import annotations

from django.utils import timezone


def cron_fields(name: str, value: str) -> dict[str, str]:
    """A five-field cron expression ("minute hour day-of-month month day-of-week") as
    CrontabSchedule's fields; ValueError naming the setting if it is not five fields."""
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(f"{name} needs 5 cron fields, got {value!r}")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    return {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month_of_year,
        "day_of_week": day_of_week,
    }


def periodic_task_install(
    apps,
    *,
    name: str,
    task: str,
    description: str,
    every_seconds: float | None = None,
    cron: dict[str, str] | None = None,
    time_zone: str = "UTC",
    expire_seconds: int | None = None,
) -> None:
    """Create the PeriodicTask `name` running `task` every `every_seconds` or on `cron`,
    unless a task of that name exists. `apps` is the migration's historical registry."""
    periodic_task = apps.get_model("django_celery_beat", "PeriodicTask")
    if periodic_task.objects.filter(name=name).exists():
        return
    schedule = {}
    if every_seconds is not None:
        interval = apps.get_model("django_celery_beat", "IntervalSchedule")
        schedule["interval"], _ = interval.objects.get_or_create(
            every=max(1, round(every_seconds)), period="seconds"
        )
    else:
        crontab = apps.get_model("django_celery_beat", "CrontabSchedule")
        schedule["crontab"], _ = crontab.objects.get_or_create(**cron, timezone=time_zone)
    periodic_task.objects.create(
        name=name,
        task=task,
        description=description,
        expire_seconds=expire_seconds,
        enabled=True,
        **schedule,
    )
    # beat's DatabaseScheduler notices changes through this row's timestamp.
    apps.get_model("django_celery_beat", "PeriodicTasks").objects.update_or_create(
        ident=1, defaults={"last_update": timezone.now()}
    )
