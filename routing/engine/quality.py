"""Quality tiers: which substitutions a policy may make without the operator saying so.

Every catalogue model carries a quality score (a public leaderboard's, see
routing/quality_data.json) and a tier, ordered from lowest to highest in `TIERS`. A policy
may send a request to a target of the requested model's tier or above; a target of a lower
tier is a **downgrade**, eligible only when the policy allows it with
`allow_downgrade_to: <tier>` (targets down to that tier) or `max_score_drop: <points>` (targets
whose score is at most that far below the requested model's). A model without a tier
("unrated") ranks as the lowest tier: nothing is a downgrade from it, and substituting it for
a rated model is one (docs/policies.md#quality-tiers).
"""

from __future__ import annotations

from dataclasses import dataclass

# Lowest first. A tier's rank is its index.
TIERS = ("economy", "standard", "frontier")
TIER_RANK = {name: rank for rank, name in enumerate(TIERS)}
UNRATED = "unrated"


def tier_rank(tier: str | None) -> int:
    """The rank of a tier; an unrated model (None, or an unknown name) ranks lowest."""
    return TIER_RANK.get(tier, 0) if tier else 0


@dataclass(frozen=True, slots=True)
class DowngradeSpec:
    """A policy's permission to substitute lower-tier models (both None: none at all)."""

    allow_to: str | None = None
    max_score_drop: float | None = None

    @property
    def allows_any(self) -> bool:
        return self.allow_to is not None or self.max_score_drop is not None


NO_DOWNGRADE = DowngradeSpec()


def is_downgrade(requested_tier: str | None, target_tier: str | None) -> bool:
    """Whether serving a `target_tier` model for a `requested_tier` request crosses a tier
    downward (what the request log, the rollups and X-Auterity-Downgrade mark)."""
    return tier_rank(target_tier) < tier_rank(requested_tier)


def downgrade_refusal(
    requested_tier: str | None,
    requested_score: float | None,
    target_tier: str | None,
    target_score: float | None,
    spec: DowngradeSpec,
) -> str:
    """Why a target may not stand in for the requested model under `spec` ("" if it may)."""
    target_rank, requested_rank = tier_rank(target_tier), tier_rank(requested_tier)
    if target_rank >= requested_rank:
        return ""
    if spec.allow_to is not None and target_rank >= tier_rank(spec.allow_to):
        return ""
    if (
        spec.max_score_drop is not None
        and requested_score is not None
        and target_score is not None
        and requested_score - target_score <= spec.max_score_drop
    ):
        return ""
    target_name = target_tier or UNRATED
    if spec.allow_to is not None:
        allowed = f"the policy allows down to {spec.allow_to}"
    elif spec.max_score_drop is not None:
        allowed = f"the policy allows a score drop of {spec.max_score_drop:g} at most"
    else:
        allowed = "the policy allows no downgrade"
    return f"quality tier {target_name} below the requested model's {requested_tier} ({allowed})"
