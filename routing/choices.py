from django.db import models


class PolicyStatus(models.TextChoices):
    """Only `active` policies route traffic; the others are kept for editing and history."""

    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    ARCHIVED = "archived", "Archived"
