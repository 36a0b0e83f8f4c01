"""Issuing and checking API keys."""

import secrets

from django.db import transaction
from django.utils import timezone

from .choices import BudgetPeriod
from .models import KEY_PREFIX, ApiKey, hash_key


@transaction.atomic
def api_key_create(
    *,
    user,
    name: str,
    scopes: list[str],
    team: str = "",
    expires_at=None,
    rate_limit_per_minute: int | None = None,
    rate_limit_per_hour: int | None = None,
    tokens_per_minute: int | None = None,
    budget_usd=None,
    budget_period: str = BudgetPeriod.MONTH,
):
    """Create a key; returns (ApiKey, raw_key). The raw key exists only in this return value.

    Limits left as None take the defaults (docs/security.md)."""
    raw_key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(
        name=name,
        user=user,
        team=team,
        scopes=list(scopes),
        expires_at=expires_at,
        prefix=raw_key[: len(KEY_PREFIX) + 8],
        hashed_key=hash_key(raw_key),
        rate_limit_per_minute=rate_limit_per_minute,
        rate_limit_per_hour=rate_limit_per_hour,
        tokens_per_minute=tokens_per_minute,
        budget_usd=budget_usd,
        budget_period=budget_period,
    )
    api_key.full_clean()
    api_key.save()
    return api_key, raw_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, or None."""
    if not raw_key.startswith(KEY_PREFIX):
        return None
    api_key = ApiKey.objects.select_related("user").filter(hashed_key=hash_key(raw_key)).first()
    if api_key is None or not api_key.is_active or not api_key.user.is_active:
        return None
    return api_key
