from django.db import models


class PolicyStatus(models.TextChoices):
    """Only `active` policies route traffic; the others are kept for editing and history."""

    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    # Routing a sticky share of callers while its canary runs (docs/policies.md#canary-activation).
    CANARY = "canary", "Canary"
    INACTIVE = "inactive", "Inactive"
    ARCHIVED = "archived", "Archived"


class QualityTier(models.TextChoices):
    """The engine's tiers (routing/engine/quality.py TIERS), lowest first."""

    ECONOMY = "economy", "Economy"
    STANDARD = "standard", "Standard"
    FRONTIER = "frontier", "Frontier"


class CanaryState(models.TextChoices):
    RUNNING = "running", "Running"
    PROMOTED = "promoted", "Promoted"
    ROLLED_BACK = "rolled_back", "Rolled back"
    STOPPED = "stopped", "Stopped by an operator"
