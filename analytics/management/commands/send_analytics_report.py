from datetime import date

from django.core.management.base import BaseCommand, CommandError

from analytics.reports import report_daily_run


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r}: give a day as YYYY-MM-DD") from None


class Command(BaseCommand):
    help = (
        "Build the daily cost report of a day (default yesterday, in TIME_ZONE), store it and "
        "email it to ANALYTICS_REPORT_RECIPIENTS unless it already went out (the scheduled "
        "job, run by hand)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--day", type=_day, help="YYYY-MM-DD; default: yesterday")
        parser.add_argument(
            "--resend", action="store_true", help="email it even if it was sent before"
        )
        parser.add_argument("--no-email", action="store_true", help="only build and store it")

    def handle(self, *args, day=None, resend=False, no_email=False, **options):
        report = report_daily_run(day=day, resend=resend, email=not no_email)
        totals = report.data["totals"]
        saved = totals.get("savings_percent")
        self.stdout.write(
            f"{report}: {report.request_count} requests, cost ${report.total_cost:.4f}, "
            f"baseline ${report.baseline_cost:.4f}"
            + (f", {saved:.1f}% saved" if saved is not None else "")
        )
        if report.emailed_at:
            sent = ", ".join(report.recipients)
            self.stdout.write(f"emailed {report.emailed_at:%Y-%m-%d %H:%M} to {sent}")
        else:
            self.stdout.write("not emailed (no recipients, or --no-email)")
