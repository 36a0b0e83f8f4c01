"""Canary cohorts: a policy activated as "canary N %" routes only a sticky share of callers.

A caller is in a policy's canary cohort when `canary_bucket(policy_id, caller)` is below the
canary's percent. The bucket is a stable hash of the policy and the caller (its user, else its
API key), computed as routing/flags.py buckets the routing_policies flag, so the same caller
always lands on the same side and raising the percent keeps everyone who was in. Requests the
canary's conditions match from callers outside the cohort form its control cohort
(decide.py reports either on the decision, the request log keeps it, analytics compares them:
docs/policies.md#canary-activation).
"""

from __future__ import annotations

import hashlib

from .conditions import MISSING, Facts

CANARY = "canary"
CONTROL = "control"


def canary_bucket(policy_id: str, who: str) -> float:
    """A stable position in [0, 100) for this policy and caller."""
    digest = hashlib.sha256(f"canary:{policy_id}:{who}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 1_000_000 / 10_000


def caller_key(facts: Facts) -> str:
    """Who a caller is for the cohort: its user, else its API key, else nobody ("")."""
    if facts.user is not MISSING:
        return f"user:{facts.user}"
    if facts.api_key is not MISSING:
        return f"key:{facts.api_key}"
    return ""


def in_cohort(policy_id: str, percent: float, facts: Facts) -> bool:
    return canary_bucket(policy_id, caller_key(facts)) < percent
