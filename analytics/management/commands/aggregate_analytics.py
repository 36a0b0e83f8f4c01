from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from analytics.services import analytics_rollup


def _moment(value: str):
    moment = parse_datetime(value)
    if moment is None or moment.tzinfo is None:
        raise CommandError(f"{value!r}: give an ISO 8601 date-time with a UTC offset")
    return moment


class Command(BaseCommand):
    help = (
        "Roll the request log up into routing_analytics (the scheduled job, run by hand). "
        "Without options: the periods of the last ANALYTICS_ROLLUP_LOOKBACK_MINUTES; "
        "--since backfills older periods (within the log's retention)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", type=_moment, help="e.g. 2026-11-01T00:00:00Z")
        parser.add_argument("--until", type=_moment, help="default: now")

    def handle(self, *args, since=None, until=None, **options):
        result = analytics_rollup(since=since, until=until)
        self.stdout.write(
            f"{result.start.isoformat()} .. {result.end.isoformat()} "
            f"({result.period_minutes}-minute periods): {result.groups} groups, "
            f"{result.written} rows written, {result.deleted} stale rows deleted"
            + (" (window cut at the retention horizon)" if result.clamped else "")
        )
