from django.db import models


class PolicyStatus(models.TextChoices):
    """Only `active` policies route traffic; the others are kept for editing and history."""

    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    ARCHIVED = "archived", "Archived"


class QualityTier(models.TextChoices):
    """The engine's tiers (routing/engine/quality.py TIERS), lowest first."""

    ECONOMY = "economy", "Economy"
    STANDARD = "standard", "Standard"
    FRONTIER = "frontier", "Frontier"
