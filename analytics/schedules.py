"""The analytics jobs' default beat schedules (docs/jobs.md): the rollup, the daily report,
retention, the observed output lengths, the request-log spool's shipping and the canary
evaluation, from the settings' values. Installed by migrations 0007, 0011 (the spool's) and
0015 (the canary's) and, after a transactional test flushed the database, by tests; rows
that exist are left
as they are."""

from django.conf import settings

from core.schedules import cron_fields, periodic_task_install


def install_default_schedules(apps) -> None:
    rollup_every = settings.ANALYTICS_ROLLUP_INTERVAL_SECONDS
    periodic_task_install(
        apps,
        name="analytics-rollup",
        task="analytics.tasks.aggregate_analytics_task",
        description="Request log -> routing_analytics for the recent periods (docs/jobs.md).",
        every_seconds=rollup_every,
        expire_seconds=max(1, round(rollup_every)),
    )
    periodic_task_install(
        apps,
        name="analytics-daily-report",
        task="analytics.tasks.send_analytics_report_task",
        description="Yesterday's cost report, stored and emailed (docs/jobs.md).",
        cron=cron_fields("ANALYTICS_REPORT_SCHEDULE", settings.ANALYTICS_REPORT_SCHEDULE),
        time_zone=settings.TIME_ZONE,
        expire_seconds=3600,
    )
    periodic_task_install(
        apps,
        name="retention",
        task="analytics.tasks.purge_old_rows_task",
        description="Delete request-log, probe (and audit) rows past retention (docs/jobs.md).",
        cron=cron_fields("RETENTION_SCHEDULE", settings.RETENTION_SCHEDULE),
        time_zone=settings.TIME_ZONE,
        expire_seconds=3600,
    )
    periodic_task_install(
        apps,
        name="request-log-spool",
        task="analytics.tasks.ship_request_log_spool_task",
        description="Ship request-log spool files left by processes that died, on the worker's "
        "host (analytics/spool.py; web processes do it too).",
        every_seconds=60,
        expire_seconds=60,
    )
    estimates_every = settings.ROUTING_OUTPUT_ESTIMATES_INTERVAL_SECONDS
    periodic_task_install(
        apps,
        name="output-estimates",
        task="analytics.tasks.refresh_output_estimates_task",
        description="Observed output lengths per model, for expected costs (docs/jobs.md).",
        every_seconds=estimates_every,
        expire_seconds=max(1, round(estimates_every)),
    )
    canaries_every = settings.CANARY_EVALUATION_INTERVAL_SECONDS
    periodic_task_install(
        apps,
        name="canary-evaluation",
        task="analytics.tasks.evaluate_canaries_task",
        description="Roll back or promote running policy canaries (docs/policies.md"
        "#canary-activation).",
        every_seconds=canaries_every,
        expire_seconds=max(1, round(canaries_every)),
    )
