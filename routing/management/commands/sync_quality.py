from django.core.management.base import BaseCommand

from routing.quality import DATA_FILE, model_quality_sync, quality_data_load


class Command(BaseCommand):
    help = (
        "Load the models' quality scores and tiers from routing/quality_data.json (a public "
        "leaderboard's scores, with their source and date). Rows an operator edited in the "
        "admin (overridden) are kept."
    )

    def handle(self, *args, **options):
        header, _ = quality_data_load()
        written, kept = model_quality_sync()
        self.stdout.write(f"source: {header['source']} ({header['source_url']})")
        self.stdout.write(f"{written} written, {kept} kept as overridden, from {DATA_FILE.name}")
