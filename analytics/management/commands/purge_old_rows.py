from django.core.management.base import BaseCommand

from analytics.services import old_rows_purge


class Command(BaseCommand):
    help = (
        "Delete request-log rows older than REQUEST_LOG_RETENTION_DAYS and health-probe rows "
        "older than PROVIDER_PROBE_RETENTION_DAYS and, if AUDIT_RETENTION_DAYS is set, audit "
        "events older than that, in batches (the scheduled retention job). Rollups and "
        "reports are kept."
    )

    def handle(self, *args, **options):
        result = old_rows_purge()
        self.stdout.write(
            f"{result.request_log_deleted} request-log rows (before "
            f"{result.request_log_cutoff.isoformat()}) and {result.health_checks_deleted} "
            f"health checks (before {result.health_check_cutoff.isoformat()}) deleted"
        )
        if result.audit_cutoff:
            self.stdout.write(
                f"{result.audit_events_deleted} audit events (before "
                f"{result.audit_cutoff.isoformat()}) deleted"
            )
        else:
            self.stdout.write("audit trail kept (AUDIT_RETENTION_DAYS=0)")
