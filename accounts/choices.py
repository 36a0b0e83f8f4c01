from django.db import models


class Scope(models.TextChoices):
    """What a caller may do. Users get scopes from Django permissions; API keys carry them."""

    AI_EXECUTE = "ai:execute", "Call the gateway"
    ROUTING_VIEW = "routing:view", "Read policies, providers and analytics"
    ROUTING_MANAGE = "routing:manage", "Manage policies, providers and flags"


class BudgetPeriod(models.TextChoices):
    """The calendar period (UTC) a key's spend budget covers; spend starts at 0 each period."""

    DAY = "day", "Per day (UTC)"
    MONTH = "month", "Per calendar month (UTC)"


class AuditAction(models.TextChoices):
    CREATE = "create", "Created"
    UPDATE = "update", "Changed"
    DELETE = "delete", "Deleted"
