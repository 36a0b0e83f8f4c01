"""Celery tasks of the analytics app: each calls one idempotent service (docs/jobs.md).

Only named transient errors are retried, with backoff and a bound: a database that restarts
or is briefly locked, and a mail server that cannot be reached. Anything else is a bug and
fails loudly in the worker's log.
"""

import smtplib

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils.dateparse import parse_date, parse_datetime

from . import canary, output_lengths, reports, services

TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)
TRANSIENT_MAIL_ERRORS = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError)
RETRY = {"retry_backoff": 5, "retry_backoff_max": 300, "retry_jitter": True, "max_retries": 5}


@shared_task(autoretry_for=TRANSIENT_DB_ERRORS, **RETRY)
def aggregate_analytics_task(since: str | None = None, until: str | None = None) -> dict:
    """Recompute the recent rollups (or [since, until), ISO 8601, when given)."""
    window = {"since": since and parse_datetime(since), "until": until and parse_datetime(until)}
    return services.analytics_rollup(**window).as_dict()


@shared_task(autoretry_for=TRANSIENT_DB_ERRORS + TRANSIENT_MAIL_ERRORS, **RETRY)
def send_analytics_report_task(day: str | None = None) -> dict:
    """Build (or rebuild) the daily report of `day` (default yesterday) and email it once."""
    return reports.report_daily_run(day=day and parse_date(day)).summary()


@shared_task(autoretry_for=TRANSIENT_DB_ERRORS, **RETRY)
def purge_old_rows_task() -> dict:
    return services.old_rows_purge().as_dict()


@shared_task(autoretry_for=TRANSIENT_DB_ERRORS, **RETRY)
def ship_request_log_spool_task() -> int:
    """Ship orphaned request-log spool files of this host (analytics/spool.py)."""
    return services.request_log_spool_ship()


@shared_task(autoretry_for=TRANSIENT_DB_ERRORS, **RETRY)
def refresh_output_estimates_task() -> dict:
    """The observed output lengths the cost guard expects (analytics/output_lengths.py)."""
    return output_lengths.output_estimates_refresh()


@shared_task(autoretry_for=TRANSIENT_DB_ERRORS, **RETRY)
def evaluate_canaries_task() -> list[dict]:
    """Roll back or promote the running policy canaries (analytics/canary.py)."""
    return canary.canary_evaluate()
