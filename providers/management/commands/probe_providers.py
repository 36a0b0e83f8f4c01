from django.core.management.base import BaseCommand

from providers.services import provider_probe_all


class Command(BaseCommand):
    help = (
        "Probe every provider's model list once and update its status (the scheduled health "
        "probe, run by hand). Does nothing while the intelligent_routing_monitoring switch is off."
    )

    def handle(self, *args, **options):
        run = provider_probe_all()
        if run.skipped:
            self.stdout.write(f"probes skipped: {run.skipped}")
            return
        for r in run.results:
            change = f"{r.status_before} -> {r.status_after}" if r.changed else r.status_after
            error = f"  {r.error_type}" if r.error_type else ""
            self.stdout.write(
                f"{r.provider_id:<20} {r.outcome:<7} {r.latency * 1000:8.1f} ms  {change}{error}"
            )
