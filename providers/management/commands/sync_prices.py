from django.core.management.base import BaseCommand

from providers.prices import model_prices_sync


class Command(BaseCommand):
    help = (
        "Refresh model prices from the maintained price source (the genai-prices data set "
        "pinned in requirements.txt). Rows an operator priced by hand (prices_overridden) are "
        "kept; rows the source does not know keep their prices."
    )

    def handle(self, *args, **options):
        run = model_prices_sync()
        self.stdout.write(f"source: {run.source}")
        for label in run.updated:
            changes = ", ".join(
                f"{name} {_show(old)} -> {_show(new)}"
                for name, (old, new) in run.changes[label].items()
            )
            self.stdout.write(f"updated     {label}: {changes}")
        for label in run.overridden:
            self.stdout.write(f"kept        {label}: prices overridden by an operator")
        for label in run.not_found:
            self.stdout.write(f"not priced  {label}: not in the source, prices kept")
        self.stdout.write(
            f"{len(run.updated)} updated, {len(run.unchanged)} unchanged, "
            f"{len(run.overridden)} overridden, {len(run.not_found)} not in the source"
        )


def _show(value) -> str:
    if isinstance(value, list):
        return f"{len(value)} tier(s)" if value else "no tiers"
    return "-" if value is None else f"${float(value) * 1e6:g}/1M"
