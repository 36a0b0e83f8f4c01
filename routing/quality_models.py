"""ModelQuality, apart from routing/models.py so that the catalogue's offers (which the
policy validation in models.py reads) can read it too; routing.models exports it."""

from django.db import models

from .choices import QualityTier


class ModelQuality(models.Model):
    """How good a model is, for the quality tiers policies may not cross downward without
    leave (docs/policies.md#quality-tiers): a public leaderboard's score and the tier it
    gives, kept with the source and date it came from. `sync_quality` loads them from
    routing/quality_data.json; a row an operator edited (`overridden`) is left alone by it.
    A model with no row is unrated (the lowest rank)."""

    model = models.CharField(max_length=200, unique=True, help_text="Auterity's model name.")
    score = models.FloatField(
        null=True, blank=True, help_text="The leaderboard's score (LMArena text: Elo-like)."
    )
    tier = models.CharField(max_length=20, choices=QualityTier.choices)
    source = models.CharField(max_length=500, blank=True, default="")
    as_of = models.DateField(null=True, blank=True, help_text="When the source published it.")
    tier_basis = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="Why this tier, when not from the score's thresholds.",
    )
    overridden = models.BooleanField(
        default=False, help_text="Set by an operator: sync_quality keeps it as it is."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model"]
        verbose_name = "model quality"
        verbose_name_plural = "model quality"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(tier__in=QualityTier.values),
                name="%(app_label)s_%(class)s_tier_valid",
            ),
        ]

    def __str__(self):
        score = f" {self.score:g}" if self.score is not None else ""
        return f"{self.model}: {self.tier}{score}"
